package raftcore

import "fmt"

// HasReady reports whether Ready would return anything.
func (r *Node) HasReady() bool {
	l := &r.log
	return len(r.msgs) > 0 || len(r.msgsAfter) > 0 ||
		(r.role == Leader && (r.appendsDue || r.reads.heartbeatDue)) ||
		r.softState() != r.emittedSoft ||
		(HardState{Term: r.term, Vote: r.vote}) != r.emittedHard ||
		(l.pendingSnap != nil && !l.snapEmitted) || len(r.snapWrites) > 0 || r.storageErr != nil ||
		l.emitted < l.lastIndex() ||
		l.appliedEmitted < min(l.committed, l.stable) ||
		len(r.reads.ready) > 0
}

// Ready hands out the work accumulated since the last call; see the Ready type for what
// to do with it. Everything in it is handed out once.
func (r *Node) Ready() Ready {
	if r.role == Leader {
		if r.appendsDue {
			r.appendsDue = false
			r.bcastAppend()
		}
		if r.reads.heartbeatDue {
			r.bcastHeartbeat()
		}
	}
	var rd Ready
	l := &r.log
	if ss := r.softState(); ss != r.emittedSoft {
		rd.SoftState = &ss
		r.emittedSoft = ss
	}
	if hs := (HardState{Term: r.term, Vote: r.vote}); hs != r.emittedHard {
		rd.HardState = &hs
		r.emittedHard = hs
	}
	rd.SnapshotChunks, r.snapWrites = r.snapWrites, nil
	rd.StorageErr = r.storageErr
	if l.pendingSnap != nil && !l.snapEmitted {
		s := *l.pendingSnap
		rd.Snapshot = &s
		l.snapEmitted = true
	}
	if last := l.lastIndex(); l.emitted < last {
		rd.Entries = l.cached(max(l.emitted, l.snap.Meta.Index)+1, last+1)
		l.emitted = last
	}
	if hi := min(l.committed, l.stable); l.appliedEmitted < hi {
		// from the cache, but after a restart from Storage: a bounded batch at a time
		ents, err := l.slice(l.appliedEmitted+1, hi+1, l.maxCache)
		switch {
		case err != nil:
			r.storageErr = fmt.Errorf("read committed entries from %d: %w", l.appliedEmitted+1, err)
			rd.StorageErr = r.storageErr
		case len(ents) > 0:
			rd.CommittedEntries = ents
			l.appliedEmitted = ents[len(ents)-1].Index
		}
	}
	rd.Messages, r.msgs = r.msgs, nil
	rd.PersistedMessages, r.msgsAfter = r.msgsAfter, nil
	if r.emittedHard != r.durableHard {
		// Every message carries our term, and a leader's carry its election: none may
		// leave before the term and vote behind them are durable. Otherwise a node could
		// lead a term, crash, forget its vote and vote again in that term (a one-voter
		// cluster elects itself without asking anyone).
		rd.PersistedMessages = append(rd.Messages, rd.PersistedMessages...)
		rd.Messages = nil
	}
	rd.ReadStates, r.reads.ready = r.reads.ready, nil
	rd.Commit = l.committed
	return rd
}

// Advance tells the node that rd has been handled: its state is durable, its messages
// sent and its committed entries applied.
func (r *Node) Advance(rd Ready) {
	l := &r.log
	if rd.HardState != nil {
		r.durableHard = *rd.HardState
	}
	if rd.Snapshot != nil {
		if l.pendingSnap != nil && l.pendingSnap.Meta.Index == rd.Snapshot.Meta.Index &&
			l.pendingSnap.Meta.Term == rd.Snapshot.Meta.Term {
			l.pendingSnap = nil
		}
		l.applied = max(l.applied, rd.Snapshot.Meta.Index)
	}
	if n := len(rd.Entries); n > 0 {
		last := rd.Entries[n-1]
		// if the log changed under this batch, its entries are no longer ours to confirm
		if last.Index > l.stable && l.matchTerm(last.Index, last.Term) {
			l.stable = last.Index
		}
	}
	if n := len(rd.CommittedEntries); n > 0 {
		l.applied = max(l.applied, rd.CommittedEntries[n-1].Index)
	}
	l.shrinkCache()
	if r.role == Leader {
		r.prs[r.id].match = l.stable
		r.maybeCommit()
	}
}
