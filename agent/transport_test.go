package agent

import (
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/conf"
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

// heardTransport records the peers it was told it heard from.
type heardTransport struct {
	Transport
	heard []raftcore.NodeID
}

func (t *heardTransport) Heard(id raftcore.NodeID) { t.heard = append(t.heard, id) }

// A peer whose link went down is tried again at once when anything comes from it: a Raft
// message, or the hello a restarted agent says first on each stream (before it has any
// Raft message to send, which for a follower is an election timeout later). Only a link
// that is down is retried, and once.
func TestLinkRetriedWhenThePeerSpeaks(t *testing.T) {
	tr := &heardTransport{Transport: NewMemNetwork().Transport("a")}
	a := initTestAgent(t, "a", conf.Config{ElectionTimeout: time.Second, SnapshotPeriod: 100}, NewMemStorage("a", "b", "c"),
		tr, systemClock{}, io.Discard)
	a.handleEvent(event{version: &api.Version{ID: "b"}})
	if len(tr.heard) != 0 {
		t.Fatalf("retried %v while every link was up", tr.heard)
	}
	a.handleEvent(event{link: &LinkEvent{Peer: "b"}})
	a.handleEvent(event{link: &LinkEvent{Peer: "c"}})
	a.handleEvent(event{version: &api.Version{ID: "b"}})
	a.handleEvent(event{version: &api.Version{ID: "b"}})
	if !slices.Equal(tr.heard, []raftcore.NodeID{"b"}) {
		t.Fatalf("after b's hello: retried %v, want [b] once", tr.heard)
	}
	a.handleEvent(event{msg: &raftcore.Message{From: "c", To: "a", Term: 0}})
	if !slices.Equal(tr.heard, []raftcore.NodeID{"b", "c"}) {
		t.Fatalf("after c's message: retried %v, want [b c]", tr.heard)
	}
}
