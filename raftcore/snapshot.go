package raftcore

import (
	"fmt"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Compact records that the application took a snapshot of its state as of index (which
// it has applied) and drops the log up to there. It returns the snapshot's metadata,
// which the caller stores with data. Followers that need the dropped entries will be sent
// this snapshot.
func (r *Node) Compact(index uint64, data []byte) (SnapshotMeta, error) {
	if index <= r.log.snap.Meta.Index {
		return SnapshotMeta{}, fmt.Errorf("compact to %d: %w (snapshot at %d)", index, ErrCompacted, r.log.snap.Meta.Index)
	}
	if index > r.log.applied {
		return SnapshotMeta{}, fmt.Errorf("compact to %d: %w (applied only %d)", index, ErrUnavailable, r.log.applied)
	}
	term, _ := r.log.term(index)
	meta := SnapshotMeta{Index: index, Term: term, Members: r.membersAt(index)}
	r.log.compact(Snapshot{Meta: meta, Data: data})
	return meta, nil
}

// membersAt returns the membership in force at index: the last membership entry at or
// before it, or the snapshot's.
func (r *Node) membersAt(index uint64) Membership {
	for i := min(index, r.log.lastIndex()); i > r.log.snap.Meta.Index; i-- {
		if e := r.log.entry(i); e.Type == EntryMembership {
			m, err := DecodeMembership(e.Data)
			if err == nil {
				return m
			}
		}
	}
	return r.log.snap.Meta.Members.clone()
}

// sendSnapshotChunk sends the next piece of the leader's snapshot, starting where the
// follower said it holds up to. One chunk is out at a time; the follower's answer (or a
// heartbeat answer, if the chunk was lost) lets the next one go.
func (r *Node) sendSnapshotChunk(to NodeID, pr *progress) {
	s := &r.log.snap
	if pr.snapIndex != s.Meta.Index || pr.snapTerm != s.Meta.Term {
		// we compacted again since: start over with the newer snapshot
		pr.becomeSnapshot(s.Meta.Index, s.Meta.Term)
	}
	if pr.snapOut {
		return
	}
	if r.snapSumIndex != s.Meta.Index || r.snapSumTerm != s.Meta.Term {
		r.snapSum = crc32.Checksum(s.Data, castagnoli)
		r.snapSumIndex, r.snapSumTerm = s.Meta.Index, s.Meta.Term
	}
	total := uint64(len(s.Data))
	off := min(pr.snapAcked, total)
	end := min(off+uint64(r.cfg.SnapshotChunkBytes), total)
	r.send(Message{To: to, Type: MsgSnap, Snapshot: &SnapshotChunk{
		Meta: s.Meta, Offset: off, Data: s.Data[off:end:end], Done: end == total,
		Total: total, Checksum: r.snapSum,
	}})
	pr.snapOut = true
}

func (r *Node) handleSnapshotResponse(m Message, pr *progress) {
	if pr.state != stateSnapshot || m.Index != pr.snapIndex || m.LogTerm != pr.snapTerm {
		return
	}
	pr.snapAcked = m.Context
	pr.snapOut = false
	r.sendSnapshotChunk(m.From, pr)
}

// handleSnapshotChunk collects a snapshot on a follower. Chunks must arrive in order; a
// chunk at the wrong offset is answered with the offset we hold, so the leader resumes
// there, also after a leader change if the new leader sends the same snapshot.
func (r *Node) handleSnapshotChunk(m Message) {
	c := m.Snapshot
	meta := c.Meta
	if meta.Index <= r.log.committed {
		// we have all of it already
		r.incoming = nil
		r.send(Message{To: m.From, Type: MsgAppResp, Index: r.log.committed})
		return
	}
	reply := func(held uint64) {
		r.send(Message{To: m.From, Type: MsgSnapResp, Index: meta.Index, LogTerm: meta.Term, Context: held})
	}
	in := r.incoming
	// Two leaders' snapshots at the same index hold the same state but not necessarily the
	// same bytes, so a transfer resumes only into a snapshot of the same length and checksum.
	if in == nil || in.Meta.Index != meta.Index || in.Meta.Term != meta.Term ||
		r.incomingSum != c.Checksum || r.incomingTotal != c.Total {
		if c.Offset != 0 {
			reply(0)
			return
		}
		in = &Snapshot{Meta: SnapshotMeta{Index: meta.Index, Term: meta.Term, Members: meta.Members.clone()}}
		r.incoming, r.incomingSum, r.incomingTotal = in, c.Checksum, c.Total
	}
	if c.Offset != uint64(len(in.Data)) {
		// a duplicate or a gap: tell the leader where to go on from
		reply(uint64(len(in.Data)))
		return
	}
	in.Data = append(in.Data, c.Data...)
	if uint64(len(in.Data)) > c.Total {
		r.incoming = nil
		reply(0)
		return
	}
	if !c.Done {
		reply(uint64(len(in.Data)))
		return
	}
	r.incoming = nil
	if uint64(len(in.Data)) != c.Total || crc32.Checksum(in.Data, castagnoli) != c.Checksum {
		// damaged on the way, or pieces of two different encodings: start over
		reply(0)
		return
	}
	r.installSnapshot(*in)
	r.send(Message{To: m.From, Type: MsgAppResp, Index: meta.Index})
}

// installSnapshot makes a complete snapshot the follower's state. If the log already holds
// the snapshot's last entry, the entries after it are kept and only the commit index moves
// (§7); otherwise the log is replaced.
func (r *Node) installSnapshot(s Snapshot) {
	if r.log.matchTerm(s.Meta.Index, s.Meta.Term) {
		r.log.commitTo(s.Meta.Index)
		return
	}
	r.log.restore(s)
	r.refreshMembers()
}
