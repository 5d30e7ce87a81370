package sshrpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoHandler answers every request with its payload, and counts one-way frames.
type echoHandler struct {
	mu     sync.Mutex
	oneWay [][]byte
}

func (h *echoHandler) handle(c *Conn, f Frame) {
	switch f.Kind {
	case KindRequest:
		if f.Type == 99 {
			c.ReplyError(f.ID, "no such thing")
			return
		}
		c.Reply(f.ID, f.Type, f.Payload)
	case KindOneWay:
		h.mu.Lock()
		h.oneWay = append(h.oneWay, f.Payload)
		h.mu.Unlock()
	}
}

func (h *echoHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.oneWay)
}

// echoPipelined has callers goroutines make calls each on one stream at once, each
// checking that the answer is its own payload: pipelined, answered out of order, never
// mixed up.
func echoPipelined(t testing.TB, c interface {
	Call(context.Context, uint8, []byte) (Frame, error)
}, callers, calls int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				want := fmt.Sprintf("caller %d call %d", g, i)
				f, err := c.Call(context.Background(), 1, []byte(want))
				if err != nil || string(f.Payload) != want {
					errs <- fmt.Errorf("call: got %q, %v; want %q", f.Payload, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// syncLog collects log lines from several goroutines.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) logf(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.buf, f+"\n", a...)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func startServer(t testing.TB, h Handler, maxFrame int) (*Server, string, *syncLog) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "temp")
	logs := &syncLog{}
	s, err := Listen(filepath.Join(dir, "agent.sock"), ConnOptions{Handler: h, MaxFrame: maxFrame, Logf: logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, filepath.Join(dir, "agent.sock"), logs
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, f := range []Frame{
		{Kind: KindOneWay, Type: 1},
		{Kind: KindRequest, Type: 7, ID: 1<<64 - 1, Payload: []byte("hello")},
		{Kind: KindError, ID: 3, Payload: bytes.Repeat([]byte{0xff}, 70000)},
	} {
		b := AppendFrame(nil, f)
		got, err := ReadFrame(bufio.NewReader(bytes.NewReader(b)), DefaultMaxFrame)
		if err != nil || got.Kind != f.Kind || got.Type != f.Type || got.ID != f.ID || !bytes.Equal(got.Payload, f.Payload) {
			t.Fatalf("round trip of %v: got %v, %v", f.Kind, got.Kind, err)
		}
	}
	big := AppendFrame(nil, Frame{Kind: KindOneWay, Payload: make([]byte, 1001)})
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(big)), 1000); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized frame: %v", err)
	}
	short := AppendFrame(nil, Frame{Kind: KindOneWay, Payload: []byte("abcdef")})
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(short[:len(short)-2])), 1000); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut frame: %v", err)
	}
}

func TestSocketIsPrivate(t *testing.T) {
	s, path, _ := startServer(t, (&echoHandler{}).handle, 0)
	_ = s
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	di, _ := os.Stat(filepath.Dir(path))
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("socket folder mode %v; want 0700", di.Mode().Perm())
	}
	// a second agent in the same folder is refused
	if _, err := Listen(path, ConnOptions{}); err == nil || !strings.Contains(err.Error(), "another agent") {
		t.Fatalf("second listener: %v", err)
	}
	open := filepath.Join(t.TempDir(), "open")
	os.Mkdir(open, 0o755)
	if _, err := Listen(filepath.Join(open, "agent.sock"), ConnOptions{}); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("too-open folder: %v", err)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "temp")
	os.Mkdir(dir, 0o700)
	path := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the socket file stays, nobody listens: an agent that died
	s, err := Listen(path, ConnOptions{})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	s.Close()
}

func TestPipelinedCalls(t *testing.T) {
	h := &echoHandler{}
	_, path, _ := startServer(t, h.handle, 0)
	c, err := DialUnix(path, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoPipelined(t, c, 64, 50)
	if _, err := c.Call(context.Background(), 99, nil); err == nil || !strings.Contains(err.Error(), "no such thing") {
		t.Fatalf("remote error: %v", err)
	}
	for i := 0; i < 10; i++ {
		if err := c.Send(1, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "one-way frames", func() bool { return h.count() == 10 })
}

func TestCallDeadline(t *testing.T) {
	// a handler that never answers
	_, path, _ := startServer(t, func(*Conn, Frame) {}, 0)
	c, err := DialUnix(path, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Call(ctx, 1, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call past its deadline: %v", err)
	}
}

func TestBadFrameClosesOnlyThatStream(t *testing.T) {
	_, path, logs := startServer(t, (&echoHandler{}).handle, 1000)
	good, err := DialUnix(path, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	for _, bad := range [][]byte{
		AppendFrame(nil, Frame{Kind: KindRequest, ID: 1, Payload: make([]byte, 5000)}), // over the limit
		AppendFrame(nil, Frame{Kind: 42, ID: 1}),                                       // unknown kind
	} {
		nc, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(nc)
		if _, err := handshake(r, nc); err != nil {
			t.Fatal(err)
		}
		nc.Write(bad)
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := ReadFrame(r, 1000); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("stream with a bad frame not closed: %v", err)
		}
		nc.Close()
	}
	if f, err := good.Call(context.Background(), 1, []byte("still here")); err != nil || string(f.Payload) != "still here" {
		t.Fatalf("other stream broken by a bad one: %v", err)
	}
	waitFor(t, "log of the reason", func() bool {
		return strings.Contains(logs.String(), "too large") && strings.Contains(logs.String(), "kind 42")
	})
}

func TestHandshakeRefusesStrangers(t *testing.T) {
	_, path, logs := startServer(t, (&echoHandler{}).handle, 0)
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, nc) // the server sends its hello, then hangs up
	waitFor(t, "refusal logged", func() bool { return strings.Contains(logs.String(), "refused a stream") })

	if _, err := parseHello(append([]byte(helloMagic), 0, 2, 0, 3)); err == nil {
		t.Fatal("a peer speaking only versions 2..3 was accepted")
	}
	if v, err := parseHello(append([]byte(helloMagic), 0, 1, 0, 9)); err != nil || v != ProtocolVersion {
		t.Fatalf("a newer peer that also speaks 1: %d, %v", v, err)
	}
}

func TestBridge(t *testing.T) {
	h := &echoHandler{}
	_, path, _ := startServer(t, h.handle, 0)
	// the bridge's stdin/stdout, as an SSH session would give them
	// os pipes have kernel buffers, like an SSH channel: both ends send their hello first
	inR, inW := osPipe(t)
	outR, outW := osPipe(t)
	done := make(chan error, 1)
	go func() { done <- Bridge(path, "host1", "", inR, outW); outW.Close() }()
	c, err := NewConn(struct {
		io.Reader
		io.WriteCloser
	}{outR, inW}, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f, err := c.Call(context.Background(), 3, []byte("through the bridge")); err != nil || string(f.Payload) != "through the bridge" {
		t.Fatalf("call through bridge: %q %v", f.Payload, err)
	}
	c.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("bridge did not end when its caller hung up")
	}

	// no agent: the caller's handshake reads why
	inR2, inW2 := osPipe(t)
	outR2, outW2 := osPipe(t)
	go func() { Bridge(filepath.Join(t.TempDir(), "none.sock"), "host9", "", inR2, outW2); outW2.Close() }()
	_, err = NewConn(struct {
		io.Reader
		io.WriteCloser
	}{outR2, inW2}, ConnOptions{})
	if err == nil || !strings.Contains(err.Error(), "no server running on host9") {
		t.Fatalf("bridge without agent: %v", err)
	}
}

func osPipe(t *testing.T) (*os.File, *os.File) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}
