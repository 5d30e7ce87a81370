package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"lite-raft/api"
	"lite-raft/sshrpc"
)

// Caller sends one request frame and returns the answer: an *sshrpc.Conn (the local
// socket) or an *sshrpc.Peer (a member over ssh, reconnected as needed). Its errors say
// whether the frame left (api.ErrNotSent); a Caller that makes attempts of its own
// (several hosts) returns an *Error when they all failed, which Do takes as final.
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
//
// Every failure without an answer is an *Error, whose exit code comes from the table
// (ExitCode, ExitCodeOf): its Outcome is MaybeApplied once any attempt's bytes may have
// reached the agent (an error that is not api.ErrNotSent, or an error frame), its
// Failure FailTimeout if ctx ended, else FailNoServer. An *Error the Caller returns (it
// made its own attempts, as lite-raft remote does over several hosts) is its verdict: it
// is returned at once, merged with this call's earlier attempts. An answer of 11 or 12
// after an attempt that may have been applied becomes 2 (Downgrade).
func (cl *Client) Do(ctx context.Context, req api.Request) (api.Response, error) {
	s := cl.take()
	defer cl.give(s)
	s.seq++
	req.ClientID = s.id
	req.Seq = s.seq
	if api.IsWrite(req.Op) && req.FirstSentMs == 0 {
		// set once, before the first attempt, and sent again by every retry (the payload
		// is encoded once): the cluster tells a retry it no longer holds a session for
		// from a new client by it (api.SessionHorizonMs)
		req.FirstSentMs = uint64(time.Now().UnixMilli())
	}
	if dl, ok := ctx.Deadline(); ok {
		// the agent gives up a little earlier than we do, so that its answer (which says
		// why: no leader, unknown outcome, stale) arrives before our own deadline; a
		// deadline beyond the field's 49 days is sent as its largest, never wrapped
		d := time.Until(dl)
		d -= min(d/10, 200*time.Millisecond)
		if t := uint32(min(max(1, d.Milliseconds()), math.MaxUint32)); req.TimeoutMs == 0 || t < req.TimeoutMs {
			req.TimeoutMs = t
		}
	}
	payload := req.Encode()
	resent := false // once without the first-send time, for an agent too old to read it
	var outcome Outcome
	var firstErr error // of the first attempt, often the one that says what happened
	fail := func(f Failure, err error) (api.Response, error) {
		if firstErr != nil && firstErr.Error() != err.Error() {
			err = fmt.Errorf("%w (first attempt: %v)", err, firstErr)
		}
		return api.Response{}, &Error{Op: req.Op, Outcome: outcome, Failure: f, Err: err}
	}
	for attempt := 0; ; attempt++ {
		f, err := cl.c.Call(ctx, api.FrameRequest, payload)
		if err == nil {
			resp, err := api.DecodeResponse(f.Payload)
			if err != nil { // it answered: it got the request
				outcome = outcome.Or(MaybeApplied)
				return fail(FailNoServer, err)
			}
			if resp.Code == api.CodeUpgrade && req.FirstSentMs != 0 && !resent {
				// an agent from before request version 7 refuses the field with 14, which
				// says nothing was done: the same ID and sequence number go again once
				// without it, taken as before (a new client if the table does not hold
				// it). A 14 for another reason (an op the cluster does not know yet)
				// comes back again and is answered as it is.
				resent = true
				old := req
				old.FirstSentMs = 0
				payload = old.Encode()
				continue
			}
			return Downgrade(req.Op, outcome, resp), nil
		}
		var ce *Error
		if errors.As(err, &ce) {
			e := *ce
			e.Op = req.Op
			e.Outcome = e.Outcome.Or(outcome)
			return api.Response{}, &e
		}
		if errors.Is(err, api.ErrNotSent) {
			outcome = outcome.Or(NotSent)
		} else {
			outcome = outcome.Or(MaybeApplied)
		}
		var re *sshrpc.RemoteError
		if errors.As(err, &re) {
			return fail(FailNoServer, err)
		}
		if ctx.Err() != nil {
			return fail(FailTimeout, err)
		}
		if attempt >= 3 {
			return fail(FailNoServer, err)
		}
		if firstErr == nil {
			firstErr = err
		}
		select {
		case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
		case <-ctx.Done():
			return fail(FailTimeout, ctx.Err())
		}
	}
}
