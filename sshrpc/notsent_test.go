package sshrpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"lite-raft/api"
)

// TestNotSentBeforeHandover: what fails before the frame is queued is api.ErrNotSent, and the
// error it wraps stays matchable.
func TestNotSentBeforeHandover(t *testing.T) {
	_, path, _ := startServer(t, (&echoHandler{}).handle, 1000)
	c, err := DialUnix(path, ConnOptions{MaxFrame: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// over the limit: refused here, the stream stays up
	if _, err := c.Call(context.Background(), 1, make([]byte, 1001)); !errors.Is(err, api.ErrNotSent) || !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("call over the frame limit: %v; want api.ErrNotSent and ErrFrameTooLarge", err)
	}
	if err := c.Send(1, make([]byte, 1001)); !errors.Is(err, api.ErrNotSent) || !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("send over the frame limit: %v; want api.ErrNotSent and ErrFrameTooLarge", err)
	}
	// a context that already ended
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Call(ctx, 1, []byte("x")); !errors.Is(err, api.ErrNotSent) || !errors.Is(err, context.Canceled) {
		t.Fatalf("call with an ended context: %v; want api.ErrNotSent and context.Canceled", err)
	}
	if f, err := c.Call(context.Background(), 1, []byte("still up")); err != nil || string(f.Payload) != "still up" {
		t.Fatalf("call after the refusals: %q %v", f.Payload, err)
	}
	// closed here
	c.Close()
	if _, err := c.Call(context.Background(), 1, []byte("x")); !errors.Is(err, api.ErrNotSent) || !errors.Is(err, ErrClosed) {
		t.Fatalf("call on a closed conn: %v; want api.ErrNotSent and ErrClosed", err)
	}
	if err := c.Send(1, []byte("x")); !errors.Is(err, api.ErrNotSent) || !errors.Is(err, ErrClosed) {
		t.Fatalf("send on a closed conn: %v; want api.ErrNotSent and ErrClosed", err)
	}
	if err := c.Reply(1, 1, nil); !errors.Is(err, api.ErrNotSent) {
		t.Fatalf("reply on a closed conn: %v; want api.ErrNotSent", err)
	}
	// the message is the wrapped error's own
	if _, err := c.Call(context.Background(), 1, nil); err.Error() != ErrClosed.Error() {
		t.Fatalf("message of a call on a closed conn: %q; want %q", err, ErrClosed)
	}

	// closed by the far end before the call
	sock := filepath.Join(t.TempDir(), "temp", "agent.sock")
	s2, err := Listen(sock, ConnOptions{Handler: func(*Conn, Frame) {}})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := DialUnix(sock, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close() // ends every stream
	select {
	case <-gone.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("stream not ended by the server's Close")
	}
	if _, err := gone.Call(context.Background(), 1, []byte("x")); !errors.Is(err, api.ErrNotSent) || !errors.Is(err, ErrClosed) {
		t.Fatalf("call on a conn the far end closed: %v; want api.ErrNotSent and ErrClosed", err)
	}
}

// TestMaybeSentAfterHandover: once the request is queued, neither the stream breaking nor
// the context ending while waiting is api.ErrNotSent: the far end may have got it.
func TestMaybeSentAfterHandover(t *testing.T) {
	// the far end reads the request, then hangs up without answering
	got := make(chan []byte, 1)
	_, path, _ := startServer(t, func(c *Conn, f Frame) {
		if f.Kind == KindRequest {
			got <- f.Payload
			c.Close()
		}
	}, 0)
	c, err := DialUnix(path, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Call(context.Background(), 1, []byte("a write"))
	if err == nil || errors.Is(err, api.ErrNotSent) {
		t.Fatalf("call whose far end hung up after reading it: %v; want an error that is not api.ErrNotSent", err)
	}
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("call whose far end hung up: %v; want ErrClosed", err)
	}
	if p := <-got; string(p) != "a write" {
		t.Fatalf("the far end read %q", p)
	}

	// the far end never answers: the deadline passes while waiting
	_, path2, _ := startServer(t, func(*Conn, Frame) {}, 0)
	c2, err := DialUnix(path2, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c2.Call(ctx, 1, []byte("x"))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, api.ErrNotSent) {
		t.Fatalf("call past its deadline: %v; want context.DeadlineExceeded, not api.ErrNotSent", err)
	}

	// an error frame is an answer, not api.ErrNotSent
	_, path3, _ := startServer(t, (&echoHandler{}).handle, 0)
	c3, err := DialUnix(path3, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	_, err = c3.Call(context.Background(), 99, nil)
	var re *RemoteError
	if !errors.As(err, &re) || errors.Is(err, api.ErrNotSent) {
		t.Fatalf("call answered with an error frame: %v; want a RemoteError, not api.ErrNotSent", err)
	}
}

// TestPeerNotSent: a Peer that cannot connect (dial refused, in backoff, closed, the
// context ending while it connects) fails with api.ErrNotSent, keeping the reason.
func TestPeerNotSent(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	// a port nobody listens on, and one that accepts TCP but never speaks SSH
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	go func() {
		for {
			nc, err := mute.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, nc); nc.Close() }() // until the caller gives up
		}
	}()
	cfg := filepath.Join(home, "ssh_config")
	os.WriteFile(cfg, []byte(fmt.Sprintf("Host refused\n  HostName 127.0.0.1\n  Port %d\nHost mute\n  HostName 127.0.0.1\n  Port %d\n",
		closedPort, mute.Addr().(*net.TCPAddr).Port)), 0o600)
	d, err := NewDialer(DialerOptions{ConfigFiles: []string{cfg}, Home: home})
	if err != nil {
		t.Fatal(err)
	}

	p := NewPeer("refused", d, "true", ConnOptions{})
	p.MinBackoff = time.Minute
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.Call(ctx, 1, []byte("x")); err == nil || !errors.Is(err, api.ErrNotSent) {
		t.Fatalf("call to a host that refuses the connection: %v; want api.ErrNotSent", err)
	}
	if _, err := p.Call(ctx, 1, []byte("x")); !errors.Is(err, api.ErrNotSent) || !errors.Is(err, ErrNotConnected) {
		t.Fatalf("call during the backoff: %v; want api.ErrNotSent and ErrNotConnected", err)
	}
	if err := p.Send(1, []byte("x")); !errors.Is(err, api.ErrNotSent) || !errors.Is(err, ErrNotConnected) {
		t.Fatalf("send during the backoff: %v; want api.ErrNotSent and ErrNotConnected", err)
	}
	p.Close()
	if _, err := p.Call(ctx, 1, []byte("x")); !errors.Is(err, api.ErrNotSent) || !errors.Is(err, ErrClosed) {
		t.Fatalf("call on a closed peer: %v; want api.ErrNotSent and ErrClosed", err)
	}

	q := NewPeer("mute", d, "true", ConnOptions{})
	defer q.Close()
	qctx, qcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer qcancel()
	if _, err := q.Call(qctx, 1, []byte("x")); !errors.Is(err, api.ErrNotSent) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call whose context ended while connecting: %v; want api.ErrNotSent and context.DeadlineExceeded", err)
	}
}
