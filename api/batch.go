package api

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"lite-raft/internal/wire"
)

// An atomic batch (op batch --atomic, kvstore.OpBatch) is a list of writes carried whole
// in one log entry and applied in order when the entry is: each sees what the ones
// before it did, and if one of them fails (its condition is false, its key exists for a
// create, its fence is stale), the store goes back to what it was before the first and
// nothing is done. It is what lite-raft-client batch --atomic sends: a script's whole
// input, entirely or not at all.

// BatchOp is one write of an atomic batch: the fields of the request the single call
// sends (OpSet, OpCreate, OpUnset, OpIfSet, OpIfUnset, with a fence or not).
type BatchOp struct {
	Op        Op
	Key       string
	Value     []byte
	Cond      string
	CondValue []byte
	FenceName string
	FenceGen  uint64
}

// Limits of an atomic batch: it is one log entry that every member applies at once,
// holding its loop meanwhile, and one request frame (8 MiB).
const (
	MaxBatchOps   = 10_000
	MaxBatchBytes = 4 << 20 // keys, values and conditions' values together
)

// batchable are the ops an atomic batch may hold.
var batchable = map[Op]bool{OpSet: true, OpCreate: true, OpUnset: true, OpIfSet: true, OpIfUnset: true}

// Batchable reports whether op may be one of an atomic batch's writes.
func Batchable(op Op) bool { return batchable[op] }

// Request is the single call's request that op is.
func (o BatchOp) Request() Request {
	return Request{Op: o.Op, Key: o.Key, Value: o.Value, Cond: o.Cond, CondValue: o.CondValue, FenceName: o.FenceName, FenceGen: o.FenceGen}
}

// Size is what o counts toward MaxBatchBytes.
func (o BatchOp) Size() int { return len(o.Key) + len(o.Value) + len(o.CondValue) + len(o.FenceName) }

// BatchOpOf is the write of an atomic batch that req is (Batchable(req.Op) must hold).
func BatchOpOf(req Request) BatchOp {
	return BatchOp{Op: req.Op, Key: req.Key, Value: req.Value, Cond: req.Cond, CondValue: req.CondValue, FenceName: req.FenceName, FenceGen: req.FenceGen}
}

// ValidateBatch checks an atomic batch: its size, and each write as the single call's
// request is checked.
func ValidateBatch(ops []BatchOp) error {
	if len(ops) == 0 {
		return errors.New("batch --atomic: no command")
	}
	if len(ops) > MaxBatchOps {
		return fmt.Errorf("batch --atomic: %d commands: the limit is %d", len(ops), MaxBatchOps)
	}
	size := 0
	for i, o := range ops {
		size += o.Size()
		if !batchable[o.Op] {
			return fmt.Errorf("batch --atomic: command %d: %s is not one of set, create, unset, if", i+1, o.Op)
		}
		if err := o.Request().Validate(); err != nil {
			return fmt.Errorf("batch --atomic: command %d: %w", i+1, err)
		}
	}
	if size > MaxBatchBytes {
		return fmt.Errorf("batch --atomic: keys and values of %d bytes: the limit is %d (4 MiB)", size, MaxBatchBytes)
	}
	return nil
}

// AppendBatch renders ops after b: a count, then each write as its op, key, value,
// condition, condition's value, fence lock and generation. Requests and log entries
// (kvstore.OpBatch) carry it alike.
func AppendBatch(b []byte, ops []BatchOp) []byte {
	b = binary.AppendUvarint(b, uint64(len(ops)))
	for _, o := range ops {
		b = append(b, byte(o.Op))
		b = wire.AppendString(b, o.Key)
		b = wire.AppendBytes(b, o.Value)
		b = wire.AppendString(b, o.Cond)
		b = wire.AppendBytes(b, o.CondValue)
		b = wire.AppendString(b, o.FenceName)
		b = binary.AppendUvarint(b, o.FenceGen)
	}
	return b
}

// ReadBatch reads AppendBatch's rendering from d. It checks the shape only
// (ValidateBatch checks the rest); a count beyond the limit fails before anything is
// allocated for it.
func ReadBatch(d *wire.Decoder) []BatchOp {
	n := d.Uvarint()
	if d.Err == nil && n > MaxBatchOps {
		d.Fail(fmt.Errorf("batch: %d commands, over the limit of %d", n, MaxBatchOps))
	}
	var ops []BatchOp
	for i := uint64(0); i < n && d.Err == nil; i++ {
		o := BatchOp{Op: Op(d.Byte()), Key: d.String(MaxKeyLen + 1)}
		o.Value = d.Bytes(MaxValueLen + 1)
		o.Cond = d.String(16)
		o.CondValue = d.Bytes(MaxValueLen + 1)
		o.FenceName = d.String(MaxKeyLen + 1)
		o.FenceGen = d.Uvarint()
		if len(o.Value) == 0 {
			o.Value = nil // as the request's own fields decode: empty is nil
		}
		if len(o.CondValue) == 0 {
			o.CondValue = nil
		}
		ops = append(ops, o)
	}
	return ops
}

// BatchString renders an atomic batch for logs and `lite-raft debug`: its size and its
// first writes, values quoted and cut at 40 bytes.
func BatchString(ops []BatchOp) string {
	q := func(b []byte) string {
		if len(b) > 40 {
			return strconv.Quote(string(b[:40])) + "..."
		}
		return strconv.Quote(string(b))
	}
	var parts []string
	for _, o := range ops[:min(len(ops), 3)] {
		s := o.Op.String()
		if o.FenceName != "" {
			s += fmt.Sprintf(" --fence %s=%d", o.FenceName, o.FenceGen)
		}
		s += " " + o.Key
		switch o.Op {
		case OpIfSet, OpIfUnset:
			s += fmt.Sprintf(" %s %s", o.Cond, q(o.CondValue))
			if o.Op == OpIfSet {
				s += " set " + q(o.Value)
			} else {
				s += " unset"
			}
		case OpSet, OpCreate:
			s += " " + q(o.Value)
		}
		parts = append(parts, s)
	}
	more := ""
	if len(ops) > 3 {
		more = fmt.Sprintf("; ... (%d commands)", len(ops))
	}
	return "batch --atomic: " + strings.Join(parts, "; ") + more
}

// BatchResult is an atomic batch's answer (JSON in Response.Value; none when every write
// was done with code 0). It is remembered with the client's session, so a retried batch
// gets it again: it holds numbers and one message, never keys or values.
type BatchResult struct {
	// Failed is the number (from 1) of the write that failed, with its Code and Msg:
	// nothing was done. 0: every write was done.
	Failed int    `json:"failed,omitempty"`
	Code   int    `json:"code,omitempty"`
	Msg    string `json:"msg,omitempty"`
	// Same are the if ... set writes (numbers from 1) that found their key already
	// holding the new value (CodeAlreadyHolds): done, as the single call is, with nothing
	// to change.
	Same []int `json:"same,omitempty"`
}

// maxBatchMsg bounds the failed write's message kept in a result.
const maxBatchMsg = 1024

// EncodeBatchResult renders r for an answer: nothing for the zero result.
func EncodeBatchResult(r BatchResult) []byte {
	if r.Failed == 0 && len(r.Same) == 0 {
		return nil
	}
	if len(r.Msg) > maxBatchMsg {
		r.Msg = r.Msg[:maxBatchMsg]
	}
	b, _ := json.Marshal(r) // numbers and a string: cannot fail
	return b
}

// DecodeBatchResult parses EncodeBatchResult's output.
func DecodeBatchResult(b []byte) (BatchResult, error) {
	var r BatchResult
	if len(b) == 0 {
		return r, nil
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return BatchResult{}, fmt.Errorf("decode batch result %q: %w", truncateQ(b), err)
	}
	return r, nil
}
