package raftcore

import (
	"encoding/binary"
	"fmt"

	"lite-raft/internal/wire"
)

// EncodeMessage renders m for the wire: a type byte, then uvarint-coded fields, entries
// and an optional snapshot chunk. Entry data and chunk data are copied as they are.
// It is lean on purpose: every replicated write crosses it at least twice.
func EncodeMessage(buf []byte, m Message) []byte {
	size := 64 + len(m.From) + len(m.To)
	for i := range m.Entries {
		size += 24 + len(m.Entries[i].Data)
	}
	if m.Snapshot != nil {
		size += 64 + len(m.Snapshot.Data)
	}
	if cap(buf)-len(buf) < size {
		nb := make([]byte, len(buf), len(buf)+size)
		copy(nb, buf)
		buf = nb
	}
	buf = append(buf, byte(m.Type))
	buf = wire.AppendString(buf, string(m.From))
	buf = wire.AppendString(buf, string(m.To))
	for _, v := range [...]uint64{m.Term, m.LogTerm, m.Index, m.Commit, m.RejectHint, m.Context} {
		buf = binary.AppendUvarint(buf, v)
	}
	var flags byte
	if m.Reject {
		flags |= 1
	}
	if m.Snapshot != nil {
		flags |= 2
	}
	buf = append(buf, flags)
	buf = binary.AppendUvarint(buf, uint64(len(m.Entries)))
	for i := range m.Entries {
		e := &m.Entries[i]
		buf = binary.AppendUvarint(buf, e.Index)
		buf = binary.AppendUvarint(buf, e.Term)
		buf = append(buf, byte(e.Type))
		buf = wire.AppendString(buf, string(e.Data))
	}
	if s := m.Snapshot; s != nil {
		buf = binary.AppendUvarint(buf, s.Meta.Index)
		buf = binary.AppendUvarint(buf, s.Meta.Term)
		buf = wire.AppendString(buf, string(EncodeMembership(s.Meta.Members)))
		buf = binary.AppendUvarint(buf, s.Offset)
		buf = wire.AppendString(buf, string(s.Data))
		if s.Done {
			buf = append(buf, 1)
		} else {
			buf = append(buf, 0)
		}
		buf = binary.AppendUvarint(buf, s.Total)
		buf = binary.BigEndian.AppendUint32(buf, s.Checksum)
	}
	return buf
}

// maxWireEntries bounds the entries one message may claim, before anything is allocated.
const maxWireEntries = 1 << 20

// DecodeMessage parses EncodeMessage's output. Entry and chunk data alias b. It checks
// the encoding, not the meaning: Step checks that.
func DecodeMessage(b []byte) (Message, error) {
	d := wire.Decoder{B: b}
	var m Message
	m.Type = MsgType(d.Byte())
	m.From = NodeID(d.String(256))
	m.To = NodeID(d.String(256))
	m.Term, m.LogTerm, m.Index = d.Uvarint(), d.Uvarint(), d.Uvarint()
	m.Commit, m.RejectHint, m.Context = d.Uvarint(), d.Uvarint(), d.Uvarint()
	flags := d.Byte()
	m.Reject = flags&1 != 0
	n := d.Uvarint()
	if d.Err == nil && (n > maxWireEntries || n > uint64(len(d.B))/4) {
		d.Err = fmt.Errorf("%d entries in %d bytes", n, len(d.B))
	}
	if n > 0 && d.Err == nil {
		m.Entries = make([]Entry, n)
		for i := range m.Entries {
			e := &m.Entries[i]
			e.Index, e.Term = d.Uvarint(), d.Uvarint()
			e.Type = EntryType(d.Byte())
			e.Data = d.Bytes(64 << 20)
		}
	}
	if flags&2 != 0 {
		s := &SnapshotChunk{}
		s.Meta.Index, s.Meta.Term = d.Uvarint(), d.Uvarint()
		members := d.Bytes(1 << 20)
		s.Offset = d.Uvarint()
		s.Data = d.Bytes(64 << 20)
		s.Done = d.Byte() == 1
		s.Total = d.Uvarint()
		s.Checksum = d.Uint32()
		if d.Err == nil {
			mem, err := DecodeMembership(members)
			if err != nil {
				d.Err = err
			}
			s.Meta.Members = mem
		}
		m.Snapshot = s
	}
	if flags&^3 != 0 && d.Err == nil {
		d.Err = fmt.Errorf("unknown flags %#x", flags)
	}
	if d.Err == nil && len(d.B) > 0 {
		d.Err = fmt.Errorf("%d bytes after the message", len(d.B))
	}
	if d.Err != nil {
		return Message{}, fmt.Errorf("decode message: %w", d.Err)
	}
	return m, nil
}
