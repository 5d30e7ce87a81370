package sshrpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame is the unit of the wire protocol. Kind says how it relates to other frames; Type
// says what the payload is (the agent and the client define their types); ID matches a
// response to its request.
type Frame struct {
	Kind    Kind
	Type    uint8
	ID      uint64
	Payload []byte
}

// Kind of frame.
type Kind uint8

const (
	KindOneWay   Kind = 1 // no answer expected (Raft messages)
	KindRequest  Kind = 2 // answered by a KindResponse or KindError with the same ID
	KindResponse Kind = 3
	KindError    Kind = 4 // Payload is a UTF-8 message
	kindHello    Kind = 5 // the handshake; never seen by users of Conn
	kindEnd      Kind = 6
)

// On the wire a frame is a 14-byte header and the payload:
//
//	0  length of what follows the length field: 10 + len(payload) (uint32, big-endian)
//	4  kind
//	5  type
//	6  id (uint64, big-endian)
//	14 payload
const (
	headerSize = 14
	// DefaultMaxFrame bounds a frame's payload: a Raft append carries at most 1 MiB of
	// entries (plus one entry of up to 1 MiB), a snapshot chunk 1 MiB.
	DefaultMaxFrame = 8 << 20
)

// ErrFrameTooLarge is returned for a frame over the limit; the stream is then unusable.
var ErrFrameTooLarge = errors.New("frame too large")

// AppendFrame encodes f onto buf.
func AppendFrame(buf []byte, f Frame) []byte {
	var h [headerSize]byte
	putHeader(h[:], f.Kind, f.Type, f.ID, len(f.Payload))
	return append(append(buf, h[:]...), f.Payload...)
}

func putHeader(h []byte, kind Kind, typ uint8, id uint64, size int) {
	binary.BigEndian.PutUint32(h[0:], uint32(headerSize-4+size))
	h[4] = byte(kind)
	h[5] = typ
	binary.BigEndian.PutUint64(h[6:], id)
}

// ReadFrame reads one frame. A frame whose payload is over max, or whose kind is unknown,
// is an error: the caller must close the stream, since its framing can no longer be
// trusted.
func ReadFrame(r *bufio.Reader, max int) (Frame, error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(h[0:])
	if n < headerSize-4 {
		return Frame{}, fmt.Errorf("frame length %d shorter than its header", n)
	}
	size := int64(n) - (headerSize - 4)
	if size > int64(max) {
		return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, size, max)
	}
	f := Frame{Kind: Kind(h[4]), Type: h[5], ID: binary.BigEndian.Uint64(h[6:])}
	if f.Kind == 0 || f.Kind >= kindEnd {
		return Frame{}, fmt.Errorf("unknown frame kind %d", f.Kind)
	}
	if size > 0 {
		f.Payload = make([]byte, size)
		if _, err := io.ReadFull(r, f.Payload); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
	}
	return f, nil
}
