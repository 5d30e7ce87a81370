package kvmodel

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// TestModel feeds the model hand-made histories, classified by the same exit-code
// rules (Operation), to show that the check can fail.
func TestModel(t *testing.T) {
	type op struct {
		client    int
		in        Input
		call, ret int64
		code      int
		answered  bool
		value     string
	}
	set := func(c int, v string, call, ret int64, code int) op {
		return op{c, Input{Op: Set, Key: "k", Value: v}, call, ret, code, true, ""}
	}
	cas := func(c int, cond, v string, call, ret int64, code int) op {
		return op{c, Input{Op: Cas, Key: "k", Cond: cond, Value: v}, call, ret, code, true, ""}
	}
	get := func(c int, v string, call, ret int64, code int) op {
		return op{c, Input{Op: Get, Key: "k"}, call, ret, code, true, v}
	}
	create := func(c int, v string, call, ret int64, code int) op {
		return op{c, Input{Op: Create, Key: "k", Value: v}, call, ret, code, true, ""}
	}
	delif := func(c int, cond string, call, ret int64, code int) op {
		return op{c, Input{Op: DelIf, Key: "k", Cond: cond}, call, ret, code, true, ""}
	}
	exists := func(c int, call, ret int64, code int) op {
		return op{c, Input{Op: Exists, Key: "k"}, call, ret, code, true, ""}
	}
	noAnswer := func(o op) op { o.answered, o.code = false, -1; return o }
	// txn --if k = cond --if j = condj --set k v --set j vj (cond "": --if k missing)
	txn := func(c int, cond, condj, v, vj string, call, ret int64, code int, failed string) op {
		return op{c, Input{Op: Txn, Conds: []KV{{"k", cond}, {"j", condj}}, Sets: []KV{{"k", v}, {"j", vj}}}, call, ret, code, true, failed}
	}
	getj := func(c int, v string, call, ret int64, code int) op {
		return op{c, Input{Op: Get, Key: "j"}, call, ret, code, true, v}
	}
	for _, tc := range []struct {
		name string
		ops  []op
		want porcupine.CheckResult
	}{
		{"exists 0 after a set", []op{set(0, "a", 0, 10, 0), exists(1, 20, 30, 0)}, porcupine.Ok},
		{"exists 9 after a set returned (stale)", []op{set(0, "a", 0, 10, 0), exists(1, 20, 30, 9)}, porcupine.Illegal},
		{"exists 0 after the delete returned (stale)", []op{
			set(0, "a", 0, 10, 0), delif(0, "a", 20, 30, 0), exists(1, 40, 50, 0)}, porcupine.Illegal},
		{"exists 9 while a create runs", []op{create(0, "a", 0, 50, 0), exists(1, 10, 20, 9)}, porcupine.Ok},
		{"exists exit 11 imposes nothing", []op{set(0, "a", 0, 10, 0), exists(1, 20, 30, 11)}, porcupine.Ok},
		{"(a) set exit 11, its value read later", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 30, 11), get(0, "b", 40, 50, 0)}, porcupine.Illegal},
		{"(a) set exit 12, its value read while it runs", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 60, 12), get(0, "b", 40, 50, 0)}, porcupine.Illegal},
		{"set exit 1, its value read later", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 30, 1), get(0, "b", 40, 50, 0)}, porcupine.Illegal},
		{"cas exit 11, its value read later", []op{
			set(0, "a", 0, 10, 0), cas(1, "a", "b", 20, 30, 11), get(0, "b", 40, 50, 0)}, porcupine.Illegal},
		{"set exit 11, never observed", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 30, 11), get(0, "a", 40, 50, 0)}, porcupine.Ok},
		{"(b) set exit 2, its value read later", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 30, 2), get(0, "b", 40, 50, 0)}, porcupine.Ok},
		{"(b) set exit 2, its value read long after, following other reads", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 30, 2), get(0, "a", 40, 50, 0), get(0, "b", 60, 70, 0)}, porcupine.Ok},
		{"set with no answer, its value read later", []op{
			set(0, "a", 0, 10, 0), noAnswer(set(1, "b", 20, 0, 0)), get(0, "b", 40, 50, 0)}, porcupine.Ok},
		{"(c) set exit 2, never observed", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 30, 2), get(0, "a", 40, 50, 0), get(0, "a", 60, 70, 0)}, porcupine.Ok},
		{"set exit 2 read, then the value before it again", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 30, 2), get(0, "b", 40, 50, 0), get(0, "a", 60, 70, 0)}, porcupine.Illegal},
		{"(d) cas exit 6, the condition false", []op{
			set(0, "a", 0, 10, 0), cas(1, "x", "b", 20, 30, 6), get(0, "a", 40, 50, 0)}, porcupine.Ok},
		{"cas exit 6, the condition true", []op{
			set(0, "a", 0, 10, 0), cas(1, "a", "b", 20, 30, 6)}, porcupine.Illegal},
		{"cas exit 0 when the condition holds", []op{
			set(0, "a", 0, 10, 0), cas(1, "a", "b", 20, 30, 0), get(0, "b", 40, 50, 0)}, porcupine.Ok},
		{"cas exit 7 and get exit 9 on a missing key", []op{
			cas(1, "0", "b", 0, 10, 7), get(0, "", 20, 30, 9), set(0, "a", 40, 50, 0)}, porcupine.Ok},
		{"get exit 9 on a key that exists", []op{
			set(0, "a", 0, 10, 0), get(0, "", 20, 30, 9)}, porcupine.Illegal},
		{"get of a value never written", []op{
			set(0, "a", 0, 10, 0), get(0, "z", 20, 30, 0)}, porcupine.Illegal},
		{"set exit 5", []op{set(0, "a", 0, 10, 5)}, porcupine.Illegal},
		{"create exit 0 on a missing key, then exit 13", []op{
			create(0, "a", 0, 10, 0), create(1, "b", 20, 30, 13), get(0, "a", 40, 50, 0)}, porcupine.Ok},
		{"create exit 0 on a key that exists", []op{
			set(0, "a", 0, 10, 0), create(1, "b", 20, 30, 0)}, porcupine.Illegal},
		{"create exit 13 on a missing key", []op{create(0, "a", 0, 10, 13)}, porcupine.Illegal},
		{"create exit 14, its value read later", []op{
			create(0, "a", 0, 10, 14), get(0, "a", 20, 30, 0)}, porcupine.Illegal},
		{"delif exit 0 when it holds: the key is gone", []op{
			set(0, "a", 0, 10, 0), delif(1, "a", 20, 30, 0), get(0, "", 40, 50, 9)}, porcupine.Ok},
		{"delif exit 0, the key read later", []op{
			set(0, "a", 0, 10, 0), delif(1, "a", 20, 30, 0), get(0, "a", 40, 50, 0)}, porcupine.Illegal},
		{"delif exit 0 when it does not hold", []op{
			set(0, "a", 0, 10, 0), delif(1, "x", 20, 30, 0)}, porcupine.Illegal},
		{"delif exit 6 and 7 where they belong", []op{
			delif(1, "a", 0, 10, 7), set(0, "a", 20, 30, 0), delif(1, "x", 40, 50, 6), get(0, "a", 60, 70, 0)}, porcupine.Ok},
		{"delif exit 2: gone or not", []op{
			set(0, "a", 0, 10, 0), delif(1, "a", 20, 30, 2), get(0, "", 40, 50, 9), create(0, "b", 60, 70, 0)}, porcupine.Ok},
		{"delif exit 11, the key gone later", []op{
			set(0, "a", 0, 10, 0), delif(1, "a", 20, 30, 11), get(0, "", 40, 50, 9)}, porcupine.Illegal},
		{"txn exit 0 sets both keys at once", []op{
			set(0, "a", 0, 10, 0), txn(1, "a", "", "b", "y", 20, 30, 0, ""), get(0, "b", 40, 50, 0), getj(0, "y", 40, 50, 0)}, porcupine.Ok},
		{"txn exit 6 naming the condition that is false", []op{
			set(0, "a", 0, 10, 0), txn(1, "a", "x", "b", "y", 20, 30, 6, "2"), get(0, "a", 40, 50, 0)}, porcupine.Ok},
		{"txn exit 6 naming a condition that holds", []op{
			set(0, "a", 0, 10, 0), txn(1, "a", "x", "b", "y", 20, 30, 6, "1")}, porcupine.Illegal},
		{"txn exit 6, yet its value read later (done in part)", []op{
			set(0, "a", 0, 10, 0), txn(1, "a", "x", "b", "y", 20, 30, 6, "2"), get(0, "b", 40, 50, 0)}, porcupine.Illegal},
		{"txn exit 0, one key read before the other's set", []op{
			set(0, "a", 0, 10, 0), txn(1, "a", "", "b", "y", 20, 30, 0, ""), get(0, "b", 40, 50, 0), getj(0, "", 60, 70, 9)}, porcupine.Illegal},
		{"txn exit 2: both or neither", []op{
			set(0, "a", 0, 10, 0), txn(1, "a", "", "b", "y", 20, 30, 2, ""), getj(0, "y", 40, 50, 0), get(0, "b", 60, 70, 0)}, porcupine.Ok},
		{"txn exit 2: one without the other", []op{
			set(0, "a", 0, 10, 0), txn(1, "a", "", "b", "y", 20, 30, 2, ""), getj(0, "y", 40, 50, 0), get(0, "a", 60, 70, 0)}, porcupine.Illegal},
		{"a failed read is left out", []op{
			set(0, "a", 0, 10, 0), get(0, "z", 20, 30, 11), get(0, "z", 20, 30, 1), get(0, "a", 40, 50, 0)}, porcupine.Ok},
	} {
		var h []porcupine.Operation
		for _, o := range tc.ops {
			p, out := Operation(o.client, o.in, o.call, o.ret, o.code, o.answered, o.value)
			if out != ReadFailed {
				h = append(h, p)
			}
		}
		if got := porcupine.CheckOperationsTimeout(Model.ToModel(), h, 10*time.Second); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	// the outcome rules themselves
	for _, tc := range []struct {
		op       Op
		code     int
		answered bool
		want     Outcome
	}{
		{Set, 0, true, OK}, {Set, 2, true, Unknown}, {Set, 0, false, Unknown},
		{Cas, 124, true, Unknown}, {Cas, 5, true, OK}, {Cas, 6, true, OK}, {Cas, 7, true, OK},
		{Create, 13, true, OK}, {Create, 14, true, NotApplied}, {DelIf, 6, true, OK}, {DelIf, 2, true, Unknown},
		{Set, 1, true, NotApplied}, {Set, 3, true, NotApplied}, {Cas, 4, true, NotApplied},
		{Set, 10, true, NotApplied}, {Set, 11, true, NotApplied}, {Cas, 12, true, NotApplied},
		{Get, 0, true, OK}, {Get, 9, true, OK}, {Get, 1, true, ReadFailed},
		{Txn, 6, true, OK}, {Txn, 14, true, NotApplied}, {Txn, 2, true, Unknown},
		{Get, 11, true, ReadFailed}, {Get, 12, true, ReadFailed}, {Get, 0, false, ReadFailed},
	} {
		if got := Classify(tc.op, tc.code, tc.answered); got != tc.want {
			t.Errorf("%s exit %d (answered %v): outcome %d, want %d", tc.op, tc.code, tc.answered, got, tc.want)
		}
	}
}

// TestModelDelPrefix: unset --prefix deletes every key under its folder at once, and is
// checked with them (partition links the folder to its keys): a key read after it
// returned must be gone, one beside the folder stays, and one set after it is there.
func TestModelDelPrefix(t *testing.T) {
	set := func(c int, k, v string, call, ret int64) porcupine.Operation {
		p, _ := Operation(c, Input{Op: Set, Key: k, Value: v}, call, ret, 0, true, "")
		return p
	}
	get := func(c int, k, v string, call, ret int64) porcupine.Operation {
		code := 0
		if v == "" {
			code = 9
		}
		p, _ := Operation(c, Input{Op: Get, Key: k}, call, ret, code, true, v)
		return p
	}
	del := func(c int, dir string, call, ret int64, code int) porcupine.Operation {
		p, _ := Operation(c, Input{Op: DelPrefix, Key: dir}, call, ret, code, true, "")
		return p
	}
	base := []porcupine.Operation{set(0, "d/a", "1", 0, 10), set(0, "d/e/b", "2", 10, 20), set(0, "dx", "3", 20, 30)}
	for _, tc := range []struct {
		name string
		h    []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"both keys gone after it", append(base[:3:3], del(1, "d", 40, 50, 0), get(0, "d/a", "", 60, 70), get(0, "d/e/b", "", 70, 80)), porcupine.Ok},
		{"a key under it read after it returned", append(base[:3:3], del(1, "d", 40, 50, 0), get(0, "d/e/b", "2", 60, 70)), porcupine.Illegal},
		{"a key beside it stays", append(base[:3:3], del(1, "d", 40, 50, 0), get(0, "dx", "3", 60, 70)), porcupine.Ok},
		{"a key beside it read as gone", append(base[:3:3], del(1, "d", 40, 50, 0), get(0, "dx", "", 60, 70)), porcupine.Illegal},
		{"set after it", append(base[:3:3], del(1, "d", 40, 50, 0), set(0, "d/a", "4", 60, 70), get(1, "d/a", "4", 80, 90)), porcupine.Ok},
		{"not applied (exit 11), its keys still there", append(base[:3:3], del(1, "d", 40, 50, 11), get(0, "d/a", "1", 60, 70)), porcupine.Ok},
		{"not applied (exit 11), a key read as gone", append(base[:3:3], del(1, "d", 40, 50, 11), get(0, "d/a", "", 60, 70)), porcupine.Illegal},
		{"unknown (exit 2): gone or not", append(base[:3:3], del(1, "d", 40, 50, 2), get(0, "d/a", "", 60, 70)), porcupine.Ok},
		{"half of it seen: one key gone, the other not", append(base[:3:3], del(1, "d", 40, 100, 0), get(0, "d/a", "", 60, 70), get(0, "d/e/b", "2", 75, 80)), porcupine.Illegal},
	} {
		if got := porcupine.CheckOperationsTimeout(Model.ToModel(), tc.h, 10*time.Second); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
