package kvstore

import (
	"bytes"
	"encoding/json"
	"slices"

	"lite-raft/api"
)

// Lease is a time to live that keys and lock places hang on. Its ID is the index of
// the entry that granted it, so every member names it alike. The store keeps no time:
// when a lease expires is the leader's business (it proposes OpRevoke); the store only
// says which keys and locks go with it.
type Lease struct {
	TTLMs uint64
	Keys  []string // the keys set under it (values: replaced, never changed in place)
	Locks []string // the locks it waits for or holds
}

// Lock is a cluster-wide lock: a queue of leases, first come first served. The head
// holds it. Generation grows by one each time a new head takes it, and never goes down
// (the lock's record stays when its queue empties), so a holder can fence with it.
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
	s.data.Set(key, v)
	s.changes = append(s.changes, api.Change{Index: s.index, Key: key, Value: v})
}

// remove deletes key, and frees it from its lease.
func (s *Store) remove(key string) {
	if old, ok := s.keyLease.Get(key); ok {
		s.detach(key, old)
	}
	if _, existed := s.data.Delete(key); existed {
		s.changes = append(s.changes, api.Change{Index: s.index, Key: key, Deleted: true})
	}
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

// revoke ends a lease: its keys are deleted, its places in lock queues given up (a lock
// it held passes to the next in line, with a new generation). Revoking a lease that is
// gone does nothing: expiry and release may both propose it.
func (s *Store) revoke(id uint64) {
	l, ok := s.leases.Get(id)
	if !ok {
		return
	}
	for _, k := range l.Keys {
		if held, _ := s.keyLease.Get(k); held == id {
			s.keyLease.Delete(k)
			if _, existed := s.data.Delete(k); existed {
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
		if i == 0 && len(lk.Queue) > 0 {
			lk.Generation++ // the next in line holds it now
		}
		s.locks.Set(name, lk)
	}
	s.leases.Delete(id)
}

// lockAcquire grants a lease and queues it for lock c.Key; the first in an empty queue
// holds the lock at once.
func (s *Store) lockAcquire(index uint64, c Command) Result {
	s.grant(index, c.TTLMs)
	l, _ := s.leases.Get(index)
	l.Locks = []string{c.Key}
	s.leases.Set(index, l)
	lk, _ := s.locks.Get(c.Key)
	lk.Queue = append(slices.Clone(lk.Queue), LockWaiter{Lease: index, Holder: c.Holder, Since: index})
	if len(lk.Queue) == 1 {
		lk.Generation++
	}
	s.locks.Set(c.Key, lk)
	place, _ := s.LockPlaceOf(c.Key, index)
	b, _ := json.Marshal(place)
	return Result{Value: b}
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
