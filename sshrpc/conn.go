package sshrpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"lite-raft/api"
)

// Handler receives the frames a Conn gets that are not answers to its own calls: one-way
// frames and requests. It runs on the Conn's reading goroutine, so it must not block;
// it answers a request, now or later from any goroutine, with Conn.Reply or ReplyError.
type Handler func(c *Conn, f Frame)

// ErrClosed is returned by calls on a closed Conn.
var ErrClosed = errors.New("connection closed")

// notSentError marks err as api.ErrNotSent without changing its message.
type notSentError struct{ err error }

func (e *notSentError) Error() string        { return e.err.Error() }
func (e *notSentError) Unwrap() error        { return e.err }
func (e *notSentError) Is(target error) bool { return target == api.ErrNotSent }

// notSent marks err (not nil) as having happened before the frame was handed over.
func notSent(err error) error {
	if errors.Is(err, api.ErrNotSent) {
		return err
	}
	return &notSentError{err}
}

// Conn is one framed stream: over an SSH session's stdin/stdout, or a unix socket.
// Requests are pipelined: any number may be in flight, answered in any order.
type Conn struct {
	rw       io.ReadWriteCloser
	r        *bufio.Reader
	handler  Handler
	maxFrame int
	version  uint16

	nextID  atomic.Uint64
	mu      sync.Mutex
	pending map[uint64]chan Frame
	err     error // why the connection ended

	out     chan outFrame
	done    chan struct{}
	closing sync.Once
	// Peer is set by whoever made the Conn, for messages ("host2", "unix socket").
	Peer string
	// Allow is the restriction the other end is under (ssh-command --allow's list; ""
	// none): the handler must hold its frames to it (restrict.go).
	Allow string
}

// ConnOptions tune a Conn.
type ConnOptions struct {
	MaxFrame int     // payload limit (default DefaultMaxFrame)
	Handler  Handler // for one-way frames and requests; nil refuses requests
	Peer     string
	// Logf reports why a stream was closed (a bad frame, the peer gone).
	Logf func(format string, args ...any)
	// Allow: for DialUnix, the verbs to restrict the stream to (restrict.go; "" none);
	// on a stream a Server accepted, the restriction it came with (Conn.Allow).
	Allow string
	// SameUser: a Server accepts streams only from processes of its own user (where the
	// system says who is at the other end of a unix socket; elsewhere the socket's
	// private folder is the only check).
	SameUser bool
	// Queue is how many frames wait to be written before Send blocks (default 1024).
	// A stream of megabyte frames keeps it small, or its queue holds a gigabyte.
	Queue int
}

// NewConn runs the handshake on rw and starts serving it. On error rw is closed.
func NewConn(rw io.ReadWriteCloser, opt ConnOptions) (*Conn, error) {
	if opt.MaxFrame <= 0 {
		opt.MaxFrame = DefaultMaxFrame
	}
	if opt.Queue <= 0 {
		opt.Queue = 1024
	}
	c := &Conn{rw: rw, r: bufio.NewReaderSize(rw, 64<<10), handler: opt.Handler, maxFrame: opt.MaxFrame,
		pending: map[uint64]chan Frame{}, out: make(chan outFrame, opt.Queue), done: make(chan struct{}), Peer: opt.Peer, Allow: opt.Allow}
	v, err := handshake(c.r, rw)
	if err != nil {
		rw.Close()
		if opt.Peer != "" {
			err = fmt.Errorf("%s: %w", opt.Peer, err)
		}
		return nil, err
	}
	c.version = v
	go c.writeLoop()
	go c.readLoop(opt.Logf)
	return c, nil
}

// Version is the protocol version both ends agreed on.
func (c *Conn) Version() uint16 { return c.version }

// Done is closed when the connection has ended; Err then says why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended (nil while it is open).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Conn) fail(err error) {
	c.closing.Do(func() {
		c.mu.Lock()
		c.err = err
		pending := c.pending
		c.pending = nil
		c.mu.Unlock()
		close(c.done)
		c.rw.Close()
		for _, ch := range pending {
			close(ch)
		}
	})
}

// Close ends the connection.
func (c *Conn) Close() error {
	c.fail(ErrClosed)
	return nil
}

// outFrame is a frame waiting to be written: its header, and the caller's payload as it
// is. Keeping the payload apart saves copying every Raft append and reply once more
// into a frame buffer; the bufio.Writer below copies it once, into the socket's batch.
type outFrame struct {
	hdr     [headerSize]byte
	payload []byte
}

func newOutFrame(f Frame) outFrame {
	var o outFrame
	putHeader(o.hdr[:], f.Kind, f.Type, f.ID, len(f.Payload))
	o.payload = f.Payload
	return o
}

// writeLoop writes queued frames, flushing when the queue is empty: frames queued
// together (pipelined calls, a burst of Raft messages) leave in one write.
func (c *Conn) writeLoop() {
	w := bufio.NewWriterSize(c.rw, 64<<10)
	write := func(o outFrame) bool {
		w.Write(o.hdr[:])
		if _, err := w.Write(o.payload); err != nil {
			c.fail(fmt.Errorf("write: %w", err))
			return false
		}
		return true
	}
	for {
		select {
		case o := <-c.out:
			if !write(o) {
				return
			}
		case <-c.done:
			return
		}
		yielded := false
	drain:
		for {
			select {
			case o := <-c.out:
				if !write(o) {
					return
				}
			default:
				if !yielded {
					// once, before the write: a producer that is queueing a burst (a
					// Ready's messages and replies) adds the rest to the same write,
					// instead of each frame costing a system call (and, on an ssh
					// channel, a packet)
					yielded = true
					runtime.Gosched()
					continue
				}
				break drain
			}
		}
		if err := w.Flush(); err != nil {
			c.fail(fmt.Errorf("write: %w", err))
			return
		}
	}
}

func (c *Conn) readLoop(logf func(string, ...any)) {
	for {
		f, err := ReadFrame(c.r, c.maxFrame)
		if err != nil {
			// the far end hanging up, or this end closing, is no news
			closedHere := errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed)
			if !errors.Is(err, io.EOF) && !closedHere && logf != nil {
				logf("closing stream from %s: %v", c.Peer, err)
			}
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		switch f.Kind {
		case KindResponse, KindError:
			c.mu.Lock()
			ch := c.pending[f.ID]
			delete(c.pending, f.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- f
			}
		case KindRequest, KindOneWay:
			if c.handler == nil {
				if f.Kind == KindRequest {
					c.ReplyError(f.ID, "this end does not take requests")
				}
				continue
			}
			c.handler(c, f)
		default:
			if logf != nil {
				logf("closing stream from %s: unexpected frame kind %d", c.Peer, f.Kind)
			}
			c.fail(fmt.Errorf("unexpected frame kind %d", f.Kind))
			return
		}
	}
}

// enqueue queues f for writing. The payload is written as it is, later: the caller must
// not change it afterwards. An error is api.ErrNotSent: f was not queued.
func (c *Conn) enqueue(f Frame) error {
	select {
	case <-c.done:
		return notSent(c.closedErr())
	default:
	}
	select {
	case c.out <- newOutFrame(f):
		return nil
	case <-c.done:
		return notSent(c.closedErr())
	}
}

func (c *Conn) closedErr() error {
	if err := c.Err(); err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("%w: %v", ErrClosed, err)
	}
	return ErrClosed
}

// Send sends a one-way frame. The payload is written later, as it is: do not change it.
// An error is api.ErrNotSent.
func (c *Conn) Send(typ uint8, payload []byte) error {
	if len(payload) > c.maxFrame {
		return notSent(fmt.Errorf("send %d bytes: %w (limit %d)", len(payload), ErrFrameTooLarge, c.maxFrame))
	}
	return c.enqueue(Frame{Kind: KindOneWay, Type: typ, Payload: payload})
}

// RemoteError is an error the other end returned for a request.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return e.Msg }

// Call sends a request and waits for its answer, until ctx ends. An error from before
// the request was queued for writing is api.ErrNotSent; one from after (the stream ended, or
// ctx did, while waiting for the answer) is not: the far end may have got the request.
func (c *Conn) Call(ctx context.Context, typ uint8, payload []byte) (Frame, error) {
	if len(payload) > c.maxFrame {
		return Frame{}, notSent(fmt.Errorf("call with %d bytes: %w (limit %d)", len(payload), ErrFrameTooLarge, c.maxFrame))
	}
	if err := ctx.Err(); err != nil {
		return Frame{}, notSent(err)
	}
	id := c.nextID.Add(1)
	ch := make(chan Frame, 1)
	c.mu.Lock()
	if c.pending == nil {
		c.mu.Unlock()
		return Frame{}, notSent(c.closedErr())
	}
	c.pending[id] = ch
	c.mu.Unlock()
	if err := c.enqueue(Frame{Kind: KindRequest, Type: typ, ID: id, Payload: payload}); err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return Frame{}, err
	}
	select {
	case f, ok := <-ch:
		if !ok {
			return Frame{}, c.closedErr()
		}
		if f.Kind == KindError {
			return f, &RemoteError{Msg: string(f.Payload)}
		}
		return f, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return Frame{}, ctx.Err()
	}
}

// Reply answers request id.
func (c *Conn) Reply(id uint64, typ uint8, payload []byte) error {
	if len(payload) > c.maxFrame {
		return c.ReplyError(id, fmt.Sprintf("answer of %d bytes is over the frame limit", len(payload)))
	}
	return c.enqueue(Frame{Kind: KindResponse, Type: typ, ID: id, Payload: payload})
}

// ReplyError answers request id with an error message.
func (c *Conn) ReplyError(id uint64, msg string) error {
	return c.enqueue(Frame{Kind: KindError, ID: id, Payload: []byte(msg)})
}
