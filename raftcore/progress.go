package raftcore

// progressState is how the leader is feeding one follower.
type progressState uint8

const (
	// probe: the leader does not know where the follower's log matches its own. It sends
	// one append at a time and waits for the answer (or a heartbeat answer) before the next.
	stateProbe progressState = iota
	// replicate: the follower is known to match up to Match. Appends are pipelined: Next runs
	// ahead of Match by up to maxInflight unacknowledged messages.
	stateReplicate
	// snapshot: the follower needs entries the leader has compacted, so it receives the
	// snapshot in chunks, a window of them in flight, resuming from the offset it reports.
	stateSnapshot
)

func (s progressState) String() string {
	return [...]string{"probe", "replicate", "snapshot"}[s]
}

// inflightApp is an append in flight: its last index and its entry data's size.
type inflightApp struct{ last, bytes uint64 }

// progress is the leader's record of one member's log.
type progress struct {
	match, next uint64
	state       progressState
	probeSent   bool          // probe: an append is out, wait for its answer
	inflight    []inflightApp // replicate: each unacknowledged append, ascending
	inflightSum uint64        // the bytes of entry data in them
	// recentActive is set by any message from the member and cleared every election
	// timeout: check-quorum counts it.
	recentActive bool
	lastHeard    uint64 // node tick of the last message from the member
	readAck      uint64 // highest read round (heartbeat Context) it acknowledged

	// snapshot state: which snapshot (kept until it is sent, even if newer ones are
	// taken), how much the follower confirmed, the next offset to send and whether the last
	// piece is out; snapRound counts the times the leader went back to what the follower
	// confirmed, so that answers to pieces sent before do not send it back again.
	snap        Snapshot
	snapAcked   uint64
	snapNext    uint64
	snapDoneOut bool
	snapRound   uint64
	snapIdle    int // heartbeat answers since the follower last confirmed more

}

func (p *progress) becomeProbe() {
	if p.state == stateSnapshot {
		// the follower holds at least the snapshot now (or it will be probed again)
		p.next = max(p.match+1, p.snap.Meta.Index+1)
	} else {
		p.next = p.match + 1
	}
	p.state = stateProbe
	p.probeSent = false
	p.inflight, p.inflightSum = p.inflight[:0], 0
}

func (p *progress) becomeReplicate() {
	p.state = stateReplicate
	p.next = p.match + 1
	p.probeSent = false
	p.inflight, p.inflightSum = p.inflight[:0], 0
}

func (p *progress) becomeSnapshot(s Snapshot) {
	p.state = stateSnapshot
	p.inflight, p.inflightSum = p.inflight[:0], 0
	if !sameSnapshot(p.snap, s) {
		p.snapAcked = 0
	}
	p.snap = s
	p.goBack()
}

// goBack sends the snapshot again from what the follower confirmed.
func (p *progress) goBack() {
	p.snapNext = p.snapAcked
	p.snapDoneOut = false
	p.snapRound++
	p.snapIdle = 0
}

// paused reports whether the leader must wait before sending this member another append.
func (p *progress) paused(maxInflight int, maxBytes uint64) bool {
	switch p.state {
	case stateProbe:
		return p.probeSent
	case stateReplicate:
		return len(p.inflight) >= maxInflight || (len(p.inflight) > 0 && p.inflightSum >= maxBytes)
	}
	return true
}

// sent records an append in flight.
func (p *progress) sent(last, bytes uint64) {
	p.inflight = append(p.inflight, inflightApp{last, bytes})
	p.inflightSum += bytes
}

// dropOldest forgets the oldest append in flight.
func (p *progress) dropOldest() {
	p.inflightSum -= p.inflight[0].bytes
	p.inflight = p.inflight[1:]
}

// maybeUpdate records a successful append answer for index n.
func (p *progress) maybeUpdate(n uint64) bool {
	updated := false
	if n > p.match {
		p.match = n
		updated = true
		p.probeSent = false
	}
	p.next = max(p.next, n+1)
	return updated
}

// freeTo forgets the in-flight appends that an answer for index n acknowledges.
func (p *progress) freeTo(n uint64) {
	i := 0
	for i < len(p.inflight) && p.inflight[i].last <= n {
		p.inflightSum -= p.inflight[i].bytes
		i++
	}
	p.inflight = p.inflight[:copy(p.inflight, p.inflight[i:])]
}

// maybeDecrTo handles a rejected append whose previous index was rejected; hint is the
// leader's estimate of where the logs match. It reports whether the rejection was news.
func (p *progress) maybeDecrTo(rejected, hint uint64) bool {
	if p.state == stateReplicate {
		if rejected <= p.match {
			return false // stale: we already know it matches further
		}
		p.becomeProbe()
		p.next = max(min(rejected, hint+1), p.match+1)
		return true
	}
	if p.next-1 != rejected {
		return false // answer to an older probe
	}
	p.next = max(min(rejected, hint+1), p.match+1)
	p.probeSent = false
	return true
}
