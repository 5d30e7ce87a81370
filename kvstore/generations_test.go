package kvstore

import (
	"bytes"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"lite-raft/api"
)

// acquireV4 applies a version 4 lock acquire of name at index, with a token of its own.
func acquireV4(t *testing.T, s *Store, index uint64, name string) api.LockPlace {
	t.Helper()
	return lockPlace(t, s.Apply(index, Command{Op: OpLockAcquireV4, Key: name, TTLMs: 3000, Holder: "h", Token: 1000 + index}))
}

// holderGen is the generation lock name is held at (0: not held).
func holderGen(s *Store, name string) uint64 {
	var gen uint64
	s.Locks(func(n string, l Lock) bool {
		if n == name {
			gen = l.Generation
		}
		return true
	})
	return gen
}

// Under version 4 a lock's record goes with its queue, and a new holder's generation is
// still above every one issued before: it comes from the index.
func TestGenerationsNeverRepeatOnceDropped(t *testing.T) {
	for _, bug := range []bool{false, true} {
		s := New()
		s.Plant(Bugs{GenerationReused: bug})
		var issued []uint64
		index := uint64(10)
		for round := 0; round < 3; round++ {
			a := acquireV4(t, s, index, "job")
			b := acquireV4(t, s, index+1, "job")
			issued = append(issued, a.Generation)
			s.Apply(index+2, Command{Op: OpRevokeV4, Lease: a.Lease, Token: a.Token}) // b holds it
			issued = append(issued, holderGen(s, "job"))
			s.Apply(index+3, Command{Op: OpRevokeV4, Lease: b.Lease, Token: b.Token}) // empty: dropped
			if _, ok := s.locks.Get("job"); ok {
				t.Fatalf("round %d: the record of a lock with an empty queue is kept", round)
			}
			index += 4
		}
		grew := true
		for i := 1; i < len(issued); i++ {
			grew = grew && issued[i] > issued[i-1]
		}
		if grew == bug {
			t.Errorf("planted bug %v: generations issued %v", bug, issued)
		}
	}
}

// A version 2 command keeps version 2's rule, as an older member applies it: one more
// each time, and the record stays when its queue empties.
func TestOldCommandsKeepTheOldRule(t *testing.T) {
	s := New()
	a := lockPlace(t, s.Apply(10, Command{Op: OpLockAcquire, Key: "job", TTLMs: 3000}))
	b := lockPlace(t, s.Apply(11, Command{Op: OpLockAcquire, Key: "job", TTLMs: 3000}))
	if a.Generation != 1 || a.Token != 0 || b.Token != 0 {
		t.Fatalf("old acquire: %+v %+v, want generation 1, no tokens", a, b)
	}
	s.Apply(12, Command{Op: OpRevoke, Lease: a.Lease})
	if g := holderGen(s, "job"); g != 2 {
		t.Fatalf("next in line under the old rule: generation %d, want 2", g)
	}
	s.Apply(13, Command{Op: OpRevoke, Lease: b.Lease})
	if lk, ok := s.locks.Get("job"); !ok || lk.Generation != 2 {
		t.Fatalf("old revoke emptying the queue: record %+v %v, want kept at 2", lk, ok)
	}
	if p := lockPlace(t, s.Apply(14, Command{Op: OpLockAcquire, Key: "job", TTLMs: 3000})); p.Generation != 3 {
		t.Fatalf("old acquire after: %+v, want 3", p)
	}
	// a version 4 acquire on a record left by version 2 goes on from it
	s.Apply(15, Command{Op: OpRevoke, Lease: 14})
	if p := acquireV4(t, s, 16, "job"); p.Generation != 16 {
		t.Fatalf("v4 acquire after v2's: %+v, want 16 (base 0 + index)", p)
	}
	if snap := s.Snapshot(); !bytes.HasPrefix(snap, []byte(snapshotMagicV3)) {
		t.Fatalf("a lease with a token is written as %q", snap[:16])
	}
}

// A revoke of a lease granted with a token needs that token; a TTL key's lease (no
// token) is revoked by number as before, and so is an old acquire's.
func TestRevokeNeedsTheToken(t *testing.T) {
	s := New()
	a := acquireV4(t, s, 10, "job")
	b := acquireV4(t, s, 11, "job")
	for _, tok := range []uint64{0, b.Token} {
		r := s.Apply(12, Command{Op: OpRevokeV4, Lease: a.Lease, Token: tok})
		if r.Code != api.CodeUsage || !strings.Contains(r.Msg, "token") {
			t.Fatalf("revoke with token %d: %+v, want refused (10)", tok, r)
		}
		if _, ok := s.LeaseByID(a.Lease); !ok || holderGen(s, "job") != a.Generation {
			t.Fatal("a refused revoke changed something")
		}
	}
	if r := s.Apply(13, Command{Op: OpRevokeV4, Lease: a.Lease, Token: a.Token}); r.Code != 0 {
		t.Fatalf("revoke with the token: %+v", r)
	}
	if _, ok := s.LeaseByID(a.Lease); ok || holderGen(s, "job") <= a.Generation {
		t.Fatal("revoke with the token: the lease lives on, or b does not hold the lock above a")
	}
	s.Apply(20, Command{Op: OpSetLease, Key: "t", Value: []byte("v"), TTLMs: 2000})
	if r := s.Apply(21, Command{Op: OpRevokeV4, Lease: 20}); r.Code != 0 {
		t.Fatalf("revoke of a TTL key's lease: %+v", r)
	}
	if _, ok := s.Get("t"); ok {
		t.Fatal("TTL key still there after its lease's revoke")
	}
	if _, refused := s.TokenRefusal(b.Lease, b.Token); refused {
		t.Fatal("TokenRefusal refuses the lease's own token")
	}
}

// A counter is raised only from the value it stands at, always above anything issued
// before; plain writes never reach it (it is not a key).
func TestCounterRaise(t *testing.T) {
	s := New()
	raise := func(index uint64, name string, from uint64) Result {
		return s.Apply(index, Command{Op: OpCounterRaise, Key: name, Expect: from})
	}
	if r := raise(10, "p/generation", 0); r.Code != 0 || string(r.Value) != "10" {
		t.Fatalf("first raise: %+v, want 10 (the index)", r)
	}
	if r := raise(11, "p/generation", 0); r.Code != api.CodeCondFalse || string(r.Value) != "10" {
		t.Fatalf("raise from a stale value: %+v, want 6 and the value 10", r)
	}
	if r := raise(12, "p/generation", 10); r.Code != 0 || string(r.Value) != "12" {
		t.Fatalf("raise from 10: %+v, want 12", r)
	}
	s.Apply(13, Command{Op: OpSet, Key: "p/generation", Value: []byte("1")})
	if s.Counter("p/generation") != 12 {
		t.Fatal("a plain set reached the counter")
	}
	c := Command{Op: OpCounterRaise, Key: "p/generation", Expect: 12, ClientID: 3, Seq: 1}
	got, err := Decode(c.Encode())
	if err != nil || !reflect.DeepEqual(got, c) || got.Validate() != nil {
		t.Fatalf("counter raise decodes as %+v, %v", got, err)
	}
	if err := (Command{Op: OpCounterRaise, Key: "/bad"}).Validate(); err == nil {
		t.Fatal("counter raise of a bad name accepted")
	}
}

// The base, the counters and the tokens survive a snapshot (format v3, only when the
// state has any); a v1 or v2 snapshot reads as base 0.
func TestSnapshotWithBase(t *testing.T) {
	s := New()
	s.Apply(5, Command{Op: OpSet, Key: "k", Value: []byte("v")})
	if snap := s.Snapshot(); !bytes.HasPrefix(snap, []byte(snapshotMagic)) {
		t.Fatalf("a plain state is written as %q, want v1", snap[:16])
	}
	if err := s.Rebase(1_000_000); err != nil {
		t.Fatal(err)
	}
	a := acquireV4(t, s, 6, "job")
	s.Apply(7, Command{Op: OpCounterRaise, Key: "c", Expect: 0})
	snap := s.Snapshot()
	if !bytes.HasPrefix(snap, []byte(snapshotMagicV3)) {
		t.Fatalf("written as %q, want v3", snap[:16])
	}
	back, err := Restore(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Snapshot(), snap) || back.Base() != 1_000_000 || back.Counter("c") != 1_000_007 {
		t.Fatalf("round trip: base %d, counter %d", back.Base(), back.Counter("c"))
	}
	if _, refused := back.TokenRefusal(a.Lease, 0); !refused {
		t.Fatal("the token did not survive the snapshot")
	}
	if n, err := CheckSnapshot(bytes.NewReader(snap)); err != nil || n != 1 {
		t.Fatalf("CheckSnapshot of v3: %d keys, %v", n, err)
	}
	old := New()
	old.Apply(5, Command{Op: OpLockAcquire, Key: "job", TTLMs: 3000})
	v2 := old.Snapshot()
	if !bytes.HasPrefix(v2, []byte(snapshotMagicV2)) {
		t.Fatalf("an old lock state is written as %q, want v2", v2[:16])
	}
	if back, err := Restore(bytes.NewReader(v2)); err != nil || back.Base() != 0 {
		t.Fatalf("v2 snapshot: %v, base %d", err, back.Base())
	}
}

// Restoring one backup twice gives two bases, and generations and counters that never
// meet each other's, nor the old cluster's, whatever each goes on to issue.
func TestRestoreTwiceGivesDisjointGenerations(t *testing.T) {
	old := New()
	acquireV4(t, old, 10, "held") // held when the backup was taken
	old.Apply(11, Command{Op: OpCounterRaise, Key: "c", Expect: 0})
	backup := old.Snapshot()
	// the old cluster goes on for a long while
	for i := uint64(100); i < 110; i++ {
		old.Apply(i, Command{Op: OpCounterRaise, Key: "c", Expect: old.Counter("c")})
	}
	oldMax := max(old.Counter("c"), holderGen(old, "held"), 1_000_000) // its log reached 1e6 entries
	issued := map[uint64]string{}
	// restored a millisecond apart: the first restored cluster would need a million
	// entries in that millisecond to reach the second's base
	for _, epoch := range []uint64{1_700_000_000_000_000_000, 1_700_000_000_001_000_000} {
		s, err := Restore(bytes.NewReader(backup))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Rebase(epoch); err != nil {
			t.Fatal(err)
		}
		who := strconv.FormatUint(epoch, 10)
		if g := holderGen(s, "held"); g < epoch {
			t.Fatalf("a lock held in the backup is at %d after a restore at epoch %d", g, epoch)
		}
		if s.Counter("c") < epoch {
			t.Fatalf("a counter is at %d after a restore at epoch %d", s.Counter("c"), epoch)
		}
		for i := uint64(12); i < 20; i++ { // each restored cluster issues from index 12 on
			var g uint64
			if i%2 == 0 {
				g = acquireV4(t, s, i, "new"+strconv.FormatUint(i, 10)).Generation
			} else {
				r := s.Apply(i, Command{Op: OpCounterRaise, Key: "c", Expect: s.Counter("c")})
				g, _ = strconv.ParseUint(string(r.Value), 10, 64)
			}
			if g <= oldMax {
				t.Fatalf("restore at %d issued %d, which the old cluster may have issued", epoch, g)
			}
			if prev, ok := issued[g]; ok && prev != who {
				t.Fatalf("%d issued after both restores (%s and %s)", g, prev, who)
			}
			issued[g] = who
		}
	}
	s, _ := Restore(bytes.NewReader(backup))
	s.Rebase(50)
	if err := s.Rebase(50); err == nil {
		t.Fatal("a second rebase to the same epoch accepted")
	}
}

// A restored state issues no generation and takes no fenced write until its rebase
// applies; the rebase applies once, and the pending mark survives a snapshot.
func TestRestoredStateWaitsForItsRebase(t *testing.T) {
	s := New()
	acquireV4(t, s, 10, "held")
	s.MarkRestored()
	back, err := Restore(bytes.NewReader(s.Snapshot()))
	if err != nil || !back.RebasePending() {
		t.Fatalf("the pending mark through a snapshot: %v %v", err, back != nil && back.RebasePending())
	}
	for _, c := range []Command{
		{Op: OpLockAcquireV4, Key: "job", TTLMs: 3000, Token: 5}, {Op: OpLockAcquire, Key: "job", TTLMs: 3000},
		{Op: OpCounterRaise, Key: "c"}, {Op: OpFenced, Fenced: OpSet, Key: "k", FenceName: "held", FenceGen: 10},
	} {
		if r := back.Apply(11, c); r.Code != api.CodeFailed {
			t.Fatalf("%s before the rebase: %+v, want 1", c, r)
		}
	}
	const epoch = 1_700_000_000_000_000_000
	if r := back.Apply(12, Command{Op: OpRebase, Epoch: epoch}); r.Code != 0 || back.RebasePending() || back.Base() != epoch {
		t.Fatalf("rebase: %+v, base %d", r, back.Base())
	}
	if r := back.Apply(13, Command{Op: OpRebase, Epoch: epoch + 99}); r.Code != 0 || back.Base() != epoch {
		t.Fatalf("a second leader's rebase: %+v, base %d; want nothing done", r, back.Base())
	}
	if g := holderGen(back, "held"); g != epoch {
		t.Fatalf("the lock held in the backup at %d, want the epoch", g)
	}
	if r := back.Apply(14, Command{Op: OpFenced, Fenced: OpSet, Key: "k", FenceName: "held", FenceGen: 10}); r.Code != api.CodeFenced {
		t.Fatalf("a fenced write with the backup's generation: %+v, want 18", r)
	}
	c := Command{Op: OpRebase, Epoch: epoch}
	if got, err := Decode(c.Encode()); err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("rebase decodes as %+v, %v", got, err)
	}
}
