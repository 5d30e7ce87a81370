package sshrpc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// Every stream opens with a hello from each side: a magic and the range of protocol
// versions it speaks. Both then use the highest version in both ranges, so an agent can
// be upgraded host by host.
const (
	helloMagic = "lite-raft-rpc"
	// ProtocolVersion is the version this build speaks.
	ProtocolVersion    = 1
	minProtocolVersion = 1
)

func helloPayload() []byte {
	b := []byte(helloMagic)
	b = binary.BigEndian.AppendUint16(b, minProtocolVersion)
	return binary.BigEndian.AppendUint16(b, ProtocolVersion)
}

// parseHello checks the peer's hello and returns the version both speak.
func parseHello(p []byte) (uint16, error) {
	if len(p) != len(helloMagic)+4 || !bytes.Equal(p[:len(helloMagic)], []byte(helloMagic)) {
		return 0, fmt.Errorf("not a lite-raft peer (bad hello %q)", truncate(p, 40))
	}
	lo := binary.BigEndian.Uint16(p[len(helloMagic):])
	hi := binary.BigEndian.Uint16(p[len(helloMagic)+2:])
	if lo > hi {
		return 0, fmt.Errorf("bad hello: versions %d..%d", lo, hi)
	}
	v := min(hi, ProtocolVersion)
	if v < max(lo, minProtocolVersion) {
		return 0, fmt.Errorf("no common protocol version: peer speaks %d..%d, we speak %d..%d",
			lo, hi, minProtocolVersion, ProtocolVersion)
	}
	return v, nil
}

// handshake sends our hello and reads the peer's. Both sides send first, so neither
// waits for the other.
func handshake(r *bufio.Reader, w io.Writer) (uint16, error) {
	if _, err := w.Write(AppendFrame(nil, Frame{Kind: kindHello, Payload: helloPayload()})); err != nil {
		return 0, fmt.Errorf("send hello: %w", err)
	}
	if bw, ok := w.(*bufio.Writer); ok {
		if err := bw.Flush(); err != nil {
			return 0, fmt.Errorf("send hello: %w", err)
		}
	}
	f, err := ReadFrame(r, 256)
	if err != nil {
		return 0, fmt.Errorf("read hello: %w", err)
	}
	if f.Kind == KindError {
		if bytes.HasPrefix(f.Payload, []byte(noServerPrefix)) {
			return 0, &NoAgentError{Msg: truncate(f.Payload, 200)}
		}
		return 0, fmt.Errorf("peer refused: %s", truncate(f.Payload, 200))
	}
	if f.Kind != kindHello {
		return 0, fmt.Errorf("expected hello, got a frame of kind %d", f.Kind)
	}
	return parseHello(f.Payload)
}

// noServerPrefix starts the bridge's refusal when no agent answers on its host (the
// original's message).
const noServerPrefix = "no server running on "

// NoAgentError is a stream refused because no agent runs on the host: the host and its
// sshd answered, so its agent is stopped or dead, not merely cut off.
type NoAgentError struct{ Msg string }

func (e *NoAgentError) Error() string { return "peer refused: " + e.Msg }

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
