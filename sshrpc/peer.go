package sshrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrNotConnected is returned by Peer.Send and Peer.Conn while the peer waits out its
// backoff after failed attempts.
var ErrNotConnected = errors.New("not connected")

// Peer keeps one SSH connection to a host, and on it one long-lived session running
// `exec DIR/lite-raft rpc`, as a framed stream to that host's agent. A broken stream is
// reopened on demand, no sooner than a backoff that doubles (with jitter) up to MaxBackoff
// after each failure, so a host that is down costs little.
type Peer struct {
	name    string
	dialer  *Dialer
	command string
	opt     ConnOptions
	main    *Peer // a side stream's: whose ssh connection it opens its session on

	mu         sync.Mutex
	conn       *Conn
	client     *ssh.Client
	connecting chan struct{} // closed when the attempt under way ends
	nextTry    time.Time
	backoff    time.Duration
	lastErr    error
	closed     bool
	wake       chan struct{} // closed by Retry: a wait for the backoff ends

	// MinBackoff and MaxBackoff bound the wait between attempts (defaults 100 ms, 1 s). A
	// peer that comes back is reached within about a second: a Raft member restarted after
	// a while otherwise waited up to 6 s for its leader's link (4.3 s of a 6.8 s catch-up,
	// measured). An attempt a second at a host that stays down costs little; callers log
	// failures at their own pace.
	MinBackoff, MaxBackoff time.Duration
	// SendWait bounds how long Send waits for a stream being opened (default 500 ms).
	SendWait time.Duration
}

// NewPeer prepares a stream to host; nothing is dialed until it is used.
func NewPeer(host string, d *Dialer, remoteCommand string, opt ConnOptions) *Peer {
	if opt.Peer == "" {
		opt.Peer = host
	}
	return &Peer{name: host, dialer: d, command: remoteCommand, opt: opt,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, SendWait: 500 * time.Millisecond}
}

// Side prepares another stream to the same host, a session of its own on p's ssh
// connection (connecting p if needed): a channel carries at most its window a round trip
// (2 MiB from OpenSSH's sshd), so a long link moves bulk data over several, and one
// costs two round trips to open instead of a new connection's dozen. It ends with p's
// connection and opens again on the next one; closing it leaves p alone.
//
// A side stream queues at most sideQueue frames (ConnOptions.Queue): it carries bulk
// data, so its sender waits rather than queue hundreds of megabytes.
func (p *Peer) Side() *Peer {
	opt := p.opt
	opt.Queue = sideQueue
	return &Peer{name: p.name, dialer: p.dialer, command: p.command, opt: opt, main: p,
		MinBackoff: p.MinBackoff, MaxBackoff: p.MaxBackoff, SendWait: p.SendWait}
}

// sideQueue is a side stream's queue of frames waiting to be written.
const sideQueue = 4

// sshClient is p's ssh connection, connecting first if needed.
func (p *Peer) sshClient(ctx context.Context) (*ssh.Client, error) {
	if _, err := p.Conn(ctx); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil {
		return nil, fmt.Errorf("%s: %w", p.name, ErrNotConnected)
	}
	return p.client, nil
}

// Name is the host this peer reaches.
func (p *Peer) Name() string { return p.name }

// LastError is why the last attempt to connect failed (nil after a success).
func (p *Peer) LastError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

// current returns the live stream, or nil.
func (p *Peer) current() *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		select {
		case <-p.conn.Done():
			p.conn = nil
		default:
			return p.conn
		}
	}
	return nil
}

// Conn returns the live stream, connecting if needed, until ctx ends.
func (p *Peer) Conn(ctx context.Context) (*Conn, error) {
	for {
		if c := p.current(); c != nil {
			return c, nil
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		wait := p.connecting
		if wait == nil {
			if d := time.Until(p.nextTry); d > 0 {
				lastErr := p.lastErr
				if p.wake == nil {
					p.wake = make(chan struct{})
				}
				wake := p.wake
				p.mu.Unlock()
				if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
					return nil, fmt.Errorf("%s: %w (last attempt: %v)", p.name, ErrNotConnected, lastErr)
				}
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-wake:
					t.Stop()
				case <-ctx.Done():
					t.Stop()
					return nil, ctx.Err()
				}
				continue
			}
			wait = make(chan struct{})
			p.connecting = wait
			go p.connect(wait)
		}
		p.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if c := p.current(); c == nil {
			if err := p.LastError(); err != nil {
				return nil, err
			}
		}
	}
}

// Retry ends the wait before the next attempt to connect, if one is under way: the host
// is known to be back (a message came from it). The backoff starts over.
func (p *Peer) Retry() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil || p.connecting != nil || p.nextTry.IsZero() {
		return
	}
	p.nextTry, p.backoff = time.Time{}, 0
	if p.wake != nil {
		close(p.wake)
		p.wake = nil
	}
}

// Send sends a one-way frame. While the stream is down it waits, up to SendWait, for an
// attempt under way or due within that time: the first message to a peer is often a
// vote request in an election, worth a brief wait more than a lost round. A peer in
// backoff after failures fails at once with ErrNotConnected, so a dead host's messages
// cost nothing (Raft resends what is still needed).
//
// Every error of Send is api.ErrNotSent (a one-way frame is queued or not).
func (p *Peer) Send(typ uint8, payload []byte) error {
	if c := p.current(); c != nil {
		return c.Send(typ, payload)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.SendWait)
	defer cancel()
	c, err := p.Conn(ctx)
	if err != nil {
		return notSent(err)
	}
	return c.Send(typ, payload)
}

// Call sends a request on the stream (connecting first if needed) and waits for the answer.
// As with Conn.Call, an error from before the request was queued (not connected, in
// backoff, the dial failed, ctx ended while connecting) is api.ErrNotSent, one from after is not.
func (p *Peer) Call(ctx context.Context, typ uint8, payload []byte) (Frame, error) {
	c, err := p.Conn(ctx)
	if err != nil {
		return Frame{}, notSent(err)
	}
	return c.Call(ctx, typ, payload)
}

func (p *Peer) connect(done chan struct{}) {
	conn, client, err := p.open()
	p.mu.Lock()
	defer p.mu.Unlock()
	defer close(done)
	p.connecting = nil
	if err != nil {
		p.lastErr = err
		if p.backoff == 0 {
			p.backoff = p.MinBackoff
		} else {
			p.backoff = min(2*p.backoff, p.MaxBackoff)
		}
		// ±20% jitter: peers that lost the same host do not retry in lockstep
		j := time.Duration(float64(p.backoff) * (0.8 + 0.4*rand.Float64()))
		p.nextTry = time.Now().Add(j)
		return
	}
	if p.closed {
		conn.Close()
		client.Close()
		return
	}
	p.lastErr, p.backoff, p.nextTry = nil, 0, time.Time{}
	p.conn, p.client = conn, client
	if p.main == nil {
		go func() {
			<-conn.Done()
			client.Close()
		}()
	}
}

// sessionStream is an SSH session's stdin and stdout as one stream.
type sessionStream struct {
	io.Reader
	io.WriteCloser
	session *ssh.Session
}

// Close closes the channel, which ends the remote command's input too. Not stdin's
// own Close first: x/crypto/ssh's CloseWrite sets a flag that a Write in flight reads
// unlocked (a data race the race detector reported when a stream failed while the write
// loop was sending), whereas the channel's close is serialised with its writes.
func (s *sessionStream) Close() error {
	return s.session.Close()
}

// limitedBuffer keeps the first bytes of the remote command's error output.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 4096 - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}

func (p *Peer) open() (*Conn, *ssh.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var client *ssh.Client
	var err error
	if p.main != nil {
		client, err = p.main.sshClient(ctx)
	} else {
		client, err = p.dialer.Dial(ctx, p.name)
	}
	if err != nil {
		return nil, nil, err
	}
	sess, err := client.NewSession()
	if err != nil {
		if p.main == nil {
			client.Close()
		}
		return nil, nil, fmt.Errorf("%s: open session: %w", p.name, err)
	}
	release := client.Close
	if p.main != nil {
		release = sess.Close // the connection is the main stream's
	}
	stdin, err1 := sess.StdinPipe()
	stdout, err2 := sess.StdoutPipe()
	if err := errors.Join(err1, err2); err != nil {
		release()
		return nil, nil, fmt.Errorf("%s: %w", p.name, err)
	}
	stderr := &limitedBuffer{}
	sess.Stderr = stderr
	if err := sess.Start(p.command); err != nil {
		release()
		return nil, nil, fmt.Errorf("%s: run %q: %w", p.name, p.command, err)
	}
	conn, err := NewConn(&sessionStream{Reader: stdout, WriteCloser: stdin, session: sess}, p.opt)
	if err != nil {
		release()
		if msg := stderr.String(); msg != "" && !strings.Contains(err.Error(), msg) {
			err = fmt.Errorf("%w (%s said: %s)", err, p.command, msg)
		}
		return nil, nil, err
	}
	return conn, client, nil
}

// Close ends the stream and stops reconnecting.
func (p *Peer) Close() error {
	p.mu.Lock()
	p.closed = true
	conn, client := p.conn, p.client
	p.conn, p.client = nil, nil
	p.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	if client != nil && p.main == nil {
		client.Close()
	}
	return nil
}
