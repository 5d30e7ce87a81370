package kvstore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"lite-raft/api"
)

func TestApplySemantics(t *testing.T) {
	s := New()
	steps := []struct {
		c    Command
		code int
	}{
		{Command{Op: OpIfSet, Key: "n", Cond: "=", CondValue: []byte("1"), Value: []byte("2")}, api.CodeNoKey},
		{Command{Op: OpSet, Key: "n", Value: []byte("1")}, api.CodeOK},
		{Command{Op: OpIfSet, Key: "n", Cond: "=", CondValue: []byte("9"), Value: []byte("2")}, api.CodeCondFalse},
		{Command{Op: OpIfSet, Key: "n", Cond: "=", CondValue: []byte("1"), Value: []byte("1")}, api.CodeAlreadyHolds},
		{Command{Op: OpIfSet, Key: "n", Cond: "-lt", CondValue: []byte("3"), Value: []byte("-5")}, api.CodeOK},
		{Command{Op: OpIfSet, Key: "n", Cond: "-lt", CondValue: []byte("-6"), Value: []byte("0")}, api.CodeCondFalse},
		{Command{Op: OpIfSet, Key: "n", Cond: "-le", CondValue: []byte("-5"), Value: []byte("7")}, api.CodeOK},
		{Command{Op: OpIfSet, Key: "n", Cond: "-gt", CondValue: []byte("6"), Value: []byte("8")}, api.CodeOK},
		{Command{Op: OpIfSet, Key: "n", Cond: "-ge", CondValue: []byte("9"), Value: []byte("0")}, api.CodeCondFalse},
		{Command{Op: OpIfSet, Key: "n", Cond: "-eq", CondValue: []byte("8"), Value: []byte("x")}, api.CodeOK},
		{Command{Op: OpIfSet, Key: "n", Cond: "-ne", CondValue: []byte("1"), Value: []byte("y")}, api.CodeCondFalse}, // "x" is no integer
		{Command{Op: OpIfSet, Key: "n", Cond: "!=", CondValue: []byte("y"), Value: []byte("z")}, api.CodeOK},
		{Command{Op: OpUnset, Key: "n"}, api.CodeOK},
		{Command{Op: OpUnset, Key: "n"}, api.CodeOK},
		{Command{Op: OpNoop}, api.CodeOK},
		// create: only where nothing is
		{Command{Op: OpCreate, Key: "n", Value: []byte("a")}, api.CodeOK},
		{Command{Op: OpCreate, Key: "n", Value: []byte("b")}, api.CodeExists},
		{Command{Op: OpIfSet, Key: "n", Cond: "=", CondValue: []byte("a"), Value: []byte("3")}, api.CodeOK}, // create wrote "a", not "b"
		// if ... unset: each condition that fails says which
		{Command{Op: OpIfUnset, Key: "m", Cond: "=", CondValue: []byte("3")}, api.CodeNoKey},
		{Command{Op: OpIfUnset, Key: "n", Cond: "=", CondValue: []byte("4")}, api.CodeCondFalse},
		{Command{Op: OpIfUnset, Key: "n", Cond: "-gt", CondValue: []byte("x")}, api.CodeCondFalse},
		{Command{Op: OpIfUnset, Key: "n", Cond: "-lt", CondValue: []byte("4")}, api.CodeOK},
		{Command{Op: OpIfUnset, Key: "n", Cond: "-lt", CondValue: []byte("4")}, api.CodeNoKey},
		{Command{Op: OpCreate, Key: "n", Value: []byte("again")}, api.CodeOK},
		{Command{Op: OpUnset, Key: "n"}, api.CodeOK},
	}
	for i, st := range steps {
		if err := st.c.Validate(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		c, err := Decode(st.c.Encode())
		if err != nil {
			t.Fatalf("step %d: decode: %v", i, err)
		}
		if r := s.Apply(uint64(i+1), c); r.Code != st.code {
			t.Fatalf("step %d (%s %s %s): code %d (%s), want %d", i, c.Key, c.Cond, c.CondValue, r.Code, r.Msg, st.code)
		}
	}
	if _, ok := s.Get("n"); ok {
		t.Fatal("unset key still there")
	}
}

func TestRetriedRequestAppliedOnce(t *testing.T) {
	s := New()
	s.Apply(1, Command{Op: OpSet, Key: "c", Value: []byte("0")})
	inc := Command{Op: OpIfSet, ClientID: 77, Seq: 1, Key: "c", Cond: "=", CondValue: []byte("0"), Value: []byte("1")}
	if r := s.Apply(2, inc); r.Code != api.CodeOK {
		t.Fatalf("first apply: %+v", r)
	}
	// the same request again (a forward that broke after commit, retried): same answer,
	// not "condition false", and nothing applied twice
	if r := s.Apply(3, inc); r.Code != api.CodeOK {
		t.Fatalf("retry: %+v", r)
	}
	s.Apply(4, Command{Op: OpSet, ClientID: 77, Seq: 2, Key: "c", Value: []byte("5")})
	if r := s.Apply(5, inc); r.Code != api.CodeOK || r.Msg == "" {
		t.Fatalf("late duplicate of an older request: %+v", r)
	}
	if v, _ := s.Get("c"); string(v) != "5" {
		t.Fatalf("c = %q, want 5", v)
	}
}

func TestList(t *testing.T) {
	s := New()
	for _, k := range []string{"packages/web/owner", "packages/web/tick", "packages/db/owner", "top"} {
		s.Apply(1, Command{Op: OpSet, Key: k, Value: []byte("v")})
	}
	for dir, want := range map[string][]string{
		"":             {"packages", "top"},
		"packages":     {"db", "web"},
		"packages/":    {"db", "web"},
		"packages/web": {"owner", "tick"},
	} {
		got, ok := s.List(dir)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("list %q = %v %v, want %v", dir, got, ok, want)
		}
	}
	for _, dir := range []string{"nothing", "top", "packages/we"} {
		if got, ok := s.List(dir); ok {
			t.Errorf("list %q = %v, want no such folder", dir, got)
		}
	}
}

func TestBadInputRefused(t *testing.T) {
	for _, c := range []Command{
		{Op: OpSet, Key: "", Value: []byte("v")},
		{Op: OpSet, Key: "a/../b"},
		{Op: OpSet, Key: "../../etc/passwd"},
		{Op: OpSet, Key: "a//b"},
		{Op: OpSet, Key: "/a"},
		{Op: OpSet, Key: "a/"},
		{Op: OpSet, Key: "a/./b"},
		{Op: OpSet, Key: "tab\there"},
		{Op: OpSet, Key: "new\nline"},
		{Op: OpSet, Key: "sp ace"},
		{Op: OpSet, Key: strings.Repeat("k", api.MaxKeyLen+1)},
		{Op: OpSet, Key: "big", Value: make([]byte, api.MaxValueLen+1)},
		{Op: OpIfSet, Key: "k", Cond: "-foo"},
		{Op: 9, Key: "k"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("accepted %q op %d cond %q (%d bytes)", c.Key, c.Op, c.Cond, len(c.Value))
		}
	}
	for _, c := range []Command{
		{Op: OpSet, Key: "binary", Value: []byte{0, 1, 2, 0xff, '\n'}},
		{Op: OpSet, Key: "max", Value: make([]byte, api.MaxValueLen)},
		{Op: OpSet, Key: "a/b-c_d.e:f@g"},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("refused %q: %v", c.Key, err)
		}
	}
}

func TestSnapshotIsDeterministicAndComplete(t *testing.T) {
	seed := uint64(7)
	rng := rand.New(rand.NewPCG(seed, 1))
	a, b := New(), New()
	for i := uint64(1); i <= 3000; i++ {
		c := Command{Op: OpSet, ClientID: uint64(rng.IntN(50)) + 1, Seq: i, Key: fmt.Sprintf("d%d/k%d", rng.IntN(10), rng.IntN(200))}
		switch rng.IntN(4) {
		case 0:
			c.Op = OpUnset
		case 1:
			c.Op, c.Cond, c.CondValue = OpIfSet, "!=", []byte("x")
			c.Value = []byte(fmt.Sprint(i))
		default:
			c.Value = []byte(fmt.Sprint(rng.Uint64()))
		}
		ra, rb := a.Apply(i, c), b.Apply(i, c)
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("seed %d: replicas disagree at %d", seed, i)
		}
	}
	sa, sb := a.Snapshot(), b.Snapshot()
	if !bytes.Equal(sa, sb) {
		t.Fatalf("seed %d: equal states gave different snapshots", seed)
	}
	r, err := Restore(bytes.NewReader(sa))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Snapshot(), sa) || !reflect.DeepEqual(contents(r), contents(a)) {
		t.Fatalf("seed %d: restore lost something", seed)
	}
	for cut := 0; cut < len(sa); cut += 1 + len(sa)/200 {
		if _, err := Restore(bytes.NewReader(sa[:cut])); err == nil && cut > 0 {
			t.Fatalf("snapshot cut at %d of %d accepted", cut, len(sa))
		}
		// CheckSnapshot (lite-raft restore's check) refuses what Restore refuses
		if _, err := CheckSnapshot(bytes.NewReader(sa[:cut])); err == nil && cut > 0 {
			t.Fatalf("CheckSnapshot: snapshot cut at %d of %d accepted", cut, len(sa))
		}
	}
	if n, err := CheckSnapshot(bytes.NewReader(sa)); err != nil || n != a.Len() {
		t.Fatalf("CheckSnapshot: %d keys, %v; want %d", n, err, a.Len())
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(Command{Op: OpSet, ClientID: 3, Seq: 9, Key: "a/b", Value: []byte("v")}.Encode())
	f.Add(Command{Op: OpIfSet, Key: "n", Cond: "-lt", CondValue: []byte("3"), Value: []byte("4")}.Encode())
	f.Add([]byte{1, 0xff})
	f.Add(Command{Op: OpLeaseKeepBatch, Leases: []uint64{3, 9, 1 << 40}}.Encode())
	f.Add(Command{Op: OpTxn, ClientID: 1, Seq: 2, Txn: api.Txn{If: []api.TxnCond{{Key: "a", Test: api.TestMissing}},
		Then: []api.TxnAction{{Do: api.DoSet, Key: "a", Value: []byte("1")}, {Do: api.DoRaise, Key: "g"}}}}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Decode(c.Encode())
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("command does not survive re-encoding: %v", err)
		}
	})
}

func FuzzRestoreSnapshot(f *testing.F) {
	s := New()
	s.Apply(1, Command{Op: OpSet, ClientID: 1, Seq: 1, Key: "k", Value: []byte("v")})
	f.Add(s.Snapshot())
	f.Add([]byte(snapshotMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Restore(bytes.NewReader(b))
		if err != nil {
			return
		}
		if _, err := Restore(bytes.NewReader(r.Snapshot())); err != nil {
			t.Fatalf("a restored state's snapshot does not restore: %v", err)
		}
	})
}

// contents is everything a store holds, as plain maps (trees of equal contents may
// differ in shape).
func contents(s *Store) [2]any {
	data, sessions := map[string]string{}, map[uint64]session{}
	s.data.Scan(func(k string, v []byte) bool { data[k] = string(v); return true })
	s.sessions.Scan(func(id uint64, ss session) bool { sessions[id] = ss; return true })
	return [2]any{data, sessions}
}

// TestCommandVersions: every operation this build knows has a version it understands,
// and one it does not know is refused with an error that says so, never read as another.
func TestCommandVersions(t *testing.T) {
	for op := OpSet; op < opEnd; op++ {
		if v := op.Version(); v < 1 || v > api.CommandVersion {
			t.Errorf("op %d: version %d, want 1..%d", op, v, api.CommandVersion)
		}
	}
	for _, op := range []Op{OpSet, OpUnset, OpIfSet, OpNoop} {
		if op.Version() != 1 {
			t.Errorf("op %d: version %d; builds from before versions know it, so it must be 1", op, op.Version())
		}
	}
	b := Command{Op: opEnd, Key: "k", Value: []byte("v")}.Encode()
	_, err := Decode(b)
	var unknown *UnknownOpError
	if !errors.As(err, &unknown) || unknown.Op != opEnd {
		t.Fatalf("decode of op %d: %v, want an UnknownOpError", opEnd, err)
	}
	if opEnd.Version() != 0 {
		t.Fatalf("unknown op has version %d", opEnd.Version())
	}
}

// TestApplyReportsChanges: Apply says which keys each command set or removed, so that
// watches need no code per operation; a command that changed nothing (a false
// condition, an unset of a missing key) and a replayed duplicate report none.
func TestApplyReportsChanges(t *testing.T) {
	s := New()
	show := func(chs []api.Change) string {
		var out []string
		for _, c := range chs {
			if c.Deleted {
				out = append(out, fmt.Sprintf("%d -%s", c.Index, c.Key))
			} else {
				out = append(out, fmt.Sprintf("%d %s=%s", c.Index, c.Key, c.Value))
			}
		}
		return strings.Join(out, " ")
	}
	steps := []struct {
		cmd  Command
		want string
	}{
		{Command{Op: OpSet, Key: "a", Value: []byte("1"), ClientID: 5, Seq: 1}, "1 a=1"},
		{Command{Op: OpSet, Key: "a", Value: []byte("1"), ClientID: 5, Seq: 1}, ""}, // a retry
		{Command{Op: OpCreate, Key: "a", Value: []byte("2")}, ""},
		{Command{Op: OpCreate, Key: "b", Value: []byte("2")}, "4 b=2"},
		{Command{Op: OpIfSet, Key: "b", Cond: "-lt", CondValue: []byte("3"), Value: []byte("3")}, "5 b=3"},
		{Command{Op: OpIfSet, Key: "b", Cond: "-lt", CondValue: []byte("3"), Value: []byte("4")}, ""},
		{Command{Op: OpIfUnset, Key: "b", Cond: "=", CondValue: []byte("3")}, "7 -b"},
		{Command{Op: OpUnset, Key: "b"}, ""},
		{Command{Op: OpSetLease, Key: "t1", Value: []byte("x"), TTLMs: 2000}, "9 t1=x"},
		{Command{Op: OpUnset, Key: "a"}, "10 -a"},
		{Command{Op: OpRevoke, Lease: 9}, "11 -t1"},
		{Command{Op: OpNoop}, ""},
	}
	for i, st := range steps {
		r := s.Apply(uint64(i+1), st.cmd)
		if got := show(r.Changes); got != st.want {
			t.Errorf("%d: %s: changes %q, want %q", i+1, st.cmd, got, st.want)
		}
	}
}
