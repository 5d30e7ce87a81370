// Package wire holds the few primitives of lite-raft's compact binary encodings (Raft
// messages, client requests and answers, state machine commands and snapshots): unsigned
// varints and length-prefixed byte strings, read by a Decoder that never panics on
// malformed input and remembers its first error.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrShort is the error of input that ends inside a field.
var ErrShort = errors.New("cut short")

// AppendBytes appends a uvarint length and b.
func AppendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

// AppendString appends a uvarint length and s.
func AppendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// Decoder reads fields from B in order. After the first error every read returns a zero
// value and Err keeps that first error.
type Decoder struct {
	B   []byte
	Err error
}

// Fail records err unless an error is already recorded.
func (d *Decoder) Fail(err error) {
	if d.Err == nil {
		d.Err = err
	}
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.Err != nil || len(d.B) == 0 {
		d.Fail(ErrShort)
		return 0
	}
	c := d.B[0]
	d.B = d.B[1:]
	return c
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.B)
	if n <= 0 {
		d.Fail(ErrShort)
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Uint32 reads a big-endian uint32.
func (d *Decoder) Uint32() uint32 {
	if d.Err != nil || len(d.B) < 4 {
		d.Fail(ErrShort)
		return 0
	}
	v := binary.BigEndian.Uint32(d.B)
	d.B = d.B[4:]
	return v
}

// Bytes reads a length-prefixed field of at most limit bytes. The result aliases the
// input; an empty field is nil.
func (d *Decoder) Bytes(limit int) []byte {
	l := d.Uvarint()
	if d.Err != nil {
		return nil
	}
	if l > uint64(limit) || l > uint64(len(d.B)) {
		d.Fail(fmt.Errorf("field of %d bytes: %w or over the limit of %d", l, ErrShort, limit))
		return nil
	}
	if l == 0 {
		return nil
	}
	v := d.B[:l:l]
	d.B = d.B[l:]
	return v
}

// String reads a length-prefixed field as a string.
func (d *Decoder) String(limit int) string { return string(d.Bytes(limit)) }

// End records an error if input is left over.
func (d *Decoder) End() {
	if d.Err == nil && len(d.B) != 0 {
		d.Err = fmt.Errorf("%d bytes after the end", len(d.B))
	}
}
