package kvstore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/btree"

	"lite-raft/api"
	"lite-raft/internal/wire"
)

// Result is the outcome of applying a command.
type Result struct {
	Code int
	Msg  string
	// Value is what a command returns beyond its code: a lease's ID (OpSetLease), a
	// lock's place (OpLockAcquire, api.LockPlace's JSON).
	Value []byte
	// Changes are the keys this command set or removed, in order, with the index it was
	// applied at: what watches see. A duplicate (an answer replayed) changed nothing.
	Changes []api.Change
}

// Store is the key-value state, on ordered copy-on-write B-trees (tidwall/btree): list
// walks only the names asked for, and Clone is O(1), so a snapshot can be written from a
// clone while the original goes on applying. It is not safe for concurrent use, but a
// clone may be read by another goroutine while the original is changed.
type Store struct {
	data btree.Map[string, []byte]
	// dataBytes is the bytes of data's keys and values, kept as they change: status
	// reports it, and a walk of every key per status would cost as much as the store
	dataBytes int
	// the deduplication table, its forgetting order, the bytes of its values, and the
	// state's time (sessions.go)
	sessions     btree.Map[uint64, session]
	ages         *btree.BTreeG[sessionAge]
	sessionBytes int
	time         uint64
	// the keys held under a lease, the leases and the locks (leases.go)
	keyLease btree.Map[string, uint64]
	leases   btree.Map[uint64, Lease]
	locks    btree.Map[string, Lock]
	// counters (OpCounterRaise), apart from the keys so that no plain write reaches them,
	// and the generation base (Rebase)
	counters btree.Map[string, uint64]
	base     uint64
	// rebasePending: restored from a backup, waiting for OpRebase (MarkRestored)
	rebasePending bool
	bugs          Bugs
	// what the command being applied changed so far, and its index (Apply)
	changes []api.Change
	index   uint64
}

// New returns an empty store.
func New() *Store { return &Store{} }

// Bugs are deliberate mistakes a simulation plants in a store to show that it catches
// them (agent/core's bugs reach it through Plant); the zero value is the correct store.
type Bugs struct {
	// GenerationReused: a lock whose record was dropped (its queue emptied) starts again
	// at generation 1, as if the record had never been.
	GenerationReused bool
	// TxnActsBeforeLastCondition: a transaction does its actions before it tests its
	// last condition, so a false last condition leaves them done (and answers 6).
	TxnActsBeforeLastCondition bool
	// BatchKeepsDoneWrites: an atomic batch whose write fails keeps the writes before
	// it, instead of going back to the state before the first.
	BatchKeepsDoneWrites bool
	// SessionsEvictedByCount: the deduplication table forgets its oldest sessions past
	// 100 clients, young or not (the rule before sessions expired by time, at a bound a
	// test reaches), so a retry after 100 other clients is applied twice.
	SessionsEvictedByCount bool
}

// Plant plants bugs b in s (and in its clones), for simulations only.
func (s *Store) Plant(b Bugs) { s.bugs = b }

// Clone returns a copy that shares everything with s until either changes (O(1)).
func (s *Store) Clone() *Store {
	c := &Store{data: *s.data.Copy(), sessions: *s.sessions.Copy(), dataBytes: s.dataBytes, sessionBytes: s.sessionBytes, time: s.time,
		keyLease: *s.keyLease.Copy(), leases: *s.leases.Copy(), locks: *s.locks.Copy(),
		counters: *s.counters.Copy(), base: s.base, rebasePending: s.rebasePending, bugs: s.bugs}
	if s.ages != nil {
		c.ages = s.ages.Copy()
	}
	return c
}

// Apply applies a command committed at log index.
func (s *Store) Apply(index uint64, c Command) Result {
	s.advance(c.StampMs) // first: the time the command is judged at
	if c.ClientID != 0 {
		ss, ok := s.sessions.Get(c.ClientID)
		if ok && c.Seq <= ss.seq {
			if c.Seq == ss.seq {
				return ss.replay() // a retry: same answer, applied once
			}
			return Result{Code: api.CodeOK, Msg: "duplicate of an older request"}
		}
		if !ok {
			if r, refused := s.unknownClient(c); refused {
				return r
			}
		}
	}
	s.changes, s.index = nil, index
	r := s.apply(index, c)
	r.Changes, s.changes = s.changes, nil
	if c.ClientID != 0 {
		s.putSession(c.ClientID, c.Seq, r) // a retry gets the answer, not the changes again
	}
	return r
}

func (s *Store) apply(index uint64, c Command) Result {
	if s.rebasePending {
		switch c.Op {
		case OpLockAcquire, OpLockAcquireV4, OpCounterRaise, OpFenced, OpTxn:
			if c.Op == OpTxn && !c.Txn.TouchesCounters() {
				break
			}
			// what the old cluster issued may still be issued: not before OpRebase
			return Result{Code: api.CodeFailed, Msg: "this cluster was restored from a backup and has not yet moved its lock and package " +
				"generations past the old cluster's (its leader does that first, once its clock is past the backup's epoch): try again"}
		}
	}
	switch c.Op {
	case OpNoop, OpLeaseKeepBatch:
		// a keep batch changes no state: when a lease runs out is each core's to count
		return Result{}
	case OpSet:
		s.put(c.Key, c.Value, 0)
		return Result{}
	case OpUnset:
		s.remove(c.Key)
		return Result{}
	case OpUnsetPrefix:
		return s.unsetPrefix(c.Key)
	case OpSetLease:
		s.grant(index, c.TTLMs)
		s.put(c.Key, c.Value, index)
		return Result{Value: []byte(strconv.FormatUint(index, 10))}
	case OpRevoke:
		return s.revoke(c.Lease, 0, false)
	case OpRevokeV4:
		return s.revoke(c.Lease, c.Token, true)
	case OpLockAcquire, OpLockAcquireV4:
		return s.lockAcquire(index, c)
	case OpCounterRaise:
		return s.counterRaise(index, c)
	case OpTxn:
		return s.txn(index, c.Txn)
	case OpBatch:
		return s.batch(index, c.Batch)
	case OpRebase:
		if !s.rebasePending {
			return Result{} // another leader's, already done
		}
		if err := s.Rebase(c.Epoch); err != nil {
			return Result{Code: api.CodeFailed, Msg: err.Error()}
		}
		return Result{}
	case OpFenced:
		lk, _ := s.locks.Get(c.FenceName)
		switch {
		case len(lk.Queue) == 0:
			return Result{Code: api.CodeFenced, Msg: fmt.Sprintf("fenced: lock %s is not held (its holder of generation %d is gone): nothing was written", c.FenceName, c.FenceGen)}
		case lk.Generation != c.FenceGen:
			return Result{Code: api.CodeFenced, Msg: fmt.Sprintf("fenced: lock %s is at generation %d, not %d: nothing was written", c.FenceName, lk.Generation, c.FenceGen)}
		}
		inner := c
		inner.Op, inner.Fenced, inner.FenceName, inner.FenceGen = c.Fenced, 0, "", 0
		return s.apply(index, inner)
	case OpIfSet, OpIfUnset:
		cur, ok := s.data.Get(c.Key)
		if !ok {
			return Result{Code: api.CodeNoKey, Msg: fmt.Sprintf("key %s does not exist", c.Key)}
		}
		holds, err := Compare(cur, c.Cond, c.CondValue)
		if err != nil {
			return Result{Code: api.CodeCondFalse, Msg: err.Error()}
		}
		if !holds {
			return Result{Code: api.CodeCondFalse, Msg: "condition is false"}
		}
		if c.Op == OpIfUnset {
			s.remove(c.Key)
			return Result{}
		}
		if bytes.Equal(cur, c.Value) {
			return Result{Code: api.CodeAlreadyHolds, Msg: fmt.Sprintf("%s already holds the new value", c.Key)}
		}
		s.put(c.Key, c.Value, 0)
		return Result{}
	case OpCreate:
		if _, ok := s.data.Get(c.Key); ok {
			return Result{Code: api.CodeExists, Msg: fmt.Sprintf("key %s already exists", c.Key)}
		}
		s.put(c.Key, c.Value, 0)
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
func (s *Store) Get(key string) ([]byte, bool) { return s.data.Get(key) }

// List returns the names directly below dir ("" for the top), sorted; ok is false when
// nothing is below dir. It costs O(log n) per name returned: the keys of a subfolder are
// skipped with one seek, not walked.
func (s *Store) List(dir string) ([]string, bool) {
	prefix := ""
	if dir != "" {
		prefix = strings.TrimSuffix(dir, "/") + "/"
	}
	var names []string
	it := s.data.Iter()
	for ok := it.Seek(prefix); ok; {
		k := it.Key()
		if !strings.HasPrefix(k, prefix) {
			break
		}
		name, _, sub := strings.Cut(k[len(prefix):], "/")
		names = append(names, name)
		if sub {
			// past every key of this subfolder: "/" + 1 is "0"
			ok = it.Seek(prefix + name + "0")
		} else {
			ok = it.Next()
		}
	}
	if len(names) == 0 {
		return nil, false
	}
	// "a" (a key) and "a/b" (a folder) give one name; keys between them in order (such as
	// "a+b") can part the two, so sort and drop repeats
	slices.Sort(names)
	return slices.Compact(names), true
}

// Len is the number of keys.
func (s *Store) Len() int { return s.data.Len() }

// DataBytes is the bytes of every key and value the store holds (without the
// bookkeeping: leases, locks, sessions, counters).
func (s *Store) DataBytes() int { return s.dataBytes }

// Snapshot formats: v1 holds sessions and keys; v2 adds results' values, leases and
// locks; v3 adds leases' tokens, the generation base and the counters; v4 adds the
// state's time and writes the sessions compactly (a stamped state: writeSessionsV4;
// the older formats keep a session's mark as its index, and no message). A store is
// written in the oldest format that holds all it has, which builds from before read
// (they may be members still: the leader does not let leases in before they go, nor
// tokens and counters; a base comes only with a restore, by a build that has it).
const (
	snapshotMagic   = "lite-raft kv v1\n"
	snapshotMagicV2 = "lite-raft kv v2\n"
	snapshotMagicV3 = "lite-raft kv v3\n"
	snapshotMagicV4 = "lite-raft kv v4\n"
)

// Snapshot encodes the whole state, sorted, so equal states give equal bytes.
func (s *Store) Snapshot() []byte {
	var b bytes.Buffer
	s.WriteSnapshot(&b)
	return b.Bytes()
}

// WriteSnapshot streams Snapshot's encoding to w, a record at a time (through a small
// buffer): the whole state is never held as one byte slice. Write it from a Clone to let
// the original go on meanwhile.
func (s *Store) WriteSnapshot(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var rec []byte
	put := func() error {
		_, err := bw.Write(rec)
		rec = rec[:0]
		return err
	}
	v4 := s.time != 0
	v3 := v4 || s.hasV3State()
	v2 := v3 || s.hasV2State()
	switch {
	case v4:
		rec = append(rec, snapshotMagicV4...)
	case v3:
		rec = append(rec, snapshotMagicV3...)
	case v2:
		rec = append(rec, snapshotMagicV2...)
	default:
		rec = append(rec, snapshotMagic...)
	}
	var err error
	if v4 {
		err = s.writeSessionsV4(&rec, put)
	} else {
		rec = binary.AppendUvarint(rec, uint64(s.sessions.Len()))
		s.sessions.Scan(func(id uint64, ss session) bool {
			rec = binary.AppendUvarint(rec, id)
			rec = binary.AppendUvarint(rec, ss.seq)
			rec = binary.AppendUvarint(rec, ss.mark) // an unstamped state's mark is the index
			rec = binary.AppendUvarint(rec, uint64(ss.result.Code))
			rec = wire.AppendString(rec, "") // the message is not kept (replayMsg)
			if v2 {
				rec = wire.AppendBytes(rec, ss.result.Value)
			}
			err = put()
			return err == nil
		})
	}
	if err != nil {
		return err
	}
	rec = binary.AppendUvarint(rec, uint64(s.data.Len()))
	s.data.Scan(func(k string, v []byte) bool {
		rec = wire.AppendString(rec, k)
		if err = put(); err != nil {
			return false
		}
		rec = binary.AppendUvarint(rec, uint64(len(v)))
		if err = put(); err != nil {
			return false
		}
		_, err = bw.Write(v)
		return err == nil
	})
	if err == nil {
		err = put()
	}
	if err == nil && v2 {
		err = s.writeLeases(&rec, put, v3)
	}
	if err == nil && v3 {
		err = s.writeCounters(&rec, put)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// writeSessionsV4 appends v4's first section: the state's time, then the sessions in
// order of client ID, each as the ID's distance from the previous one, the sequence
// number, how long before the state's time it was written, the code times two plus one
// if a value follows, and that value. A CLI call's session (a random ID among hundreds of
// thousands, sequence 1, code 0) takes about 12 bytes.
func (s *Store) writeSessionsV4(rec *[]byte, put func() error) error {
	var err error
	*rec = binary.AppendUvarint(*rec, s.time)
	*rec = binary.AppendUvarint(*rec, uint64(s.sessions.Len()))
	var prev uint64
	s.sessions.Scan(func(id uint64, ss session) bool {
		*rec = binary.AppendUvarint(*rec, id-prev)
		prev = id
		*rec = binary.AppendUvarint(*rec, ss.seq)
		*rec = binary.AppendUvarint(*rec, s.time-ss.mark)
		if len(ss.result.Value) > 0 {
			*rec = binary.AppendUvarint(*rec, uint64(ss.result.Code)<<1|1)
			*rec = wire.AppendBytes(*rec, ss.result.Value)
		} else {
			*rec = binary.AppendUvarint(*rec, uint64(ss.result.Code)<<1)
		}
		err = put()
		return err == nil
	})
	return err
}

// writeCounters appends v3's last sections: the base, whether a rebase is pending, the
// counters.
func (s *Store) writeCounters(rec *[]byte, put func() error) error {
	var err error
	*rec = binary.AppendUvarint(*rec, s.base)
	pending := uint64(0)
	if s.rebasePending {
		pending = 1
	}
	*rec = binary.AppendUvarint(*rec, pending)
	*rec = binary.AppendUvarint(*rec, uint64(s.counters.Len()))
	s.counters.Scan(func(name string, v uint64) bool {
		*rec = wire.AppendString(*rec, name)
		*rec = binary.AppendUvarint(*rec, v)
		err = put()
		return err == nil
	})
	if err != nil {
		return err
	}
	return put()
}

// writeLeases appends v2's sections: the leased keys, the leases (with their tokens in
// v3), the locks.
func (s *Store) writeLeases(rec *[]byte, put func() error, v3 bool) error {
	var err error
	*rec = binary.AppendUvarint(*rec, uint64(s.keyLease.Len()))
	s.keyLease.Scan(func(k string, id uint64) bool {
		*rec = wire.AppendString(*rec, k)
		*rec = binary.AppendUvarint(*rec, id)
		err = put()
		return err == nil
	})
	if err != nil {
		return err
	}
	*rec = binary.AppendUvarint(*rec, uint64(s.leases.Len()))
	s.leases.Scan(func(id uint64, l Lease) bool {
		*rec = binary.AppendUvarint(*rec, id)
		*rec = binary.AppendUvarint(*rec, l.TTLMs)
		if v3 {
			*rec = binary.AppendUvarint(*rec, l.Token)
		}
		for _, names := range [][]string{l.Keys, l.Locks} {
			*rec = binary.AppendUvarint(*rec, uint64(len(names)))
			for _, n := range names {
				*rec = wire.AppendString(*rec, n)
			}
		}
		err = put()
		return err == nil
	})
	if err != nil {
		return err
	}
	*rec = binary.AppendUvarint(*rec, uint64(s.locks.Len()))
	s.locks.Scan(func(name string, lk Lock) bool {
		*rec = wire.AppendString(*rec, name)
		*rec = binary.AppendUvarint(*rec, lk.Generation)
		*rec = binary.AppendUvarint(*rec, uint64(len(lk.Queue)))
		for _, w := range lk.Queue {
			*rec = binary.AppendUvarint(*rec, w.Lease)
			*rec = wire.AppendString(*rec, w.Holder)
			*rec = binary.AppendUvarint(*rec, w.Since)
		}
		err = put()
		return err == nil
	})
	if err != nil {
		return err
	}
	return put()
}

// Restore reads a state back from a snapshot's encoding, streamed: only the store itself
// is held, never the whole encoding. An empty snapshot is an empty store (the bootstrap
// snapshot at index 0 has no data).
func Restore(r io.Reader) (*Store, error) {
	s, _, err := restore(r, true, Visitor{})
	return s, err
}

// Visitor is told what a snapshot's encoding holds as Visit reads it through: each key
// and its value (in key order; value is only good until Key returns), then each key a
// lease holds with the lease, then each lease with its time to live. A Key that returns
// an error stops the read with it.
type Visitor struct {
	Key      func(key string, value []byte) error
	KeyLease func(key string, lease uint64)
	Lease    func(lease, ttlMs uint64)
}

// Visit reads a snapshot's encoding through, as CheckSnapshot does, telling v what it
// holds: a state is walked without the memory it would take.
func Visit(r io.Reader, v Visitor) error {
	_, _, err := restore(r, false, v)
	return err
}

// CheckSnapshot reads a snapshot's encoding through as Restore does, keeping nothing but
// a buffer, and returns how many keys it holds: a file is checked without the memory its
// state would take.
func CheckSnapshot(r io.Reader) (int, error) {
	_, n, err := restore(r, false, Visitor{})
	return n, err
}

// restore decodes a snapshot's encoding, into a store if keep, else only through.
func restore(r io.Reader, keep bool, visit Visitor) (*Store, int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	s := New()
	magic := make([]byte, len(snapshotMagic))
	n, err := io.ReadFull(br, magic)
	if n == 0 && err == io.EOF {
		return s, 0, nil
	}
	if err != nil || (string(magic) != snapshotMagic && string(magic) != snapshotMagicV2 && string(magic) != snapshotMagicV3 && string(magic) != snapshotMagicV4) {
		return nil, 0, errors.New("kv snapshot: bad magic")
	}
	v4 := string(magic) == snapshotMagicV4
	v3 := v4 || string(magic) == snapshotMagicV3
	v2 := v3 || string(magic) == snapshotMagicV2
	var rerr error
	uvarint := func() uint64 {
		if rerr != nil {
			return 0
		}
		v, err := binary.ReadUvarint(br)
		if err != nil {
			rerr = err
		}
		return v
	}
	// into buf when given (reused for keys, which become strings), else a new slice
	bytesOf := func(limit int, buf []byte) []byte {
		n := uvarint()
		if rerr != nil {
			return nil
		}
		if n > uint64(limit) {
			rerr = fmt.Errorf("a field of %d bytes, more than %d", n, limit)
			return nil
		}
		var b []byte
		if uint64(cap(buf)) >= n {
			b = buf[:n]
		} else {
			b = make([]byte, n)
		}
		if _, err := io.ReadFull(br, b); err != nil {
			rerr = err
		}
		return b
	}
	if v4 {
		s.time = uvarint()
	}
	count := uvarint()
	var ages []sessionAge
	var prev uint64
	for i := uint64(0); i < count && rerr == nil; i++ {
		var ss session
		var id, code uint64
		if v4 {
			d := uvarint()
			id = prev + d
			if i > 0 && (d == 0 || id < prev) && rerr == nil {
				rerr = fmt.Errorf("client %d out of order", id)
			}
			prev = id
			ss.seq = uvarint()
			if age := uvarint(); age <= s.time {
				ss.mark = s.time - age
			} else if rerr == nil {
				rerr = fmt.Errorf("a session written %d ms before the state's time %d", age, s.time)
			}
			code = uvarint()
			if code&1 != 0 {
				ss.result.Value = bytesOf(1<<16, nil)
			}
			code >>= 1
		} else {
			id, ss.seq, ss.mark, code = uvarint(), uvarint(), uvarint(), uvarint()
			bytesOf(1<<16, nil) // the message, no longer kept (replayMsg)
			if v2 {
				if v := bytesOf(1<<16, nil); len(v) > 0 {
					ss.result.Value = v
				}
			}
		}
		if code > 255 && rerr == nil {
			rerr = fmt.Errorf("a session's code %d", code)
		}
		ss.result.Code = uint8(code)
		if _, dup := s.sessions.Get(id); dup && rerr == nil {
			rerr = fmt.Errorf("client %d twice", id)
		}
		if keep && rerr == nil {
			s.sessions.Load(id, ss)
			ages = append(ages, sessionAge{ss.mark, id})
			s.sessionBytes += len(ss.result.Value)
		}
	}
	if len(ages) > 0 {
		slices.SortFunc(ages, func(a, b sessionAge) int {
			if ageLess(a, b) {
				return -1
			}
			if ageLess(b, a) {
				return 1
			}
			return 0
		})
		s.ages = newAges()
		for _, a := range ages {
			s.ages.Load(a)
		}
	}
	// Both trees are written in order, so they are loaded in order (Load appends to the
	// rightmost leaf instead of searching from the root; an item out of order is still
	// put where it belongs).
	count = uvarint()
	keyBuf := make([]byte, api.MaxKeyLen)
	var valueBuf []byte // reused when nothing is kept
	keys := 0
	for i := uint64(0); i < count && rerr == nil; i++ {
		k := bytesOf(api.MaxKeyLen, keyBuf)
		v := bytesOf(api.MaxValueLen, valueBuf)
		if rerr == nil && visit.Key != nil {
			rerr = visit.Key(string(k), v)
		}
		if rerr == nil {
			keys++
			if keep {
				if prev, replaced := s.data.Load(string(k), v); replaced {
					s.dataBytes -= len(k) + len(prev)
				}
				s.dataBytes += len(k) + len(v)
			} else if cap(v) > cap(valueBuf) {
				valueBuf = v
			}
		}
	}
	if v2 && rerr == nil {
		names := func() []string {
			n := uvarint()
			var out []string
			for j := uint64(0); j < n && rerr == nil; j++ {
				out = append(out, string(bytesOf(api.MaxKeyLen, nil)))
			}
			return out
		}
		count = uvarint()
		for i := uint64(0); i < count && rerr == nil; i++ {
			k := bytesOf(api.MaxKeyLen, keyBuf)
			id := uvarint()
			if keep {
				s.keyLease.Load(string(k), id)
			}
			if visit.KeyLease != nil && rerr == nil {
				visit.KeyLease(string(k), id)
			}
		}
		count = uvarint()
		for i := uint64(0); i < count && rerr == nil; i++ {
			id, ttl := uvarint(), uvarint()
			var token uint64
			if v3 {
				token = uvarint()
			}
			l := Lease{TTLMs: ttl, Token: token, Keys: names(), Locks: names()}
			if keep {
				s.leases.Load(id, l)
			}
			if visit.Lease != nil && rerr == nil {
				visit.Lease(id, ttl)
			}
		}
		count = uvarint()
		for i := uint64(0); i < count && rerr == nil; i++ {
			name := string(bytesOf(api.MaxKeyLen, nil))
			lk := Lock{Generation: uvarint()}
			n := uvarint()
			for j := uint64(0); j < n && rerr == nil; j++ {
				lk.Queue = append(lk.Queue, LockWaiter{Lease: uvarint(), Holder: string(bytesOf(256, nil)), Since: uvarint()})
			}
			if keep {
				s.locks.Load(name, lk)
			}
		}
	}
	if v3 && rerr == nil {
		s.base = uvarint()
		s.rebasePending = uvarint() == 1
		count = uvarint()
		for i := uint64(0); i < count && rerr == nil; i++ {
			name := string(bytesOf(api.MaxKeyLen, nil))
			if v := uvarint(); keep {
				s.counters.Load(name, v)
			}
		}
	}
	if rerr == nil {
		if _, err := br.ReadByte(); err != io.EOF {
			rerr = errors.New("data after the end")
		}
	}
	if rerr != nil {
		if rerr == io.EOF {
			rerr = io.ErrUnexpectedEOF
		}
		return nil, 0, fmt.Errorf("kv snapshot: %w", rerr)
	}
	return s, keys, nil
}
