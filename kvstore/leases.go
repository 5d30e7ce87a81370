package kvstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"lite-raft/api"
)

// Lease is a time to live that keys and lock places hang on. Its ID is the index of
// the entry that granted it, so every member names it alike. The store keeps no time:
// when a lease expires is the leader's business (it proposes OpRevoke); the store only
// says which keys and locks go with it.
type Lease struct {
	TTLMs uint64
	// Token is what a revoke of it must present (0: none needed: a TTL key's lease, or a
	// lock's granted by a version 2 command). It is never shown but to its acquirer.
	Token uint64
	Keys  []string // the keys set under it (values: replaced, never changed in place)
	Locks []string // the locks it waits for or holds
}

// Lock is a cluster-wide lock: a queue of leases, first come first served. The head
// holds it, at Generation, a fencing number that grows each time a new head takes it.
// Under the version 2 commands it grows by one and the record stays when its queue
// empties, for ever; under version 4's it is taken from what still grows
// (nextGeneration), so a record whose queue empties is dropped and a new one still
// starts above every generation issued before.
type Lock struct {
	Generation uint64
	Queue      []LockWaiter
}

// LockWaiter is one place in a lock's queue.
type LockWaiter struct {
	Lease  uint64
	Holder string // who asked (user@host pid), for status
	Since  uint64 // the index of its acquire
}

// put sets key to a copy of value, held under lease (0: none). The copy matters: the
// value is a slice of the entry it came in, often of a whole message of entries, which
// one kept value would otherwise keep alive.
func (s *Store) put(key string, value []byte, lease uint64) {
	if old, ok := s.keyLease.Get(key); ok && old != lease {
		s.detach(key, old)
	}
	if lease != 0 {
		if old, _ := s.keyLease.Get(key); old != lease {
			if l, ok := s.leases.Get(lease); ok {
				l.Keys = append(slices.Clone(l.Keys), key)
				s.leases.Set(lease, l)
			}
		}
		s.keyLease.Set(key, lease)
	}
	v := bytes.Clone(value)
	if prev, replaced := s.data.Set(key, v); replaced {
		s.dataBytes -= len(key) + len(prev)
	}
	s.dataBytes += len(key) + len(v)
	s.changes = append(s.changes, api.Change{Index: s.index, Key: key, Value: v})
}

// remove deletes key, and frees it from its lease.
func (s *Store) remove(key string) {
	if s.drop(key) {
		s.changes = append(s.changes, api.Change{Index: s.index, Key: key, Deleted: true})
	}
}

// drop deletes key, with its lease's hold on it, recording no change; it reports whether
// the key was there.
func (s *Store) drop(key string) bool {
	if old, ok := s.keyLease.Get(key); ok {
		s.detach(key, old)
	}
	prev, existed := s.data.Delete(key)
	if existed {
		s.dataBytes -= len(key) + len(prev)
	}
	return existed
}

// unsetPrefix deletes every key under folder dir, or, if there are more than
// api.MaxUnsetPrefix, nothing. The changes are one, of the folder: a watcher learns what
// happened in one line, and the ring holds one change, not thousands.
func (s *Store) unsetPrefix(dir string) Result {
	prefix := dir + "/"
	var keys []string
	it := s.data.Iter()
	for more := it.Seek(prefix); more && strings.HasPrefix(it.Key(), prefix); more = it.Next() {
		if len(keys) == api.MaxUnsetPrefix {
			n := len(keys)
			for more && strings.HasPrefix(it.Key(), prefix) {
				n++
				more = it.Next()
			}
			return Result{Code: api.CodeFailed, Msg: fmt.Sprintf("unset --prefix %s: %d keys under %s, more than the %d one write may delete: "+
				"nothing deleted (unset its subfolders one by one)", dir, n, prefix, api.MaxUnsetPrefix)}
		}
		keys = append(keys, it.Key())
	}
	if len(keys) == 0 {
		return Result{}
	}
	for _, k := range keys {
		s.drop(k)
	}
	s.changes = append(s.changes, api.Change{Index: s.index, Key: prefix, Deleted: true, Prefix: true})
	return Result{Value: []byte(strconv.Itoa(len(keys)))}
}

// detach takes key out of lease's keys.
func (s *Store) detach(key string, lease uint64) {
	s.keyLease.Delete(key)
	if l, ok := s.leases.Get(lease); ok {
		l.Keys = slices.DeleteFunc(slices.Clone(l.Keys), func(k string) bool { return k == key })
		s.leases.Set(lease, l)
	}
}

func (s *Store) grant(id, ttlMs uint64) { s.leases.Set(id, Lease{TTLMs: ttlMs}) }

// nextGeneration is the generation of a lock's new head, or a counter's next value, at
// index: above prev, and at least base+index. The index grows with every entry and the
// base with every restore (Rebase), so the value is above any that was issued before,
// even by a record since dropped, even by the cluster a backup came from.
func (s *Store) nextGeneration(prev, index uint64) uint64 {
	return max(prev+1, s.base+index)
}

// revoke ends a lease: its keys are deleted, its places in lock queues given up (a lock
// it held passes to the next in line, with a new generation). Revoking a lease that is
// gone does nothing: expiry and release may both propose it. v4 is the version 4 rule
// (OpRevokeV4): token must be the lease's, and a lock passes on by nextGeneration or is
// dropped once its queue is empty; else version 2's (OpRevoke), which builds before
// version 4 apply.
func (s *Store) revoke(id, token uint64, v4 bool) Result {
	l, ok := s.leases.Get(id)
	if !ok {
		return Result{}
	}
	if msg, refused := s.TokenRefusal(id, token); v4 && refused {
		return Result{Code: api.CodeUsage, Msg: "lease revoke: " + msg}
	}
	for _, k := range l.Keys {
		if held, _ := s.keyLease.Get(k); held == id {
			s.keyLease.Delete(k)
			if prev, existed := s.data.Delete(k); existed {
				s.dataBytes -= len(k) + len(prev)
				s.changes = append(s.changes, api.Change{Index: s.index, Key: k, Deleted: true})
			}
		}
	}
	for _, name := range l.Locks {
		lk, ok := s.locks.Get(name)
		if !ok {
			continue
		}
		i := slices.IndexFunc(lk.Queue, func(w LockWaiter) bool { return w.Lease == id })
		if i < 0 {
			continue
		}
		lk.Queue = slices.Delete(slices.Clone(lk.Queue), i, i+1)
		switch {
		case v4 && len(lk.Queue) == 0:
			s.dropLock(name)
			continue
		case v4 && i == 0:
			lk.Generation = s.nextGeneration(lk.Generation, s.index) // the next in line holds it now
		case i == 0 && len(lk.Queue) > 0:
			lk.Generation++
		}
		s.locks.Set(name, lk)
	}
	s.leases.Delete(id)
	return Result{}
}

// TokenRefusal says why token does not let its bearer revoke lease id, if it does not:
// a lease granted with a token (by OpLockAcquireV4) is revoked only with that token, so
// that no client can take a lock from its holder by naming its lease's number. A lease
// that is gone, or has no token (a TTL key's), refuses nobody.
func (s *Store) TokenRefusal(id, token uint64) (string, bool) {
	l, ok := s.leases.Get(id)
	if !ok || l.Token == 0 || l.Token == token {
		return "", false
	}
	what := "no token"
	if token != 0 {
		what = "a token that is not its own"
	}
	return fmt.Sprintf("lease %d is a lock's (held or waited for) and was named with %s: only its own client, with the token its lock's acquire returned, may end it (nothing was changed)", id, what), true
}

// dropLock forgets a lock whose queue emptied: its next head's generation comes from
// nextGeneration, which needs nothing of it, so lock names do not pile up for ever.
func (s *Store) dropLock(name string) { s.locks.Delete(name) }

// lockAcquire grants a lease and queues it for lock c.Key; the first in an empty queue
// holds the lock at once. OpLockAcquireV4 gives the lease c.Token and its holder a
// generation from nextGeneration; OpLockAcquire, as version 2 did, the last plus one.
func (s *Store) lockAcquire(index uint64, c Command) Result {
	v4 := c.Op == OpLockAcquireV4
	s.grant(index, c.TTLMs)
	l, _ := s.leases.Get(index)
	l.Locks = []string{c.Key}
	if v4 {
		l.Token = c.Token
	}
	s.leases.Set(index, l)
	lk, found := s.locks.Get(c.Key)
	lk.Queue = append(slices.Clone(lk.Queue), LockWaiter{Lease: index, Holder: c.Holder, Since: index})
	switch {
	case len(lk.Queue) > 1:
	case v4 && !found && s.bugs.GenerationReused:
		lk.Generation = 1
	case v4:
		lk.Generation = s.nextGeneration(lk.Generation, index)
	default:
		lk.Generation++
	}
	s.locks.Set(c.Key, lk)
	place, _ := s.LockPlaceOf(c.Key, index)
	if v4 {
		place.Token = c.Token // to the acquirer only: LockPlaceOf never tells it
	}
	b, _ := json.Marshal(place)
	return Result{Value: b}
}

// counterRaise raises counter c.Key from c.Expect to nextGeneration's value, which it
// answers (decimal); a counter not at c.Expect is left as it is, and its value answered
// with CodeCondFalse, so the caller can try again from there.
func (s *Store) counterRaise(index uint64, c Command) Result {
	cur, _ := s.counters.Get(c.Key)
	if cur != c.Expect {
		return Result{Code: api.CodeCondFalse, Value: []byte(strconv.FormatUint(cur, 10)),
			Msg: fmt.Sprintf("counter %s is at %d, not %d", c.Key, cur, c.Expect)}
	}
	next := s.nextGeneration(cur, index)
	s.counters.Set(c.Key, next)
	return Result{Value: []byte(strconv.FormatUint(next, 10))}
}

// Counter is counter name's value (0: never raised).
func (s *Store) Counter(name string) uint64 {
	v, _ := s.counters.Get(name)
	return v
}

// Base is the generation base: 0 for a cluster never restored, else the epoch of its
// last restore or recover (Rebase).
func (s *Store) Base() uint64 { return s.base }

// MarkRestored leaves a state restored from a backup waiting for its rebase: lock
// acquires, counter raises and fenced writes are refused (CodeFailed, try again) until
// an OpRebase applies, which the new cluster's first leader proposes with its clock.
// restore runs on every member with the same backup, and each must write the same
// state: the epoch cannot come from each member's own clock, so it comes through the
// log.
func (s *Store) MarkRestored() { s.rebasePending = true }

// RebasePending reports whether the state waits for OpRebase (MarkRestored).
func (s *Store) RebasePending() bool { return s.rebasePending }

// Rebase moves every lock generation and counter past anything the cluster the state
// came from could have issued: base becomes epoch, which the caller takes from the
// restore's own clock (Unix nanoseconds: the old cluster's base plus its log index
// never gets there, as logs grow by far less than an entry a nanosecond, and restoring
// one backup twice gives two bases). Every lock and counter is raised to at least
// epoch. An epoch not above the current base is refused: the clock is wrong, or this
// state was restored later than now.
func (s *Store) Rebase(epoch uint64) error {
	if epoch <= s.base {
		return fmt.Errorf("the restore's epoch %d is not above the state's %d (from a restore or recover later than this clock says it is now): is the clock right?", epoch, s.base)
	}
	s.base, s.rebasePending = epoch, false
	var names []string
	s.locks.Scan(func(name string, _ Lock) bool {
		names = append(names, name)
		return true
	})
	for _, name := range names {
		lk, _ := s.locks.Get(name)
		lk.Generation = max(lk.Generation, epoch)
		s.locks.Set(name, lk)
	}
	names = names[:0]
	s.counters.Scan(func(name string, _ uint64) bool {
		names = append(names, name)
		return true
	})
	for _, name := range names {
		s.counters.Set(name, max(s.Counter(name), epoch))
	}
	return nil
}

// LockPlaceOf says where lease stands in lock name's queue; ok is false if it is not
// in it (it was revoked, or expired).
func (s *Store) LockPlaceOf(name string, lease uint64) (api.LockPlace, bool) {
	lk, _ := s.locks.Get(name)
	i := slices.IndexFunc(lk.Queue, func(w LockWaiter) bool { return w.Lease == lease })
	if i < 0 {
		return api.LockPlace{}, false
	}
	p := api.LockPlace{Lease: lease, Position: i}
	if i == 0 {
		p.Generation = lk.Generation
	}
	return p, true
}

// LeaseOf is the lease key is held under (0: none).
func (s *Store) LeaseOf(key string) uint64 {
	id, _ := s.keyLease.Get(key)
	return id
}

// LeaseByID returns a lease.
func (s *Store) LeaseByID(id uint64) (Lease, bool) { return s.leases.Get(id) }

// Leases calls f for every lease, in ID order, until f returns false.
func (s *Store) Leases(f func(id uint64, l Lease) bool) { s.leases.Scan(f) }

// Locks calls f for every lock that has a queue, by name, until f returns false.
func (s *Store) Locks(f func(name string, l Lock) bool) {
	s.locks.Scan(func(name string, l Lock) bool {
		if len(l.Queue) == 0 {
			return true
		}
		return f(name, l)
	})
}

// hasV3State reports whether the store holds anything only snapshot format v3 can
// carry: a generation base, counters, a lease with a token.
func (s *Store) hasV3State() bool {
	if s.base != 0 || s.rebasePending || s.counters.Len() > 0 {
		return true
	}
	v3 := false
	s.leases.Scan(func(_ uint64, l Lease) bool {
		v3 = l.Token != 0
		return !v3
	})
	return v3
}

// hasV2State reports whether the store holds anything only snapshot format v2 can
// carry: leases, locks, or a remembered result with a value. A store without any is
// written in format v1, which builds from before leases read.
func (s *Store) hasV2State() bool {
	if s.leases.Len() > 0 || s.locks.Len() > 0 || s.keyLease.Len() > 0 {
		return true
	}
	v2 := false
	s.sessions.Scan(func(_ uint64, ss session) bool {
		v2 = len(ss.result.Value) > 0
		return !v2
	})
	return v2
}
