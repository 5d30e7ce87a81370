package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/sshrpc"
)

// TestExitCodeTable: every cell of the table, for every op of each kind, with its message.
func TestExitCodeTable(t *testing.T) {
	type cell struct {
		code int
		msg  string
	}
	const (
		maybe   = "may or may not have been applied"
		noSrv   = "no server running on h1. cannot process request."
		noLdr   = "leader is not available."
		stale   = "leader is stale. try again."
		timeout = "timed out waiting for the commit: the write may or may not have been applied"
		broke   = "the connection to h1 broke after the write was sent: it may or may not have been applied"
	)
	failures := []Failure{FailNoServer, FailNoLeader, FailTimeout, FailStale, FailStopping}
	// want[kind][outcome][failure]; outcome index 0 is the zero Outcome (none given)
	want := map[string][3][5]cell{
		"write": {
			{{2, broke}, {2, broke}, {2, timeout}, {2, broke}, {2, "stopped after the write was sent: it " + maybe}},
			{{12, noSrv}, {11, noLdr}, {11, noLdr}, {1, stale}, {12, noSrv + " (it is stopping)"}},
			{{2, broke}, {2, broke}, {2, timeout}, {2, broke}, {2, "the server on h1 stopped after the write was sent: it " + maybe}},
		},
		"read": {
			{{12, noSrv}, {11, noLdr}, {1, stale}, {1, stale}, {12, noSrv}},
			{{12, noSrv}, {11, noLdr}, {1, stale}, {1, stale}, {12, noSrv}},
			{{12, noSrv}, {11, noLdr}, {1, stale}, {1, stale}, {12, noSrv}},
		},
	}
	// every op of the catalogue, by its kind (whether each op has the right kind is
	// the core's test: TestOpKindsMatchWhatTheyDo)
	for _, info := range api.Ops() {
		op, kind := info.Op, "read"
		if info.Kind == api.Write {
			kind = "write"
		}
		{
			for oi, o := range []Outcome{0, NotSent, MaybeApplied} {
				for fi, f := range failures {
					w := want[kind][oi][fi]
					if got := ExitCode(op, o, f); got != w.code {
						t.Errorf("ExitCode(%s, %v, %v) = %d; want %d", op, o, f, got, w.code)
					}
					r := Fail(op, o, f, "h1")
					if r.Code != w.code || !strings.Contains(r.Msg, w.msg) {
						t.Errorf("Fail(%s, %v, %v) = %d %q; want %d and %q", op, o, f, r.Code, r.Msg, w.code, w.msg)
					}
					e := &Error{Op: op, Outcome: o, Failure: f, Host: "h1", Err: errors.New("the cause")}
					if ExitCodeOf(fmt.Errorf("wrapped: %w", e)) != w.code || e.Error() != r.Msg+" (the cause)" {
						t.Errorf("Error{%s, %v, %v}: code %d, message %q", op, o, f, ExitCodeOf(e), e)
					}
				}
			}
		}
	}
	if ExitCodeOf(nil) != 0 || ExitCodeOf(errors.New("other")) != 1 {
		t.Errorf("ExitCodeOf(nil) = %d, of a plain error %d; want 0 and 1", ExitCodeOf(nil), ExitCodeOf(errors.New("other")))
	}
	if r := Fail(api.OpGet, NotSent, FailNoServer, ""); r.Msg != "no server running here. cannot process request." {
		t.Errorf("no host: %q", r.Msg)
	}
}

func TestOutcomeOr(t *testing.T) {
	for _, tc := range []struct{ a, b, want Outcome }{
		{0, 0, 0}, {0, NotSent, NotSent}, {NotSent, 0, NotSent}, {NotSent, NotSent, NotSent},
		{0, MaybeApplied, MaybeApplied}, {MaybeApplied, 0, MaybeApplied},
		{NotSent, MaybeApplied, MaybeApplied}, {MaybeApplied, NotSent, MaybeApplied}, {MaybeApplied, MaybeApplied, MaybeApplied},
	} {
		if got := tc.a.Or(tc.b); got != tc.want {
			t.Errorf("%v.Or(%v) = %v; want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestDowngrade(t *testing.T) {
	answers := []api.Response{
		{Code: api.CodeOK}, {Code: api.CodeFailed, Msg: "leader is stale. try again."}, {Code: api.CodeTimeout, Msg: "timed out"},
		{Code: api.CodeNotLeader}, {Code: api.CodeCondFalse}, {Code: api.CodeNotFound},
		{Code: api.CodeNoLeader, Msg: "leader is not available.", Leader: "h2"}, {Code: api.CodeNoServer, Msg: "no server running on h1. cannot process request."},
	}
	for _, info := range api.Ops() {
		op := info.Op
		for _, o := range []Outcome{0, NotSent, MaybeApplied} {
			for _, r := range answers {
				got := Downgrade(op, o, r)
				if api.IsWrite(op) && o == MaybeApplied && (r.Code == api.CodeNoLeader || r.Code == api.CodeNoServer) {
					if got.Code != api.CodeTimeout || !strings.Contains(got.Msg, "may or may not have been applied") ||
						!strings.Contains(got.Msg, r.Msg) || got.Leader != r.Leader {
						t.Errorf("Downgrade(%s, %v, %d) = %d %q; want 2 keeping %q", op, o, r.Code, got.Code, got.Msg, r.Msg)
					}
					continue
				}
				if got.Code != r.Code || got.Msg != r.Msg || got.Leader != r.Leader {
					t.Errorf("Downgrade(%s, %v, %d) = %d %q; want it unchanged", op, o, r.Code, got.Code, got.Msg)
				}
			}
		}
	}
}

// scripted is a Caller that plays one result per call, then blocks until ctx ends.
type scripted struct {
	results []func(ctx context.Context) (sshrpc.Frame, error)
	calls   int
}

func (s *scripted) Call(ctx context.Context, typ uint8, payload []byte) (sshrpc.Frame, error) {
	s.calls++
	if len(s.results) == 0 {
		<-ctx.Done()
		return sshrpc.Frame{}, ctx.Err() // after sending: not ErrNotSent
	}
	r := s.results[0]
	s.results = s.results[1:]
	return r(ctx)
}

// errors like sshrpc's: one from before the hand-over, one from after
var (
	errBefore = fmt.Errorf("%w: connect: no such file", api.ErrNotSent)
	errAfter  = fmt.Errorf("read: %w", sshrpc.ErrClosed) // the stream died while waiting
)

func fails(err error) func(context.Context) (sshrpc.Frame, error) {
	return func(context.Context) (sshrpc.Frame, error) { return sshrpc.Frame{}, err }
}

func answers(r api.Response) func(context.Context) (sshrpc.Frame, error) {
	return func(context.Context) (sshrpc.Frame, error) {
		return sshrpc.Frame{Kind: sshrpc.KindResponse, Type: api.FrameRequest, Payload: r.Encode()}, nil
	}
}

// TestDoTypedErrors: Client.Do's failures are *Error with the outcome of all its
// attempts, and map to the table's codes.
func TestDoTypedErrors(t *testing.T) {
	set := api.Request{Op: api.OpSet, Key: "k", Value: []byte("v")}
	get := api.Request{Op: api.OpGet, Key: "k"}
	ctx := func(d time.Duration) context.Context {
		c, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return c
	}
	for _, tc := range []struct {
		name    string
		req     api.Request
		results []func(context.Context) (sshrpc.Frame, error)
		timeout time.Duration
		code    int
		outcome Outcome
		failure Failure
		calls   int
	}{
		{"never sent", set, []func(context.Context) (sshrpc.Frame, error){fails(errBefore), fails(errBefore), fails(errBefore), fails(errBefore)},
			5 * time.Second, 12, NotSent, FailNoServer, 4},
		{"sent once, then never", set, []func(context.Context) (sshrpc.Frame, error){fails(errBefore), fails(errAfter), fails(errBefore), fails(errBefore)},
			5 * time.Second, 2, MaybeApplied, FailNoServer, 4},
		{"read sent, broken", get, []func(context.Context) (sshrpc.Frame, error){fails(errAfter), fails(errAfter), fails(errAfter), fails(errAfter)},
			5 * time.Second, 12, MaybeApplied, FailNoServer, 4},
		{"write waits past the deadline", set, nil, 50 * time.Millisecond, 2, MaybeApplied, FailTimeout, 1},
		{"read waits past the deadline", get, nil, 50 * time.Millisecond, 1, MaybeApplied, FailTimeout, 1},
		{"error frame: no retry", set, []func(context.Context) (sshrpc.Frame, error){fails(&sshrpc.RemoteError{Msg: "this end does not take requests"})},
			5 * time.Second, 2, MaybeApplied, FailNoServer, 1},
		{"the caller's verdict", set, []func(context.Context) (sshrpc.Frame, error){fails(errAfter),
			fails(&Error{Outcome: NotSent, Failure: FailNoLeader, Err: errors.New("every host: no leader")})},
			5 * time.Second, 2, MaybeApplied, FailNoLeader, 2},
		{"the caller's verdict, nothing sent", set, []func(context.Context) (sshrpc.Frame, error){
			fails(&Error{Outcome: NotSent, Failure: FailNoLeader, Err: errors.New("every host: no leader")})},
			5 * time.Second, 11, NotSent, FailNoLeader, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &scripted{results: tc.results}
			_, err := New(c).Do(ctx(tc.timeout), tc.req)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T); want *Error", err, err)
			}
			if e.Op != tc.req.Op || e.Outcome != tc.outcome || e.Failure != tc.failure || ExitCodeOf(err) != tc.code || c.calls != tc.calls {
				t.Fatalf("got %s %v %v, code %d after %d calls (%v); want %v %v, code %d after %d calls",
					e.Op, e.Outcome, e.Failure, ExitCodeOf(err), c.calls, err, tc.outcome, tc.failure, tc.code, tc.calls)
			}
		})
	}

	// an answer of 11 after an attempt that may have been applied: 2
	c := &scripted{results: []func(context.Context) (sshrpc.Frame, error){fails(errAfter),
		answers(api.Response{Code: api.CodeNoLeader, Msg: "leader is not available."})}}
	r, err := New(c).Do(ctx(5*time.Second), set)
	if err != nil || r.Code != api.CodeTimeout || !strings.Contains(r.Msg, "leader is not available.") {
		t.Fatalf("11 after a sent attempt: %d %q %v; want 2", r.Code, r.Msg, err)
	}
	// ... but 11 after attempts that were never sent stays 11, and a definitive answer
	// after a sent attempt is the answer
	c = &scripted{results: []func(context.Context) (sshrpc.Frame, error){fails(errBefore),
		answers(api.Response{Code: api.CodeNoLeader, Msg: "leader is not available."})}}
	if r, err := New(c).Do(ctx(5*time.Second), set); err != nil || r.Code != api.CodeNoLeader {
		t.Fatalf("11 after unsent attempts: %d %q %v; want 11", r.Code, r.Msg, err)
	}
	c = &scripted{results: []func(context.Context) (sshrpc.Frame, error){fails(errAfter), answers(api.Response{Code: api.CodeOK})}}
	if r, err := New(c).Do(ctx(5*time.Second), set); err != nil || r.Code != api.CodeOK {
		t.Fatalf("ok after a sent attempt: %d %v; want 0", r.Code, err)
	}
}

// TestFrameThatNeverLeftIsNotSent: sshrpc marks a frame that never left with
// api.ErrNotSent, and a write that only ever failed so exits 12, not 2 (a script may
// retry it); a read exits 12 too.
func TestFrameThatNeverLeftIsNotSent(t *testing.T) {
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	far := make(chan *sshrpc.Conn, 1)
	go func() {
		if nc, err := l.Accept(); err == nil {
			c, _ := sshrpc.NewConn(nc, sshrpc.ConnOptions{})
			far <- c
		}
	}()
	conn, err := sshrpc.DialUnix(l.Addr().String(), sshrpc.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := <-far; c != nil {
		defer c.Close()
	}
	conn.Close()
	for _, op := range []api.Request{{Op: api.OpSet, Key: "k", Value: []byte("v")}, {Op: api.OpGet, Key: "k"}} {
		_, err := New(conn).Do(context.Background(), op)
		var e *Error
		if !errors.As(err, &e) || e.Outcome != NotSent || ExitCodeOf(err) != api.CodeNoServer {
			t.Errorf("%s on a closed connection: %v (exit %d); want not sent, 12", op.Op, err, ExitCodeOf(err))
		}
	}
}
