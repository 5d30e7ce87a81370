package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"lite-raft/sshrpc"
)

// Caller sends one request frame and returns the answer: an *sshrpc.Conn (the local
// socket) or an *sshrpc.Peer (a member over ssh, reconnected as needed).
type Caller interface {
	Call(ctx context.Context, typ uint8, payload []byte) (sshrpc.Frame, error)
}

// Client numbers its requests under a random client ID.
type Client struct {
	c   Caller
	id  uint64
	seq atomic.Uint64
}

// New returns a client that sends through c.
func New(c Caller) *Client {
	var b [8]byte
	rand.Read(b[:])
	id := binary.LittleEndian.Uint64(b[:]) | 1 // never 0: 0 means "no deduplication"
	return &Client{c: c, id: id}
}

// Do sends req and returns the answer. A write keeps its ID and sequence number across
// the retries made here after a broken connection, so it is applied at most once.
func (cl *Client) Do(ctx context.Context, req Request) (Response, error) {
	req.ClientID = cl.id
	req.Seq = cl.seq.Add(1)
	if dl, ok := ctx.Deadline(); ok {
		// the agent gives up a little earlier than we do, so that its answer (which says
		// why: no leader, unknown outcome, stale) arrives before our own deadline
		d := time.Until(dl)
		d -= min(d/10, 200*time.Millisecond)
		req.TimeoutMs = uint32(max(1, d.Milliseconds()))
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
