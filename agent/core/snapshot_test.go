package core

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"lite-raft/api"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
)

// soloCore is a one-member cluster's core over a MemoryStorage, driven as the agent's
// loop does; saved counts the snapshots it took.
type soloCore struct {
	t       *testing.T
	c       *Core
	store   *raftcore.MemoryStorage
	now     Time
	saved   []raftcore.Snapshot
	runs    []Run // every command the core asked to run on a host
	next    ReplyTo
	replies map[ReplyTo]api.Response // every answer seen
}

func newSoloCore(t *testing.T, period uint64) *soloCore {
	boot := raftcore.Snapshot{Meta: raftcore.SnapshotMeta{Members: raftcore.Membership{Voters: []raftcore.NodeID{"a"}}}}
	store := raftcore.NewMemoryStorage(boot, nil)
	c, err := New(Config{Raft: raftcore.Config{ID: "a", ElectionTicks: 2, HeartbeatTicks: 1,
		Rand: rand.New(rand.NewPCG(1, 2)), Storage: store}, SnapshotPeriod: period}, store.State(raftcore.HardState{}), kvstore.New())
	if err != nil {
		t.Fatal(err)
	}
	s := &soloCore{t: t, c: c, store: store, replies: map[ReplyTo]api.Response{}}
	for i := 0; i < 20 && c.Node().Role() != raftcore.Leader; i++ {
		s.now += 10
		c.Tick(s.now)
		s.pump()
	}
	if c.Node().Role() != raftcore.Leader {
		t.Fatal("no leader")
	}
	return s
}

func (s *soloCore) pump() {
	for s.c.HasReady() {
		rd := s.c.Ready()
		if err := s.store.Save(rd.Ready); err != nil {
			s.t.Fatal(err)
		}
		for _, r := range rd.Replies {
			s.replies[r.To] = r.Resp
		}
		s.runs = append(s.runs, rd.Runs...)
		if rd.CompactLog > 0 {
			s.store.CompactLog(rd.CompactLog)
		}
		if err := s.c.Advance(s.now, rd); err != nil {
			s.t.Fatal(err)
		}
		if job := rd.SaveSnapshot; job != nil {
			var b bytes.Buffer
			job.State.WriteSnapshot(&b)
			snap := raftcore.SnapshotOf(job.Meta, b.Bytes())
			s.store.TakeSnapshot(snap, b.Bytes())
			s.c.SnapshotSaved(s.now, snap, nil)
			s.saved = append(s.saved, snap)
		}
	}
}

func (s *soloCore) set(key string, value []byte) {
	s.c.Request(s.now, 1, api.Request{Op: api.OpSet, Key: key, Value: value})
	s.pump()
}

// A snapshot is taken every SnapshotPeriod entries while the state is small, and once
// the state is large, only when the log since the last snapshot holds as much data as
// that snapshot: rewriting the state costs no more than the writes did.
func TestSnapshotWaitsForTheLogToOutgrowTheState(t *testing.T) {
	s := newSoloCore(t, 10)
	for i := 0; i < 30; i++ {
		s.set("small", []byte{byte(i)})
	}
	if len(s.saved) < 2 {
		t.Fatalf("%d snapshots after 30 small writes with a period of 10", len(s.saved))
	}
	// one large value: 100 KB of state
	big := bytes.Repeat([]byte("x"), 100_000)
	s.set("big", big)
	for i := 0; i < 20; i++ {
		s.set("small", []byte{byte(i)})
	}
	before := len(s.saved)
	last := s.saved[before-1]
	if last.Size < 100_000 {
		t.Fatalf("the last snapshot holds %d bytes, want the 100 KB value in it", last.Size)
	}
	// 200 more small writes (a few KB of log): far past the period, far below the state
	for i := 0; i < 200; i++ {
		s.set("small", []byte{byte(i)})
	}
	if n := len(s.saved) - before; n != 0 {
		t.Fatalf("%d snapshots of a %d-byte state after a few KB of writes", n, last.Size)
	}
	// another 100 KB written: now the log holds as much as the snapshot
	s.set("big2", big)
	for i := 0; i < 10; i++ {
		s.set("small", []byte{byte(i)})
	}
	if len(s.saved) == before {
		t.Fatal("no snapshot once the log since the last one outgrew it")
	}
}
