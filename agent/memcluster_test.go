package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/conf"
	"lite-raft/raftcore"
)

// These tests run real drivers (the loop, the call goroutines, the link reports) in one
// process over the in-memory seams: no ssh, no disk.

// lineLog counts and keeps what an agent logs.
type lineLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lineLog) lines() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), "\n")
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type memCluster struct {
	t      *testing.T
	net    *MemNetwork
	agents map[raftcore.NodeID]*Agent
	logs   map[raftcore.NodeID]*lineLog
	seq    uint64
}

func startMemCluster(t *testing.T, clock Clock, ids ...raftcore.NodeID) *memCluster {
	t.Helper()
	return startMemMembers(t, clock, ids, ids, nil)
}

// startMemMembers runs the agents of run, in a cluster whose first members are voters;
// the silent ones run a build from before versions (MemNetwork.Silent).
func startMemMembers(t *testing.T, clock Clock, voters, run []raftcore.NodeID, silent map[raftcore.NodeID]bool) *memCluster {
	t.Helper()
	ids := run
	net := NewMemNetwork()
	net.Silent = silent
	c := &memCluster{t: t, net: net, agents: map[raftcore.NodeID]*Agent{}, logs: map[raftcore.NodeID]*lineLog{}}
	for _, id := range ids {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "temp"), 0o700)
		os.MkdirAll(filepath.Join(dir, "conf"), 0o755)
		c.logs[id] = &lineLog{}
		a := newAgent(dir, id, log.New(c.logs[id], "", log.Lmicroseconds))
		a.cfg = conf.Config{ElectionTimeout: 100 * time.Millisecond, SnapshotPeriod: 1000}
		if err := a.init(NewMemStorage(voters...), NewMemStorage(voters...).State(), c.net.Transport(id), clock); err != nil {
			t.Fatal(err)
		}
		c.agents[id] = a
		c.net.agents[id] = a
	}
	// registered after the TempDirs, so it runs before they are removed: the agents write
	// their status files until they have stopped
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, a := range c.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.run(ctx)
		}()
	}
	return c
}

// do sends a request to id's agent as a local client would and waits for the answer.
func (c *memCluster) do(id raftcore.NodeID, req api.Request) api.Response {
	c.t.Helper()
	if req.ClientID == 0 && api.IsWrite(req.Op) {
		c.seq++
		req.ClientID, req.Seq = 77, c.seq
	}
	got := make(chan api.Response, 1)
	c.agents[id].post(requestEvent(req, func(r api.Response) { got <- r }))
	select {
	case r := <-got:
		return r
	case <-time.After(20 * time.Second):
		c.t.Fatalf("%s %s on %s: no answer in 20 s", req.Op, req.Key, id)
		return api.Response{}
	}
}

func (c *memCluster) status(id raftcore.NodeID) api.Status {
	var st api.Status
	json.Unmarshal(c.do(id, api.Request{Op: api.OpStatus, Stale: true}).JSON, &st)
	return st
}

// leader polls until some member leads and every member knows it.
func (c *memCluster) leader() raftcore.NodeID {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var lead string
		agree := true
		for id := range c.agents {
			st := c.status(id)
			if lead == "" {
				lead = st.Leader
			}
			agree = agree && st.Leader != "" && st.Leader == lead
		}
		if agree {
			return raftcore.NodeID(lead)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	c.t.Fatal("no leader within 15 s")
	return ""
}

func others(ids []raftcore.NodeID, not ...raftcore.NodeID) []raftcore.NodeID {
	var out []raftcore.NodeID
	for _, id := range ids {
		keep := true
		for _, n := range not {
			keep = keep && id != n
		}
		if keep {
			out = append(out, id)
		}
	}
	return out
}

// A follower whose own link to the leader is refused, while it still hears the leader:
// its writes go through another member, and the failure is logged a few times, not once
// per retry. With no way to the leader at all it answers 11 (nothing was sent) and still
// logs only a few lines.
func TestMemClusterOneWayLink(t *testing.T) {
	ids := []raftcore.NodeID{"m1", "m2", "m3"}
	c := startMemCluster(t, systemClock{}, ids...)
	lead := c.leader()
	f := others(ids, lead)[0]
	before := c.logs[f].lines()
	c.net.Cut(f, lead, true)
	for i := 0; i < 20; i++ {
		r := c.do(f, api.Request{Op: api.OpSet, Key: "k", Value: []byte("v"), TimeoutMs: 3000})
		if r.Code != 0 {
			t.Fatalf("set through %s with its link to the leader cut: exit %d %s", f, r.Code, r.Msg)
		}
	}
	if r := c.do(f, api.Request{Op: api.OpGet, Key: "k", TimeoutMs: 3000}); r.Code != 0 || string(r.Value) != "v" {
		t.Fatalf("get through %s: exit %d %q", f, r.Code, r.Value)
	}
	for _, o := range others(ids, f) {
		c.net.Cut(f, o, true)
	}
	start := time.Now()
	r := c.do(f, api.Request{Op: api.OpSet, Key: "k", Value: []byte("w"), TimeoutMs: 3000})
	if r.Code != api.CodeNoLeader {
		t.Fatalf("set through %s, cut off from every member: exit %d %s, want 11 (nothing was sent)", f, r.Code, r.Msg)
	}
	if n := c.logs[f].lines() - before; n >= 30 {
		t.Fatalf("%s logged %d lines for 21 writes over a one-way link (%v):\n%s", f, n, time.Since(start), c.logs[f])
	}
	t.Logf("%s logged %d lines; the last answer: %s", f, c.logs[f].lines()-before, r.Msg)
}

// A forward whose answer is lost after the leader applied it is answered 2, never 11 or
// 12, and retrying it with the same client ID and sequence number applies nothing twice.
func TestMemClusterBrokenForward(t *testing.T) {
	ids := []raftcore.NodeID{"m1", "m2", "m3"}
	c := startMemCluster(t, systemClock{}, ids...)
	f := others(ids, c.leader())[0]
	c.do(f, api.Request{Op: api.OpSet, Key: "n", Value: []byte("1"), TimeoutMs: 3000})
	cas := api.Request{Op: api.OpIfSet, Key: "n", Cond: "=", CondValue: []byte("1"), Value: []byte("2"),
		ClientID: 99, Seq: 1, TimeoutMs: 1000}
	c.net.mu.Lock()
	c.net.DropAnswers = true
	c.net.mu.Unlock()
	r := c.do(f, cas)
	c.net.mu.Lock()
	c.net.DropAnswers = false
	c.net.mu.Unlock()
	if r.Code != api.CodeTimeout {
		t.Fatalf("a forward applied but unanswered: exit %d %s, want 2", r.Code, r.Msg)
	}
	cas.TimeoutMs = 3000
	if r := c.do(f, cas); r.Code != 0 {
		t.Fatalf("the same conditional set again: exit %d %s, want 0 (the first answer, deduplicated)", r.Code, r.Msg)
	}
	if r := c.do(f, api.Request{Op: api.OpGet, Key: "n", TimeoutMs: 3000}); string(r.Value) != "2" {
		t.Fatalf("n = %q, want 2", r.Value)
	}
}

// With a fake clock nothing times out until the clock says so: a write to a member that
// can never be elected (the other voter never runs) waits, then answers 11 at its
// deadline, not before.
func TestMemClusterFakeClock(t *testing.T) {
	clock := NewFakeClock()
	c := startMemMembers(t, clock, []raftcore.NodeID{"m1", "m2"}, []raftcore.NodeID{"m1"}, nil)
	start := clock.Now()
	got := make(chan api.Response, 1)
	req := api.Request{Op: api.OpSet, Key: "k", Value: []byte("v"), ClientID: 5, Seq: 1, TimeoutMs: 1000}
	c.agents["m1"].post(requestEvent(req, func(r api.Response) { got <- r }))
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case r := <-got:
			if passed := clock.Now().Sub(start); passed < time.Second {
				t.Fatalf("answered after %v of the fake clock, before its 1 s deadline: exit %d", passed, r.Code)
			}
			if r.Code != api.CodeNoLeader {
				t.Fatalf("exit %d %s, want 11 (no leader: nothing was appended)", r.Code, r.Msg)
			}
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer after %v of the fake clock", clock.Now().Sub(start))
		}
		clock.Advance(10 * time.Millisecond)
		time.Sleep(time.Millisecond) // lets the loop take the tick; the clock decides, not this
	}
}

// A member on a build from before versions says nothing of itself: the leader refuses
// the commands it would not understand (create, if ... unset), with a message naming it,
// and goes on serving the old ones. Once it is upgraded and says so on a new stream, they
// go through. Status shows what each member said.
func TestMemClusterVersions(t *testing.T) {
	ids := []raftcore.NodeID{"m1", "m2", "m3"}
	old := raftcore.NodeID("m3")
	c := startMemMembers(t, systemClock{}, ids, ids, map[raftcore.NodeID]bool{old: true})
	lead := c.leader()
	if lead == old {
		if r := c.do(lead, api.Request{Op: api.OpTransfer, Member: "m1", TimeoutMs: 5000}); r.Code != 0 {
			t.Fatalf("transfer-leader m1: exit %d %s", r.Code, r.Msg)
		}
		lead = c.leader()
	}
	for _, from := range ids {
		r := c.do(from, api.Request{Op: api.OpCreate, Key: "c", Value: []byte("1"), TimeoutMs: 3000})
		if r.Code != api.CodeUpgrade || !strings.Contains(r.Msg, "m3") || !strings.Contains(r.Msg, "upgrade it first") {
			t.Fatalf("create through %s with m3 on an old build: exit %d %q, want 14 naming m3", from, r.Code, r.Msg)
		}
	}
	r := c.do(lead, api.Request{Op: api.OpIfUnset, Key: "c", Cond: "=", CondValue: []byte("1"), TimeoutMs: 3000})
	if r.Code != api.CodeUpgrade {
		t.Fatalf("if ... unset with m3 on an old build: exit %d %q, want 14", r.Code, r.Msg)
	}
	if r := c.do(old, api.Request{Op: api.OpSet, Key: "s", Value: []byte("v"), TimeoutMs: 3000}); r.Code != 0 {
		t.Fatalf("set through the old member: exit %d %s", r.Code, r.Msg)
	}
	if r := c.do(lead, api.Request{Op: api.OpGet, Key: "c", TimeoutMs: 3000}); r.Code != api.CodeNotFound {
		t.Fatalf("get c after the refused create: exit %d %q, want 9", r.Code, r.Value)
	}
	for _, n := range c.status(lead).Nodes {
		want := api.CommandVersion
		if raftcore.NodeID(n.Name) == old {
			want = 1
		}
		if n.Commands != want {
			t.Errorf("status on %s: %s understands commands %d, want %d", lead, n.Name, n.Commands, want)
		}
	}

	// "upgraded": it says what it is on its next stream to the leader
	c.net.mu.Lock()
	delete(c.net.Silent, old)
	c.net.mu.Unlock()
	c.net.Cut(old, lead, true)
	c.net.Cut(old, lead, false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := c.do(old, api.Request{Op: api.OpCreate, Key: "c", Value: []byte("1"), TimeoutMs: 3000})
		if r.Code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("create after m3 said it understands version %d: exit %d %s", api.CommandVersion, r.Code, r.Msg)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline: the hello travels through the loop
	}
	if r := c.do(lead, api.Request{Op: api.OpCreate, Key: "c", Value: []byte("2"), TimeoutMs: 3000}); r.Code != api.CodeExists {
		t.Fatalf("second create: exit %d %s, want 13", r.Code, r.Msg)
	}
	if r := c.do(old, api.Request{Op: api.OpIfUnset, Key: "c", Cond: "=", CondValue: []byte("1"), TimeoutMs: 3000}); r.Code != 0 {
		t.Fatalf("if c = 1 unset: exit %d %s", r.Code, r.Msg)
	}
	for _, id := range ids {
		if r := c.do(id, api.Request{Op: api.OpGet, Key: "c", Stale: true}); r.Code != api.CodeNotFound {
			// stale reads: each member's own state, once it applied the unset
			deadline := time.Now().Add(5 * time.Second)
			for r.Code != api.CodeNotFound && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				r = c.do(id, api.Request{Op: api.OpGet, Key: "c", Stale: true})
			}
			if r.Code != api.CodeNotFound {
				t.Fatalf("%s still holds c after if ... unset: %q", id, r.Value)
			}
		}
	}
}

// A lease survives leader changes without being given its time again: each new leader
// resumes the countdown from its own apply of the last renewal. Renewed once, then
// through four transfers, the key is on every member until its last renewal + ttl, and
// gone from every member by its last renewal + ttl + 1 s (the README's bound after a
// transfer), however many changes came between.
func TestMemClusterLeaseLeaderChange(t *testing.T) {
	ids := []raftcore.NodeID{"m1", "m2", "m3"}
	c := startMemCluster(t, systemClock{}, ids...)
	lead := c.leader()
	start := time.Now()
	var r api.Response
	for deadline := time.Now().Add(5 * time.Second); ; {
		// the leader may not have heard every member's version yet (exit 14)
		if r = c.do(lead, api.Request{Op: api.OpSetLease, Key: "k", Value: []byte("v"), TTLMs: 2000, TimeoutMs: 3000}); r.Code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.Code != 0 {
		t.Fatalf("set --ttl 2s: exit %d %s", r.Code, r.Msg)
	}
	time.Sleep(time.Until(start.Add(500 * time.Millisecond))) // waiting for a time, not a condition
	sent := time.Now()
	if r := c.do(ids[2], api.Request{Op: api.OpLeaseKeep, Key: "k", TimeoutMs: 3000}); r.Code != 0 {
		t.Fatalf("lease keep: exit %d %s", r.Code, r.Msg)
	}
	kept := time.Now()
	for i := 0; i < 4; i++ {
		time.Sleep(300 * time.Millisecond) // waiting for a time, not a condition
		to := others(ids, lead)[i%2]
		if r := c.do(lead, api.Request{Op: api.OpTransfer, Member: string(to), TimeoutMs: 5000}); r.Code != 0 {
			t.Fatalf("transfer-leader to %s: exit %d %s", to, r.Code, r.Msg)
		}
		if lead = c.leader(); lead != to {
			t.Fatalf("leader %s after the transfer to %s", lead, to)
		}
	}
	t.Logf("four transfers done %v after the keep", time.Since(kept))
	deadline := kept.Add(2*time.Second + time.Second)
	for _, id := range ids {
		for {
			g := c.do(id, api.Request{Op: api.OpGet, Key: "k", Stale: true})
			if g.Code == api.CodeNotFound {
				if since := time.Since(sent); since < 2*time.Second {
					t.Fatalf("%s lost k %v after its keep was sent (ttl 2s)", id, since)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still holds k %v after its keep was answered (ttl 2s; four leader changes)", id, time.Since(kept))
			}
			time.Sleep(20 * time.Millisecond) // polling with a deadline
		}
	}
}
