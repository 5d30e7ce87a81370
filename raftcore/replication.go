package raftcore

import (
	"fmt"
	"math"
)

// Propose appends data to the log if this node is the leader and returns the entry's index
// and term. The entry is committed when it is handed out in Ready.CommittedEntries with
// that same term; if another entry shows up at that index, the proposal was lost.
func (r *Node) Propose(data []byte) (index, term uint64, err error) {
	if r.role != Leader {
		return 0, 0, ErrNotLeader
	}
	if r.transferee != None {
		return 0, 0, ErrTransferring
	}
	r.appendEntries(Entry{Type: EntryNormal, Data: data})
	return r.log.lastIndex(), r.term, nil
}

// appendEntries adds entries to the leader's own log. They are sent to followers in the
// next Ready, so that every proposal made in between travels in one append.
func (r *Node) appendEntries(ents ...Entry) {
	li := r.log.lastIndex()
	for i := range ents {
		ents[i].Term = r.term
		ents[i].Index = li + 1 + uint64(i)
	}
	r.log.appendAt(ents)
	for _, e := range ents {
		if e.Type == EntryMembership {
			r.refreshMembers()
		}
	}
	r.appendsDue = true
	// a one-voter cluster commits as soon as the entry is durable; see Advance.
}

// bcastAppend sends every follower what it is missing, as far as its window allows.
func (r *Node) bcastAppend() {
	for _, id := range r.members.All() {
		if id != r.id {
			r.sendAppends(id)
		}
	}
}

// sendAppends pipelines appends to one follower until its window is full or it has it all.
func (r *Node) sendAppends(to NodeID) {
	for r.sendAppend(to, false) {
	}
}

// sendAppend sends one append (or snapshot chunk) to a follower. With sendIfEmpty it sends
// an append without entries too, to carry the commit index or to probe.
func (r *Node) sendAppend(to NodeID, sendIfEmpty bool) bool {
	pr := r.prs[to]
	if pr == nil || pr.paused(r.cfg.MaxInflight, r.cfg.MaxInflightBytes) {
		return false
	}
	prevIndex := pr.next - 1
	prevTerm, ok := r.log.term(prevIndex)
	if !ok {
		// the follower needs entries we compacted: it gets the snapshot instead
		pr.becomeSnapshot(r.log.snap)
		r.sendSnapshotChunks(to, pr)
		return false
	}
	ents, err := r.log.slice(pr.next, r.log.lastIndex()+1, r.cfg.MaxMsgBytes)
	if err == errLogCompacted {
		pr.becomeSnapshot(r.log.snap)
		r.sendSnapshotChunks(to, pr)
		return false
	}
	if err != nil {
		r.storageErr = fmt.Errorf("send entries to %s: %w", to, err)
		return false
	}
	if len(ents) == 0 && !sendIfEmpty {
		return false
	}
	m := Message{To: to, Type: MsgApp, Index: prevIndex, LogTerm: prevTerm, Entries: ents, Commit: r.log.committed}
	if pr.state == stateReplicate && len(ents) > 0 && entriesSize(ents) >= r.cfg.BulkAppendBytes {
		m.Context = appPipelined
	}
	r.send(m)
	switch pr.state {
	case stateReplicate:
		if n := len(ents); n > 0 {
			last := ents[n-1].Index
			pr.next = last + 1
			pr.sent(last, entriesSize(ents))
		}
	case stateProbe:
		pr.probeSent = true
	}
	return true
}

func (r *Node) bcastHeartbeat() {
	for _, id := range r.members.All() {
		if id == r.id {
			continue
		}
		pr := r.prs[id]
		// never tell a follower to commit beyond what it is known to hold
		r.send(Message{To: id, Type: MsgHeartbeat, Commit: min(pr.match, r.log.committed), Context: r.reads.seq})
	}
	r.reads.heartbeatDue = false
}

// handleAppend is the follower's side of AppendEntries (§5.3), then of the appends held
// after a gap that the log now reaches (appAhead).
func (r *Node) handleAppend(m Message) error {
	if r.appendFrom(m) {
		r.takeHeldAppends()
	}
	return nil
}

// takeHeldAppends handles the held appends the log now reaches, each whatever the one
// before did (one wholly below the commit index takes nothing, and the next may).
func (r *Node) takeHeldAppends() {
	for {
		next, ok := r.appAhead.take(r.log.lastIndex())
		if !ok {
			return
		}
		r.appendFrom(next)
	}
}

// appendFrom handles one append; it reports whether the log took its entries.
func (r *Node) appendFrom(m Message) bool {
	if m.Index < r.log.committed {
		// everything up to our commit index is known to match; say so
		r.send(Message{To: m.From, Type: MsgAppResp, Index: r.log.committed})
		return false
	}
	if m.Context == appPipelined && m.Index > r.log.lastIndex() && r.appAhead.hold(m, r.cfg.MaxAppendAhead, r.ticks) {
		return false // after a gap: the appends before it are on their way
	}
	if !r.log.matchTerm(m.Index, m.LogTerm) {
		r.rejectAppend(m.From, m.Index, m.LogTerm)
		return false
	}
	lastNew := m.Index + uint64(len(m.Entries))
	// entries at or below the commit index were checked against it in validate
	if c := r.log.findConflict(m.Entries); c != 0 {
		truncates := c <= r.log.lastIndex()
		ents := m.Entries[c-m.Entries[0].Index:]
		r.log.appendAt(ents)
		if truncates || hasMembership(ents) {
			r.refreshMembers()
		}
	}
	r.log.commitTo(min(m.Commit, lastNew))
	r.send(Message{To: m.From, Type: MsgAppResp, Index: lastNew})
	r.appAhead.taking, r.appAhead.since = true, r.ticks
	return true
}

// rejectAppend refuses the append after (index, logTerm). Fast backtracking: instead of
// "not at index", it names the last index whose term could match, and its term, so the
// leader skips a whole term per round trip.
func (r *Node) rejectAppend(to NodeID, index, logTerm uint64) {
	hint := r.log.findConflictByTerm(min(index, r.log.lastIndex()), logTerm)
	hintTerm, _ := r.log.term(hint)
	r.send(Message{To: to, Type: MsgAppResp, Index: index, Reject: true, RejectHint: hint, LogTerm: hintTerm})
}

// appGapTicks is how long a follower waits, holding appends after a gap with no progress,
// before it refuses the first of them: streams on one connection reorder by a few
// milliseconds, a lost append never arrives. One heartbeat interval (at the next tick at
// least a heartbeat after the gap began): a lost append costs the leader little more
// than when a gap was refused at once.
func (r *Node) appGapTicks() uint64 { return uint64(max(1, r.cfg.HeartbeatTicks)) }

// tickAppAhead has a follower that holds appends after a gap that did not close refuse
// the first of them, so the leader sends the missing ones again.
func (r *Node) tickAppAhead() {
	r.takeHeldAppends() // those a snapshot reached
	a := &r.appAhead
	if len(a.msgs) == 0 || r.ticks-a.since < r.appGapTicks() {
		return
	}
	a.since = r.ticks
	first, ok := a.lowest(math.MaxUint64)
	if ok {
		r.rejectAppend(first.From, first.Index, first.LogTerm)
	}
}

func hasMembership(ents []Entry) bool {
	for i := range ents {
		if ents[i].Type == EntryMembership {
			return true
		}
	}
	return false
}

func (r *Node) stepLeader(m Message) error {
	pr := r.prs[m.From]
	if pr == nil {
		return nil // not (or no longer) a member
	}
	pr.recentActive = true
	pr.lastHeard = r.ticks
	switch m.Type {
	case MsgAppResp:
		r.handleAppendResponse(m, pr)
	case MsgHeartbeatResp:
		pr.probeSent = false
		if pr.state == stateReplicate && pr.paused(r.cfg.MaxInflight, r.cfg.MaxInflightBytes) {
			// appends may have been lost; let one more through so a rejection can tell us
			pr.dropOldest()
		}
		if pr.state == stateSnapshot {
			if pr.snapIdle++; pr.snapIdle >= snapIdleBeats {
				pr.goBack() // the last pieces, or their answers, may have been lost
			}
			r.sendSnapshotChunks(m.From, pr)
		} else if pr.match < r.log.lastIndex() {
			r.sendAppend(m.From, true)
		}
		if m.Context > pr.readAck {
			pr.readAck = m.Context
			r.releaseReads()
		}
	case MsgSnapResp:
		r.handleSnapshotResponse(m, pr)
	}
	return nil
}

func (r *Node) handleAppendResponse(m Message, pr *progress) {
	if m.Reject {
		hint := m.RejectHint
		if m.LogTerm > 0 {
			hint = r.log.findConflictByTerm(m.RejectHint, m.LogTerm)
		}
		if pr.state != stateSnapshot && pr.maybeDecrTo(m.Index, hint) {
			r.sendAppend(m.From, true)
		}
		return
	}
	wasPaused := pr.paused(r.cfg.MaxInflight, r.cfg.MaxInflightBytes)
	if !pr.maybeUpdate(m.Index) {
		if pr.state == stateReplicate {
			pr.freeTo(m.Index)
		}
		return
	}
	switch {
	case pr.state == stateProbe:
		pr.becomeReplicate()
	case pr.state == stateSnapshot && pr.match >= pr.snap.Meta.Index:
		pr.becomeProbe()
		pr.becomeReplicate()
	case pr.state == stateReplicate:
		pr.freeTo(m.Index)
	}
	// followers learn a new commit index from the next append or heartbeat
	r.maybeCommit()
	if wasPaused || pr.next <= r.log.lastIndex() {
		r.sendAppends(m.From)
	}
	if m.From == r.transferee && pr.match == r.log.lastIndex() {
		r.send(Message{To: m.From, Type: MsgTimeoutNow})
	}
}

// maybeCommit applies the commit rule (§5.3, §5.4.2): the highest index a quorum holds
// becomes committed, but only if that entry is of the current term. Entries of earlier
// terms are committed indirectly, by the first entry of this term above them; counting
// replicas of old entries is what the figure-8 scenario breaks.
func (r *Node) maybeCommit() bool {
	q := r.members.quorumValue(func(id NodeID) uint64 {
		if id == r.id {
			return r.log.stable
		}
		if pr := r.prs[id]; pr != nil {
			return pr.match
		}
		return 0
	})
	if q <= r.log.committed {
		return false
	}
	if t, ok := r.log.term(q); !ok || t != r.term {
		return false
	}
	r.log.commitTo(q)
	r.afterCommit()
	return true
}

// afterCommit runs the leader's duties that wait on the commit index.
func (r *Node) afterCommit() {
	r.reads.committedInTerm(r)
	r.maybeLeaveJoint()
	r.maybeStepDownRemoved()
}

// ForgetProgress has the leader forget what member id confirmed it holds, and probe it
// again from its own last entry: the driver made id's state anew (a host booted again in
// join mode while it was a member). Otherwise the leader would probe it at its old match
// forever, as Raft never expects a member to lose what it confirmed.
func (r *Node) ForgetProgress(id NodeID) {
	pr := r.prs[id]
	if r.role != Leader || pr == nil || id == r.id {
		return
	}
	pr.match = 0
	pr.becomeProbe()
	pr.next = r.log.lastIndex() + 1
}
