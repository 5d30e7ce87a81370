package raftcore

// appAhead holds the appends a follower received after a gap: each follows an entry it
// does not have yet, because an append sent before it is still on its way over another
// stream (a driver may spread appends over several, which do not keep their order). They
// are taken, in order, once the log reaches them. Without them, a follower refused such
// an append, and the leader went back to probing: one append overtaken cost a round trip
// and everything sent after it. A gap that does not close within appGapTicks (an append
// lost, not overtaken) is refused then, as it was at once before. They come from the leader of the current term only (reset
// forgets them) and are bounded by Config.MaxAppendAhead bytes and maxAppAhead appends.
type appAhead struct {
	msgs  map[uint64]Message // by the index they follow (Message.Index)
	bytes uint64
	// taking is set once this node took an append from the current leader since it
	// started: before that, a gap means the leader's view of this log is stale (a
	// restart lost what was in flight), and an append after it is refused at once so
	// that the leader goes back now, not after appIdleBeats
	taking bool
	// since is the node tick of the last progress: the last append taken, or the first
	// one held after it; with appends held, appGapTicks after it the gap counts as lost
	since uint64
}

// maxAppAhead bounds the appends held, whatever their size.
const maxAppAhead = 1024

// hold keeps m if it fits and is not held already; false means the leader must be told
// what the follower has (a rejection): an append sent again after a gap means the leader
// went back, and one beyond the bound must be sent again later.
func (a *appAhead) hold(m Message, limit, now uint64) bool {
	if !a.taking || len(m.Entries) == 0 || len(a.msgs) >= maxAppAhead {
		return false
	}
	if _, dup := a.msgs[m.Index]; dup {
		return false
	}
	n := entriesSize(m.Entries)
	if a.bytes+n > limit {
		return false
	}
	if a.msgs == nil {
		a.msgs = map[uint64]Message{}
	}
	if len(a.msgs) == 0 {
		a.since = now
	}
	a.msgs[m.Index] = m
	a.bytes += n
	return true
}

// lowest is the held append that follows the lowest index, if that is at or below last.
func (a *appAhead) lowest(last uint64) (Message, bool) {
	found, at := false, uint64(0)
	for i := range a.msgs {
		if !found || i < at {
			found, at = true, i
		}
	}
	if !found || at > last {
		return Message{}, false
	}
	return a.msgs[at], true
}

// take removes the held append that follows the lowest index at or below last, if any:
// the log now reaches it.
func (a *appAhead) take(last uint64) (Message, bool) {
	m, ok := a.lowest(last)
	if ok {
		delete(a.msgs, m.Index)
		a.bytes -= entriesSize(m.Entries)
	}
	return m, ok
}

func (a *appAhead) reset() { *a = appAhead{} }
