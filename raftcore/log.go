package raftcore

import (
	"errors"
	"fmt"
)

// raftLog is the node's view of the log: the latest snapshot, then every entry after it,
// and possibly some entries before it, kept so that a follower that lags a little is
// sent entries rather than the whole state.
//
// Memory holds the term of every entry, the membership entries, and a cache of the
// newest entries' data. Older data is read back through Storage, so memory does not grow
// with the length of the log or the size of its values. Every entry above stable is in
// the cache (it is not in Storage yet), and so is every committed entry not handed out
// for applying: the cache only gives up entries that are both durable and applied.
//
// On truncation the cache's backing array is never written in place, because earlier
// Readies and messages may still hold slices of it.
type raftLog struct {
	storage Storage
	snap    Snapshot // everything up to snap.Meta.Index is compacted into it
	first   uint64   // first entry held (in Storage or the cache); at most snap.Meta.Index+1
	terms   []uint64 // terms[i] is the term of entry first+i
	// the term of entry first-1, when known (prevOK): an append starting at first needs it
	prevTerm uint64
	prevOK   bool

	// memberships are the membership entries after the snapshot, in index order: the
	// membership in force, and the one at any index, are read from them.
	memberships []Entry

	cache      []Entry // the newest entries: cache[i].Index == lastIndex()+1-len(cache)+i
	cacheBytes uint64
	maxCache   uint64 // the cache gives up entries it may beyond this many bytes of data

	stable    uint64 // entries up to here are durable
	committed uint64
	applied   uint64

	// a snapshot received from the leader that has not been handed to the caller yet
	// (snapEmitted) or not acknowledged yet (pendingSnap != nil).
	pendingSnap *Snapshot
	snapEmitted bool

	emitted        uint64 // last entry handed out in a Ready for persisting
	appliedEmitted uint64 // last entry handed out in a Ready for applying
}

// firstIndex is the first entry the log can hand out.
func (l *raftLog) firstIndex() uint64 { return l.first }

func (l *raftLog) lastIndex() uint64 { return l.first + uint64(len(l.terms)) - 1 }

func (l *raftLog) lastTerm() uint64 {
	t, _ := l.term(l.lastIndex())
	return t
}

// term returns the term of entry i; ok is false when i is compacted or beyond the end.
func (l *raftLog) term(i uint64) (uint64, bool) {
	switch {
	case i == l.snap.Meta.Index:
		return l.snap.Meta.Term, true
	case i+1 == l.first && l.prevOK:
		return l.prevTerm, true
	case i < l.first || i > l.lastIndex():
		return 0, false
	}
	return l.terms[i-l.first], true
}

func (l *raftLog) matchTerm(i, t uint64) bool {
	lt, ok := l.term(i)
	return ok && lt == t
}

func (l *raftLog) cacheFirst() uint64 { return l.lastIndex() + 1 - uint64(len(l.cache)) }

// errLogCompacted is what slice returns when Storage no longer holds what was asked.
var errLogCompacted = errors.New("entries compacted away in storage")

// slice returns entries [lo, hi) limited to maxBytes of data (at least one entry; no
// limit when maxBytes is 0), from the cache or Storage.
func (l *raftLog) slice(lo, hi uint64, maxBytes uint64) ([]Entry, error) {
	if lo < l.first || hi > l.lastIndex()+1 || lo >= hi {
		return nil, nil
	}
	var ents []Entry
	if cf := l.cacheFirst(); lo < cf {
		stored, err := l.storage.Entries(lo, min(hi, cf), maxBytes)
		if err != nil {
			if errors.Is(err, ErrCompacted) {
				return nil, errLogCompacted
			}
			return nil, fmt.Errorf("read entries [%d, %d) from storage: %w", lo, min(hi, cf), err)
		}
		if len(stored) == 0 || stored[0].Index != lo {
			return nil, fmt.Errorf("read entries [%d, %d) from storage: got %d entries starting elsewhere", lo, min(hi, cf), len(stored))
		}
		for i := range stored {
			if t, ok := l.term(stored[i].Index); !ok || t != stored[i].Term || (i > 0 && stored[i].Index != stored[i-1].Index+1) {
				return nil, fmt.Errorf("read entries [%d, %d) from storage: entry %d (term %d) is not the one in the log", lo, min(hi, cf), stored[i].Index, stored[i].Term)
			}
		}
		last := stored[len(stored)-1].Index
		if last+1 < min(hi, cf) {
			return stored, nil // cut by maxBytes
		}
		ents, lo = stored, last+1
		if lo >= hi {
			return ents, nil
		}
	}
	cached := l.cache[lo-l.cacheFirst() : hi-l.cacheFirst()]
	size := entriesSize(ents)
	n := len(cached)
	if maxBytes > 0 {
		for i := range cached {
			size += uint64(len(cached[i].Data)) + 32
			if size > maxBytes && (i > 0 || len(ents) > 0) {
				n = i
				break
			}
		}
	}
	if len(ents) == 0 {
		return cached[:n:n], nil
	}
	return append(ents, cached[:n]...), nil
}

func entriesSize(ents []Entry) uint64 {
	var size uint64
	for i := range ents {
		size += uint64(len(ents[i].Data)) + 32
	}
	return size
}

// cached returns entries [lo, hi), which must all be in the cache.
func (l *raftLog) cached(lo, hi uint64) []Entry {
	if lo >= hi {
		return nil
	}
	ents := l.cache[lo-l.cacheFirst() : hi-l.cacheFirst()]
	return ents[:len(ents):len(ents)]
}

// isUpToDate is the election restriction (§5.4.1): compare last terms first, then length.
func (l *raftLog) isUpToDate(lastIndex, lastTerm uint64) bool {
	lt := l.lastTerm()
	return lastTerm > lt || (lastTerm == lt && lastIndex >= l.lastIndex())
}

// findConflictByTerm returns the largest index ≤ i whose term is ≤ t, stopping at the
// compacted prefix. It is the fast-backtracking step used on both sides of a rejection.
func (l *raftLog) findConflictByTerm(i, t uint64) uint64 {
	if li := l.lastIndex(); i > li {
		i = li
	}
	for ; i > l.snap.Meta.Index; i-- {
		if lt, _ := l.term(i); lt <= t {
			return i
		}
	}
	return i
}

// findConflict returns the index of the first entry of ents that is not in the log with
// the same term, or 0 when the log already holds all of them.
func (l *raftLog) findConflict(ents []Entry) uint64 {
	for _, e := range ents {
		if !l.matchTerm(e.Index, e.Term) {
			return e.Index
		}
	}
	return 0
}

// appendAt puts ents into the log, replacing whatever stood at ents[0].Index and after.
func (l *raftLog) appendAt(ents []Entry) {
	if len(ents) == 0 {
		return
	}
	at := ents[0].Index
	if at <= l.snap.Meta.Index || at > l.lastIndex()+1 {
		panic(fmt.Sprintf("raftcore: appendAt %d outside (%d, %d]", at, l.snap.Meta.Index, l.lastIndex()+1))
	}
	if at <= l.lastIndex() {
		// Everything from at on is replaced. Entries there are above the commit index, so
		// not applied, and still cached unless already durable: the cache keeps what is
		// before at and what it holds of the replaced part goes.
		cf := l.cacheFirst()
		keep := int(max(at, cf) - cf)
		for _, e := range l.cache[keep:] {
			l.cacheBytes -= uint64(len(e.Data))
		}
		// full slice expression: force a new array so nothing handed out is overwritten
		// (when at is before the cache, keep is 0 and the whole cache goes)
		l.cache = l.cache[:keep:keep]
		l.terms = l.terms[:at-l.first]
		for len(l.memberships) > 0 && l.memberships[len(l.memberships)-1].Index >= at {
			l.memberships = l.memberships[:len(l.memberships)-1]
		}
		l.stable = min(l.stable, at-1)
		l.emitted = min(l.emitted, at-1)
	}
	for i := range ents {
		l.terms = append(l.terms, ents[i].Term)
		l.cacheBytes += uint64(len(ents[i].Data))
		if ents[i].Type == EntryMembership {
			l.memberships = append(l.memberships, ents[i])
		}
	}
	l.cache = append(l.cache, ents...)
}

// shrinkCache lets the cache give up its oldest entries beyond maxCache bytes, as far as
// they are durable and handed out for applying.
func (l *raftLog) shrinkCache() {
	limit := min(l.stable, l.appliedEmitted)
	n := 0
	for n < len(l.cache) && l.cacheBytes > l.maxCache && l.cache[n].Index <= limit {
		l.cacheBytes -= uint64(len(l.cache[n].Data))
		n++
	}
	// Sliced off, not copied: a copy of the whole cache at every Ready was two thirds of
	// what a busy leader allocated. The dropped entries are not cleared either (messages
	// and Readies may still share them); their data is freed when appends outgrow the
	// array and move the cache to a new one, so at most about a quarter of the cache
	// more is held (append grows an array of that size by 1.25x).
	l.cache = l.cache[n:]
}

// commitTo raises the commit index, never past the end of the log.
func (l *raftLog) commitTo(i uint64) bool {
	i = min(i, l.lastIndex())
	if i > l.committed {
		l.committed = i
		return true
	}
	return false
}

// restore replaces the whole log with a snapshot received from the leader.
func (l *raftLog) restore(s Snapshot) {
	l.snap = s
	l.first = s.Meta.Index + 1
	l.prevTerm, l.prevOK = s.Meta.Term, true
	l.terms, l.cache, l.cacheBytes, l.memberships = nil, nil, 0, nil
	l.committed = s.Meta.Index
	l.stable = s.Meta.Index
	l.emitted = s.Meta.Index
	l.appliedEmitted = max(l.appliedEmitted, s.Meta.Index)
	ps := s
	l.pendingSnap = &ps
	l.snapEmitted = false
}

// compact makes s (at an applied index) the log's snapshot and forgets the entries
// before keepFrom, which is at most s.Meta.Index+1: the ones from there on stay
// available for followers.
func (l *raftLog) compact(s Snapshot, keepFrom uint64) {
	keepFrom = min(max(keepFrom, l.first), s.Meta.Index+1)
	if keepFrom > l.first {
		l.prevTerm, l.prevOK = l.terms[keepFrom-1-l.first], true
	}
	l.terms = append([]uint64(nil), l.terms[keepFrom-l.first:]...)
	l.first = keepFrom
	if cf := l.cacheFirst(); cf < keepFrom {
		for _, e := range l.cache[:keepFrom-cf] {
			l.cacheBytes -= uint64(len(e.Data))
		}
		l.cache = append([]Entry(nil), l.cache[keepFrom-cf:]...)
	}
	n := 0
	for n < len(l.memberships) && l.memberships[n].Index <= s.Meta.Index {
		n++
	}
	l.memberships = append([]Entry(nil), l.memberships[n:]...)
	l.snap = s
}
