package sshrpc

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sessionPipes stands in for what sshd gives `lite-raft rpc`: the bridge's input and
// output, and the caller's ends of them (as the SSH client sees the session).
func sessionPipes(t *testing.T) (bridgeIn, bridgeOut *os.File, caller io.ReadWriteCloser) {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	return inR, outW, struct {
		io.Reader
		io.WriteCloser
	}{outR, inW}
}

func echoCall(t *testing.T, c *Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := c.Call(ctx, 1, []byte(msg))
	if err != nil || string(f.Payload) != msg {
		t.Fatalf("call %q: %q, %v", msg, f.Payload, err)
	}
}

// The bridge hands the session to the agent and then only waits: calls work, and when
// the agent ends the stream the caller sees the end of it (which it would not if the
// bridge still held a copy of the session's output: sshd closes a session only when
// every copy is closed), and the bridge returns.
func TestBridgeHandsTheSessionOver(t *testing.T) {
	srv, path, logs := startServer(t, benchHandler, 0)
	in, out, caller := sessionPipes(t)
	bridged := make(chan error, 1)
	go func() { bridged <- Bridge(path, "here", "", in, out) }()
	c, err := NewConn(caller, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, msg := range []string{"one", "two", "three"} {
		echoCall(t, c, msg)
	}
	srv.Close() // the agent stops: it closes the handed-over stream
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the caller did not see the end of the stream: someone still holds the session's output")
	}
	select {
	case err := <-bridged:
		if err != nil {
			t.Fatalf("bridge: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the bridge did not return after the agent hung up")
	}
	if logs.String() != "" {
		t.Errorf("server logged: %s", logs.String())
	}
}

// An agent that does not take handoffs (one from before them) reads the handoff byte as
// a broken frame and hangs up; the bridge then copies, on a new connection.
func TestBridgeFallsBackToCopying(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		first, err := ln.Accept()
		if err != nil {
			return
		}
		first.Read(make([]byte, 14)) // an old agent's frame header read, then refused
		first.Close()
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		NewConn(nc, ConnOptions{Handler: benchHandler})
	}()
	in, out, caller := sessionPipes(t)
	go Bridge(path, "here", "", in, out)
	c, err := NewConn(caller, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoCall(t, c, "copied")
}
