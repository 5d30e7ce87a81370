package client

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
	"lite-raft/sshrpc"
)

// do sends req through c as a command does: one Client, one deadline.
func do(c Caller, timeout time.Duration, req api.Request) (api.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return New(c).Do(ctx, req)
}

// fakeHost is one member as a Remote sees it.
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

// TestRemoteOutcomeAcrossHosts: a Remote tries the hosts in turn; a write is 11
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
		rm := NewRemote(RemoteConfig{Hosts: names, LeaderFile: filepath.Join(t.TempDir(), "remote_leader"), Share: 100 * time.Millisecond,
			Open: func(h string) HostCaller { return fakes[h] }})
		resp, err := do(rm, 3*time.Second, tc.req)
		code, out := resp.Code, resp.Msg
		if err != nil {
			code, out = ExitCodeOf(err), err.Error()
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
	leaderFile := filepath.Join(dir, "temp", "remote_leader")
	rm := NewRemote(RemoteConfig{Hosts: []string{"h1", "h2", "h3"}, LeaderFile: leaderFile, Share: 100 * time.Millisecond,
		Open: func(h string) HostCaller { return fakes[h] }})
	os.MkdirAll(filepath.Join(dir, "temp"), 0o700)
	if err := os.WriteFile(leaderFile, []byte("h1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	get := api.Request{Op: api.OpGet, Key: "k"}
	// less time than one host's share: only the first host tried has a chance
	if _, err := do(rm, 80*time.Millisecond, get); err == nil {
		t.Fatal("a get whose only host tried hung: no error")
	}
	if b, _ := os.ReadFile(leaderFile); strings.TrimSpace(string(b)) == "h1" {
		t.Fatal("the host that hung is still remembered as the leader")
	}
	for i := 0; i < 10; i++ {
		// h2 is first now, or h3 (untried: random), which is then tried last too
		if resp, err := do(rm, 80*time.Millisecond, get); err == nil && resp.Code == 0 {
			if n := fakes["h1"].calls.Load(); n != 1 {
				t.Fatalf("the host that hung was tried %d times, want once", n)
			}
			return
		}
	}
	t.Fatalf("no get answered in 10 tries with a host that answers: h1 %d calls, h2 %d, h3 %d",
		fakes["h1"].calls.Load(), fakes["h2"].calls.Load(), fakes["h3"].calls.Load())
}

// fixedClock is a clock that stands still: at a given time before a deadline.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// TestRemoteShareFromItsClock: a host's share is bounded by the time left as the
// Remote's clock reads it, so a command near its deadline does not give one host more
// than is left.
func TestRemoteShareFromItsClock(t *testing.T) {
	deadline := time.Now().Add(5 * time.Second)
	fakes := map[string]*fakeHost{"h1": {kind: "hang"}, "h2": {kind: "ok"}}
	leaderFile := filepath.Join(t.TempDir(), "remote_leader")
	os.WriteFile(leaderFile, []byte("h1\n"), 0o600) // the hanging host is asked first
	rm := NewRemote(RemoteConfig{Hosts: []string{"h1", "h2"}, LeaderFile: leaderFile, Share: 4 * time.Second,
		Clock: fixedClock{deadline.Add(-20 * time.Millisecond)}, Open: func(h string) HostCaller { return fakes[h] }})
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	began := time.Now()
	if _, err := New(rm).Do(ctx, api.Request{Op: api.OpGet, Key: "k"}); err != nil {
		t.Fatal(err)
	}
	if n := fakes["h1"].calls.Load(); n != 1 {
		t.Fatalf("the hanging host was asked %d times, want once (first)", n)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("took %v: the hanging host had its 4 s share, not the 20 ms the clock leaves", took)
	}
}
