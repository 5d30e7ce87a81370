package kvmodel

import (
	"fmt"
	"math"

	"github.com/anishathalye/porcupine"
)

// Op is what an operation did.
type Op string

const (
	Get    Op = "get"
	Set    Op = "set"
	Cas    Op = "cas"    // if KEY = Cond set Value
	Create Op = "create" // create KEY Value
	DelIf  Op = "delif"  // if KEY = Cond unset
	Exists Op = "exists" // exists KEY: 0 or 9
)

// isRead reports whether op only observes the state.
func isRead(op Op) bool { return op == Get || op == Exists }

// Input is an operation as it was asked.
type Input struct {
	Op    Op
	Key   string
	Value string // set, cas, create: the new value (unique to the operation)
	Cond  string // cas, delif: the expected value
}

// Output is how it ended.
type Output struct {
	Code  int
	Value string // get: what it printed
	// Unknown: a write whose outcome is unknown (exit 2, or no answer): it may take effect
	// at any time from its call on, or never; its return is the end of the history.
	Unknown bool
	// NotApplied: a write that failed with a code that promises it was not applied.
	NotApplied bool
}

// Outcome is what an operation's exit code says about it.
type Outcome int

const (
	OK         Outcome = iota // applied or answered as a result (write), or observed (read)
	Unknown                   // a write that may or may not have been applied
	NotApplied                // a write that was not applied
	ReadFailed                // a read that observed nothing: left out of the history
)

// Classify applies the exit-code rules (README): a write that exits 2, or got no answer
// at all (killed, a timeout of the caller's own: 124/137, ssh: 255, any code no write
// returns), may or may not have been applied; one that exits 1, 3, 4, 10, 11, 12, 14 or
// 18 (fenced) was not; 0 is done, and 5, 6, 7, 13 are results of conditional writes (the model
// decides whether they fit the state; for a plain set they never do). A read that exits
// 0 or 9 (no such key) observed the state; any other read imposes no constraint.
func Classify(op Op, code int, answered bool) Outcome {
	if isRead(op) {
		if answered && (code == 0 || code == 9) {
			return OK
		}
		return ReadFailed
	}
	if !answered {
		return Unknown
	}
	switch code {
	case 0, 5, 6, 7, 13:
		return OK
	case 1, 3, 4, 10, 11, 12, 14, 18:
		return NotApplied
	}
	return Unknown // 2, or no answer
}

// Operation makes the history entry of one operation, and says what it was; leave out
// a ReadFailed. An unknown write's return is the end of the history.
func Operation(client int, in Input, call, ret int64, code int, answered bool, value string) (porcupine.Operation, Outcome) {
	o := Classify(in.Op, code, answered)
	out := Output{Code: code, Value: value}
	switch o {
	case Unknown:
		out.Unknown, ret = true, math.MaxInt64
	case NotApplied:
		out.NotApplied = true
	}
	return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}, o
}

// absent is the state of a key that does not exist.
const absent = ""

// Model is the store. A not-applied write fits only as a no-op; an unknown one as
// either what it would do or nothing; an answered one only where its code is the one
// the state gives.
var Model = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(Input).Key
			if byKey[k] == nil {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() []any { return []any{absent} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(string), input.(Input), output.(Output)
		if !isRead(in.Op) && out.NotApplied {
			return []any{s}
		}
		// what the write does to s, and the code it answers
		var next string
		var code int
		switch in.Op {
		case Get:
			if (out.Code == 0 && s != absent && out.Value == s) || (out.Code == 9 && s == absent) {
				return []any{s}
			}
			return nil
		case Exists:
			if (out.Code == 0 && s != absent) || (out.Code == 9 && s == absent) {
				return []any{s}
			}
			return nil
		case Set:
			next, code = in.Value, 0
		case Create:
			next, code = in.Value, 0
			if s != absent {
				next, code = s, 13
			}
		case Cas:
			switch {
			case s == absent:
				next, code = s, 7
			case s != in.Cond:
				next, code = s, 6
			case s == in.Value:
				next, code = s, 5
			default:
				next, code = in.Value, 0
			}
		case DelIf:
			switch {
			case s == absent:
				next, code = s, 7
			case s != in.Cond:
				next, code = s, 6
			default:
				next, code = absent, 0
			}
		default:
			return nil
		}
		switch {
		case out.Unknown:
			return []any{next, s}
		case out.Code == code:
			return []any{next}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		res := fmt.Sprintf("exit %d", out.Code)
		if out.Unknown {
			res += ": unknown"
		} else if out.NotApplied {
			res += ": not applied"
		}
		switch in.Op {
		case Get:
			return fmt.Sprintf("get %s → %q (%s)", in.Key, out.Value, res)
		case Exists:
			return fmt.Sprintf("exists %s (%s)", in.Key, res)
		case Set:
			return fmt.Sprintf("set %s %s (%s)", in.Key, in.Value, res)
		case Create:
			return fmt.Sprintf("create %s %s (%s)", in.Key, in.Value, res)
		case DelIf:
			return fmt.Sprintf("if %s = %s unset (%s)", in.Key, in.Cond, res)
		}
		return fmt.Sprintf("if %s = %s set %s (%s)", in.Key, in.Cond, in.Value, res)
	},
	DescribeState: func(state any) string {
		if state.(string) == absent {
			return "(missing)"
		}
		return state.(string)
	},
}
