package kvstore

import (
	"fmt"

	"github.com/tidwall/btree"

	"lite-raft/api"
)

// batch applies an atomic batch (OpBatch) at index: each write as the single call's
// command applies, in order, so each sees what the ones before it did; if one fails,
// the store goes back to the state before the first (its trees are copy-on-write, so
// the copy taken first costs nothing until a write touches a node) and that write's
// code answers, with which write it was. The changes watchers see are the writes', once
// all of them are done; none if one failed.
func (s *Store) batch(index uint64, ops []api.BatchOp) Result {
	before := s.checkpoint()
	var res api.BatchResult
	for i, o := range ops {
		c := Command{Op: Op(commandOfOp(o.Op)), Key: o.Key, Value: o.Value, Cond: o.Cond, CondValue: o.CondValue}
		if o.FenceName != "" {
			c.Fenced, c.Op, c.FenceName, c.FenceGen = c.Op, OpFenced, o.FenceName, o.FenceGen
		}
		r := s.apply(index, c)
		switch r.Code {
		case api.CodeOK:
		case api.CodeAlreadyHolds:
			res.Same = append(res.Same, i+1)
		default:
			if !s.bugs.BatchKeepsDoneWrites {
				s.restore(before)
			}
			res = api.BatchResult{Failed: i + 1, Code: r.Code, Msg: r.Msg}
			return Result{Code: r.Code, Msg: fmt.Sprintf("command %d of %d: %s: nothing was done", i+1, len(ops), r.Msg),
				Value: api.EncodeBatchResult(res)}
		}
	}
	return Result{Value: api.EncodeBatchResult(res)}
}

// commandOfOp is the state machine command of a request's op (api.OpInfo.Command).
func commandOfOp(op api.Op) uint8 {
	info, _ := op.Info()
	return info.Command
}

// checkpoint is what a write of a batch may change: the data, its size, the leases' hold
// on keys (a write detaches a key from its lease) and the changes recorded. Locks and
// counters are only read (a fence), so they are not kept. The trees are copied in O(1).
type checkpoint struct {
	data      btree.Map[string, []byte]
	keyLease  btree.Map[string, uint64]
	leases    btree.Map[uint64, Lease]
	dataBytes int
	changes   int
}

func (s *Store) checkpoint() checkpoint {
	return checkpoint{data: *s.data.Copy(), keyLease: *s.keyLease.Copy(), leases: *s.leases.Copy(),
		dataBytes: s.dataBytes, changes: len(s.changes)}
}

func (s *Store) restore(c checkpoint) {
	s.data, s.keyLease, s.leases, s.dataBytes = c.data, c.keyLease, c.leases, c.dataBytes
	s.changes = s.changes[:c.changes]
}
