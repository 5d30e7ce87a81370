package sshrpc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// The bridge hands its standard input and output (the SSH session's pipes from sshd) to
// the agent over the unix socket, and the agent reads and writes them itself. Without
// this, every frame in each direction crossed one more process (sshd, bridge, agent
// instead of sshd, agent): on a small machine that wake-up was a good part of a round
// trip (see the commit that added this for figures).
//
// The exchange: the bridge sends one byte, handoffByte, carrying the two descriptors
// (SCM_RIGHTS); the agent answers handoffAck and owns them from then on. The bridge then
// closes its copies and waits for the agent to close the socket, which it does when the
// stream ends: the bridge must stay alive meanwhile, since sshd stops feeding the
// session's input once its command has exited. A frame never starts with handoffByte
// (that would be a length of over a gigabyte), so the agent tells the two kinds of
// connection apart by the first byte.
const (
	handoffByte = 'H'
	handoffAck  = 'A'
)

// offerHandoff tries to give in and out to the agent behind uc. It reports whether the
// agent took them; false with a nil error means the agent does not take handoffs (an
// older version), and the caller should copy as before on a new connection.
func offerHandoff(uc *net.UnixConn, in, out *os.File) (bool, error) {
	rights := syscall.UnixRights(int(in.Fd()), int(out.Fd()))
	if _, _, err := uc.WriteMsgUnix([]byte{handoffByte}, rights, nil); err != nil {
		return false, fmt.Errorf("hand the session to the agent: %w", err)
	}
	uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ack [1]byte
	if _, err := io.ReadFull(uc, ack[:]); err != nil || ack[0] != handoffAck {
		return false, nil
	}
	uc.SetReadDeadline(time.Time{})
	return true, nil
}

// fdStream is a stream handed over by a bridge: the session's input and output, and the
// bridge's socket, closed last to let the bridge exit.
type fdStream struct {
	in, out *os.File
	bridge  *net.UnixConn
}

func (s *fdStream) Read(p []byte) (int, error)  { return s.in.Read(p) }
func (s *fdStream) Write(p []byte) (int, error) { return s.out.Write(p) }

func (s *fdStream) Close() error {
	err := errors.Join(s.out.Close(), s.in.Close())
	s.bridge.Close()
	return err
}

// prefixConn is a connection whose first byte was already read.
type prefixConn struct {
	*net.UnixConn
	first []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.first) > 0 && len(p) > 0 {
		n := copy(p, c.first)
		c.first = c.first[n:]
		return n, nil
	}
	return c.UnixConn.Read(p)
}

// acceptStream reads the first byte of a new connection: a bridge's handoff becomes an
// fdStream, a restriction's preamble (restrict.go) the connection with what it allows,
// anything else the connection itself.
func acceptStream(uc *net.UnixConn) (stream io.ReadWriteCloser, kind, allow string, err error) {
	uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	oob := make([]byte, syscall.CmsgSpace(2*4))
	n, oobn, _, _, err := uc.ReadMsgUnix(b[:], oob)
	if err != nil {
		return nil, "", "", fmt.Errorf("read the first byte: %w", err)
	}
	uc.SetReadDeadline(time.Time{})
	fds := receivedFDs(oob[:oobn])
	if n == 1 && b[0] == handoffByte && len(fds) == 2 {
		in, out, err := handoffFiles(fds[0], fds[1])
		if err != nil {
			return nil, "", "", err
		}
		if _, err := uc.Write([]byte{handoffAck}); err != nil {
			in.Close()
			out.Close()
			return nil, "", "", fmt.Errorf("acknowledge a handoff: %w", err)
		}
		return &fdStream{in: in, out: out, bridge: uc}, "ssh session", "", nil
	}
	for _, fd := range fds {
		syscall.Close(fd) // descriptors nobody asked for
	}
	if n == 0 {
		return nil, "", "", io.ErrUnexpectedEOF
	}
	if b[0] == restrictByte { // a frame never starts with it either (a length over 1 GB)
		allow, err := readRestriction(uc)
		if err != nil {
			return nil, "", "", err
		}
		return uc, "restricted stream", allow, nil
	}
	return &prefixConn{UnixConn: uc, first: []byte{b[0]}}, "local socket", "", nil
}

func receivedFDs(oob []byte) []int {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if got, err := syscall.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	return fds
}

// handoffFiles makes pollable files of the two descriptors, so that a blocked read does
// not hold an OS thread and Close interrupts it.
func handoffFiles(in, out int) (*os.File, *os.File, error) {
	for _, fd := range []int{in, out} {
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(in)
			syscall.Close(out)
			return nil, nil, fmt.Errorf("take a handed-over session: %w", err)
		}
	}
	return os.NewFile(uintptr(in), "session input"), os.NewFile(uintptr(out), "session output"), nil
}
