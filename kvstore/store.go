package kvstore

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"lite-raft/internal/wire"
)

// Result codes are the original's exit codes (SPEC.md), so a forwarded request can be
// answered with the leader's code unchanged.
const (
	CodeOK           = 0
	CodeAlreadyHolds = 5 // if ... set Y: the condition held but KEY already holds Y
	CodeCondFalse    = 6 // if ...: the condition is false
	CodeNoKey        = 7 // if ...: KEY does not exist
	CodeNoDir        = 8 // list DIR: no such folder
	CodeNotFound     = 9 // get KEY: no such key
)

// Result is the outcome of applying a command.
type Result struct {
	Code int
	Msg  string
}

// maxSessions bounds the deduplication table; the least recently active clients are
// forgotten first (a client silent for that long has long given up retrying).
const maxSessions = 10000

type session struct {
	seq       uint64
	result    Result
	lastIndex uint64
}

// Store is the key-value state. It is not safe for concurrent use.
type Store struct {
	data     map[string][]byte
	sessions map[uint64]session
}

// New returns an empty store.
func New() *Store {
	return &Store{data: map[string][]byte{}, sessions: map[uint64]session{}}
}

// Apply applies a command committed at log index.
func (s *Store) Apply(index uint64, c Command) Result {
	if c.ClientID != 0 {
		if ss, ok := s.sessions[c.ClientID]; ok && c.Seq <= ss.seq {
			if c.Seq == ss.seq {
				return ss.result // a retry: same answer, applied once
			}
			return Result{Code: CodeOK, Msg: "duplicate of an older request"}
		}
	}
	r := s.apply(c)
	if c.ClientID != 0 {
		s.sessions[c.ClientID] = session{seq: c.Seq, result: r, lastIndex: index}
		if len(s.sessions) > maxSessions {
			s.evictSessions()
		}
	}
	return r
}

func (s *Store) evictSessions() {
	type aged struct{ id, index uint64 }
	all := make([]aged, 0, len(s.sessions))
	for id, ss := range s.sessions {
		all = append(all, aged{id, ss.lastIndex})
	}
	slices.SortFunc(all, func(a, b aged) int {
		if a.index != b.index {
			return cmp.Compare(a.index, b.index)
		}
		return cmp.Compare(a.id, b.id)
	})
	for _, a := range all[:len(all)-maxSessions*9/10] {
		delete(s.sessions, a.id)
	}
}

func (s *Store) apply(c Command) Result {
	switch c.Op {
	case OpNoop:
		return Result{}
	case OpSet:
		s.data[c.Key] = c.Value
		return Result{}
	case OpUnset:
		delete(s.data, c.Key)
		return Result{}
	case OpIfSet:
		cur, ok := s.data[c.Key]
		if !ok {
			return Result{Code: CodeNoKey, Msg: fmt.Sprintf("key %s does not exist", c.Key)}
		}
		holds, err := Compare(cur, c.Cond, c.CondValue)
		if err != nil {
			return Result{Code: CodeCondFalse, Msg: err.Error()}
		}
		if !holds {
			return Result{Code: CodeCondFalse, Msg: "condition is false"}
		}
		if bytes.Equal(cur, c.Value) {
			return Result{Code: CodeAlreadyHolds, Msg: fmt.Sprintf("%s already holds the new value", c.Key)}
		}
		s.data[c.Key] = c.Value
		return Result{}
	}
	return Result{Code: 1, Msg: fmt.Sprintf("unknown operation %d", c.Op)}
}

// Compare evaluates `cur OP operand` as test(1) does: = and != compare strings, the
// others compare integers (an operand that is not one makes the comparison fail).
func Compare(cur []byte, op string, operand []byte) (bool, error) {
	switch op {
	case "=":
		return bytes.Equal(cur, operand), nil
	case "!=":
		return !bytes.Equal(cur, operand), nil
	}
	a, err := strconv.ParseInt(strings.TrimSpace(string(cur)), 10, 64)
	if err != nil {
		return false, fmt.Errorf("the stored value %q is not an integer, so %s cannot compare it", truncate(cur), op)
	}
	b, err := strconv.ParseInt(strings.TrimSpace(string(operand)), 10, 64)
	if err != nil {
		return false, fmt.Errorf("%q is not an integer, so %s cannot compare it", truncate(operand), op)
	}
	switch op {
	case "-eq":
		return a == b, nil
	case "-ne":
		return a != b, nil
	case "-lt":
		return a < b, nil
	case "-le":
		return a <= b, nil
	case "-gt":
		return a > b, nil
	case "-ge":
		return a >= b, nil
	}
	return false, fmt.Errorf("unknown operator %q", op)
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// Get returns the value of key.
func (s *Store) Get(key string) ([]byte, bool) {
	v, ok := s.data[key]
	return v, ok
}

// List returns the names directly below dir ("" for the top), sorted; ok is false when
// nothing is below dir.
func (s *Store) List(dir string) ([]string, bool) {
	prefix := ""
	if dir != "" {
		prefix = strings.TrimSuffix(dir, "/") + "/"
	}
	seen := map[string]bool{}
	for k := range s.data {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		name, _, _ := strings.Cut(k[len(prefix):], "/")
		seen[name] = true
	}
	if len(seen) == 0 {
		return nil, false
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, true
}

// Len is the number of keys.
func (s *Store) Len() int { return len(s.data) }

const snapshotMagic = "lite-raft kv v1\n"

// Snapshot encodes the whole state, sorted, so equal states give equal bytes.
func (s *Store) Snapshot() []byte {
	size := len(snapshotMagic) + 16
	keys := make([]string, 0, len(s.data))
	for k, v := range s.data {
		keys = append(keys, k)
		size += len(k) + len(v) + 8
	}
	slices.Sort(keys)
	ids := make([]uint64, 0, len(s.sessions))
	for id := range s.sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b := make([]byte, 0, size+len(ids)*40)
	b = append(b, snapshotMagic...)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		ss := s.sessions[id]
		b = binary.AppendUvarint(b, id)
		b = binary.AppendUvarint(b, ss.seq)
		b = binary.AppendUvarint(b, ss.lastIndex)
		b = binary.AppendUvarint(b, uint64(ss.result.Code))
		b = wire.AppendString(b, ss.result.Msg)
	}
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		v := s.data[k]
		b = wire.AppendString(b, k)
		b = wire.AppendBytes(b, v)
	}
	return b
}

// Restore replaces the state with a snapshot's. An empty snapshot is an empty store (the
// bootstrap snapshot at index 0 has no data).
func Restore(b []byte) (*Store, error) {
	s := New()
	if len(b) == 0 {
		return s, nil
	}
	if !bytes.HasPrefix(b, []byte(snapshotMagic)) {
		return nil, errors.New("kv snapshot: bad magic")
	}
	r := wire.Decoder{B: b[len(snapshotMagic):]}
	n := r.Uvarint()
	for i := uint64(0); i < n && r.Err == nil; i++ {
		id, seq, last, code := r.Uvarint(), r.Uvarint(), r.Uvarint(), r.Uvarint()
		msg := r.Bytes(1 << 16)
		s.sessions[id] = session{seq: seq, lastIndex: last, result: Result{Code: int(code), Msg: string(msg)}}
	}
	n = r.Uvarint()
	for i := uint64(0); i < n && r.Err == nil; i++ {
		k := r.Bytes(MaxKeyLen)
		v := r.Bytes(MaxValueLen)
		if r.Err == nil {
			s.data[string(k)] = v
		}
	}
	r.End()
	if r.Err != nil {
		return nil, fmt.Errorf("kv snapshot: %w", r.Err)
	}
	return s, nil
}
