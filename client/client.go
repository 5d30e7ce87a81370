package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"lite-raft/sshrpc"
)

// Caller sends one request frame and returns the answer: an *sshrpc.Conn (the local
// socket) or an *sshrpc.Peer (a member over ssh, reconnected as needed).
type Caller interface {
	Call(ctx context.Context, typ uint8, payload []byte) (sshrpc.Frame, error)
}

// Client numbers its requests. The state machine deduplicates by (client ID, sequence
// number) and takes a sequence number at or below the last one it applied for that ID as
// a late duplicate, so an ID must never have two requests in flight: concurrent calls of
// Do each take a session (an ID and its counter) of their own from a pool.
type Client struct {
	c    Caller
	mu   sync.Mutex
	free []*session
}

type session struct {
	id, seq uint64
}

// New returns a client that sends through c.
func New(c Caller) *Client {
	return &Client{c: c}
}

func (cl *Client) take() *session {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if n := len(cl.free); n > 0 {
		s := cl.free[n-1]
		cl.free = cl.free[:n-1]
		return s
	}
	var b [8]byte
	rand.Read(b[:])
	return &session{id: binary.LittleEndian.Uint64(b[:]) | 1} // never 0: 0 means "no deduplication"
}

func (cl *Client) give(s *session) {
	cl.mu.Lock()
	cl.free = append(cl.free, s)
	cl.mu.Unlock()
}

// Do sends req and returns the answer. A write keeps its ID and sequence number across
// the retries made here after a broken connection, so it is applied at most once.
func (cl *Client) Do(ctx context.Context, req Request) (Response, error) {
	s := cl.take()
	defer cl.give(s)
	s.seq++
	req.ClientID = s.id
	req.Seq = s.seq
	if dl, ok := ctx.Deadline(); ok {
		// the agent gives up a little earlier than we do, so that its answer (which says
		// why: no leader, unknown outcome, stale) arrives before our own deadline
		d := time.Until(dl)
		d -= min(d/10, 200*time.Millisecond)
		if t := uint32(max(1, d.Milliseconds())); req.TimeoutMs == 0 || t < req.TimeoutMs {
			req.TimeoutMs = t
		}
	}
	payload := req.Encode()
	var lastErr error
	for attempt := 0; ; attempt++ {
		f, err := cl.c.Call(ctx, FrameRequest, payload)
		if err == nil {
			return DecodeResponse(f.Payload)
		}
		var re *sshrpc.RemoteError
		if errors.As(err, &re) || ctx.Err() != nil || attempt >= 3 {
			if lastErr != nil && ctx.Err() != nil {
				err = fmt.Errorf("%w (after: %v)", err, lastErr)
			}
			return Response{}, err
		}
		lastErr = err
		select {
		case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
		case <-ctx.Done():
			return Response{}, fmt.Errorf("%w (after: %v)", ctx.Err(), lastErr)
		}
	}
}
