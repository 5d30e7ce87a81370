package sshrpc

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
)

// TestRestrictedStream: a stream dialled with Allow reaches the server's handler with
// that restriction on its Conn, directly and through a bridge (which then hands nothing
// over); a plain stream has none; a server that does not acknowledge the preamble (an
// older agent) is refused before anything is sent.
func TestRestrictedStream(t *testing.T) {
	seen := make(chan string, 4)
	_, path, _ := startServer(t, func(c *Conn, f Frame) {
		seen <- c.Allow
		c.Reply(f.ID, f.Type, f.Payload)
	}, 0)
	call := func(c *Conn) string {
		t.Helper()
		if _, err := c.Call(context.Background(), 3, []byte("x")); err != nil {
			t.Fatal(err)
		}
		return <-seen
	}
	c, err := DialUnix(path, ConnOptions{Allow: "get,status"})
	if err != nil {
		t.Fatal(err)
	}
	if got := call(c); got != "get,status" {
		t.Errorf("a restricted stream arrived with %q", got)
	}
	c.Close()
	if c, err = DialUnix(path, ConnOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := call(c); got != "" {
		t.Errorf("a plain stream arrived restricted: %q", got)
	}
	c.Close()

	inR, inW := osPipe(t)
	outR, outW := osPipe(t)
	go func() { Bridge(path, "host1", "read", inR, outW); outW.Close() }()
	bc, err := NewConn(struct {
		io.Reader
		io.WriteCloser
	}{outR, inW}, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := call(bc); got != "read" {
		t.Errorf("a restricted bridge's stream arrived with %q", got)
	}
	bc.Close()

	// an older agent: says its hello first, as every agent does, never an acknowledgement
	old := filepath.Join(t.TempDir(), "old.sock")
	l, err := net.Listen("unix", old)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			nc.Write(AppendFrame(nil, Frame{Kind: kindHello, Payload: helloPayload()}))
			io.CopyN(io.Discard, nc, 1)
			nc.Close()
		}
	}()
	if _, err := DialUnix(old, ConnOptions{Allow: "read"}); !errors.Is(err, ErrNoRestriction) {
		t.Fatalf("an agent that does not restrict: %v", err)
	}
	// a stream that fails is not taken for an older agent (an upgrade would not help)
	gone := filepath.Join(t.TempDir(), "gone.sock")
	lg, err := net.Listen("unix", gone)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	go func() {
		if nc, err := lg.Accept(); err == nil {
			nc.Close()
		}
	}()
	if _, err := DialUnix(gone, ConnOptions{Allow: "read"}); err == nil || errors.Is(err, ErrNoRestriction) {
		t.Fatalf("a stream closed at once: %v, want an error that is not ErrNoRestriction", err)
	}
}
