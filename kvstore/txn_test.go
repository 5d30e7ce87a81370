package kvstore

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"lite-raft/api"
)

func tset(k, v string) api.TxnAction { return api.TxnAction{Do: api.DoSet, Key: k, Value: []byte(v)} }
func teq(k, v string) api.TxnCond    { return api.TxnCond{Key: k, Test: api.TestEquals, Value: []byte(v)} }

// applyTxn applies t at index as a client's request (client 5, seq index) and decodes
// its answer.
func applyTxn(t *testing.T, s *Store, index uint64, txn api.Txn) (Result, api.TxnResult) {
	t.Helper()
	c := Command{Op: OpTxn, ClientID: 5, Seq: index, Txn: txn}
	d, err := Decode(c.Encode()) // through the log entry's bytes, as a member reads it
	if err != nil || !bytes.Equal(d.Encode(), c.Encode()) {
		t.Fatalf("%s comes back as %+v, %v", txn, d, err)
	}
	r := s.Apply(index, d)
	tr, err := api.DecodeTxnResult(r.Value)
	if err != nil {
		t.Fatal(err)
	}
	return r, tr
}

// checkTxnAllOrNothing runs the transactions every store must get right and reports
// what went wrong: all conditions true, all actions; one false (the first, the middle,
// the last), none, and the answer names it.
func checkTxnAllOrNothing(t *testing.T, bugs Bugs) []string {
	var bad []string
	s := New()
	s.Plant(bugs)
	s.Apply(1, Command{Op: OpSet, Key: "p/owner", Value: []byte("h1")})
	s.Apply(2, Command{Op: OpSet, Key: "p/state", Value: []byte("running")})
	s.Apply(3, Command{Op: OpSet, Key: "p/move", Value: []byte("h2")})
	before := contents(s)[0]
	takeover := []api.TxnAction{tset("p/owner", "h2"), tset("p/state", "starting"), {Do: api.DoUnset, Key: "p/move"},
		{Do: api.DoRaise, Key: "p/generation"}}
	for i, conds := range [][]api.TxnCond{
		{teq("p/owner", "h9"), teq("p/state", "running"), {Key: "p/tick", Test: api.TestMissing}},
		{teq("p/owner", "h1"), teq("p/state", "stopped"), {Key: "p/tick", Test: api.TestMissing}},
		{teq("p/owner", "h1"), teq("p/state", "running"), {Key: "p/move", Test: api.TestMissing}},
		{teq("p/owner", "h1"), {Key: "p/generation", Test: api.TestCounter, Counter: 4}},
	} {
		failed := min(i+1, 3)
		if i == 3 {
			failed = 2
		}
		r, tr := applyTxn(t, s, uint64(10+i), api.Txn{If: conds, Then: takeover})
		if r.Code != api.CodeCondFalse || tr.Failed != failed || !strings.Contains(r.Msg, "nothing was done") {
			bad = append(bad, "false condition: answer "+r.Msg)
		}
		if !reflect.DeepEqual(contents(s)[0], before) || s.counters.Len() != 0 || len(r.Changes) > 0 {
			v, _ := s.Get("p/owner")
			bad = append(bad, fmt.Sprintf("condition %d false, yet something was done (p/owner %s, generation %d)", failed, v, s.Counter("p/generation")))
		}
	}
	conds := []api.TxnCond{teq("p/owner", "h1"), {Key: "p/state", Test: api.TestPresent},
		{Key: "p/owner", Test: api.TestDiffers, Value: []byte("h2")}, {Key: "p/generation", Test: api.TestCounter, Counter: 0},
		{Key: "p/tick", Test: api.TestMissing}, {Key: "p/tick", Test: api.TestDiffers, Value: []byte("")}}
	r, tr := applyTxn(t, s, 20, api.Txn{If: conds, Then: takeover})
	if r.Code != 0 || !reflect.DeepEqual(tr.Raised, []uint64{20}) || len(r.Changes) != 3 {
		bad = append(bad, "all conditions true: answer "+r.Msg)
	}
	owner, _ := s.Get("p/owner")
	state, _ := s.Get("p/state")
	if _, moved := s.Get("p/move"); string(owner) != "h2" || string(state) != "starting" || moved || s.Counter("p/generation") != 20 {
		bad = append(bad, "all conditions true, yet not every action done")
	}
	return bad
}

// TestTxnAllOrNothing: a transaction's actions are done exactly when every condition
// holds, tested before any action; the answer names the first false one. Planted (the
// actions done before the last condition is tested) it fails.
func TestTxnAllOrNothing(t *testing.T) {
	for _, b := range checkTxnAllOrNothing(t, Bugs{}) {
		t.Error(b)
	}
	if bad := checkTxnAllOrNothing(t, Bugs{TxnActsBeforeLastCondition: true}); len(bad) == 0 {
		t.Error("planted TxnActsBeforeLastCondition: not caught")
	} else {
		t.Logf("planted TxnActsBeforeLastCondition caught: %s", strings.Join(bad, "; "))
	}
}

// TestTxnRaisesAsCounterRaise: a raise in a transaction follows counter raise's rule
// (max(old+1, base+index)), so the two can be mixed; a counter condition is counter
// raise's expected value.
func TestTxnRaisesAsCounterRaise(t *testing.T) {
	s := New()
	s.Apply(100, Command{Op: OpCounterRaise, Key: "g", Expect: 0}) // 100
	_, tr := applyTxn(t, s, 101, api.Txn{Then: []api.TxnAction{{Do: api.DoRaise, Key: "g"}, {Do: api.DoRaise, Key: "h"}, tset("g", "a key, not the counter")}})
	if !reflect.DeepEqual(tr.Raised, []uint64{101, 101}) || s.Counter("g") != 101 {
		t.Fatalf("raised %v, g at %d", tr.Raised, s.Counter("g"))
	}
	if v, _ := s.Get("g"); string(v) != "a key, not the counter" {
		t.Fatalf("key g: %q", v)
	}
	_, tr = applyTxn(t, s, 102, api.Txn{If: []api.TxnCond{{Key: "g", Test: api.TestCounter, Counter: 100}}, Then: []api.TxnAction{{Do: api.DoRaise, Key: "g"}}})
	if tr.Failed != 1 || s.Counter("g") != 101 {
		t.Fatalf("a stale counter condition: %+v, g at %d", tr, s.Counter("g"))
	}
	r := s.Apply(103, Command{Op: OpCounterRaise, Key: "g", Expect: 101})
	if r.Code != 0 || string(r.Value) != "103" {
		t.Fatalf("counter raise after a txn's: %+v", r)
	}
	// restored and waiting for its rebase: a txn that touches counters waits too, a
	// txn of keys only does not
	s.MarkRestored()
	if r, _ := applyTxn(t, s, 104, api.Txn{Then: []api.TxnAction{{Do: api.DoRaise, Key: "g"}}}); r.Code != api.CodeFailed {
		t.Fatalf("a raise before the rebase: %+v", r)
	}
	if r, _ := applyTxn(t, s, 105, api.Txn{Then: []api.TxnAction{tset("k", "v")}}); r.Code != 0 {
		t.Fatalf("a txn of keys before the rebase: %+v", r)
	}
}

// TestTxnDeduplicated: a retried transaction gets its first answer, raised values
// included, and is applied once, also after a snapshot and restore.
func TestTxnDeduplicated(t *testing.T) {
	s := New()
	txn := api.Txn{If: []api.TxnCond{{Key: "o", Test: api.TestMissing}}, Then: []api.TxnAction{tset("o", "h1"), {Do: api.DoRaise, Key: "g"}}}
	first, tr := applyTxn(t, s, 7, txn)
	if first.Code != 0 || !reflect.DeepEqual(tr.Raised, []uint64{7}) {
		t.Fatalf("first: %+v %+v", first, tr)
	}
	restored, err := Restore(bytes.NewReader(s.Snapshot()))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*Store{s, restored} {
		again := st.Apply(9, Command{Op: OpTxn, ClientID: 5, Seq: 7, Txn: txn})
		if again.Code != 0 || !bytes.Equal(again.Value, first.Value) || st.Counter("g") != 7 || len(again.Changes) != 0 {
			t.Fatalf("retry: %+v (first %+v), g at %d", again, first, st.Counter("g"))
		}
	}
}

// TestTxnRefused: a transaction that Validate refuses never decodes from a log entry
// (a key in two actions, a bad key), and a txn's fields stay inside it.
func TestTxnRefused(t *testing.T) {
	for name, c := range map[string]Command{
		"key twice":   {Op: OpTxn, Txn: api.Txn{Then: []api.TxnAction{tset("a", "1"), tset("a", "2")}}},
		"bad key":     {Op: OpTxn, Txn: api.Txn{Then: []api.TxnAction{tset("a//b", "1")}}},
		"no action":   {Op: OpTxn, Txn: api.Txn{If: []api.TxnCond{teq("a", "1")}}},
		"a key aside": {Op: OpTxn, Key: "a", Txn: api.Txn{Then: []api.TxnAction{tset("b", "1")}}},
	} {
		if _, err := Decode(c.Encode()); err == nil {
			t.Errorf("%s: decodes", name)
		}
	}
}

// TestOldCommandsUnchanged: transactions changed no older command's bytes nor version.
func TestOldCommandsUnchanged(t *testing.T) {
	for _, tc := range []struct {
		c   Command
		hex string
	}{
		{Command{Op: OpSet, ClientID: 3, Seq: 4, Key: "k", Value: []byte("v")}, "010304016b01760000"},
		{Command{Op: OpIfSet, Key: "n", Cond: "-lt", CondValue: []byte("3"), Value: []byte("4")}, "030000016e0134032d6c740133"},
		{Command{Op: OpCounterRaise, Key: "g", Expect: 9}, "0d0000016700000009"},
	} {
		if got := hex.EncodeToString(tc.c.Encode()); got != tc.hex {
			t.Errorf("%s encodes as %s, was %s", tc.c, got, tc.hex)
		}
	}
	for op, v := range map[Op]int{OpSet: 1, OpCreate: 2, OpFenced: 3, OpCounterRaise: 4, OpLockAcquireV4: 4, OpTxn: 5} {
		if op.Version() != v {
			t.Errorf("op %d: version %d, want %d", op, op.Version(), v)
		}
	}
}

// TestReadDir: a folder's keys with values, its subfolders' names, its counters; the
// size bound refuses, never cuts.
func TestReadDir(t *testing.T) {
	s := New()
	for i, k := range []string{"p/owner", "p/state", "p/hist/1", "p/hist/2", "p+x", "p", "q/a", "p/a+/x"} {
		s.Apply(uint64(i+1), Command{Op: OpSet, Key: k, Value: []byte("v-" + k)})
	}
	s.Apply(20, Command{Op: OpCounterRaise, Key: "p/generation"})
	s.Apply(21, Command{Op: OpCounterRaise, Key: "p/hist/generation"})
	s.Apply(22, Command{Op: OpCounterRaise, Key: "q/generation"})
	d, ok, err := s.ReadDir("p", api.MaxDirAnswer)
	want := api.DirEntries{Dir: "p", Keys: []api.DirKey{{Key: "p/owner", Value: []byte("v-p/owner")}, {Key: "p/state", Value: []byte("v-p/state")}},
		Dirs: []string{"a+", "hist"}, Counters: []api.DirCounter{{Name: "p/generation", Value: 20}}}
	if !ok || err != nil || !reflect.DeepEqual(d, want) {
		t.Fatalf("ReadDir(p) = %+v %v %v, want %+v", d, ok, err, want)
	}
	if d, ok, _ := s.ReadDir("", api.MaxDirAnswer); !ok || len(d.Keys) != 2 || !reflect.DeepEqual(d.Dirs, []string{"p", "q"}) {
		t.Fatalf("ReadDir of the top: %+v", d)
	}
	if _, ok, err := s.ReadDir("none", api.MaxDirAnswer); ok || err != nil {
		t.Fatal("an empty folder is there")
	}
	if _, ok, err := s.ReadDir("p", 100); ok || err == nil || !strings.Contains(err.Error(), "nothing is cut short") {
		t.Fatalf("over the limit: %v %v", ok, err)
	}
	// the estimate is never below the answer's real size
	b, _ := api.EncodeDirEntries(d)
	if est, _, err := s.ReadDir("p", len(b)-1); err == nil {
		t.Fatalf("an answer of %d bytes passes a limit of %d: %+v", len(b), len(b)-1, est)
	}
}

// TestReadPrefix: a page holds the keys under the folder at any depth, in order, and
// none beside it ("a", "a+b", "ab/c" are not under a/); a page stops before its limit
// with at least one key, and the next one starts after its last key; the last page says
// no next.
func TestReadPrefix(t *testing.T) {
	s := New()
	var want []string
	for i, k := range []string{"a", "a+b", "a/1", "a/2/x", "a/2/y", "a/3", "ab/c", "b"} {
		s.Apply(uint64(i+1), Command{Op: OpSet, Key: k, Value: bytes.Repeat([]byte{'v'}, 100)})
		if strings.HasPrefix(k, "a/") {
			want = append(want, k)
		}
	}
	var got []string
	pages, after := 0, ""
	for {
		// room for two keys of 100 bytes a page, never one more
		p := s.ReadPrefix("a", after, 64+6+2*api.DirAnswerSize("a/2/x", make([]byte, 100)))
		if len(p.Keys) == 0 || len(p.Keys) > 2 {
			t.Fatalf("a page of %d keys: %+v", len(p.Keys), p)
		}
		for _, k := range p.Keys {
			got = append(got, k.Key)
		}
		pages++
		if p.Next == "" {
			break
		}
		after = p.Next
	}
	if !slices.Equal(got, want) || pages != 2 {
		t.Fatalf("read %v in %d pages, want %v in 2", got, pages, want)
	}
	if p := s.ReadPrefix("a", "", 10); len(p.Keys) != 1 || p.Next != "a/1" {
		t.Errorf("a limit below one key: %+v, want that key and a next", p)
	}
	if p := s.ReadPrefix("", "a/3", 1<<20); len(p.Keys) != 2 || p.Keys[0].Key != "ab/c" || p.Next != "" {
		t.Errorf("every key after a/3: %+v", p)
	}
	if p := s.ReadPrefix("c", "", 1<<20); len(p.Keys) != 0 || p.Next != "" {
		t.Errorf("no key under c: %+v", p)
	}
}

// TestUnsetPrefix: every key under the folder goes, at any depth, freed from its lease,
// in one change of the folder; keys beside it stay; the data size follows; a folder of
// more than api.MaxUnsetPrefix keys is refused whole.
func TestUnsetPrefix(t *testing.T) {
	s := New()
	i := uint64(0)
	apply := func(c Command) Result { i++; return s.Apply(i, c) }
	apply(Command{Op: OpSetLease, Key: "d/leased", Value: []byte("l"), TTLMs: 5000})
	lease := i
	for _, k := range []string{"d/a", "d/e/b", "d+", "dx/c", "d"} {
		apply(Command{Op: OpSet, Key: k, Value: []byte("v")})
	}
	r := apply(Command{Op: OpUnsetPrefix, Key: "d"})
	if r.Code != 0 || string(r.Value) != "3" || len(r.Changes) != 1 || !r.Changes[0].Prefix || r.Changes[0].Key != "d/" {
		t.Fatalf("unset --prefix d: %+v", r)
	}
	for _, k := range []string{"d/a", "d/e/b", "d/leased"} {
		if _, ok := s.Get(k); ok {
			t.Errorf("%s is still there", k)
		}
	}
	var left []string
	s.data.Scan(func(k string, v []byte) bool { left = append(left, k); return true })
	if !slices.Equal(left, []string{"d", "d+", "dx/c"}) || s.DataBytes() != len("d")+len("d+")+len("dx/c")+3 {
		t.Errorf("left %v, %d bytes", left, s.DataBytes())
	}
	s.Leases(func(id uint64, l Lease) bool {
		if id == lease && len(l.Keys) != 0 {
			t.Errorf("lease %d still holds %v", id, l.Keys)
		}
		return true
	})
	for n := 0; n <= api.MaxUnsetPrefix; n++ {
		apply(Command{Op: OpSet, Key: fmt.Sprintf("big/%d", n), Value: []byte("v")})
	}
	if r := apply(Command{Op: OpUnsetPrefix, Key: "big"}); r.Code != api.CodeFailed || len(r.Changes) != 0 ||
		!strings.Contains(r.Msg, fmt.Sprintf("%d keys under big/", api.MaxUnsetPrefix+1)) {
		t.Errorf("too many: %+v", r)
	}
	if _, ok := s.Get("big/0"); !ok {
		t.Error("a refused unset --prefix deleted")
	}
}
