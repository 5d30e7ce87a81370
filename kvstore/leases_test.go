package kvstore

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"lite-raft/api"
)

func lockPlace(t *testing.T, r Result) api.LockPlace {
	t.Helper()
	var p api.LockPlace
	if err := json.Unmarshal(r.Value, &p); err != nil {
		t.Fatalf("lock result %q: %v", r.Value, err)
	}
	return p
}

// A key set under a lease goes when the lease is revoked; one set again without a
// lease, or removed, is free of it.
func TestLeaseKeys(t *testing.T) {
	s := New()
	r := s.Apply(10, Command{Op: OpSetLease, Key: "a", Value: []byte("1"), TTLMs: 5000})
	if string(r.Value) != "10" || s.LeaseOf("a") != 10 {
		t.Fatalf("set --ttl: result %+v, lease of a %d; want lease 10", r, s.LeaseOf("a"))
	}
	s.Apply(11, Command{Op: OpSetLease, Key: "b", Value: []byte("2"), TTLMs: 5000})
	s.Apply(12, Command{Op: OpSet, Key: "b", Value: []byte("3")}) // b leaves lease 11
	s.Apply(13, Command{Op: OpRevoke, Lease: 11})
	if v, ok := s.Get("b"); !ok || string(v) != "3" {
		t.Fatalf("b, set again without a lease, after its old lease's revoke: %q %v", v, ok)
	}
	s.Apply(14, Command{Op: OpRevoke, Lease: 10})
	if _, ok := s.Get("a"); ok {
		t.Fatal("a still there after its lease was revoked")
	}
	s.Apply(15, Command{Op: OpRevoke, Lease: 10}) // again: nothing
	if _, ok := s.LeaseByID(10); ok {
		t.Fatal("lease 10 still there")
	}
}

// Locks are first come, first served; the generation grows with every new holder and
// never goes down, even when the queue empties.
func TestLockQueue(t *testing.T) {
	s := New()
	acquire := func(i uint64, who string) api.LockPlace {
		return lockPlace(t, s.Apply(i, Command{Op: OpLockAcquire, Key: "job", TTLMs: 15000, Holder: who}))
	}
	if p := acquire(1, "a"); p.Position != 0 || p.Generation != 1 || p.Lease != 1 {
		t.Fatalf("first acquire: %+v", p)
	}
	if p := acquire(2, "b"); p.Position != 1 {
		t.Fatalf("second acquire: %+v", p)
	}
	acquire(3, "c")
	s.Apply(4, Command{Op: OpRevoke, Lease: 1}) // a releases: b holds it
	if p, ok := s.LockPlaceOf("job", 2); !ok || p.Position != 0 || p.Generation != 2 {
		t.Fatalf("b after a's release: %+v %v, want the head with generation 2", p, ok)
	}
	s.Apply(5, Command{Op: OpRevoke, Lease: 3}) // c gives up waiting: no new holder
	if p, _ := s.LockPlaceOf("job", 2); p.Generation != 2 {
		t.Fatalf("b after c left the queue: generation %d, want 2", p.Generation)
	}
	s.Apply(6, Command{Op: OpRevoke, Lease: 2})
	n := 0
	s.Locks(func(string, Lock) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d locks listed with an empty queue", n)
	}
	if p := acquire(7, "d"); p.Position != 0 || p.Generation != 3 {
		t.Fatalf("acquire of the free lock: %+v, want generation 3", p)
	}
}

// A snapshot carries leases and locks (format v2), and is written as v1, which builds
// from before leases read, when there are none.
func TestSnapshotWithLeases(t *testing.T) {
	s := New()
	s.Apply(1, Command{Op: OpSet, Key: "plain", Value: []byte("x"), ClientID: 5, Seq: 1})
	if snap := s.Snapshot(); !bytes.HasPrefix(snap, []byte(snapshotMagic)) {
		t.Fatalf("a store without leases: snapshot starts %q, want v1", snap[:16])
	}
	s.Apply(2, Command{Op: OpSetLease, Key: "t", Value: []byte("y"), TTLMs: 3000, ClientID: 6, Seq: 1})
	s.Apply(3, Command{Op: OpLockAcquire, Key: "l", TTLMs: 3000, Holder: "root@h1 pid 7", ClientID: 7, Seq: 1})
	s.Apply(4, Command{Op: OpLockAcquire, Key: "l", TTLMs: 3000, Holder: "root@h2 pid 8"})
	snap := s.Snapshot()
	if !bytes.HasPrefix(snap, []byte(snapshotMagicV2)) {
		t.Fatalf("a store with leases: snapshot starts %q, want v2", snap[:16])
	}
	r, err := Restore(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Snapshot(), snap) {
		t.Fatal("restored store gives another snapshot")
	}
	if r.LeaseOf("t") != 2 {
		t.Fatalf("restored: lease of t %d", r.LeaseOf("t"))
	}
	if p, ok := r.LockPlaceOf("l", 4); !ok || p.Position != 1 {
		t.Fatalf("restored: lease 4 in lock l: %+v %v", p, ok)
	}
	// a retried acquire gets the same answer, lease included, after a restore too
	if res := r.Apply(9, Command{Op: OpLockAcquire, Key: "l", TTLMs: 3000, ClientID: 7, Seq: 1}); lockPlace(t, res).Lease != 3 {
		t.Fatalf("retried acquire after restore: %+v", res)
	}
	r.Apply(10, Command{Op: OpRevoke, Lease: 3})
	if p, _ := r.LockPlaceOf("l", 4); p.Position != 0 || p.Generation != 2 {
		t.Fatalf("after the holder's revoke: %+v", p)
	}
	for _, cut := range []int{17, len(snap) / 2, len(snap) - 1} {
		if _, err := Restore(bytes.NewReader(snap[:cut])); err == nil || !strings.Contains(err.Error(), "kv snapshot") {
			t.Fatalf("a v2 snapshot cut at %d: %v", cut, err)
		}
	}
}

// TestFencedWrites: a write fenced with a lock's generation is applied while that
// generation holds the lock, and refused (api.CodeFenced, nothing changed) once the lock
// passed to the next holder or nobody holds it; every fenceable write decodes as written.
func TestFencedWrites(t *testing.T) {
	s := New()
	index := uint64(0)
	apply := func(c Command) Result {
		index++
		b := c.Encode()
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %s: %v", c, err)
		}
		return s.Apply(index, got)
	}
	fence := func(gen uint64, c Command) Command {
		c.Fenced, c.Op, c.FenceName, c.FenceGen = c.Op, OpFenced, "job", gen
		return c
	}
	first := lockPlace(t, apply(Command{Op: OpLockAcquire, Key: "job", TTLMs: 3000, Holder: "a"}))
	second := lockPlace(t, apply(Command{Op: OpLockAcquire, Key: "job", TTLMs: 3000, Holder: "b"}))
	if first.Generation != 1 || second.Position != 1 {
		t.Fatalf("places %+v %+v", first, second)
	}
	big := bytes.Repeat([]byte("x"), api.MaxValueLen)
	for _, c := range []Command{
		{Op: OpSet, Key: "n", Value: []byte("1")}, {Op: OpCreate, Key: "m", Value: big},
		{Op: OpIfSet, Key: "n", Cond: "=", CondValue: []byte("1"), Value: []byte("2")},
		{Op: OpIfUnset, Key: "m", Cond: "!=", CondValue: []byte("y")}, {Op: OpUnset, Key: "absent"},
	} {
		if r := apply(fence(1, c)); r.Code != 0 {
			t.Fatalf("%s by the holder of generation 1: %+v", fence(1, c), r)
		}
	}
	if v, _ := s.Get("n"); string(v) != "2" {
		t.Fatalf("n = %q after the holder's fenced writes, want 2", v)
	}
	apply(Command{Op: OpRevoke, Lease: first.Lease}) // the lock passes to b, generation 2
	stale := fence(1, Command{Op: OpSet, Key: "n", Value: []byte("stale"), ClientID: 9, Seq: 1})
	if r := apply(stale); r.Code != api.CodeFenced || !strings.Contains(r.Msg, "generation 2, not 1") || len(r.Changes) != 0 {
		t.Fatalf("a write fenced with generation 1 after the lock passed on: %+v", r)
	}
	if r := apply(stale); r.Code != api.CodeFenced {
		t.Fatalf("its retry: %+v, want the same refusal", r)
	}
	if r := apply(fence(2, Command{Op: OpSet, Key: "n", Value: []byte("3")})); r.Code != 0 {
		t.Fatalf("generation 2's write: %+v", r)
	}
	apply(Command{Op: OpRevoke, Lease: second.Lease})
	if r := apply(fence(2, Command{Op: OpUnset, Key: "n"})); r.Code != api.CodeFenced || !strings.Contains(r.Msg, "not held") {
		t.Fatalf("a write fenced with a lock nobody holds: %+v", r)
	}
	if v, _ := s.Get("n"); string(v) != "3" {
		t.Fatalf("n = %q, want 3: a refused write changed it", v)
	}
	for _, bad := range []Command{fence(0, Command{Op: OpSet, Key: "n"}), fence(1, Command{Op: OpNoop}),
		{Op: OpFenced, Fenced: OpSet, FenceName: "a//b", FenceGen: 1, Key: "n"}} {
		if _, err := Decode(bad.Encode()); err == nil {
			t.Errorf("%s decodes", bad)
		}
	}
}

// A lease keep batch carries its leases, ascending, each once (none: a term's first);
// applying it changes no state: when a lease runs out is each member's core to count.
func TestLeaseKeepBatch(t *testing.T) {
	for _, ids := range [][]uint64{nil, {7}, {3, 9, 1 << 40}} {
		c := Command{Op: OpLeaseKeepBatch, Leases: ids}
		got, err := Decode(c.Encode())
		if err != nil || !slices.Equal(got.Leases, ids) || got.Op != OpLeaseKeepBatch {
			t.Fatalf("batch %v: decoded %+v, %v", ids, got, err)
		}
	}
	for _, ids := range [][]uint64{{0}, {5, 5}, {9, 3}} {
		if _, err := Decode(Command{Op: OpLeaseKeepBatch, Leases: ids}.Encode()); err == nil {
			t.Fatalf("batch %v accepted", ids)
		}
	}
	if v := OpLeaseKeepBatch.Version(); v != api.LeaseKeepCommands {
		t.Fatalf("version %d, want %d", v, api.LeaseKeepCommands)
	}
	s, noop := New(), New()
	for _, st := range []*Store{s, noop} {
		st.Apply(1, Command{Op: OpSetLease, Key: "k", Value: []byte("v"), TTLMs: 2000})
	}
	noop.Apply(2, Command{Op: OpNoop})
	if r := s.Apply(2, Command{Op: OpLeaseKeepBatch, Leases: []uint64{1}}); r.Code != 0 || len(r.Changes) != 0 {
		t.Fatalf("apply: %+v", r)
	}
	if !bytes.Equal(noop.Snapshot(), s.Snapshot()) {
		t.Fatal("a keep batch changed the state more than a noop")
	}
}
