package api

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"lite-raft/internal/wire"
)

// A transaction (op txn, kvstore.OpTxn) is a list of conditions on keys and counters
// and a list of actions, carried whole in one log entry and decided when it is applied:
// every condition holds, and every action is done; or one is false, and nothing is. It
// is what a takeover needs to be one write (owner, state and the package's generation
// together) instead of several compare-and-sets that a crash can leave half done.

// TxnTest is what a condition tests.
type TxnTest uint8

const (
	_ TxnTest = iota
	// TestEquals: Key exists and holds Value (a missing key equals nothing, not even "")
	TestEquals
	// TestDiffers: Key does not hold Value (a missing key differs from every value)
	TestDiffers
	TestMissing // Key does not exist
	TestPresent // Key exists
	// TestCounter: counter Key stands at Counter (0: never raised), as counter raise's
	// expected value
	TestCounter
	testEnd
)

func (t TxnTest) String() string {
	switch t {
	case TestEquals:
		return "="
	case TestDiffers:
		return "!="
	case TestMissing:
		return "missing"
	case TestPresent:
		return "present"
	case TestCounter:
		return "counter ="
	}
	return fmt.Sprintf("test(%d)", uint8(t))
}

// TxnDo is what an action does.
type TxnDo uint8

const (
	_       TxnDo = iota
	DoSet         // set Key to Value
	DoUnset       // remove Key (nothing if it is missing)
	DoRaise       // raise counter Key as counter raise does: to max(old+1, base+index)
	doEnd
)

func (d TxnDo) String() string {
	switch d {
	case DoSet:
		return "set"
	case DoUnset:
		return "unset"
	case DoRaise:
		return "raise"
	}
	return fmt.Sprintf("do(%d)", uint8(d))
}

// TxnCond is one condition: Key (a counter's name for TestCounter) under Test.
type TxnCond struct {
	Key     string
	Test    TxnTest
	Value   []byte // TestEquals, TestDiffers
	Counter uint64 // TestCounter
}

// TxnAction is one action.
type TxnAction struct {
	Do    TxnDo
	Key   string // a key, or a counter's name for DoRaise
	Value []byte // DoSet
}

// Txn is a transaction: If (all of them, none is fine) then Then (at least one).
type Txn struct {
	If   []TxnCond
	Then []TxnAction
}

// Limits of a transaction: it is one log entry, applied at once on every member, so it
// is bounded like a set is (its keys and values together at most MaxTxnBytes).
const (
	MaxTxnConds   = 64
	MaxTxnActions = 64
	MaxTxnBytes   = MaxValueLen
)

// empty reports whether t has neither condition nor action (a request without one).
func (t Txn) empty() bool { return len(t.If) == 0 && len(t.Then) == 0 }

// TouchesCounters reports whether t tests or raises a counter.
func (t Txn) TouchesCounters() bool {
	for _, c := range t.If {
		if c.Test == TestCounter {
			return true
		}
	}
	for _, a := range t.Then {
		if a.Do == DoRaise {
			return true
		}
	}
	return false
}

// Validate checks t: its sizes, every key, known tests and actions with the fields they
// need and no others, and no key (or counter) in two actions, whose order would then
// matter.
func (t Txn) Validate() error {
	if len(t.Then) == 0 {
		return errors.New("txn: no action (want --set, --unset or --raise)")
	}
	if len(t.If) > MaxTxnConds || len(t.Then) > MaxTxnActions {
		return fmt.Errorf("txn: %d conditions and %d actions: the limits are %d and %d", len(t.If), len(t.Then), MaxTxnConds, MaxTxnActions)
	}
	size := 0
	for i, c := range t.If {
		size += len(c.Key) + len(c.Value)
		if err := ValidateKey(c.Key); err != nil {
			return fmt.Errorf("txn: condition %d: %w", i+1, err)
		}
		switch {
		case c.Test == 0 || c.Test >= testEnd:
			return fmt.Errorf("txn: condition %d: unknown test %d", i+1, c.Test)
		case len(c.Value) > 0 && c.Test != TestEquals && c.Test != TestDiffers:
			return fmt.Errorf("txn: condition %d: %s %s takes no value", i+1, c.Key, c.Test)
		case c.Counter != 0 && c.Test != TestCounter:
			return fmt.Errorf("txn: condition %d: %s %s takes no counter value", i+1, c.Key, c.Test)
		}
	}
	sets, raises := map[string]bool{}, map[string]bool{}
	for i, a := range t.Then {
		size += len(a.Key) + len(a.Value)
		if err := ValidateKey(a.Key); err != nil {
			return fmt.Errorf("txn: action %d: %w", i+1, err)
		}
		seen := sets // keys and counters are apart: a key and a counter may share a name
		switch {
		case a.Do == 0 || a.Do >= doEnd:
			return fmt.Errorf("txn: action %d: unknown action %d", i+1, a.Do)
		case len(a.Value) > 0 && a.Do != DoSet:
			return fmt.Errorf("txn: action %d: %s %s takes no value", i+1, a.Do, a.Key)
		case a.Do == DoRaise:
			seen = raises
		}
		if seen[a.Key] {
			return fmt.Errorf("txn: action %d: %s %s: %s is in an earlier action already (one action per key)", i+1, a.Do, a.Key, a.Key)
		}
		seen[a.Key] = true
	}
	if size > MaxTxnBytes {
		return fmt.Errorf("txn: keys and values of %d bytes: the limit is %d (1 MiB)", size, MaxTxnBytes)
	}
	return nil
}

// AppendTxn renders t after b: a count of conditions, each as its test, key, value and
// counter; a count of actions, each as what it does, key and value. Requests and log
// entries (kvstore.OpTxn) carry it alike.
func AppendTxn(b []byte, t Txn) []byte {
	b = binary.AppendUvarint(b, uint64(len(t.If)))
	for _, c := range t.If {
		b = append(b, byte(c.Test))
		b = wire.AppendString(b, c.Key)
		b = wire.AppendBytes(b, c.Value)
		b = binary.AppendUvarint(b, c.Counter)
	}
	b = binary.AppendUvarint(b, uint64(len(t.Then)))
	for _, a := range t.Then {
		b = append(b, byte(a.Do))
		b = wire.AppendString(b, a.Key)
		b = wire.AppendBytes(b, a.Value)
	}
	return b
}

// ReadTxn reads AppendTxn's rendering from d. It checks the shape only (Validate checks
// the rest); a count beyond the limits fails before anything is allocated for it.
func ReadTxn(d *wire.Decoder) Txn {
	var t Txn
	n := d.Uvarint()
	if d.Err == nil && n > MaxTxnConds {
		d.Fail(fmt.Errorf("txn: %d conditions, over the limit of %d", n, MaxTxnConds))
	}
	for i := uint64(0); i < n && d.Err == nil; i++ {
		c := TxnCond{Test: TxnTest(d.Byte()), Key: d.String(MaxKeyLen + 1)}
		c.Value = d.Bytes(MaxValueLen + 1)
		c.Counter = d.Uvarint()
		t.If = append(t.If, c)
	}
	n = d.Uvarint()
	if d.Err == nil && n > MaxTxnActions {
		d.Fail(fmt.Errorf("txn: %d actions, over the limit of %d", n, MaxTxnActions))
	}
	for i := uint64(0); i < n && d.Err == nil; i++ {
		a := TxnAction{Do: TxnDo(d.Byte()), Key: d.String(MaxKeyLen + 1)}
		a.Value = d.Bytes(MaxValueLen + 1)
		t.Then = append(t.Then, a)
	}
	return t
}

// String renders t the way the command line takes it, values quoted (and cut at 40
// bytes), for logs and `lite-raft debug`.
func (t Txn) String() string {
	q := func(b []byte) string {
		if len(b) > 40 {
			return strconv.Quote(string(b[:40])) + "..."
		}
		return strconv.Quote(string(b))
	}
	s := "txn"
	for _, c := range t.If {
		switch c.Test {
		case TestEquals, TestDiffers:
			s += fmt.Sprintf(" --if %s %s %s", c.Key, c.Test, q(c.Value))
		case TestCounter:
			s += fmt.Sprintf(" --if-counter %s %d", c.Key, c.Counter)
		default:
			s += fmt.Sprintf(" --if %s %s", c.Key, c.Test)
		}
	}
	for _, a := range t.Then {
		switch a.Do {
		case DoSet:
			s += fmt.Sprintf(" --set %s %s", a.Key, q(a.Value))
		default:
			s += fmt.Sprintf(" --%s %s", a.Do, a.Key)
		}
	}
	return s
}

// TxnResult is a transaction's answer (JSON in Response.Value; none when nothing was
// raised and every condition held). It is remembered with the client's session, so a
// retried txn gets it again: it holds numbers only, never keys or values, which keeps
// it far below what a snapshot keeps of a result (64 KiB).
type TxnResult struct {
	// Raised are the new values of the counters the DoRaise actions raised, in their
	// order in Then.
	Raised []uint64 `json:"raised,omitempty"`
	// Failed is the number (from 1) of the first condition found false, with code
	// CodeCondFalse: nothing was done. 0: every condition held.
	Failed int `json:"failed,omitempty"`
}

// Done reports whether the transaction's actions were done.
func (r TxnResult) Done() bool { return r.Failed == 0 }

// EncodeTxnResult renders r for an answer: nothing for the zero result.
func EncodeTxnResult(r TxnResult) []byte {
	if len(r.Raised) == 0 && r.Failed == 0 {
		return nil
	}
	b, _ := json.Marshal(r) // numbers only: cannot fail
	return b
}

// DecodeTxnResult parses EncodeTxnResult's output.
func DecodeTxnResult(b []byte) (TxnResult, error) {
	var r TxnResult
	if len(b) == 0 {
		return r, nil
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return TxnResult{}, fmt.Errorf("decode txn result %q: %w", truncateQ(b), err)
	}
	return r, nil
}

func truncateQ(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}
