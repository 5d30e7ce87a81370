package raftcore

// readIndex implements linearizable reads without writing to the log (§6.4 of the Raft
// dissertation). The leader notes its commit index for a read, then confirms it is still
// the leader by a round of heartbeats of its current term; once a quorum answered a round
// sent after the read arrived, the read may be served from any state that has applied the
// noted index. Reads that arrive together share one round: each heartbeat carries the
// newest round number (seq) and an answer confirms every read up to it.
type readIndex struct {
	seq          uint64        // last round number handed out
	pending      []pendingRead // rounds not yet confirmed, by ascending seq
	waiting      []uint64      // read IDs that came before the leader committed in its term
	heartbeatDue bool
	ready        []ReadState
}

type pendingRead struct {
	id, index, seq uint64
}

// ReadIndex asks for a linearizable read identified by id. The answer comes as a
// ReadState in a later Ready: serve the read once Index is applied, or retry elsewhere if
// Lost. Only the leader answers; followers forward reads to it.
func (r *Node) ReadIndex(id uint64) error {
	if r.role != Leader {
		return ErrNotLeader
	}
	if t, _ := r.log.term(r.log.committed); t != r.term {
		// Until an entry of its own term is committed the leader does not know the full
		// commit index (§5.4.2 and §8): wait for its first entry to commit.
		r.reads.waiting = append(r.reads.waiting, id)
		return nil
	}
	r.reads.add(r, id)
	return nil
}

func (q *readIndex) add(r *Node, id uint64) {
	q.seq++
	q.pending = append(q.pending, pendingRead{id: id, index: r.log.committed, seq: q.seq})
	q.heartbeatDue = true
	r.releaseReads() // a single voter confirms itself
}

// committedInTerm starts the reads that waited for the leader's first commit.
func (q *readIndex) committedInTerm(r *Node) {
	if len(q.waiting) == 0 {
		return
	}
	if t, _ := r.log.term(r.log.committed); t != r.term {
		return
	}
	w := q.waiting
	q.waiting = nil
	for _, id := range w {
		q.add(r, id)
	}
}

// releaseReads hands out every read whose round a quorum has answered.
func (r *Node) releaseReads() {
	q := &r.reads
	if len(q.pending) == 0 {
		return
	}
	confirmed := r.members.quorumValue(func(id NodeID) uint64 {
		if id == r.id {
			return q.seq
		}
		if pr := r.prs[id]; pr != nil {
			return pr.readAck
		}
		return 0
	})
	n := 0
	for n < len(q.pending) && q.pending[n].seq <= confirmed {
		p := q.pending[n]
		q.ready = append(q.ready, ReadState{ID: p.id, Index: p.index})
		n++
	}
	q.pending = q.pending[n:]
}

// dropAll fails every read in progress: leadership is gone, the caller must retry.
func (q *readIndex) dropAll() {
	for _, p := range q.pending {
		q.ready = append(q.ready, ReadState{ID: p.id, Lost: true})
	}
	for _, id := range q.waiting {
		q.ready = append(q.ready, ReadState{ID: id, Lost: true})
	}
	q.pending, q.waiting = nil, nil
	q.heartbeatDue = false
}
