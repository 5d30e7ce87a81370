package raftcore

import "testing"

// This file runs a cluster over a timed network: each link delays every message by half a
// round trip plus jitter, in order (as one TCP stream does), with sub-tick resolution. The
// other tests deliver messages by steps, not by time, so they cannot say what a round trip
// close to the election timeout does to elections and check-quorum.

// timedMsg is a message in flight and when it arrives, in substeps.
type timedMsg struct {
	m   Message
	due int
}

// wanNet is the timed network: per link, a FIFO whose release times never go back.
type wanNet struct {
	c        *cluster
	sub      int // substeps per tick
	now      int
	oneWay   func(from, to NodeID) int // half the link's round trip, in substeps
	jitter   int                       // up to this many substeps more, at random
	inflight []timedMsg
	last     map[[2]NodeID]int
	phase    map[NodeID]int // each node ticks at its own phase, as hosts' timers do
}

// collect moves what the nodes sent into flight, with their arrival times.
func (w *wanNet) collect() {
	for _, m := range w.c.net {
		due := w.now + w.oneWay(m.From, m.To)
		if w.jitter > 0 {
			due += w.c.rng.IntN(w.jitter + 1)
		}
		k := [2]NodeID{m.From, m.To}
		due = max(due, w.last[k])
		w.last[k] = due
		w.inflight = append(w.inflight, timedMsg{m, due})
	}
	w.c.net = nil
}

// substep delivers what is due, lets the nodes act, and ticks on tick boundaries.
func (w *wanNet) substep() {
	w.now++
	var later []timedMsg
	for _, tm := range w.inflight {
		if tm.due > w.now {
			later = append(later, tm)
			continue
		}
		w.c.net = append(w.c.net, tm.m)
		w.c.deliver(len(w.c.net) - 1)
	}
	w.inflight = later
	for _, id := range w.c.ids {
		if sn := w.c.nodes[id]; sn.node != nil && (w.now+w.phase[id])%w.sub == 0 {
			sn.node.Tick()
		}
	}
	w.c.processAll()
	w.collect()
	w.c.checkStep()
}

// runWANFailover elects a leader, lets it lead for a while, crashes it, and returns how
// many substeps passed until another leader was elected (-1 if none within limit ticks).
func runWANFailover(seed uint64, sub, rtt, jitter int, tweak func(*Config)) (int, *cluster) {
	ids := []NodeID{"a", "b", "c"}
	c := newCluster(seed, ids, ids)
	c.configure(func(cfg *Config) {
		cfg.MaxInflight, cfg.MaxMsgBytes = 64, 1<<20
		if tweak != nil {
			tweak(cfg)
		}
	})
	w := &wanNet{c: c, sub: sub, oneWay: func(_, _ NodeID) int { return rtt / 2 }, jitter: jitter, last: map[[2]NodeID]int{}, phase: map[NodeID]int{}}
	for _, id := range ids {
		w.phase[id] = c.rng.IntN(sub)
		for _, peer := range ids {
			if peer != id {
				c.nodes[id].node.SetRoundTrip(peer, (rtt+jitter+sub-1)/sub)
			}
		}
	}
	for i := 0; i < 60*sub; i++ {
		w.substep()
	}
	old := c.leader()
	if old == None {
		return -1, c
	}
	// crash at a random phase of the tick
	for i := c.rng.IntN(sub); i > 0; i-- {
		w.substep()
	}
	c.crash(old)
	start := w.now
	for i := 0; i < 100*sub; i++ {
		w.substep()
		if l := c.leader(); l != None && l != old {
			return w.now - start, c
		}
	}
	return -1, c
}

// A leader's death is followed by another's election within two election timeouts and
// two round trips (a pre-vote's and a vote's) and a tick, at any round trip up to half the
// election timeout and with jitter on the links. The timeout is drawn from [T, 2T) after
// the last message heard, so the first follower to stand does so within 2T; what this
// shows is that the first election does not split (deferCampaign). Without it, two
// followers standing together cost a new timeout: 3.4 T on a LAN and 9.6 T at half T (a
// third of the runs at 0.5 T had no leader after 100 T).
func TestWANFailover(t *testing.T) {
	const sub, et = 10, 10 // substeps a tick, ticks an election timeout
	for _, tc := range []struct{ rtt, jitter int }{{0, 0}, {0, 20}, {10, 0}, {10, 20}, {50, 0}, {50, 20}} {
		worst := 0
		maxRTT := tc.rtt + 2*tc.jitter + 2 // a message waits a substep to be delivered
		bound := 2*et*sub + 2*maxRTT + sub
		for seed := uint64(1); seed <= 200; seed++ {
			d, c := runWANFailover(seed, sub, tc.rtt, tc.jitter, nil)
			if len(c.violations) > 0 {
				t.Fatalf("seed %d: %s", seed, c.report())
			}
			if d < 0 || d > bound {
				t.Fatalf("seed %d, round trip %d%% of T, jitter %d%%: a new leader after %d%% of T (-1: none within 100 T), want at most %d%%",
					seed, tc.rtt, tc.jitter, d, bound)
			}
			worst = max(worst, d)
		}
		t.Logf("round trip %d%% of T, jitter %d%%: new leader within %d%% of T (bound %d%%)", tc.rtt, tc.jitter, worst, bound)
	}
}
