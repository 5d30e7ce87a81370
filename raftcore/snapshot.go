package raftcore

import (
	"fmt"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Compact records that the application made s durable: a snapshot of its state as of
// s.Meta.Index (which it has applied), whose metadata it had from SnapshotMetaAt. The log
// before the returned index is dropped; the caller drops it from Storage too. Followers
// that need dropped entries are sent this snapshot, read back through Storage.
//
// The log keeps KeepEntries before the snapshot (with KeepPrevious, everything since the
// snapshot before), and on a leader everything after the snapshot an active follower is
// being sent: that follower needs those entries once it
// holds the snapshot, and a leader taking snapshots faster than one can be sent would
// otherwise send snapshot after snapshot.
func (r *Node) Compact(s Snapshot) (keepFrom uint64, err error) {
	index := s.Meta.Index
	if index <= r.log.snap.Meta.Index {
		return 0, fmt.Errorf("compact to %d: %w (snapshot at %d)", index, ErrCompacted, r.log.snap.Meta.Index)
	}
	if index > r.log.applied {
		return 0, fmt.Errorf("compact to %d: %w (applied only %d)", index, ErrUnavailable, r.log.applied)
	}
	want, err := r.SnapshotMetaAt(index)
	if err != nil {
		return 0, err
	}
	if s.Meta.Term != want.Term || string(EncodeMembership(s.Meta.Members)) != string(EncodeMembership(want.Members)) {
		return 0, fmt.Errorf("compact to %d: the snapshot says term %d, members %s; the log says term %d, members %s",
			index, s.Meta.Term, s.Meta.Members, want.Term, want.Members)
	}
	if index >= r.snapSoon {
		r.snapSoon = 0
	}
	// transfers that have barely begun, of an older snapshot, start over with this one:
	// the follower then replays the entries after it instead of all those after the old
	var switched []NodeID
	if r.role == Leader {
		for _, id := range r.members.All() {
			if pr := r.prs[id]; pr != nil && id != r.id && r.replaceable(id, pr, index) {
				pr.becomeSnapshot(s)
				switched = append(switched, id)
			}
		}
	}
	keepFrom = 1
	if index+1 > r.cfg.KeepEntries {
		keepFrom = index + 1 - r.cfg.KeepEntries
	}
	if r.cfg.KeepPrevious {
		keepFrom = min(keepFrom, r.log.snap.Meta.Index+1)
	}
	for id, pr := range r.prs {
		if id != r.id && pr.state == stateSnapshot && pr.recentActive {
			keepFrom = min(keepFrom, pr.snap.Meta.Index+1)
		}
	}
	r.log.compact(s, keepFrom)
	for _, id := range switched {
		r.sendSnapshotChunks(id, r.prs[id])
	}
	return r.log.first, nil
}

// SnapshotSoon tells the leader that the application is writing a snapshot at index (0:
// no longer, as when the write failed). Until Compact brings one at index or later, the
// transfers of an older snapshot that have not gone beyond their first window wait, and
// Compact starts them over with the new one. A follower that needs a snapshot then gets
// a fresh one: at 500 MB, writing one costs seconds, where replaying the entries since a
// leader's last snapshot (up to as much data as the snapshot itself) costs more.
func (r *Node) SnapshotSoon(index uint64) { r.snapSoon = index }

// SnapshotWanted reports whether the leader sends a follower its latest snapshot, the
// transfer has not gone beyond its first window (a newer snapshot would replace it:
// SnapshotSoon), and the follower answered lately: one that is down stays in that state
// until it is back, and must not make the leader write snapshot after snapshot.
func (r *Node) SnapshotWanted() bool {
	if r.role != Leader {
		return false
	}
	for id, pr := range r.prs {
		if id != r.id && pr.recentActive && sameSnapshot(pr.snap, r.log.snap) && r.replaceable(id, pr, r.log.snap.Meta.Index+1) {
			return true
		}
	}
	return false
}

// replaceable reports whether pr's follower receives a snapshot older than index and has
// confirmed at most a window of it: starting it over with a snapshot at index costs
// little.
func (r *Node) replaceable(id NodeID, pr *progress, index uint64) bool {
	return pr.state == stateSnapshot && pr.snap.Meta.Index < index &&
		pr.snapAcked <= uint64(r.snapshotWindow(id))*uint64(r.cfg.SnapshotChunkBytes)
}

// SnapshotMetaAt returns the metadata of a snapshot at index, which must be applied and
// not compacted: its term, and the membership in force there.
func (r *Node) SnapshotMetaAt(index uint64) (SnapshotMeta, error) {
	term, ok := r.log.term(index)
	if !ok || index < r.log.snap.Meta.Index {
		return SnapshotMeta{}, fmt.Errorf("snapshot at %d: %w", index, ErrCompacted)
	}
	return SnapshotMeta{Index: index, Term: term, Members: r.membersAt(index)}, nil
}

// membersAt returns the membership in force at index: the last membership entry at or
// before it, or the snapshot's.
func (r *Node) membersAt(index uint64) Membership {
	ms := r.log.memberships
	for k := len(ms) - 1; k >= 0; k-- {
		if ms[k].Index <= index {
			if m, err := DecodeMembership(ms[k].Data); err == nil {
				return m
			}
		}
	}
	return r.log.snap.Meta.Members.clone()
}

// sendSnapshotChunks sends pieces of the snapshot pr is receiving, read from Storage, up
// to a window of SnapshotWindow pieces beyond what the follower confirmed. The follower
// answers each; a piece that does not fit (lost, or the follower holds a different part)
// is answered with what it holds, and the leader goes back to there.
func (r *Node) sendSnapshotChunks(to NodeID, pr *progress) {
	if r.replaceable(to, pr, r.snapSoon) {
		return // a newer snapshot is being written: this one starts over with it
	}
	chunk := uint64(r.cfg.SnapshotChunkBytes)
	window := uint64(r.snapshotWindow(to)) * chunk
	for !pr.snapDoneOut && pr.snapNext < pr.snapAcked+window {
		s := pr.snap
		off := pr.snapNext
		end := min(off+chunk, s.Size)
		data := make([]byte, end-off)
		if err := r.log.storage.ReadSnapshot(s, off, data); err != nil {
			if !sameSnapshot(s, r.log.snap) {
				// gone (replaced long ago, or a restart in between): send the latest one
				pr.becomeSnapshot(r.log.snap)
				continue
			}
			r.storageErr = fmt.Errorf("read the snapshot at %d to send it to %s: %w", s.Meta.Index, to, err)
			return
		}
		r.send(Message{To: to, Type: MsgSnap, Context: pr.snapRound, Snapshot: &SnapshotChunk{
			Meta: s.Meta, Offset: off, Data: data, Done: end == s.Size, Total: s.Size, Checksum: s.Checksum,
		}})
		pr.snapNext = end
		pr.snapDoneOut = end == s.Size
	}
}

// SetSnapshotWindow sets how many bytes of a snapshot may be in flight to member id
// (0: back to Config.SnapshotWindow pieces). A window carries at most one window of bytes
// a round trip, so the driver sizes it from the link's: 4 pieces of 1 MiB move 40 MiB/s
// at 100 ms, whatever the link's bandwidth. It is taken in whole pieces, never fewer than
// Config.SnapshotWindow, nor more than a follower holds out of order (MaxSnapshotAhead).
func (r *Node) SetSnapshotWindow(id NodeID, bytes uint64) {
	chunk := uint64(r.cfg.SnapshotChunkBytes)
	pieces := min(max((bytes+chunk-1)/chunk, uint64(r.cfg.SnapshotWindow)), max(r.cfg.MaxSnapshotAhead/chunk, 1))
	if bytes == 0 || pieces == uint64(r.cfg.SnapshotWindow) {
		delete(r.snapWindows, id)
		return
	}
	setBounded(&r.snapWindows, id, int(pieces))
}

// setBounded sets m[id] = v in a per-member table the driver fills (SetSnapshotWindow,
// SetRoundTrip): bounded whatever the driver asks, cleared when full, as the driver sets
// its entries again.
func setBounded(m *map[NodeID]int, id NodeID, v int) {
	if *m == nil {
		*m = map[NodeID]int{}
	} else if _, ok := (*m)[id]; !ok && len(*m) >= maxMemberTable {
		clear(*m)
	}
	(*m)[id] = v
}

// maxMemberTable bounds setBounded's tables.
const maxMemberTable = 1024

func (r *Node) snapshotWindow(id NodeID) int {
	if w, ok := r.snapWindows[id]; ok {
		return w
	}
	return r.cfg.SnapshotWindow
}

// snapIdleBeats is how many heartbeat answers without progress make the leader send
// the pieces after what the follower confirmed again (the last ones may have been lost).
const snapIdleBeats = 3

func (r *Node) handleSnapshotResponse(m Message, pr *progress) {
	if pr.state != stateSnapshot || m.Index != pr.snap.Meta.Index || m.LogTerm != pr.snap.Meta.Term {
		return
	}
	held := m.Context
	if held > pr.snapAcked {
		pr.snapAcked = held
		pr.snapIdle = 0
	}
	switch {
	case m.Reject && m.RejectHint == pr.snapRound:
		// go on from what the follower holds (less than before if it lost its part)
		pr.snapAcked = held
		pr.goBack()
	case !m.Reject && pr.snapNext < held:
		pr.snapNext = held
	}
	r.sendSnapshotChunks(m.From, pr)
}

// handleSnapshotChunk has a follower receive a snapshot. Pieces are written in order;
// each goes to the caller to write (the answer waits for that). A piece after the next
// one is held (up to MaxSnapshotAhead bytes) until the pieces before it come, unanswered:
// a driver may send them over several streams, which do not keep their order, and a lost
// one is sent again once the leader hears no progress (snapIdleBeats). Any other piece
// at the wrong offset is answered with the offset held, so the leader resumes there, also
// after a restart of either side or a leader change, as long as it is the same snapshot:
// forward for a piece held already, back (a rejection) for one held ahead already or
// beyond the bound.
func (r *Node) handleSnapshotChunk(m Message) {
	c := m.Snapshot
	meta := c.Meta
	if meta.Index <= r.log.committed {
		// we have all of it already
		r.dropIncoming()
		r.send(Message{To: m.From, Type: MsgAppResp, Index: r.log.committed})
		return
	}
	if r.log.pendingSnap != nil && !sameSnapshot(*r.log.pendingSnap, c.snapshot()) {
		// a snapshot received whole waits to be written down: the pieces of another (a
		// newer one the leader took meanwhile) would reach the caller in the same Ready,
		// mixed with it. Unanswered, they are sent again (snapIdleBeats).
		return
	}
	reply := func(held uint64, reject bool) {
		r.send(Message{To: m.From, Type: MsgSnapResp, Index: meta.Index, LogTerm: meta.Term,
			Context: held, Reject: reject, RejectHint: m.Context})
	}
	in := r.incoming
	// Two leaders' snapshots at the same index hold the same state but not necessarily the
	// same bytes, so a transfer resumes only into a snapshot of the same size and checksum.
	if in == nil || !sameSnapshot(in.snapshot(), c.snapshot()) {
		if c.Offset != 0 {
			if !r.ahead.hold(c, 0, r.cfg.MaxSnapshotAhead) {
				reply(0, true)
			}
			return
		}
		in = &IncomingSnapshot{Meta: SnapshotMeta{Index: meta.Index, Term: meta.Term, Members: meta.Members.clone()},
			Size: c.Total, Checksum: c.Checksum}
		r.incoming = in
	}
	switch {
	case c.Offset < in.Have:
		// a piece held already (the leader went back, or a new leader starts from 0): the
		// leader may go on from what the follower holds
		reply(in.Have, false)
		return
	case c.Offset > in.Have:
		if !r.ahead.hold(c, in.Have, r.cfg.MaxSnapshotAhead) {
			// sent again, or too far ahead: the leader must go back to what is held
			reply(in.Have, true)
		}
		return
	}
	for {
		if !r.takeSnapshotChunk(m.From, in, c, reply) {
			return
		}
		if c = r.ahead.next(in); c == nil {
			reply(in.Have, false)
			return
		}
	}
}

// takeSnapshotChunk adds c, the piece at in.Have, to the snapshot being received. It
// returns false once the transfer ended (complete, or to start over); the answers then
// are sent.
func (r *Node) takeSnapshotChunk(from NodeID, in *IncomingSnapshot, c *SnapshotChunk, reply func(uint64, bool)) bool {
	if in.Have+uint64(len(c.Data)) > in.Size || (c.Done && in.Have+uint64(len(c.Data)) != in.Size) {
		r.dropIncoming()
		reply(0, true)
		return false
	}
	r.snapWrites = append(r.snapWrites, *c)
	in.Have += uint64(len(c.Data))
	in.Sum = crc32.Update(in.Sum, castagnoli, c.Data)
	if !c.Done {
		return true
	}
	r.dropIncoming()
	if in.Sum != in.Checksum {
		// damaged on the way, or pieces of two different encodings: start over
		reply(0, true)
		return false
	}
	r.installSnapshot(in.snapshot())
	r.send(Message{To: from, Type: MsgAppResp, Index: in.Meta.Index})
	return false
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
