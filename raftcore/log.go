package raftcore

import "fmt"

// raftLog is the node's view of the log: the latest snapshot, then every entry after it.
// It lives wholly in memory; lite-raft compacts every snapshot_period entries, which keeps
// it small. stable is the last index known durable; entries after it still have to go
// through a Ready. On truncation the backing array is never written in place, because
// earlier Readies and messages may still hold slices of it.
type raftLog struct {
	snap      Snapshot // everything up to snap.Meta.Index is compacted into it
	entries   []Entry  // entries[i].Index == snap.Meta.Index+1+i
	stable    uint64   // entries up to here are durable
	committed uint64
	applied   uint64

	// a snapshot received from the leader that has not been handed to the caller yet
	// (snapEmitted) or not acknowledged yet (pendingSnap != nil).
	pendingSnap *Snapshot
	snapEmitted bool

	emitted        uint64 // last entry handed out in a Ready for persisting
	appliedEmitted uint64 // last entry handed out in a Ready for applying
}

func (l *raftLog) firstIndex() uint64 { return l.snap.Meta.Index + 1 }

func (l *raftLog) lastIndex() uint64 { return l.snap.Meta.Index + uint64(len(l.entries)) }

func (l *raftLog) lastTerm() uint64 {
	t, _ := l.term(l.lastIndex())
	return t
}

// term returns the term of entry i; ok is false when i is compacted or beyond the end.
func (l *raftLog) term(i uint64) (uint64, bool) {
	switch {
	case i == l.snap.Meta.Index:
		return l.snap.Meta.Term, true
	case i < l.snap.Meta.Index || i > l.lastIndex():
		return 0, false
	}
	return l.entries[i-l.snap.Meta.Index-1].Term, true
}

func (l *raftLog) matchTerm(i, t uint64) bool {
	lt, ok := l.term(i)
	return ok && lt == t
}

// entry returns entry i, which must be in [firstIndex, lastIndex].
func (l *raftLog) entry(i uint64) *Entry { return &l.entries[i-l.snap.Meta.Index-1] }

// slice returns entries [lo, hi) limited to maxBytes of data (at least one entry).
func (l *raftLog) slice(lo, hi uint64, maxBytes uint64) []Entry {
	if lo < l.firstIndex() || hi > l.lastIndex()+1 || lo >= hi {
		return nil
	}
	ents := l.entries[lo-l.firstIndex() : hi-l.firstIndex()]
	if maxBytes > 0 {
		var size uint64
		for i := range ents {
			size += uint64(len(ents[i].Data)) + 32
			if size > maxBytes && i > 0 {
				return ents[:i:i]
			}
		}
	}
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
		if l.entry(i).Term <= t {
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
		keep := at - l.firstIndex()
		// full slice expression: force a new array so nothing handed out is overwritten
		l.entries = append(l.entries[:keep:keep], ents...)
		l.stable = min(l.stable, at-1)
		l.emitted = min(l.emitted, at-1)
		return
	}
	l.entries = append(l.entries, ents...)
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
	l.entries = nil
	l.committed = s.Meta.Index
	l.stable = s.Meta.Index
	l.emitted = s.Meta.Index
	l.appliedEmitted = max(l.appliedEmitted, s.Meta.Index)
	ps := s
	l.pendingSnap = &ps
	l.snapEmitted = false
}

// compact drops entries up to and including s.Meta.Index, which must be applied.
func (l *raftLog) compact(s Snapshot) {
	n := s.Meta.Index - l.snap.Meta.Index
	l.entries = append([]Entry(nil), l.entries[n:]...)
	l.snap = s
}
