package core

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"lite-raft/api"
	"lite-raft/raftcore"
)

// soloCore is a one-member cluster's core over a memDisk, driven by a testDriver as the
// agent's loop drives its core; saved counts the snapshots it took.
type soloCore struct {
	t       *testing.T
	c       *Core
	d       *testDriver
	disk    *memDisk
	cfg     Config
	now     Time
	saved   []raftcore.Snapshot
	runs    []Run // every command the core asked to run on a host
	next    ReplyTo
	replies map[ReplyTo]api.Response // every answer seen
	timers  []soloTimer              // what completes later, by time (after)
}

func newSoloCore(t *testing.T, period uint64) *soloCore {
	boot := raftcore.Snapshot{Meta: raftcore.SnapshotMeta{Members: raftcore.Membership{Voters: []raftcore.NodeID{"a"}}}}
	disk := &memDisk{store: raftcore.NewMemoryStorage(boot, nil)}
	return bootSolo(t, Config{Raft: raftcore.Config{ID: "a", ElectionTicks: 2, HeartbeatTicks: 1,
		Rand: rand.New(rand.NewPCG(1, 2)), Storage: disk.store}, SnapshotPeriod: period}, disk, 0)
}

// bootSolo starts a one-member core from what disk holds, at now, and waits until it
// leads.
func bootSolo(t *testing.T, cfg Config, disk *memDisk, now Time) *soloCore {
	kv, err := disk.kv()
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg, disk.state(), kv)
	if err != nil {
		t.Fatal(err)
	}
	s := &soloCore{t: t, c: c, disk: disk, cfg: cfg, now: now, replies: map[ReplyTo]api.Response{}}
	s.d = &testDriver{c: c, disk: disk, now: func() Time { return s.now },
		reply:     func(r Reply) { s.replies[r.To] = r.Resp },
		run:       func(r Run) { s.runs = append(s.runs, r) },
		snapSaved: func(snap raftcore.Snapshot) { s.saved = append(s.saved, snap) },
		fail:      func(err error) { t.Fatal(err) }}
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

// restart is the host's agent started again from its disk, the clock going on.
func (s *soloCore) restart() *soloCore {
	return bootSolo(s.t, s.cfg, s.disk, s.now)
}

func (s *soloCore) pump() { s.d.pump() }

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

// staleSnapshotTrio is a trio whose leader l took a snapshot (old) of 160 KB while
// member behind was cut off, then had a quarter of that written to its log: not enough
// for its own rule (the log as large as the snapshot). behind is still cut off; the
// snapshot goes in pieces of 4 KiB, so that its first window is a part of it.
func staleSnapshotTrio(t *testing.T) (tr *trio, l *Core, behind raftcore.NodeID, old raftcore.SnapshotMeta) {
	t.Helper()
	tr = newTrioWith(t, nil, func(cfg *Config) {
		cfg.SnapshotPeriod = 10
		cfg.Raft.KeepEntries = 1
		cfg.Raft.SnapshotChunkBytes = 4 << 10
	})
	l = tr.leader()
	for _, id := range tr.ids {
		if tr.cores[id] != l {
			behind = id
		}
	}
	tr.cut[behind] = true
	big := bytes.Repeat([]byte("x"), 40_000)
	for i := range 4 {
		tr.ask(l.id, api.Request{Op: api.OpSet, Key: fmt.Sprintf("big%d", i), Value: big})
	}
	for i := range 12 {
		tr.ask(l.id, api.Request{Op: api.OpSet, Key: "small", Value: []byte{byte(i)}})
	}
	old = l.node.Status().Snapshot
	if old.Index == 0 {
		t.Fatal("the leader took no snapshot of its 160 KB")
	}
	tr.ask(l.id, api.Request{Op: api.OpSet, Key: "big0", Value: big})
	for i := range 12 {
		tr.ask(l.id, api.Request{Op: api.OpSet, Key: "small", Value: []byte{byte(100 + i)}})
	}
	if s := l.node.Status().Snapshot; s.Index != old.Index {
		t.Fatalf("the leader took a snapshot at %d (after %d) with no member needing one", s.Index, old.Index)
	}
	return tr, l, behind, old
}

// A member that needs the leader's snapshot gets a fresh one: once the log since the
// last snapshot holds a quarter of it, the leader writes a new snapshot rather than send
// the old one and have the member replay the log after it.
func TestSnapshotFreshForAMemberThatNeedsOne(t *testing.T) {
	tr, l, behind, old := staleSnapshotTrio(t)
	last := l.node.Status().LastIndex
	tr.cut[behind] = false
	tr.tick(300)
	got := tr.cores[behind].node.Status().Snapshot
	if got.Index <= old.Index || got.Index < last {
		t.Fatalf("%s installed the snapshot at %d; want a fresh one, at %d or later (the old one was at %d)", behind, got.Index, last, old.Index)
	}
	if a, b := tr.cores[behind].node.Status().Applied, l.node.Status().Applied; a != b {
		t.Fatalf("%s applied %d, the leader %d", behind, a, b)
	}
}

// When the fresh snapshot cannot be written (the disk is full), the member that waited
// for it gets the leader's last one instead, not nothing.
func TestSnapshotFailedFreshOneLetsTheOldGo(t *testing.T) {
	tr, l, behind, old := staleSnapshotTrio(t)
	tr.drv[l.id].snapshotErr = func() error { return errors.New("no space left on device") }
	tr.cut[behind] = false
	tr.tick(3000)
	if got := tr.cores[behind].node.Status().Snapshot; got.Index != old.Index {
		t.Fatalf("%s holds the snapshot at %d; want the leader's last one, at %d", behind, got.Index, old.Index)
	}
	if a, b := tr.cores[behind].node.Status().Applied, l.node.Status().Applied; a != b {
		t.Fatalf("%s applied %d, the leader %d", behind, a, b)
	}
}
