package kvstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"lite-raft/api"
	"lite-raft/internal/wire"
)

// Op is what a command does.
type Op uint8

const (
	OpSet     Op = 1
	OpUnset   Op = 2
	OpIfSet   Op = 3 // conditional set: if Key Cond CondValue, set Key to Value
	OpNoop    Op = 4
	OpCreate  Op = 5 // set Key to Value if Key does not exist
	OpIfUnset Op = 6 // conditional delete: if Key Cond CondValue, remove Key
	// OpSetLease grants a lease of TTLMs (its ID is the entry's index) and sets Key to
	// Value under it: the key goes when the lease is revoked.
	OpSetLease Op = 7
	// OpRevoke ends lease Lease: its keys are removed, it leaves every lock queue. The
	// leader proposes it when the lease expires; a client, to release.
	OpRevoke Op = 8
	// OpLockAcquire grants a lease of TTLMs and queues it, with Holder, for lock Key.
	OpLockAcquire Op = 9
	// OpFenced applies the write Fenced (set, unset, if ... set, create, if ... unset, with
	// Key, Value, Cond and CondValue) only if lock FenceName is held at generation
	// FenceGen; otherwise it changes nothing and answers api.CodeFenced.
	OpFenced Op = 10
	// OpLockAcquireV4 is OpLockAcquire under version 4's rules: the lease carries Token,
	// which a revoke must present, and a new head's generation is taken from what still
	// grows (Store.nextGeneration), so a lock whose queue empties is dropped.
	OpLockAcquireV4 Op = 11
	// OpRevokeV4 is OpRevoke under version 4's rules: refused unless Token is the
	// lease's (a lease without one takes any), and the lock it held passes on, or is
	// dropped, as OpLockAcquireV4 says.
	OpRevokeV4 Op = 12
	// OpCounterRaise raises counter Key, if it stands at Expect (0: never raised), to a
	// value above every one issued before (Store.nextGeneration): a fencing number no
	// plain write can touch.
	OpCounterRaise Op = 13
	// OpRebase moves a restored state's generations past the old cluster's (Rebase) to
	// Epoch, the wall clock of the leader that proposes it, in Unix nanoseconds: a
	// restore leaves the state waiting for it (MarkRestored), the same on every member.
	OpRebase Op = 14
	// OpTxn applies transaction Txn (api.Txn): if every condition holds, every action;
	// else nothing, and api.CodeCondFalse names the first false condition (Store.txn).
	OpTxn Op = 15
	// OpLeaseKeepBatch renews leases Leases (ascending, each once): the leader proposes
	// one a tick with every lease kept in it (possibly none: the first of a term says
	// that its leader renews through the log from then on). The store changes nothing:
	// each member's core counts the leases down again from when it applies it (the
	// store keeps no time, so apply stays deterministic).
	OpLeaseKeepBatch Op = 16
	// OpUnsetPrefix deletes every key under folder Key (at any depth), freeing them from
	// their leases, if there are at most api.MaxUnsetPrefix; else it deletes nothing and
	// answers api.CodeFailed with their number. Watchers see one change of the folder.
	OpUnsetPrefix Op = 17
	// OpBatch applies the writes Batch (api.BatchOp) in order, each seeing the ones
	// before it; if one fails (any code but 0 and api.CodeAlreadyHolds), the store goes
	// back to what it was before the first, and that one's code answers (Store.batch).
	OpBatch Op = 18
	opEnd   Op = 19 // one past the last
)

// Version is the command version that introduced o, as the catalogue of requests
// declares it (api.OpInfo.Commands); 0 if o is unknown.
func (o Op) Version() int { return api.CommandVersionOf(uint8(o)) }

// leased: operations whose encoding carries the lease fields after the others (the
// operations of version 1 keep their encoding, which earlier builds decode exactly).
func (o Op) leased() bool {
	return o == OpSetLease || o == OpRevoke || o == OpLockAcquire || o.tokened()
}

// tokened: the version 4 lease operations, whose encoding carries Token after the lease
// fields.
func (o Op) tokened() bool { return o == OpLockAcquireV4 || o == OpRevokeV4 }

// fenceable: the writes a fence can make conditional.
func (o Op) fenceable() bool {
	return o == OpSet || o == OpUnset || o == OpIfSet || o == OpCreate || o == OpIfUnset
}

// valued: the writes whose Value is theirs to keep (the others' is dropped on decode).
func (o Op) valued() bool { return o == OpSet || o == OpIfSet || o == OpCreate || o == OpSetLease }

// Command is one request to change the store.
type Command struct {
	Op        Op
	ClientID  uint64 // 0: no deduplication
	Seq       uint64
	Key       string
	Value     []byte
	Cond      string // OpIfSet: the test(1) operator
	CondValue []byte
	Lease     uint64 // OpRevoke: the lease
	TTLMs     uint64 // OpSetLease, OpLockAcquire: the lease's time to live
	Holder    string // OpLockAcquire: who asks, for status (user@host pid)
	// OpLockAcquireV4: the token the lease is granted with (drawn by the leader);
	// OpRevokeV4: the token presented (0: none)
	Token uint64
	// OpCounterRaise: the value the counter must stand at (0: never raised)
	Expect uint64
	// OpRebase: the epoch, Unix nanoseconds
	Epoch uint64
	// OpTxn: the transaction
	Txn api.Txn
	// OpBatch: the writes
	Batch []api.BatchOp
	// OpLeaseKeepBatch: the leases renewed, ascending
	Leases []uint64
	// OpFenced: the write it makes conditional, and the lock and generation it needs
	Fenced    Op
	FenceName string
	FenceGen  uint64
	// StampMs is the proposing leader's clock (Unix milliseconds; 0: not stamped): the
	// state machine's time is the largest stamp it applied (Store.Time). FirstSentMs is
	// when the client first sent the request (its clock; 0: not said), by which a client
	// the deduplication table no longer holds is told a late retry (api.StampCommands).
	StampMs     uint64
	FirstSentMs uint64
}

// MaxKeepBatch is the most leases one OpLeaseKeepBatch names (about 1 MB at most): the
// leader carries the rest to the next entry.
const MaxKeepBatch = 100_000

// stampedFlag marks a stamped command in the op byte of its encoding: the stamp and the
// first-send time follow that byte. A flag, not an op, because any command may carry
// it; builds before command version 7 read it as an op they do not know, and the leader
// stamps only once every member understands version 7.
const stampedFlag = 0x80

// Validate checks a command before it is proposed.
func (c Command) Validate() error {
	if c.Op == OpFenced {
		if !c.Fenced.fenceable() {
			return fmt.Errorf("a fence on op %d: only set, unset, if and create can be fenced", c.Fenced)
		}
		if err := api.ValidateKey(c.FenceName); err != nil {
			return fmt.Errorf("fence: lock %w", err)
		}
		if c.FenceGen == 0 {
			return errors.New("fence: generation 0")
		}
		inner := c
		inner.Op, inner.Fenced, inner.FenceName, inner.FenceGen = c.Fenced, 0, "", 0
		return inner.Validate()
	}
	switch c.Op {
	case OpNoop:
		return nil
	case OpTxn:
		if c.Key != "" || len(c.Value) > 0 || c.Cond != "" || len(c.CondValue) > 0 {
			return errors.New("txn: a key, value or condition outside the transaction")
		}
		return c.Txn.Validate()
	case OpBatch:
		if c.Key != "" || len(c.Value) > 0 || c.Cond != "" || len(c.CondValue) > 0 {
			return errors.New("batch: a key, value or condition outside the batch")
		}
		return api.ValidateBatch(c.Batch)
	case OpRebase:
		if c.Epoch == 0 {
			return errors.New("rebase: epoch 0")
		}
		return nil
	case OpLeaseKeepBatch:
		if len(c.Leases) > MaxKeepBatch {
			return fmt.Errorf("lease keep batch of %d leases: the limit is %d", len(c.Leases), MaxKeepBatch)
		}
		for i, id := range c.Leases {
			if id == 0 || (i > 0 && id <= c.Leases[i-1]) {
				return fmt.Errorf("lease keep batch: lease %d out of order or 0 (want ascending, each once)", id)
			}
		}
		return nil
	case OpRevoke, OpRevokeV4:
		if c.Lease == 0 {
			return errors.New("revoke: no lease")
		}
		return nil
	case OpLockAcquireV4:
		if c.Token == 0 {
			return errors.New("lock: no token")
		}
		fallthrough
	case OpSetLease, OpLockAcquire:
		if c.TTLMs < api.MinTTLMs || c.TTLMs > api.MaxTTLMs {
			return fmt.Errorf("ttl of %d ms: want 1s to 24h", c.TTLMs)
		}
		if len(c.Holder) > 256 {
			return fmt.Errorf("holder of %d bytes: the limit is 256", len(c.Holder))
		}
	case OpSet, OpUnset, OpIfSet, OpCreate, OpIfUnset, OpCounterRaise, OpUnsetPrefix:
	default:
		return &UnknownOpError{Op: c.Op}
	}
	if c.Op.Version() == 0 {
		return &UnknownOpError{Op: c.Op} // not in the catalogue: half-declared
	}
	if err := api.ValidateKey(c.Key); err != nil {
		return err
	}
	if len(c.Value) > api.MaxValueLen || len(c.CondValue) > api.MaxValueLen {
		return fmt.Errorf("value of %d bytes: the limit is %d (1 MiB)", max(len(c.Value), len(c.CondValue)), api.MaxValueLen)
	}
	if (c.Op == OpIfSet || c.Op == OpIfUnset) && !api.ValidCond(c.Cond) {
		return fmt.Errorf("unknown operator %q: use one of %s", c.Cond, strings.Join(api.Conditions, " "))
	}
	return nil
}

// Encode renders c for a log entry:
// op, uvarint client, uvarint seq, then length-prefixed key, value, cond, cond value; a
// stamped command has the op's byte with stampedFlag, then uvarint stamp and first-send
// time, then the rest as an unstamped one.
func (c Command) Encode() []byte {
	b := make([]byte, 0, 32+len(c.Key)+len(c.Value)+len(c.CondValue))
	if c.StampMs != 0 {
		b = append(b, byte(c.Op)|stampedFlag)
		b = binary.AppendUvarint(b, c.StampMs)
		b = binary.AppendUvarint(b, c.FirstSentMs)
	} else {
		b = append(b, byte(c.Op))
	}
	b = binary.AppendUvarint(b, c.ClientID)
	b = binary.AppendUvarint(b, c.Seq)
	for _, f := range [][]byte{[]byte(c.Key), c.Value, []byte(c.Cond), c.CondValue} {
		b = wire.AppendBytes(b, f)
	}
	if c.Op.leased() {
		b = binary.AppendUvarint(b, c.Lease)
		b = binary.AppendUvarint(b, c.TTLMs)
		b = wire.AppendBytes(b, []byte(c.Holder))
	}
	if c.Op.tokened() {
		b = binary.AppendUvarint(b, c.Token)
	}
	if c.Op == OpCounterRaise {
		b = binary.AppendUvarint(b, c.Expect)
	}
	if c.Op == OpRebase {
		b = binary.AppendUvarint(b, c.Epoch)
	}
	if c.Op == OpTxn {
		b = api.AppendTxn(b, c.Txn)
	}
	if c.Op == OpBatch {
		b = api.AppendBatch(b, c.Batch)
	}
	if c.Op == OpLeaseKeepBatch {
		b = binary.AppendUvarint(b, uint64(len(c.Leases)))
		for _, id := range c.Leases {
			b = binary.AppendUvarint(b, id)
		}
	}
	if c.Op == OpFenced {
		b = append(b, byte(c.Fenced))
		b = wire.AppendString(b, c.FenceName)
		b = binary.AppendUvarint(b, c.FenceGen)
	}
	return b
}

// Decode parses Encode's output and validates it.
func Decode(b []byte) (Command, error) {
	var c Command
	if len(b) == 0 {
		return c, errors.New("empty command")
	}
	d := wire.Decoder{B: b}
	c.Op = Op(d.Byte())
	if c.Op&stampedFlag != 0 {
		c.Op &^= stampedFlag
		c.StampMs, c.FirstSentMs = d.Uvarint(), d.Uvarint()
		if d.Err == nil && c.StampMs == 0 {
			d.Fail(errors.New("a stamped command without a stamp"))
		}
	}
	c.ClientID, c.Seq = d.Uvarint(), d.Uvarint()
	c.Key = d.String(api.MaxKeyLen + 1)
	c.Value = d.Bytes(api.MaxValueLen + 1)
	c.Cond = d.String(16)
	c.CondValue = d.Bytes(api.MaxValueLen + 1)
	if c.Op.leased() {
		c.Lease, c.TTLMs = d.Uvarint(), d.Uvarint()
		c.Holder = d.String(257)
	}
	if c.Op.tokened() {
		c.Token = d.Uvarint()
	}
	if c.Op == OpCounterRaise {
		c.Expect = d.Uvarint()
	}
	if c.Op == OpRebase {
		c.Epoch = d.Uvarint()
	}
	if c.Op == OpTxn {
		c.Txn = api.ReadTxn(&d)
	}
	if c.Op == OpBatch {
		c.Batch = api.ReadBatch(&d)
	}
	if c.Op == OpLeaseKeepBatch {
		n := d.Uvarint()
		if n > MaxKeepBatch {
			return c, fmt.Errorf("command: lease keep batch of %d leases: the limit is %d", n, MaxKeepBatch)
		}
		for i := uint64(0); i < n && d.Err == nil; i++ {
			c.Leases = append(c.Leases, d.Uvarint())
		}
	}
	if c.Op == OpFenced {
		c.Fenced = Op(d.Byte())
		c.FenceName = d.String(api.MaxKeyLen + 1)
		c.FenceGen = d.Uvarint()
	}
	d.End()
	if d.Err != nil {
		return c, fmt.Errorf("command: %w", d.Err)
	}
	if !c.Op.valued() && !(c.Op == OpFenced && c.Fenced.valued()) {
		c.Value = nil
	}
	return c, c.Validate()
}

// UnknownOpError is a command of an operation this build does not know: one written by a
// newer lite-raft.
type UnknownOpError struct{ Op Op }

func (e *UnknownOpError) Error() string {
	return fmt.Sprintf("unknown operation %d (this build understands commands up to version %d)", e.Op, api.CommandVersion)
}

// String renders c the way it was typed, for `lite-raft debug`.
func (c Command) String() string {
	id := ""
	if c.ClientID != 0 {
		id = fmt.Sprintf("  [client %x seq %d]", c.ClientID, c.Seq)
	}
	if c.StampMs != 0 {
		id += fmt.Sprintf("  [at %d, first sent at %d]", c.StampMs, c.FirstSentMs)
	}
	q := func(b []byte) string {
		if len(b) > 80 {
			return fmt.Sprintf("%q... (%d bytes)", b[:80], len(b))
		}
		return fmt.Sprintf("%q", b)
	}
	switch c.Op {
	case OpSet:
		return fmt.Sprintf("set %s %s%s", c.Key, q(c.Value), id)
	case OpUnset:
		return fmt.Sprintf("unset %s%s", c.Key, id)
	case OpUnsetPrefix:
		return fmt.Sprintf("unset --prefix %s%s", c.Key, id)
	case OpIfSet:
		return fmt.Sprintf("if %s %s %s set %s%s", c.Key, c.Cond, q(c.CondValue), q(c.Value), id)
	case OpNoop:
		return "noop" + id
	case OpCreate:
		return fmt.Sprintf("create %s %s%s", c.Key, q(c.Value), id)
	case OpIfUnset:
		return fmt.Sprintf("if %s %s %s unset%s", c.Key, c.Cond, q(c.CondValue), id)
	case OpSetLease:
		return fmt.Sprintf("set --ttl %dms %s %s%s", c.TTLMs, c.Key, q(c.Value), id)
	case OpRevoke:
		return fmt.Sprintf("revoke lease %d%s", c.Lease, id)
	case OpRevokeV4:
		tok := "no token"
		if c.Token != 0 {
			tok = "with a token" // never shown: it is what lets a client revoke
		}
		return fmt.Sprintf("revoke lease %d (%s)%s", c.Lease, tok, id)
	case OpLockAcquire:
		return fmt.Sprintf("lock %s --ttl %dms (holder %q)%s", c.Key, c.TTLMs, c.Holder, id)
	case OpLockAcquireV4:
		return fmt.Sprintf("lock %s --ttl %dms (holder %q, with a token)%s", c.Key, c.TTLMs, c.Holder, id)
	case OpCounterRaise:
		return fmt.Sprintf("counter raise %s from %d%s", c.Key, c.Expect, id)
	case OpRebase:
		return fmt.Sprintf("rebase generations to epoch %d (after a restore)%s", c.Epoch, id)
	case OpTxn:
		return c.Txn.String() + id
	case OpBatch:
		return api.BatchString(c.Batch) + id
	case OpLeaseKeepBatch:
		if len(c.Leases) == 0 {
			return "lease keep batch (none: leases are renewed through the log from here on)"
		}
		ids := make([]string, 0, min(len(c.Leases), 20))
		for _, l := range c.Leases[:min(len(c.Leases), 20)] {
			ids = append(ids, fmt.Sprint(l))
		}
		more := ""
		if len(c.Leases) > 20 {
			more = fmt.Sprintf(" ... (%d leases)", len(c.Leases))
		}
		return "lease keep " + strings.Join(ids, " ") + more
	case OpFenced:
		inner := c
		inner.Op, inner.ClientID, inner.StampMs = c.Fenced, 0, 0
		return fmt.Sprintf("--fence %s=%d %s%s", c.FenceName, c.FenceGen, inner, id)
	}
	return fmt.Sprintf("op %d", c.Op)
}
