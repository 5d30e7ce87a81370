package raftcore

import (
	"encoding/binary"
	"errors"
	"fmt"
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
	buf = appendString(buf, string(m.From))
	buf = appendString(buf, string(m.To))
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
		buf = appendString(buf, string(e.Data))
	}
	if s := m.Snapshot; s != nil {
		buf = binary.AppendUvarint(buf, s.Meta.Index)
		buf = binary.AppendUvarint(buf, s.Meta.Term)
		buf = appendString(buf, string(EncodeMembership(s.Meta.Members)))
		buf = binary.AppendUvarint(buf, s.Offset)
		buf = appendString(buf, string(s.Data))
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

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// maxWireEntries bounds the entries one message may claim, before anything is allocated.
const maxWireEntries = 1 << 20

// DecodeMessage parses EncodeMessage's output. Entry and chunk data alias b. It checks
// the encoding, not the meaning: Step checks that.
func DecodeMessage(b []byte) (Message, error) {
	d := decoder{b: b}
	var m Message
	m.Type = MsgType(d.byte())
	m.From = NodeID(d.string(256))
	m.To = NodeID(d.string(256))
	m.Term, m.LogTerm, m.Index = d.uvarint(), d.uvarint(), d.uvarint()
	m.Commit, m.RejectHint, m.Context = d.uvarint(), d.uvarint(), d.uvarint()
	flags := d.byte()
	m.Reject = flags&1 != 0
	n := d.uvarint()
	if d.err == nil && (n > maxWireEntries || n > uint64(len(d.b))/4) {
		d.err = fmt.Errorf("%d entries in %d bytes", n, len(d.b))
	}
	if n > 0 && d.err == nil {
		m.Entries = make([]Entry, n)
		for i := range m.Entries {
			e := &m.Entries[i]
			e.Index, e.Term = d.uvarint(), d.uvarint()
			e.Type = EntryType(d.byte())
			e.Data = d.bytes(64 << 20)
		}
	}
	if flags&2 != 0 {
		s := &SnapshotChunk{}
		s.Meta.Index, s.Meta.Term = d.uvarint(), d.uvarint()
		members := d.bytes(1 << 20)
		s.Offset = d.uvarint()
		s.Data = d.bytes(64 << 20)
		s.Done = d.byte() == 1
		s.Total = d.uvarint()
		s.Checksum = d.uint32()
		if d.err == nil {
			mem, err := DecodeMembership(members)
			if err != nil {
				d.err = err
			}
			s.Meta.Members = mem
		}
		m.Snapshot = s
	}
	if flags&^3 != 0 && d.err == nil {
		d.err = fmt.Errorf("unknown flags %#x", flags)
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes after the message", len(d.b))
	}
	if d.err != nil {
		return Message{}, fmt.Errorf("decode message: %w", d.err)
	}
	return m, nil
}

type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("cut short")

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		if d.err == nil {
			d.err = errShort
		}
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint32() uint32 {
	if d.err != nil || len(d.b) < 4 {
		if d.err == nil {
			d.err = errShort
		}
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) bytes(limit int) []byte {
	l := d.uvarint()
	if d.err != nil {
		return nil
	}
	if l > uint64(limit) || l > uint64(len(d.b)) {
		d.err = fmt.Errorf("field of %d bytes: %w or over the limit", l, errShort)
		return nil
	}
	if l == 0 {
		return nil
	}
	v := d.b[:l:l]
	d.b = d.b[l:]
	return v
}

func (d *decoder) string(limit int) string { return string(d.bytes(limit)) }
