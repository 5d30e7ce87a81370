package core

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"lite-raft/api"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
)

// ask sends a request and pumps until it is answered (or fails the test).
func (s *soloCore) ask(req api.Request) api.Response {
	s.t.Helper()
	s.next++
	to := s.next
	s.c.Request(s.now, to, req)
	for i := 0; i < 1000; i++ {
		s.pump()
		if r, ok := s.replies[to]; ok {
			return r
		}
		s.tick(1)
	}
	s.t.Fatalf("%s %s: no answer", req.Op, req.Key)
	return api.Response{}
}

// tick moves the clock ms milliseconds on, a tick at a time (ticks are 10 ms here); what
// the driver left to complete later (after) completes on the first tick at or past its
// time.
func (s *soloCore) tick(ms int) {
	for end := s.now + Time(ms); s.now < end; {
		s.now += 10
		for len(s.timers) > 0 && s.timers[0].at <= s.now {
			fn := s.timers[0].fn
			s.timers = s.timers[1:]
			fn()
		}
		s.c.Tick(s.now)
		s.pump()
	}
}

// after is the driver's clock (testDriver.after): fn runs on the tick at or past d ms
// from now.
func (s *soloCore) after(d Time, fn func()) {
	t := soloTimer{at: s.now + d, fn: fn}
	i := len(s.timers)
	for i > 0 && s.timers[i-1].at > t.at {
		i--
	}
	s.timers = slices.Insert(s.timers, i, t)
}

type soloTimer struct {
	at Time
	fn func()
}

// A key set with a time to live goes when it runs out, through the log (the leader
// proposes the revoke), unless kept alive; get --json shows what is left.
func TestLeaseExpiry(t *testing.T) {
	s := newSoloCore(t, 1000)
	r := s.ask(api.Request{Op: api.OpSetLease, Key: "t", Value: []byte("v"), TTLMs: 2000})
	if r.Code != 0 || string(r.Value) == "" {
		t.Fatalf("set --ttl: %+v", r)
	}
	lease, _ := strconv.ParseUint(string(r.Value), 10, 64)
	s.tick(1500)
	g := s.ask(api.Request{Op: api.OpGet, Key: "t"})
	var ttl struct {
		TTLMs int64 `json:"ttl_ms"`
	}
	json.Unmarshal(g.JSON, &ttl)
	if g.Code != 0 || ttl.TTLMs <= 0 || ttl.TTLMs > 500 {
		t.Fatalf("get 1.5 s into a 2 s lease: %+v (ttl %+v), want about 500 ms left", g, ttl)
	}
	if k := s.ask(api.Request{Op: api.OpLeaseKeep, Key: "t"}); k.Code != 0 {
		t.Fatalf("lease keep: %+v", k)
	}
	s.tick(1500) // 3 s since the set, 1.5 s since the keep
	if g := s.ask(api.Request{Op: api.OpGet, Key: "t"}); g.Code != 0 {
		t.Fatalf("kept key gone 1.5 s after its keep: %+v", g)
	}
	before := s.c.Node().Commit()
	s.tick(600)
	if g := s.ask(api.Request{Op: api.OpGet, Key: "t"}); g.Code != api.CodeNotFound {
		t.Fatalf("key 2.1 s after its last keep: %+v, want gone", g)
	}
	if s.c.Node().Commit() == before {
		t.Fatal("the key went without an entry in the log")
	}
	if k := s.ask(api.Request{Op: api.OpLeaseKeep, Lease: lease}); k.Code != api.CodeNotFound {
		t.Fatalf("keep of the expired lease: %+v, want 9", k)
	}
}

// A lock is first come, first served: the second in line holds it once the first is
// released; a waiter whose lease expires leaves the queue; lock-wait says so.
func TestLockWaitAndRelease(t *testing.T) {
	s := newSoloCore(t, 1000)
	acquire := func(who string) api.LockPlace {
		r := s.ask(api.Request{Op: api.OpLockAcquire, Key: "job", TTLMs: 3000, Holder: who})
		var p api.LockPlace
		if r.Code != 0 || json.Unmarshal(r.Value, &p) != nil {
			t.Fatalf("lock for %s: %+v", who, r)
		}
		return p
	}
	a, b := acquire("a"), acquire("b")
	if a.Position != 0 || b.Position != 1 || a.Generation == 0 {
		t.Fatalf("places: a %+v, b %+v", a, b)
	}
	if a.Token == 0 || b.Token == 0 || a.Token == b.Token {
		t.Fatalf("tokens: a %d, b %d: want each its own", a.Token, b.Token)
	}
	wait := func(p api.LockPlace) api.Response {
		return s.ask(api.Request{Op: api.OpLockWait, Key: "job", Lease: p.Lease, TimeoutMs: 500})
	}
	var got api.LockPlace
	if r := wait(b); json.Unmarshal(r.JSON, &got) != nil || got.Position != 1 || got.Token != 0 {
		t.Fatalf("b waits while a holds: %+v (%+v; a lock-wait never tells the token)", r, got)
	}
	var ls []api.LockStatus
	json.Unmarshal(s.ask(api.Request{Op: api.OpLocks}).JSON, &ls)
	if len(ls) != 1 || ls[0].Holder != "a" || len(ls[0].Waiting) != 1 || ls[0].Waiting[0] != "b" {
		t.Fatalf("locks: %+v", ls)
	}
	// anyone else naming a's lease is refused, with no token or with b's
	for _, tok := range []uint64{0, b.Token} {
		if r := s.ask(api.Request{Op: api.OpRevoke, Lease: a.Lease, Token: tok}); r.Code != api.CodeUsage || !strings.Contains(r.Msg, "token") {
			t.Fatalf("revoke of a's lease with token %d: %+v, want 10", tok, r)
		}
		if r := s.ask(api.Request{Op: api.OpLeaseKeep, Lease: a.Lease, Token: b.Token}); r.Code != api.CodeUsage {
			t.Fatalf("keep of a's lease with b's token: %+v, want 10", r)
		}
	}
	if r := s.ask(api.Request{Op: api.OpLeaseKeep, Lease: a.Lease, Token: a.Token}); r.Code != 0 {
		t.Fatalf("keep of a's lease with its token: %+v", r)
	}
	if r := s.ask(api.Request{Op: api.OpRevoke, Lease: a.Lease, Token: a.Token}); r.Code != 0 {
		t.Fatalf("release: %+v", r)
	}
	if r := wait(b); json.Unmarshal(r.JSON, &got) != nil || got.Position != 0 || got.Generation <= a.Generation {
		t.Fatalf("b after a's release: %+v (%+v), want the holder with a generation above a's %d", r, got, a.Generation)
	}
	bGen := got.Generation
	c := acquire("c")
	s.tick(3500) // nobody keeps b or c alive
	if r := wait(c); r.Code != api.CodeNotFound {
		t.Fatalf("c after its lease ran out: %+v, want 9", r)
	}
	// b expired first, so c held it until it expired too, and the lock's record went
	// with its queue: d's generation comes from the index, above both
	if ls := s.ask(api.Request{Op: api.OpLocks}); string(ls.JSON) != "[]" {
		t.Fatalf("locks once all expired: %s", ls.JSON)
	}
	if d := acquire("d"); d.Position != 0 || d.Generation <= bGen+1 {
		t.Fatalf("d on the lock left by expired leases: %+v, want the holder with a generation above %d", d, bGen+1)
	}
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// A cluster restored from a backup (kvstore.MarkRestored) has its leader move every
// generation past the old cluster's first, dated by the leader's clock: a lock held in
// the backup, and every lock taken after, is above the epoch (issue 24).
func TestRestoredClusterRebasesFirst(t *testing.T) {
	kv := kvstore.New()
	kv.Apply(3, kvstore.Command{Op: kvstore.OpLockAcquire, Key: "held", TTLMs: 3000})
	kv.MarkRestored()
	boot := raftcore.Snapshot{Meta: raftcore.SnapshotMeta{Index: 3, Term: 1, Members: raftcore.Membership{Voters: []raftcore.NodeID{"a"}}}}
	disk := &memDisk{store: raftcore.NewMemoryStorage(boot, kv.Snapshot()), hs: raftcore.HardState{Term: 1}}
	const started = 1_700_000_000_000_000_000
	s := bootSolo(t, Config{Raft: raftcore.Config{ID: "a", ElectionTicks: 2, HeartbeatTicks: 1,
		Rand: rand.New(rand.NewPCG(1, 2)), Storage: disk.store}, StartedAtNs: started}, disk, 0)
	r := s.ask(api.Request{Op: api.OpLockAcquire, Key: "job", TTLMs: 3000, Holder: "new"})
	var p api.LockPlace
	if r.Code != 0 || json.Unmarshal(r.Value, &p) != nil || p.Generation <= started {
		t.Fatalf("lock on the restored cluster: %+v (%+v), want a generation above the epoch %d", r, p, uint64(started))
	}
	var ls []api.LockStatus
	json.Unmarshal(s.ask(api.Request{Op: api.OpLocks}).JSON, &ls)
	if len(ls) != 2 || ls[0].Name != "held" || ls[0].Generation < started {
		t.Fatalf("locks: %+v, want the lock held in the backup past the epoch", ls)
	}
	if s.c.kv.RebasePending() {
		t.Fatal("still pending")
	}
}
