package kvstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"lite-raft/api"
)

// applyBatch applies ops at index as a client's request (client 6, seq index), through
// the log entry's bytes, and decodes its answer.
func applyBatch(t *testing.T, s *Store, index uint64, ops ...api.BatchOp) (Result, api.BatchResult) {
	t.Helper()
	c := Command{Op: OpBatch, ClientID: 6, Seq: index, Batch: ops}
	d, err := Decode(c.Encode())
	if err != nil || !bytes.Equal(d.Encode(), c.Encode()) {
		t.Fatalf("%s comes back as %+v, %v", c, d, err)
	}
	r := s.Apply(index, d)
	br, err := api.DecodeBatchResult(r.Value)
	if err != nil {
		t.Fatal(err)
	}
	return r, br
}

func bset(k, v string) api.BatchOp { return api.BatchOp{Op: api.OpSet, Key: k, Value: []byte(v)} }

// checkBatchAllOrNothing runs the batches every store must get right and reports what
// went wrong: every write done in order, each seeing the ones before it; one failing
// (first, middle, last; a false condition, an existing key, a stale fence) and nothing
// done, not even the writes before it, a lease's hold on its key and the size kept, no
// change for watchers; a retry answered the same.
func checkBatchAllOrNothing(t *testing.T, bugs Bugs) []string {
	var bad []string
	s := New()
	s.Plant(bugs)
	s.Apply(1, Command{Op: OpSet, Key: "b/n", Value: []byte("1")})
	s.Apply(2, Command{Op: OpSetLease, Key: "b/leased", Value: []byte("l"), TTLMs: 5000})
	r, br := applyBatch(t, s, 3, bset("b/a", "x"), api.BatchOp{Op: api.OpCreate, Key: "b/c", Value: []byte("new")},
		api.BatchOp{Op: api.OpIfSet, Key: "b/a", Cond: "=", CondValue: []byte("x"), Value: []byte("y")},
		api.BatchOp{Op: api.OpIfSet, Key: "b/n", Cond: "-lt", CondValue: []byte("5"), Value: []byte("1")},
		api.BatchOp{Op: api.OpUnset, Key: "b/leased"}, bset("b/n", "2"))
	if r.Code != 0 || br.Failed != 0 || !reflect.DeepEqual(br.Same, []int{4}) || len(r.Changes) != 5 {
		bad = append(bad, fmt.Sprintf("a batch that holds: code %d %q, result %+v, %d changes (want 0, same [4], 5 changes)", r.Code, r.Msg, br, len(r.Changes)))
	}
	if got := contents(s)[0].(map[string]string); !reflect.DeepEqual(got, map[string]string{"b/a": "y", "b/c": "new", "b/n": "2"}) {
		bad = append(bad, fmt.Sprintf("after a batch that holds: %v", got))
	}
	s.Apply(4, Command{Op: OpSetLease, Key: "b/leased", Value: []byte("l"), TTLMs: 5000})
	before, size, lease := contents(s)[0], s.DataBytes(), s.LeaseOf("b/leased")
	for i, ops := range [][]api.BatchOp{
		{api.BatchOp{Op: api.OpCreate, Key: "b/a", Value: []byte("z")}, bset("b/x", "1")},
		{bset("b/x", "1"), api.BatchOp{Op: api.OpUnset, Key: "b/leased"}, api.BatchOp{Op: api.OpIfUnset, Key: "b/none", Cond: "=", CondValue: []byte("1")}, bset("b/y", "2")},
		{bset("b/a", "1"), bset("b/leased", "2"), bset("b/n", "3"), api.BatchOp{Op: api.OpIfSet, Key: "b/a", Cond: "-gt", CondValue: []byte("1"), Value: []byte("4")}},
		{bset("b/x", "1"), api.BatchOp{Op: api.OpSet, Key: "b/y", Value: []byte("1"), FenceName: "lk", FenceGen: 3}},
	} {
		failed, code := []int{1, 3, 4, 2}[i], []int{api.CodeExists, api.CodeNoKey, api.CodeCondFalse, api.CodeFenced}[i]
		r, br := applyBatch(t, s, uint64(10+i), ops...)
		if r.Code != code || br.Failed != failed || br.Code != code || !strings.Contains(r.Msg, fmt.Sprintf("command %d of %d", failed, len(ops))) ||
			!strings.Contains(r.Msg, "nothing was done") || len(r.Changes) != 0 {
			bad = append(bad, fmt.Sprintf("batch %d: code %d %q, result %+v, %d changes; want %d failing command %d, no change", i+1, r.Code, r.Msg, br, len(r.Changes), code, failed))
		}
		if got := contents(s)[0]; !reflect.DeepEqual(got, before) || s.DataBytes() != size || s.LeaseOf("b/leased") != lease {
			bad = append(bad, fmt.Sprintf("batch %d failed, yet the store changed: %v (size %d, lease %d), was %v (size %d, lease %d)",
				i+1, got, s.DataBytes(), s.LeaseOf("b/leased"), before, size, lease))
		}
		again := s.Apply(uint64(20+i), Command{Op: OpBatch, ClientID: 6, Seq: uint64(10 + i), Batch: ops})
		if again.Code != r.Code || !bytes.Equal(again.Value, r.Value) {
			bad = append(bad, fmt.Sprintf("batch %d retried: code %d %q, first answer %d %q", i+1, again.Code, again.Value, r.Code, r.Value))
		}
	}
	return bad
}

func TestBatchAllOrNothing(t *testing.T) {
	for _, b := range checkBatchAllOrNothing(t, Bugs{}) {
		t.Error(b)
	}
}

// The check catches a store that keeps the writes a failed batch did before its failing
// one.
func TestBatchCheckCatchesPartialBatch(t *testing.T) {
	if bad := checkBatchAllOrNothing(t, Bugs{BatchKeepsDoneWrites: true}); len(bad) == 0 {
		t.Fatal("a store that keeps a failed batch's earlier writes passed the check")
	}
}

// A batch is refused before it is proposed when it is empty, too long, holds an op that
// is not one of its writes, or a write its single call would refuse; a log entry
// claiming more commands than the limit fails to decode before anything is allocated.
func TestBatchValidate(t *testing.T) {
	many := make([]api.BatchOp, api.MaxBatchOps+1)
	for i := range many {
		many[i] = bset(fmt.Sprintf("k/%d", i), "v")
	}
	big := strings.Repeat("v", api.MaxValueLen)
	var large []api.BatchOp
	for i := range 5 {
		large = append(large, bset(fmt.Sprintf("k/%d", i), big))
	}
	for _, tc := range []struct {
		ops  []api.BatchOp
		want string
	}{
		{nil, "no command"},
		{many, "the limit is 10000"},
		{large, "the limit is 4194304"},
		{[]api.BatchOp{{Op: api.OpGet, Key: "k"}}, "is not one of"},
		{[]api.BatchOp{bset("a//b", "v")}, "command 1: key"},
		{[]api.BatchOp{bset("a", "v"), {Op: api.OpIfSet, Key: "k", Cond: "~", Value: []byte("1")}}, "command 2: unknown operator"},
		{[]api.BatchOp{{Op: api.OpUnset, Key: "k", Value: []byte("v")}}, "takes no value"},
	} {
		err := Command{Op: OpBatch, Batch: tc.ops}.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d commands: %v, want %q", len(tc.ops), err, tc.want)
		}
	}
	b := Command{Op: OpBatch}.Encode() // ends with the count: 0
	b = binary.AppendUvarint(b[:len(b)-1], api.MaxBatchOps+1)
	if _, err := Decode(b); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("a log entry claiming %d commands: %v", api.MaxBatchOps+1, err)
	}
}
