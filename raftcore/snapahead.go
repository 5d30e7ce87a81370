package raftcore

// snapAhead holds the pieces of one snapshot that arrived before a piece sent ahead of
// them, by offset, until the follower has the bytes before each. It holds pieces of one
// snapshot at a time (a piece of another drops them) and at most a bound of bytes, so a
// leader that sends pieces out of order costs the follower a window, not a snapshot.
type snapAhead struct {
	of     Snapshot // the snapshot they belong to
	pieces map[uint64]SnapshotChunk
	bytes  uint64
}

// snapshot is the snapshot in is receiving.
func (in *IncomingSnapshot) snapshot() Snapshot {
	return Snapshot{Meta: in.Meta, Size: in.Size, Checksum: in.Checksum}
}

// snapshot is the snapshot c is a piece of.
func (c *SnapshotChunk) snapshot() Snapshot {
	return Snapshot{Meta: c.Meta, Size: c.Total, Checksum: c.Checksum}
}

// hold keeps c, a piece beyond have, if it fits within limit bytes, and reports whether
// it is new there. A piece held already is not: it was sent again, so the leader went
// back to pieces it thinks the follower lacks (its view may be stale: a partial snapshot
// lost, another leader's in between), and must be told what the follower has; as must
// the sender of a piece that does not fit.
func (a *snapAhead) hold(c *SnapshotChunk, have, limit uint64) bool {
	if c.Offset <= have || len(c.Data) == 0 {
		return false
	}
	if a.pieces != nil && !sameSnapshot(a.of, c.snapshot()) {
		a.reset()
	}
	if _, dup := a.pieces[c.Offset]; dup || a.bytes+uint64(len(c.Data)) > limit {
		return false
	}
	if a.pieces == nil {
		a.pieces = map[uint64]SnapshotChunk{}
		a.of = c.snapshot()
	}
	a.pieces[c.Offset] = *c
	a.bytes += uint64(len(c.Data))
	return true
}

// next takes the held piece that starts where in ends, if any. Pieces that in has passed
// (sent again and taken in order meanwhile) are dropped on the way.
func (a *snapAhead) next(in *IncomingSnapshot) *SnapshotChunk {
	if a.pieces == nil {
		return nil
	}
	if !sameSnapshot(in.snapshot(), a.of) {
		a.reset()
		return nil
	}
	for off, c := range a.pieces {
		if off < in.Have {
			delete(a.pieces, off)
			a.bytes -= uint64(len(c.Data))
		}
	}
	c, ok := a.pieces[in.Have]
	if !ok {
		return nil
	}
	delete(a.pieces, in.Have)
	a.bytes -= uint64(len(c.Data))
	return &c
}

func (a *snapAhead) reset() { *a = snapAhead{} }

// dropIncoming forgets the snapshot being received and the pieces held for it.
func (r *Node) dropIncoming() {
	r.incoming = nil
	r.ahead.reset()
}
