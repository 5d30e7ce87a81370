package agent

import (
	"io"
	"log"
	"os"
	"path/filepath"
	"testing"

	"lite-raft/api"
)

// What peers said of themselves survives a restart of the agent (the file it keeps),
// and a damaged line is skipped, not a reason to refuse to start.
func TestPeerVersionsKept(t *testing.T) {
	dir := t.TempDir()
	lg := log.New(io.Discard, "", 0)
	p := newPeerVersions(dir, lg)
	p.note(api.Version{ID: "h2", Commands: 2, Build: "v1.2", Requests: 2})
	p.note(api.Version{ID: "h3", Commands: 1})
	p.note(api.Version{ID: "bad id", Commands: 2}) // not a host name: not kept
	got := newPeerVersions(dir, lg).load()
	if len(got) != 2 || got[0] != (api.Version{ID: "h2", Commands: 2, Build: "v1.2", Requests: 2}) || got[1] != (api.Version{ID: "h3", Commands: 1}) {
		t.Fatalf("after a restart: %+v", got)
	}
	path := filepath.Join(dir, "state", "peer-versions")
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append(b, []byte("h4 x\n\x00\x01\nh5\n")...), 0o600)
	if got := newPeerVersions(dir, lg).load(); len(got) != 2 {
		t.Fatalf("with damaged lines: %+v", got)
	}
	// the file of a build from before request versions: read as version 1
	os.WriteFile(path, []byte("h2 2 v1.0\nh3 1\n"), 0o600)
	if got := newPeerVersions(dir, lg).load(); len(got) != 2 || got[0].Build != "v1.0" || got[0].RequestsOr1() != 1 || got[1].RequestsOr1() != 1 {
		t.Fatalf("an older build's file: %+v", got)
	}
}
