package kvstore

import (
	"fmt"

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

// checkpoint is what a write of a batch may change (data, leases' hold on keys, the
// changes recorded), copied in O(1).
type checkpoint struct {
	data      *Store
	dataBytes int
	changes   int
}

func (s *Store) checkpoint() checkpoint {
	return checkpoint{data: &Store{data: *s.data.Copy(), keyLease: *s.keyLease.Copy(), leases: *s.leases.Copy(), locks: *s.locks.Copy(),
		counters: *s.counters.Copy()}, dataBytes: s.dataBytes, changes: len(s.changes)}
}

func (s *Store) restore(c checkpoint) {
	s.data, s.keyLease, s.leases, s.locks, s.counters = c.data.data, c.data.keyLease, c.data.leases, c.data.locks, c.data.counters
	s.dataBytes = c.dataBytes
	s.changes = s.changes[:c.changes]
}
