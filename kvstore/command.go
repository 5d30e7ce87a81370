package kvstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

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
	opEnd         Op = 10 // one past the last
)

// CommandVersion is the newest set of commands this build understands: 1 is set, unset,
// if ... set and noop (every build before versions existed); 2 adds create and
// if ... unset. A leader proposes a command only once every member has said it
// understands the command's version: a member that read an entry it cannot decode
// would have to stop (skipping it would make its state differ from the others').
const CommandVersion = 2

// Version is the command version that introduced o (0 if o is unknown).
func (o Op) Version() int {
	switch {
	case o >= OpSet && o <= OpNoop:
		return 1
	case o >= OpCreate && o < opEnd:
		return 2
	}
	return 0
}

// leased: operations whose encoding carries the lease fields after the others (the
// operations of version 1 keep their encoding, which earlier builds decode exactly).
func (o Op) leased() bool { return o == OpSetLease || o == OpRevoke || o == OpLockAcquire }

// Lease bounds: a lease shorter than a second would expire in a leader change; one
// longer than a day is a key that should not have one.
const (
	MinTTLMs = 1000
	MaxTTLMs = 24 * 3600 * 1000
)

// Limits from DESIGN.md ("Semantics").
const (
	MaxKeyLen   = 1024
	MaxValueLen = 1 << 20
)

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
}

// Conditions are the binary operators of test(1) that the original accepted.
var Conditions = []string{"=", "!=", "-eq", "-ne", "-lt", "-le", "-gt", "-ge"}

// ValidateKey checks a key: a non-empty path of printable characters, no empty, "." or
// ".." segment, at most MaxKeyLen bytes. Keys never become file paths, but a key that
// would escape a folder in the original (`set ../../x v`) is refused all the same.
func ValidateKey(key string) error {
	if key == "" {
		return errors.New("empty key")
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("key of %d bytes: the limit is %d", len(key), MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x21 || c == 0x7f {
			return fmt.Errorf("key %q: control characters and spaces are not allowed", key)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("key %q: empty path segment (leading, trailing or double slash)", key)
		case ".", "..":
			return fmt.Errorf("key %q: %q segments are not allowed", key, seg)
		}
	}
	return nil
}

// Validate checks a command before it is proposed.
func (c Command) Validate() error {
	switch c.Op {
	case OpNoop:
		return nil
	case OpRevoke:
		if c.Lease == 0 {
			return errors.New("revoke: no lease")
		}
		return nil
	case OpSetLease, OpLockAcquire:
		if c.TTLMs < MinTTLMs || c.TTLMs > MaxTTLMs {
			return fmt.Errorf("ttl of %d ms: want 1s to 24h", c.TTLMs)
		}
		if len(c.Holder) > 256 {
			return fmt.Errorf("holder of %d bytes: the limit is 256", len(c.Holder))
		}
	case OpSet, OpUnset, OpIfSet, OpCreate, OpIfUnset:
	default:
		return &UnknownOpError{Op: c.Op}
	}
	if err := ValidateKey(c.Key); err != nil {
		return err
	}
	if len(c.Value) > MaxValueLen || len(c.CondValue) > MaxValueLen {
		return fmt.Errorf("value of %d bytes: the limit is %d (1 MiB)", max(len(c.Value), len(c.CondValue)), MaxValueLen)
	}
	if (c.Op == OpIfSet || c.Op == OpIfUnset) && !validCond(c.Cond) {
		return fmt.Errorf("unknown operator %q: use one of %s", c.Cond, strings.Join(Conditions, " "))
	}
	return nil
}

func validCond(op string) bool {
	for _, c := range Conditions {
		if c == op {
			return true
		}
	}
	return false
}

// Encode renders c for a log entry:
// op, uvarint client, uvarint seq, then length-prefixed key, value, cond, cond value.
func (c Command) Encode() []byte {
	b := make([]byte, 0, 32+len(c.Key)+len(c.Value)+len(c.CondValue))
	b = append(b, byte(c.Op))
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
	c.ClientID, c.Seq = d.Uvarint(), d.Uvarint()
	c.Key = d.String(MaxKeyLen + 1)
	c.Value = d.Bytes(MaxValueLen + 1)
	c.Cond = d.String(16)
	c.CondValue = d.Bytes(MaxValueLen + 1)
	if c.Op.leased() {
		c.Lease, c.TTLMs = d.Uvarint(), d.Uvarint()
		c.Holder = d.String(257)
	}
	d.End()
	if d.Err != nil {
		return c, fmt.Errorf("command: %w", d.Err)
	}
	if c.Op != OpSet && c.Op != OpIfSet && c.Op != OpCreate && c.Op != OpSetLease {
		c.Value = nil
	}
	return c, c.Validate()
}

// UnknownOpError is a command of an operation this build does not know: one written by a
// newer lite-raft.
type UnknownOpError struct{ Op Op }

func (e *UnknownOpError) Error() string {
	return fmt.Sprintf("unknown operation %d (this build understands commands up to version %d)", e.Op, CommandVersion)
}

// String renders c the way it was typed, for `lite-raft debug`.
func (c Command) String() string {
	id := ""
	if c.ClientID != 0 {
		id = fmt.Sprintf("  [client %x seq %d]", c.ClientID, c.Seq)
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
	case OpLockAcquire:
		return fmt.Sprintf("lock %s --ttl %dms (holder %q)%s", c.Key, c.TTLMs, c.Holder, id)
	}
	return fmt.Sprintf("op %d", c.Op)
}
