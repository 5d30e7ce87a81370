package kvstore

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"lite-raft/api"
)

// txn applies a transaction (OpTxn) at index: every condition is tested against the
// state as it stands before any action, and only if all hold are the actions done, in
// order; no key is in two actions (api.Txn.Validate), so their order does not change
// the outcome. The answer carries the raised counters' new values, or which condition
// was false (api.TxnResult).
func (s *Store) txn(index uint64, t api.Txn) Result {
	conds := t.If
	early := s.bugs.TxnActsBeforeLastCondition && len(conds) > 0
	if early {
		conds = conds[:len(conds)-1]
	}
	for i, c := range conds {
		if why, ok := s.holds(c); !ok {
			return txnFalse(i, len(t.If), why)
		}
	}
	var res api.TxnResult
	if early {
		res.Raised = s.txnDo(index, t.Then)
		if why, ok := s.holds(t.If[len(t.If)-1]); !ok {
			return txnFalse(len(t.If)-1, len(t.If), why)
		}
	} else {
		res.Raised = s.txnDo(index, t.Then)
	}
	return Result{Value: api.EncodeTxnResult(res)}
}

func txnFalse(i, n int, why string) Result {
	return Result{Code: api.CodeCondFalse, Value: api.EncodeTxnResult(api.TxnResult{Failed: i + 1}),
		Msg: fmt.Sprintf("condition %d of %d is false: %s: nothing was done", i+1, n, why)}
}

// holds tests one condition; when it is false, why says so (naming the key or counter,
// never quoting a value, which may be large).
func (s *Store) holds(c api.TxnCond) (why string, ok bool) {
	if c.Test == api.TestCounter {
		cur, _ := s.counters.Get(c.Key)
		return fmt.Sprintf("counter %s is at %d, not %d", c.Key, cur, c.Counter), cur == c.Counter
	}
	cur, present := s.data.Get(c.Key)
	switch c.Test {
	case api.TestEquals:
		if !present {
			return fmt.Sprintf("%s = ...: %s does not exist", c.Key, c.Key), false
		}
		return fmt.Sprintf("%s = ...: %s holds another value", c.Key, c.Key), bytes.Equal(cur, c.Value)
	case api.TestDiffers:
		return fmt.Sprintf("%s != ...: %s holds that value", c.Key, c.Key), !present || !bytes.Equal(cur, c.Value)
	case api.TestMissing:
		return fmt.Sprintf("%s missing: %s exists", c.Key, c.Key), !present
	case api.TestPresent:
		return fmt.Sprintf("%s present: %s does not exist", c.Key, c.Key), present
	}
	return fmt.Sprintf("%s: unknown test %d", c.Key, c.Test), false // Validate refuses it first
}

// txnDo does a transaction's actions and returns the raised counters' new values, in
// order. A raise follows counter raise's rule (nextGeneration), without its expected
// value: a condition TestCounter says that where it matters.
func (s *Store) txnDo(index uint64, acts []api.TxnAction) []uint64 {
	var raised []uint64
	for _, a := range acts {
		switch a.Do {
		case api.DoSet:
			s.put(a.Key, a.Value, 0)
		case api.DoUnset:
			s.remove(a.Key)
		case api.DoRaise:
			cur, _ := s.counters.Get(a.Key)
			next := s.nextGeneration(cur, index)
			s.counters.Set(a.Key, next)
			raised = append(raised, next)
		}
	}
	return raised
}

// ErrDirTooLarge is a folder whose answer (api.DirEntries) would pass the limit asked.
type ErrDirTooLarge struct {
	Dir   string
	Limit int
}

func (e *ErrDirTooLarge) Error() string {
	return fmt.Sprintf("folder %s: its keys and values come to more than %d bytes, the most one answer carries "+
		"(nothing is cut short): read its keys one by one (list, get)", orTop(e.Dir), e.Limit)
}

func orTop(dir string) string {
	if dir == "" {
		return "/"
	}
	return dir
}

// ReadDir returns folder dir ("" for the top) as it stands: the keys directly under it
// with their values, the names of its subfolders (whose keys it does not read), and the
// counters whose names lie directly under it. ok is false when dir holds nothing at all.
// It costs O(log n) per name returned, as List does, and stops with an *ErrDirTooLarge
// once the answer's JSON could pass limit bytes (api.DirAnswerSize). The values are the
// store's own: not to be written to.
func (s *Store) ReadDir(dir string, limit int) (d api.DirEntries, ok bool, err error) {
	d.Dir = dir
	prefix := ""
	if dir != "" {
		prefix = strings.TrimSuffix(dir, "/") + "/"
	}
	size := 64 + 6*len(dir)
	it := s.data.Iter()
	for more := it.Seek(prefix); more; {
		k := it.Key()
		if !strings.HasPrefix(k, prefix) {
			break
		}
		name, _, sub := strings.Cut(k[len(prefix):], "/")
		if sub {
			d.Dirs = append(d.Dirs, name)
			size += 6*len(name) + 4
			more = it.Seek(prefix + name + "0") // past the subfolder: "/" + 1 is "0"
		} else {
			d.Keys = append(d.Keys, api.DirKey{Key: k, Value: it.Value()})
			size += api.DirAnswerSize(k, it.Value())
			more = it.Next()
		}
		if size > limit {
			return api.DirEntries{}, false, &ErrDirTooLarge{Dir: dir, Limit: limit}
		}
	}
	cit := s.counters.Iter()
	for more := cit.Seek(prefix); more; {
		k := cit.Key()
		if !strings.HasPrefix(k, prefix) {
			break
		}
		name, _, sub := strings.Cut(k[len(prefix):], "/")
		if sub {
			// a counter in a subfolder is the subfolder's: its keys are not read either
			more = cit.Seek(prefix + name + "0")
			continue
		}
		d.Counters = append(d.Counters, api.DirCounter{Name: k, Value: cit.Value()})
		if size += 6*len(k) + 40; size > limit {
			return api.DirEntries{}, false, &ErrDirTooLarge{Dir: dir, Limit: limit}
		}
		more = cit.Next()
	}
	// each subfolder came once (its keys are together), in the order of name + "/",
	// which is not the names' ("a+/" sorts before "a/", "a+" after "a")
	slices.Sort(d.Dirs)
	return d, len(d.Keys) > 0 || len(d.Dirs) > 0 || len(d.Counters) > 0, nil
}

// ReadPrefix is a page of get --prefix: the keys under dir at any depth ("": every key),
// in key order, from after after, with their values, until the page's JSON would pass
// limit (one key at least, whatever its size). The page's Next is its last key when keys
// under dir remain after it.
func (s *Store) ReadPrefix(dir, after string, limit int) api.PrefixPage {
	p := api.PrefixPage{Prefix: dir}
	prefix := ""
	if dir != "" {
		prefix = strings.TrimSuffix(dir, "/") + "/"
	}
	from := prefix
	if after > from {
		from = after + "\x00" // the first key after it
	}
	size := 64 + 6*len(dir)
	it := s.data.Iter()
	for more := it.Seek(from); more && strings.HasPrefix(it.Key(), prefix); more = it.Next() {
		k, v := it.Key(), it.Value()
		if size += api.DirAnswerSize(k, v); size > limit && len(p.Keys) > 0 {
			p.Next = p.Keys[len(p.Keys)-1].Key
			break
		}
		p.Keys = append(p.Keys, api.DirKey{Key: k, Value: v})
	}
	return p
}
