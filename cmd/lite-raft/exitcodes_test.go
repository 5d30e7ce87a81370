package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/sshrpc"
)

// fakeSocket serves dir/temp/agent.sock with h, standing in for the agent.
func fakeSocket(t *testing.T, dir string, h sshrpc.Handler) {
	t.Helper()
	s, err := sshrpc.Listen(filepath.Join(dir, "temp", "agent.sock"), sshrpc.ConnOptions{Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
}

// TestClientNoSocket: no agent here, so nothing was sent: 12, for writes and reads.
func TestClientNoSocket(t *testing.T) {
	dir := t.TempDir()
	want := fmt.Sprintf("no server running on %s. cannot process request.", thisHost())
	for _, args := range [][]string{{"set", "k", "v"}, {"if", "k", "=", "a", "set", "b"}, {"create", "k", "v"}, {"if", "k", "=", "a", "unset"},
		{"get", "k"}, {"list"}, {"status"}} {
		out, code := runApp(t, append([]string{"--dir", dir, "client"}, args...)...)
		if code != api.CodeNoServer || !strings.Contains(out, want) {
			t.Errorf("client %v without an agent: exit %d %q; want 12 and %q", args, code, out, want)
		}
	}
}

// TestClientAgentHangsUpAfterWrite: the local agent reads the request, then hangs up
// without answering. The write may have been applied: 2, not 12; a read is 12.
func TestClientAgentHangsUpAfterWrite(t *testing.T) {
	dir := t.TempDir()
	var got atomic.Int64
	fakeSocket(t, dir, func(c *sshrpc.Conn, f sshrpc.Frame) {
		if f.Kind == sshrpc.KindRequest {
			got.Add(1)
			c.Close()
		}
	})
	for _, args := range [][]string{{"set", "k", "v"}, {"unset", "k"}, {"noop"}, {"if", "k", "=", "a", "set", "b"},
		{"create", "k", "v"}, {"if", "k", "=", "a", "unset"}} {
		before := got.Load()
		out, code := runApp(t, append([]string{"--dir", dir, "client"}, args...)...)
		if code != api.CodeTimeout || !strings.Contains(out, "may or may not have been applied") {
			t.Errorf("client %v, agent hung up after reading it: exit %d %q; want 2", args, code, out)
		}
		if got.Load() == before {
			t.Errorf("client %v: the fake agent got no request", args)
		}
	}
	for _, args := range [][]string{{"get", "k"}, {"list"}, {"status"}} {
		if out, code := runApp(t, append([]string{"--dir", dir, "client"}, args...)...); code != api.CodeNoServer {
			t.Errorf("client %v, agent hung up after reading it: exit %d %q; want 12 (a read never exits 2)", args, code, out)
		}
	}
}

// TestClientAgentNeverAnswers: the deadline passes after the request was sent: 2 for a
// write, 1 for a read.
func TestClientAgentNeverAnswers(t *testing.T) {
	dir := t.TempDir()
	fakeSocket(t, dir, func(*sshrpc.Conn, sshrpc.Frame) {})
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"set", "k", "v"}, api.CodeTimeout, "timed out waiting for the commit: the write may or may not have been applied"},
		{[]string{"get", "k"}, api.CodeFailed, "leader is stale. try again."},
		{[]string{"list"}, api.CodeFailed, "leader is stale. try again."},
	} {
		out, code := runApp(t, append([]string{"--dir", dir, "client", "--timeout", "0.2"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out, tc.msg) || !strings.Contains(out, "no answer within 200ms") {
			t.Errorf("client %v, no answer: exit %d %q; want %d and %q", tc.args, code, out, tc.code, tc.msg)
		}
	}
}

// TestClientPassesAnswersThrough: the agent's own 11 and 12 are its answer: passed on.
func TestClientPassesAnswersThrough(t *testing.T) {
	dir := t.TempDir()
	fakeSocket(t, dir, func(c *sshrpc.Conn, f sshrpc.Frame) {
		req, _ := api.DecodeRequest(f.Payload)
		r := client.Fail(req.Op, client.NotSent, client.FailNoLeader, "")
		if req.Op == api.OpNoop {
			r = client.Fail(req.Op, client.NotSent, client.FailStopping, "h9")
		}
		c.Reply(f.ID, api.FrameRequest, r.Encode())
	})
	if out, code := runApp(t, "--dir", dir, "client", "set", "k", "v"); code != api.CodeNoLeader || !strings.Contains(out, "leader is not available.") {
		t.Errorf("answer 11: exit %d %q", code, out)
	}
	if out, code := runApp(t, "--dir", dir, "client", "noop"); code != api.CodeNoServer || !strings.Contains(out, "no server running on h9") {
		t.Errorf("answer 12: exit %d %q", code, out)
	}
}

// fakeHost is one member as lite-raft remote sees it.
type fakeHost struct {
	kind  string // notsent, broke, hang, noleader, noserver, ok
	lead  string // the leader an ok answer names (default h1)
	calls atomic.Int64
}

func (h *fakeHost) Call(ctx context.Context, typ uint8, payload []byte) (sshrpc.Frame, error) {
	h.calls.Add(1)
	answer := func(r api.Response) (sshrpc.Frame, error) {
		return sshrpc.Frame{Kind: sshrpc.KindResponse, Type: api.FrameRequest, Payload: r.Encode()}, nil
	}
	switch h.kind {
	case "notsent":
		return sshrpc.Frame{}, fmt.Errorf("%w: ssh: connection refused", api.ErrNotSent)
	case "broke":
		return sshrpc.Frame{}, fmt.Errorf("read: %w", sshrpc.ErrClosed)
	case "hang":
		<-ctx.Done()
		return sshrpc.Frame{}, ctx.Err()
	case "noleader":
		return answer(api.Response{Code: api.CodeNoLeader, Msg: "leader is not available."})
	case "noserver":
		return answer(api.Response{Code: api.CodeNoServer, Msg: "no server running on x. cannot process request."})
	}
	lead := h.lead
	if lead == "" {
		lead = "h1"
	}
	return answer(api.Response{Code: api.CodeOK, Leader: lead})
}

func (h *fakeHost) Close() error { return nil }

// TestRemoteOutcomeAcrossHosts: lite-raft remote tries the hosts in turn; a write is 11
// only if no host can have got it (or each answered 11/12), 2 once one may have, and a
// later host's definitive answer wins.
func TestRemoteOutcomeAcrossHosts(t *testing.T) {
	set := api.Request{Op: api.OpSet, Key: "k", Value: []byte("v")}
	get := api.Request{Op: api.OpGet, Key: "k"}
	for _, tc := range []struct {
		req   api.Request
		hosts []string
		code  int
		msg   string
	}{
		{set, []string{"notsent", "noleader"}, api.CodeNoLeader, "leader is not available."},
		{set, []string{"notsent", "notsent", "noserver"}, api.CodeNoLeader, "leader is not available."},
		{set, []string{"hang", "noleader"}, api.CodeTimeout, "timed out waiting for the commit: the write may or may not have been applied"},
		{set, []string{"broke", "notsent"}, api.CodeTimeout, "broke after the write was sent: it may or may not have been applied"},
		{set, []string{"hang", "ok"}, api.CodeOK, ""},
		{set, []string{"broke", "ok"}, api.CodeOK, ""},
		{get, []string{"broke", "noleader"}, api.CodeNoLeader, "leader is not available."},
		{get, []string{"hang", "noleader"}, api.CodeFailed, "leader is stale. try again."},
		{get, []string{"hang", "ok"}, api.CodeOK, ""},
	} {
		name := fmt.Sprintf("%s %v", tc.req.Op, tc.hosts)
		fakes := map[string]*fakeHost{}
		var names []string
		for i, k := range tc.hosts {
			n := fmt.Sprintf("h%d", i+1)
			fakes[n] = &fakeHost{kind: k}
			names = append(names, n)
		}
		rm := &remoteCaller{dir: t.TempDir(), hosts: names, share: 100 * time.Millisecond, peers: map[string]hostCaller{},
			open: func(h string) hostCaller { return fakes[h] }}
		dial := func(context.Context) (client.Caller, func(), error) { return rm, func() {}, nil }
		resp, err := doRequest(clientOpts{timeout: 3 * time.Second}, dial, tc.req)
		code, out := resp.Code, resp.Msg
		if err != nil {
			code, out = exitCode(err), err.Error()
		}
		if code != tc.code || !strings.Contains(out, tc.msg) {
			t.Errorf("%s: exit %d %q; want %d and %q", name, code, out, tc.code, tc.msg)
		}
		// every host is tried until one answers for good, and none twice
		for n, f := range fakes {
			if c := f.calls.Load(); c > 1 || (tc.code != 0 && c != 1) {
				t.Errorf("%s: %s (%s) called %d times", name, n, f.kind, c)
			}
		}
	}
}

// A host that gave no answer is tried last by the rest of the command's requests, and is
// no longer the remembered leader: a lock's renewal, with a second of its own, would
// otherwise spend it on the dead leader's host every time and lose the lock.
func TestRemoteTriesAFailedHostLast(t *testing.T) {
	dir := t.TempDir()
	fakes := map[string]*fakeHost{"h1": {kind: "hang"}, "h2": {kind: "ok", lead: "h2"}, "h3": {kind: "hang"}}
	rm := &remoteCaller{dir: dir, hosts: []string{"h1", "h2", "h3"}, share: 100 * time.Millisecond, peers: map[string]hostCaller{},
		open: func(h string) hostCaller { return fakes[h] }}
	os.MkdirAll(filepath.Join(dir, "temp"), 0o700)
	if err := os.WriteFile(rm.leaderFile(), []byte("h1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dial := func(context.Context) (client.Caller, func(), error) { return rm, func() {}, nil }
	get := api.Request{Op: api.OpGet, Key: "k"}
	// less time than one host's share: only the first host tried has a chance
	if _, err := doRequest(clientOpts{timeout: 80 * time.Millisecond}, dial, get); err == nil {
		t.Fatal("a get whose only host tried hung: no error")
	}
	if b, _ := os.ReadFile(rm.leaderFile()); strings.TrimSpace(string(b)) == "h1" {
		t.Fatal("the host that hung is still remembered as the leader")
	}
	for i := 0; i < 10; i++ {
		// h2 is first now, or h3 (untried: random), which is then tried last too
		if resp, err := doRequest(clientOpts{timeout: 80 * time.Millisecond}, dial, get); err == nil && resp.Code == 0 {
			if n := fakes["h1"].calls.Load(); n != 1 {
				t.Fatalf("the host that hung was tried %d times, want once", n)
			}
			return
		}
	}
	t.Fatalf("no get answered in 10 tries with a host that answers: h1 %d calls, h2 %d, h3 %d",
		fakes["h1"].calls.Load(), fakes["h2"].calls.Load(), fakes["h3"].calls.Load())
}
