package agent

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/raftcore"
)

// TestLatencyBuckets: an observation goes to the first bucket whose bound it does not
// pass (a bound is "less or equal", as Prometheus' le), one above every bound to the
// last; the sum is in seconds.
func TestLatencyBuckets(t *testing.T) {
	l := newLatency()
	for _, d := range []time.Duration{0, 500 * time.Microsecond, 501 * time.Microsecond, 5 * time.Second, 6 * time.Second} {
		l.observe(d)
	}
	h := l.histogram()
	want := make([]uint64, len(api.LatencyBounds)+1)
	want[0], want[1], want[len(api.LatencyBounds)-1], want[len(api.LatencyBounds)] = 2, 1, 1, 1
	for i := range want {
		if h.Counts[i] != want[i] {
			t.Errorf("counts %v, want %v", h.Counts, want)
			break
		}
	}
	if h.Count() != 5 || h.Sum < 11.0010 || h.Sum > 11.0011 || len(h.Bounds) != len(h.Counts)-1 {
		t.Errorf("count %d sum %v bounds %d", h.Count(), h.Sum, len(h.Bounds))
	}
	h.Counts[0] = 99
	if l.histogram().Counts[0] != 2 {
		t.Error("a status answer shares the loop's counts")
	}
}

// TestLeaderChangesCounted: a change is a new leader learned, not a leader lost: the
// first leader after a start is none, an election with no leader in between counts
// once, the same leader found again counts nothing.
func TestLeaderChangesCounted(t *testing.T) {
	m := newDriverMetrics()
	for _, l := range []raftcore.NodeID{"", "a", "a", "", "", "a", "b", "", "c", "c"} {
		m.leaderIs(l)
	}
	if m.leaderChanges != 2 {
		t.Errorf("%d changes, want 2 (a to b, b to c)", m.leaderChanges)
	}
}

// TestMemClusterMetrics: status carries the agent's counters: saves and applies timed on
// every member, the data size, the leader changes a transfer makes, and a write that
// found no leader counted as failed where its client asked, not where it went.
func TestMemClusterMetrics(t *testing.T) {
	ids := []raftcore.NodeID{"m1", "m2", "m3"}
	c := startMemCluster(t, systemClock{}, ids...)
	lead := c.leader()
	for i := 0; i < 5; i++ {
		if r := c.do(others(ids, lead)[0], api.Request{Op: api.OpSet, Key: "k", Value: make([]byte, 1000), TimeoutMs: 5000}); r.Code != 0 {
			t.Fatalf("set: %d %s", r.Code, r.Msg)
		}
	}
	for _, id := range ids {
		// a follower applies once the next heartbeat brings the commit
		deadline := time.Now().Add(10 * time.Second)
		for c.status(id).Applied < c.status(lead).Commit && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // polling with a deadline
		}
		st := c.status(id)
		m := st.Metrics
		if m == nil {
			t.Fatalf("%s: no metrics in %+v", id, st)
		}
		if m.Fsync.Count() == 0 || m.Apply.Count() == 0 || m.Fsync.Sum <= 0 || m.DataBytes != 1001 || m.ProposalsFailed != 0 {
			t.Errorf("%s: %+v", id, *m)
		}
		// the JSON a CLI reads back
		b, _ := json.Marshal(st)
		var back api.Status
		if json.Unmarshal(b, &back) != nil || back.Metrics == nil || back.Metrics.Fsync.Count() != m.Fsync.Count() {
			t.Errorf("%s: metrics do not survive JSON: %s", id, b)
		}
	}
	to := others(ids, lead)[0]
	if r := c.do(lead, api.Request{Op: api.OpTransfer, Member: string(to), TimeoutMs: 5000}); r.Code != 0 {
		t.Fatalf("transfer: %d %s", r.Code, r.Msg)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		changed := 0
		for _, id := range ids {
			changed += int(c.status(id).Metrics.LeaderChanges)
		}
		if changed == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d members counted the transfer, want %d", changed, len(ids))
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}

	// one member of two running: no leader ever, so the write fails (11)
	solo := startMemMembers(t, systemClock{}, []raftcore.NodeID{"s1", "s2"}, []raftcore.NodeID{"s1"}, nil)
	if r := solo.do("s1", api.Request{Op: api.OpSet, Key: "k", Value: []byte("v"), TimeoutMs: 300}); !api.ProposalFailed(r.Code) {
		t.Fatalf("a write with no leader: %d %s", r.Code, r.Msg)
	}
	solo.do("s1", api.Request{Op: api.OpGet, Key: "k", TimeoutMs: 300}) // a read is no proposal
	if m := solo.status("s1").Metrics; m.ProposalsFailed != 1 || m.LeaderChanges != 0 {
		t.Errorf("no leader: %+v", *m)
	}
}

// TestMemClusterSizesAnnounced: every member says its data size to its peers again every
// announceEvery, so that the leader's status shows each member's as of a moment ago,
// and the one of a member that has not applied the latest writes yet (cut off) as it
// was.
func TestMemClusterSizesAnnounced(t *testing.T) {
	defer func(d time.Duration) { announceEvery = d }(announceEvery)
	announceEvery = 20 * time.Millisecond
	ids := []raftcore.NodeID{"m1", "m2", "m3"}
	c := startMemCluster(t, systemClock{}, ids...)
	lead := c.leader()
	behind := others(ids, lead)[0]
	set := func(key string, n int) {
		t.Helper()
		if r := c.do(lead, api.Request{Op: api.OpSet, Key: key, Value: make([]byte, n), TimeoutMs: 5000}); r.Code != 0 {
			t.Fatalf("set: %d %s", r.Code, r.Msg)
		}
	}
	set("a", 1000) // 1001 bytes everywhere
	sizes := func() map[string]uint64 {
		out := map[string]uint64{}
		for _, n := range c.status(lead).Nodes {
			out[n.Name] = n.DataBytes
		}
		return out
	}
	waitSizes := func(want map[string]uint64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; {
			got := sizes()
			if reflect.DeepEqual(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the leader's view of the sizes: %v, want %v", got, want)
			}
			time.Sleep(10 * time.Millisecond) // polling with a deadline
		}
	}
	waitSizes(map[string]uint64{"m1": 1001, "m2": 1001, "m3": 1001})
	// behind hears nothing from the leader (but still reaches it): it stays at 1001
	c.net.Cut(lead, behind, true)
	set("b", 2000)
	want := map[string]uint64{"m1": 3002, "m2": 3002, "m3": 3002}
	want[string(behind)] = 1001
	waitSizes(want)
}

// TestMemClusterLinkRTT: the round trips the driver measures on the leader's links (its
// ssh keep-alives) show, smoothed as TCP smooths its own, in the leader's status.
func TestMemClusterLinkRTT(t *testing.T) {
	ids := []raftcore.NodeID{"m1", "m2", "m3"}
	c := startMemCluster(t, systemClock{}, ids...)
	lead := c.leader()
	peer := others(ids, lead)[0]
	for _, d := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		c.agents[lead].post(event{rtt: &rttSample{peer, d}})
	}
	c.agents[lead].post(event{rtt: &rttSample{"not a member!", time.Second}}) // ignored
	var got int64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, n := range c.status(lead).Nodes {
			if n.Name == string(peer) {
				got = n.RTTUs
			}
		}
		if got == 112_500 {
			return
		}
	}
	t.Fatalf("%s's round trip in %s's status: %d µs, want 112500 (7/8 of 100 ms, 1/8 of 200 ms)", peer, lead, got)
}
