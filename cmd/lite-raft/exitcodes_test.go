package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

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
