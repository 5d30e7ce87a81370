package sshrpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// A restricted stream is one opened for a key that authorized_keys limits to some verbs
// (ssh-command --allow): the bridge, or a client run through ssh-command, opens the
// agent's socket with a preamble naming them, and the agent holds every frame of that
// stream to it. The restriction lives in the agent, not in the bridge, because the
// frames carry any operation: a bridge that only copied them would restrict nothing.
//
// The preamble: restrictByte, the length of the list (two bytes, big-endian) and the
// list as given (words separated by commas, which the agent parses); the agent answers
// handoffAck. An agent from before restrictions reads restrictByte as the start of a
// frame and never acknowledges: the stream is then refused, never served unrestricted.
const (
	restrictByte = 'R'
	maxAllow     = 4096
)

// ErrNoRestriction: the agent did not acknowledge a restriction (an older lite-raft), so
// nothing was sent on the stream.
var ErrNoRestriction = errors.New("the agent on this host does not enforce ssh-command --allow (an older lite-raft): upgrade it; nothing was sent")

// sendRestriction opens a restricted stream on c.
func sendRestriction(c net.Conn, allow string) error {
	if len(allow) == 0 || len(allow) > maxAllow {
		return fmt.Errorf("restriction of %d bytes: want 1 to %d", len(allow), maxAllow)
	}
	b := append([]byte{restrictByte, 0, 0}, allow...)
	binary.BigEndian.PutUint16(b[1:3], uint16(len(allow)))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(b); err != nil {
		return fmt.Errorf("restrict the stream: %w", err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return fmt.Errorf("restrict the stream: %w", err) // gone, refused or stopping: not its age
	}
	if ack[0] != handoffAck {
		return ErrNoRestriction // its hello, first: an older agent
	}
	return nil
}

// readRestriction reads the rest of a preamble whose first byte was read, and
// acknowledges it.
func readRestriction(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return "", fmt.Errorf("read a restriction: %w", err)
	}
	size := int(binary.BigEndian.Uint16(n[:]))
	if size == 0 || size > maxAllow {
		return "", fmt.Errorf("a restriction of %d bytes: want 1 to %d", size, maxAllow)
	}
	allow := make([]byte, size)
	if _, err := io.ReadFull(c, allow); err != nil {
		return "", fmt.Errorf("read a restriction: %w", err)
	}
	if _, err := c.Write([]byte{handoffAck}); err != nil {
		return "", fmt.Errorf("acknowledge a restriction: %w", err)
	}
	return string(allow), nil
}
