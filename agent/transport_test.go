package agent

import (
	"io"
	"log"
	"os"
	"path/filepath"
	"testing"

	"lite-raft/api"
	"lite-raft/raftcore"
	"lite-raft/sshrpc"
)

// A member's link that a message made first (a host that joined answers its leader
// before it knows who the members are) is watched once Connect names it: the watch is
// what says hello on each of the link's streams. Before, Connect watched only links it
// made itself, and such a peer never heard which commands this agent understands (the
// torture test's create and lock exited 14 for 40 s after a member was added back).
func TestConnectWatchesALinkAMessageMade(t *testing.T) {
	home := t.TempDir()
	cfg := filepath.Join(home, "ssh_config")
	// a host that refuses at once: the link's goroutines only back off until closed
	if err := os.WriteFile(cfg, []byte("Host b\n  HostName 127.0.0.1\n  Port 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := sshrpc.NewDialer(sshrpc.DialerOptions{ConfigFiles: []string{cfg}, Home: home})
	if err != nil {
		t.Fatal(err)
	}
	tr := newSSHTransport(d, func(args string) string { return "true" }, log.New(io.Discard, "", 0),
		api.Version{ID: "a", Commands: 2})
	defer tr.Close()
	tr.Send(raftcore.Message{Type: raftcore.MsgAppResp, From: "a", To: "b", Term: 1})
	watched := func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.links["b"] != nil && tr.links["b"].watched
	}
	if watched() {
		t.Fatal("a link a message made is watched before Connect")
	}
	tr.Connect("b", func(LinkEvent) {})
	if !watched() {
		t.Fatal("Connect left unwatched a link that a message made first: no hello would go on its streams")
	}
	tr.Disconnect("b")
	tr.Connect("b", func(LinkEvent) {})
	if !watched() {
		t.Fatal("a link made again after Disconnect is not watched")
	}
}
