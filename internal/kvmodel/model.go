package kvmodel

import (
	"fmt"
	"math"
	"slices"
	"strings"

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
	// Txn: if every one of Conds holds, every one of Sets (txn --if KEY = V|missing ...
	// --set KEY V ...): 0 done, 6 a condition false (Output.Value: its number, from 1)
	Txn Op = "txn"
	// DelPrefix: unset --prefix Key, every key under folder Key deleted at once: 0
	DelPrefix Op = "delprefix"
)

// isRead reports whether op only observes the state.
func isRead(op Op) bool { return op == Get || op == Exists }

// Input is an operation as it was asked.
type Input struct {
	Op    Op
	Key   string
	Value string // set, cas, create: the new value (unique to the operation)
	Cond  string // cas, delif: the expected value
	// txn: the conditions (a key equals Value, or is missing when Value is "") and the
	// sets, each of a key not set by another; Key is left empty
	Conds []KV
	Sets  []KV
}

// KV is a key and a value: a txn's condition or set.
type KV struct{ Key, Value string }

// keys is every key in touches: for DelPrefix its folder, with a trailing slash, which
// partition links to the keys under it.
func (in Input) keys() []string {
	if in.Op == DelPrefix {
		return []string{in.Key + "/"}
	}
	if in.Op != Txn {
		return []string{in.Key}
	}
	var ks []string
	for _, c := range in.Conds {
		ks = append(ks, c.Key)
	}
	for _, c := range in.Sets {
		ks = append(ks, c.Key)
	}
	return ks
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

// absent is the value of a key that does not exist.
const absent = ""

// The state of a partition is a string, so that porcupine compares states with ==: its
// keys that exist, sorted, each as key NUL value NUL.
func lookup(state, key string) string {
	for rest := state; rest != ""; {
		k, r, _ := strings.Cut(rest, "\x00")
		v, r2, _ := strings.Cut(r, "\x00")
		if k == key {
			return v
		}
		rest = r2
	}
	return absent
}

// with is state with each of sets done (a set to absent removes the key).
func with(state string, sets ...KV) string {
	m := map[string]string{}
	for rest := state; rest != ""; {
		k, r, _ := strings.Cut(rest, "\x00")
		v, r2, _ := strings.Cut(r, "\x00")
		m[k], rest = v, r2
	}
	for _, kv := range sets {
		if kv.Value == absent {
			delete(m, kv.Key)
		} else {
			m[kv.Key] = kv.Value
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "\x00" + m[k] + "\x00")
	}
	return b.String()
}

// without is state with every key under folder prefix removed.
func without(state, prefix string) string {
	var b strings.Builder
	for rest := state; rest != ""; {
		k, r, _ := strings.Cut(rest, "\x00")
		v, r2, _ := strings.Cut(r, "\x00")
		if !strings.HasPrefix(k, prefix) {
			b.WriteString(k + "\x00" + v + "\x00")
		}
		rest = r2
	}
	return b.String()
}

// partition groups the operations whose keys are linked (a txn links its keys): each
// group is checked apart, with a state of its keys only.
func partition(h []porcupine.Operation) [][]porcupine.Operation {
	parent := map[string]string{}
	var find func(k string) string
	find = func(k string) string {
		if p, ok := parent[k]; ok && p != k {
			r := find(p)
			parent[k] = r
			return r
		}
		parent[k] = k
		return k
	}
	var folders []string
	keys := map[string]bool{}
	for _, op := range h {
		ks := op.Input.(Input).keys()
		for _, k := range ks[1:] {
			parent[find(k)] = find(ks[0])
		}
		for _, k := range ks {
			keys[k] = true
		}
		if op.Input.(Input).Op == DelPrefix {
			folders = append(folders, ks[0])
		}
	}
	// a folder deleted whole links every key under it (and every folder in it)
	for _, f := range folders {
		for k := range keys {
			if k != f && strings.HasPrefix(k, f) {
				parent[find(k)] = find(f)
			}
		}
	}
	byRoot := map[string][]porcupine.Operation{}
	var roots []string
	for _, op := range h {
		r := find(op.Input.(Input).keys()[0])
		if byRoot[r] == nil {
			roots = append(roots, r)
		}
		byRoot[r] = append(byRoot[r], op)
	}
	out := make([][]porcupine.Operation, 0, len(roots))
	for _, r := range roots {
		out = append(out, byRoot[r])
	}
	return out
}

// Model is the store. A not-applied write fits only as a no-op; an unknown one as
// either what it would do or nothing; an answered one only where its code is the one
// the state gives.
var Model = porcupine.NondeterministicModel{
	Partition: partition,
	Init:      func() []any { return []any{absent} },
	Step: func(state, input, output any) []any {
		st, in, out := state.(string), input.(Input), output.(Output)
		if !isRead(in.Op) && out.NotApplied {
			return []any{st}
		}
		if in.Op == DelPrefix {
			next := without(st, in.Key+"/")
			switch {
			case out.Unknown:
				return []any{next, st}
			case out.Code == 0:
				return []any{next}
			}
			return nil
		}
		if in.Op == Txn {
			next, code, failed := st, 0, ""
			for i, c := range in.Conds {
				if lookup(st, c.Key) != c.Value {
					code, failed = 6, fmt.Sprint(i+1)
					break
				}
			}
			if code == 0 {
				next = with(st, in.Sets...)
			}
			switch {
			case out.Unknown:
				return []any{next, st}
			case out.Code == code && out.Value == failed:
				return []any{next}
			}
			return nil
		}
		s := lookup(st, in.Key)
		set := func(v string) string { return with(st, KV{in.Key, v}) }
		// what the write does to s, and the code it answers
		var next string
		var code int
		switch in.Op {
		case Get:
			if (out.Code == 0 && s != absent && out.Value == s) || (out.Code == 9 && s == absent) {
				return []any{st}
			}
			return nil
		case Exists:
			if (out.Code == 0 && s != absent) || (out.Code == 9 && s == absent) {
				return []any{st}
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
			return []any{set(next), st}
		case out.Code == code:
			return []any{set(next)}
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
		case DelPrefix:
			return fmt.Sprintf("unset --prefix %s (%s)", in.Key, res)
		case Txn:
			d := "txn"
			for _, c := range in.Conds {
				if c.Value == absent {
					d += fmt.Sprintf(" --if %s missing", c.Key)
				} else {
					d += fmt.Sprintf(" --if %s = %s", c.Key, c.Value)
				}
			}
			for _, c := range in.Sets {
				d += fmt.Sprintf(" --set %s %s", c.Key, c.Value)
			}
			if out.Value != "" {
				res += ", condition " + out.Value + " false"
			}
			return fmt.Sprintf("%s (%s)", d, res)
		}
		return fmt.Sprintf("if %s = %s set %s (%s)", in.Key, in.Cond, in.Value, res)
	},
	DescribeState: func(state any) string {
		var pairs []string
		for rest := state.(string); rest != ""; {
			k, r, _ := strings.Cut(rest, "\x00")
			v, r2, _ := strings.Cut(r, "\x00")
			pairs, rest = append(pairs, k+"="+v), r2
		}
		if len(pairs) == 0 {
			return "(every key missing)"
		}
		return strings.Join(pairs, " ")
	},
}
