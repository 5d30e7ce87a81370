package agent

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"lite-raft/api"
	"lite-raft/internal/logsink"
	"lite-raft/statefile"
)

// peerVersions keeps what peers said of themselves (api.FrameVersion) in
// state/peer-versions, one "HOST COMMANDS BUILD REQUESTS" line each (BUILD "-" when
// it said none; REQUESTS is missing in the files of builds before request versions), so that an agent that
// restarts knows at once which commands its peers understand, instead of refusing the
// newer ones (exit 14) until every peer has opened a new stream to it. A peer says it
// again on every stream, so what is kept is only a head start; a line that does not
// parse is ignored.
type peerVersions struct {
	path  string
	known map[string]api.Version
	log   *log.Logger
}

func newPeerVersions(dir string, lg *log.Logger) *peerVersions {
	return &peerVersions{path: filepath.Join(dir, statefile.StateDir, "peer-versions"), known: map[string]api.Version{}, log: lg}
}

// load reads what was kept.
func (p *peerVersions) load() []api.Version {
	b, err := os.ReadFile(p.path)
	if err != nil {
		return nil
	}
	var out []api.Version
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 1 {
			continue
		}
		v := api.Version{ID: f[0], Commands: n}
		if len(f) > 2 && f[2] != "-" {
			v.Build = f[2]
		}
		if len(f) > 3 {
			v.Requests, _ = strconv.Atoi(f[3])
		}
		p.known[v.ID] = v
		out = append(out, v)
	}
	return out
}

// note records what a peer said, rewriting the file when it is news.
func (p *peerVersions) note(v api.Version) {
	v = v.WithoutSizes() // said again every few seconds: only what it understands is kept
	if old, ok := p.known[v.ID]; (ok && old == v) || strings.ContainsAny(v.ID+v.Build, " \n") || v.ID == "" {
		return
	}
	p.known[v.ID] = v
	var lines []string
	for _, k := range p.known {
		build := k.Build
		if build == "" {
			build = "-"
		}
		lines = append(lines, fmt.Sprintf("%s %d %s %d", k.ID, k.Commands, build, k.Requests))
	}
	sort.Strings(lines)
	if err := os.MkdirAll(filepath.Dir(p.path), 0o700); err == nil {
		err = statefile.WriteFileAtomic(p.path, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
		if err == nil {
			return
		}
		p.log.Printf(logsink.Warn+"keep what %s said of itself: %v", v.ID, err)
	}
}
