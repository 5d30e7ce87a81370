package raftcore

import (
	"fmt"
	"hash/crc32"
	"slices"
)

// Storage is what a node reads back of what its Readies made durable: old entries (the
// log keeps only its newest ones in memory) and the data of its snapshots (which it never
// holds at all). It is read on the node's own goroutine, between the caller's other
// calls, and is written only by the caller, as Readies ask. statefile.Store is the real
// one; MemoryStorage serves tests.
type Storage interface {
	// Entries returns the durable entries [lo, hi), as much as fits in maxBytes of data
	// (at least one entry; no limit when 0). An error matching ErrCompacted means lo is no
	// longer held.
	Entries(lo, hi, maxBytes uint64) ([]Entry, error)
	// ReadSnapshot fills p with the data of the snapshot s from offset off. A snapshot
	// being sent must stay readable while newer ones are taken; when it cannot be read any
	// more, the node sends the latest one instead.
	ReadSnapshot(s Snapshot, off uint64, p []byte) error
}

// MemoryStorage is a Storage in memory, with the writes a driver makes: a node's "disk"
// in tests and simulations. It keeps its latest snapshots' data (the newest few), the
// entries, and a partial incoming snapshot.
type MemoryStorage struct {
	snap     Snapshot
	snaps    []memSnap // newest last; snaps[len-1] is snap
	first    uint64    // index of ents[0]
	ents     []Entry
	incoming *IncomingSnapshot
	inData   []byte
}

type memSnap struct {
	s    Snapshot
	data []byte
}

// memKeptSnapshots is how many snapshots a MemoryStorage keeps readable.
const memKeptSnapshots = 3

// NewMemoryStorage starts a storage holding snapshot s with data (at first boot, the
// bootstrap snapshot with no data) and no entries.
func NewMemoryStorage(s Snapshot, data []byte) *MemoryStorage {
	m := &MemoryStorage{}
	m.setSnapshot(s, data)
	m.first = s.Meta.Index + 1
	return m
}

// SnapshotOf describes data as the snapshot at meta.
func SnapshotOf(meta SnapshotMeta, data []byte) Snapshot {
	return Snapshot{Meta: meta, Size: uint64(len(data)), Checksum: crc32.Checksum(data, castagnoli)}
}

func (m *MemoryStorage) setSnapshot(s Snapshot, data []byte) {
	m.snap = s
	m.snaps = append(m.snaps, memSnap{s, slices.Clone(data)})
	if len(m.snaps) > memKeptSnapshots {
		m.snaps = slices.Delete(m.snaps, 0, len(m.snaps)-memKeptSnapshots)
	}
}

func (m *MemoryStorage) last() uint64 { return m.first + uint64(len(m.ents)) - 1 }

// Entries implements Storage.
func (m *MemoryStorage) Entries(lo, hi, maxBytes uint64) ([]Entry, error) {
	if lo < m.first {
		return nil, fmt.Errorf("entries from %d: %w (storage holds from %d)", lo, ErrCompacted, m.first)
	}
	if hi > m.last()+1 || lo >= hi {
		return nil, fmt.Errorf("entries [%d, %d): %w (storage holds up to %d)", lo, hi, ErrUnavailable, m.last())
	}
	ents := m.ents[lo-m.first : hi-m.first]
	if maxBytes > 0 {
		var size uint64
		for i := range ents {
			size += uint64(len(ents[i].Data)) + 32
			if size > maxBytes && i > 0 {
				ents = ents[:i]
				break
			}
		}
	}
	return slices.Clone(ents), nil
}

// ReadSnapshot implements Storage.
func (m *MemoryStorage) ReadSnapshot(s Snapshot, off uint64, p []byte) error {
	for _, ms := range m.snaps {
		if sameSnapshot(ms.s, s) {
			if off+uint64(len(p)) > uint64(len(ms.data)) {
				return fmt.Errorf("snapshot at %d: %d bytes at %d, beyond its %d", s.Meta.Index, len(p), off, len(ms.data))
			}
			copy(p, ms.data[off:])
			return nil
		}
	}
	return fmt.Errorf("snapshot at %d (term %d): not held any more", s.Meta.Index, s.Meta.Term)
}

// sameSnapshot reports whether a and b are the same snapshot data: two leaders' snapshots
// at one index hold the same state, not necessarily the same bytes.
func sameSnapshot(a, b Snapshot) bool {
	return a.Meta.Index == b.Meta.Index && a.Meta.Term == b.Meta.Term && a.Size == b.Size && a.Checksum == b.Checksum
}

// Append stores ents, replacing any stored entries from ents[0].Index on.
func (m *MemoryStorage) Append(ents []Entry) error {
	if len(ents) == 0 {
		return nil
	}
	at := ents[0].Index
	if at < m.first || at > m.last()+1 {
		return fmt.Errorf("append at %d: storage holds [%d, %d]", at, m.first, m.last())
	}
	if at == m.last()+1 {
		// at the end: plain amortised append (Entries hands out copies, so nothing
		// outside holds this array); copying the whole log each time made every
		// append O(log length)
		m.ents = append(m.ents, ents...)
		return nil
	}
	m.ents = append(m.ents[:at-m.first:at-m.first], ents...)
	return nil
}

// WriteChunk adds a piece of an incoming snapshot (see Ready.SnapshotChunks).
func (m *MemoryStorage) WriteChunk(c SnapshotChunk) error {
	if c.Offset == 0 {
		m.incoming = &IncomingSnapshot{Meta: c.Meta, Size: c.Total, Checksum: c.Checksum}
		m.inData = nil
	}
	in := m.incoming
	if in == nil || in.Have != c.Offset || in.Meta.Index != c.Meta.Index || in.Meta.Term != c.Meta.Term {
		return fmt.Errorf("snapshot piece at %d: does not follow what is held", c.Offset)
	}
	m.inData = append(m.inData, c.Data...)
	in.Have += uint64(len(c.Data))
	in.Sum = crc32.Update(in.Sum, castagnoli, c.Data)
	return nil
}

// Install makes the complete incoming snapshot s the stored one and drops the log.
func (m *MemoryStorage) Install(s Snapshot) error {
	in := m.incoming
	if in == nil || in.Meta.Index != s.Meta.Index || in.Meta.Term != s.Meta.Term ||
		in.Have != s.Size || in.Sum != s.Checksum {
		return fmt.Errorf("install snapshot at %d: the partial snapshot is not it", s.Meta.Index)
	}
	m.setSnapshot(s, m.inData)
	m.incoming, m.inData = nil, nil
	m.first, m.ents = s.Meta.Index+1, nil
	return nil
}

// TakeSnapshot stores a snapshot the node took of its own state.
func (m *MemoryStorage) TakeSnapshot(s Snapshot, data []byte) { m.setSnapshot(s, data) }

// CompactLog drops the entries before keepFrom (what Node.Compact returned).
func (m *MemoryStorage) CompactLog(keepFrom uint64) {
	if keepFrom > m.first {
		n := min(keepFrom-m.first, uint64(len(m.ents)))
		m.ents = slices.Clone(m.ents[n:])
		m.first += n
	}
}

// Snapshot returns the stored snapshot and its data.
func (m *MemoryStorage) Snapshot() (Snapshot, []byte) {
	return m.snap, m.snaps[len(m.snaps)-1].data
}

// State is what a node restarts from with this storage and hs (the commit hint is
// left out: the node learns it again).
func (m *MemoryStorage) State(hs HardState) State {
	st := State{HardState: hs, Snapshot: m.snap, First: m.first, Applied: m.snap.Meta.Index}
	for _, e := range m.ents {
		st.Terms = append(st.Terms, e.Term)
		if e.Type == EntryMembership && e.Index > m.snap.Meta.Index {
			st.Memberships = append(st.Memberships, e)
		}
	}
	if m.incoming != nil {
		in := *m.incoming
		st.Incoming = &in
	}
	return st
}

// Save does a Ready's storage part, in the order Ready prescribes (the hard state is
// the caller's).
func (m *MemoryStorage) Save(rd Ready) error {
	for _, c := range rd.SnapshotChunks {
		if err := m.WriteChunk(c); err != nil {
			return err
		}
	}
	if rd.Snapshot != nil {
		if err := m.Install(*rd.Snapshot); err != nil {
			return err
		}
	}
	return m.Append(rd.Entries)
}
