package raftcore

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// The simulator runs many random schedules against the cluster driver: message loss,
// duplication, reordering and delay, partitions and heals, crashes and restarts from
// durable state only, proposals, reads, compactions, membership changes and leadership
// transfers. The driver checks safety after every event; at the end the faults stop and
// the cluster must elect a leader and commit new proposals on every member (liveness).

var (
	simSeeds    = flag.Int("sim.seeds", 5000, "number of random schedules TestSim runs")
	simSteps    = flag.Int("sim.steps", 2000, "events per schedule")
	simSeed     = flag.Uint64("sim.seed", 0, "run only this seed, with a trace of events on failure")
	simTraceLen = flag.Int("sim.trace", 100, "events of the trace printed with a failure")
)

type simResult struct {
	seed                                    uint64
	steps, elections, commits, reads, snaps int
	restarts, memberships, transfers        int
	failure                                 string
}

func TestSim(t *testing.T) {
	seeds := make([]uint64, 0, *simSeeds)
	if *simSeed != 0 {
		seeds = append(seeds, *simSeed)
	} else {
		for i := 1; i <= *simSeeds; i++ {
			seeds = append(seeds, uint64(i))
		}
	}
	if testing.Short() && *simSeed == 0 {
		seeds = seeds[:min(len(seeds), 100)]
	}
	start := time.Now()
	results := make([]simResult, len(seeds))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = runSim(seeds[i], *simSteps, *simSeed != 0)
			}
		}()
	}
	for i := range seeds {
		next <- i
	}
	close(next)
	wg.Wait()

	var total simResult
	failed := 0
	for _, r := range results {
		total.steps += r.steps
		total.elections += r.elections
		total.commits += r.commits
		total.reads += r.reads
		total.snaps += r.snaps
		total.restarts += r.restarts
		total.memberships += r.memberships
		total.transfers += r.transfers
		if r.failure != "" {
			failed++
			if failed <= 3 {
				t.Errorf("seed %d failed; replay with:\n  go test ./raftcore/ -run 'TestSim$' -sim.seed=%d -sim.steps=%d -v\n%s",
					r.seed, r.seed, *simSteps, r.failure)
			}
		}
	}
	fmt.Printf("sim: seeds=%d steps=%d elections=%d commits=%d violations=%d (reads=%d snapshot-chunks=%d restarts=%d membership-changes=%d transfers=%d, %.1fs)\n",
		len(seeds), total.steps, total.elections, total.commits, failed, total.reads, total.snaps,
		total.restarts, total.memberships, total.transfers, time.Since(start).Seconds())
}

func runSim(seed uint64, steps int, trace bool) (res simResult) {
	res.seed = seed
	defer func() {
		if p := recover(); p != nil {
			res.failure = fmt.Sprintf("panic: %v", p)
			if !trace {
				// replay with the trace on to show what led there
				res.failure += "\n" + runSim(seed, steps, true).failure
			}
		}
	}()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	universe := []NodeID{"n1", "n2", "n3", "n4", "n5"}
	nVoters := []int{1, 2, 3, 3, 3, 4, 5, 5}[rng.IntN(8)]
	c := newCluster(seed, universe, universe[:nVoters])
	// A short election timeout packs more elections into each schedule. Small messages
	// and windows split a new leader's backlog over several appends, the situation where
	// the commit rule and the follower's commit limit matter.
	maxBytes := []uint64{40, 100, 256, 4096}[rng.IntN(4)]
	inflight := []int{1, 2, 4, 64}[rng.IntN(4)]
	c.configure(func(cfg *Config) {
		cfg.ElectionTicks = 5
		cfg.MaxMsgBytes = maxBytes
		cfg.MaxInflight = inflight
	})
	c.traceOn = trace
	c.dropRate = []float64{0, 0.02, 0.1, 0.3}[rng.IntN(4)]
	c.dupRate = []float64{0, 0.02, 0.1}[rng.IntN(3)]
	pick := func() *simNode { return c.nodes[universe[rng.IntN(len(universe))]] }
	writes := 0

	for c.step = 0; c.step < steps && len(c.violations) == 0; c.step++ {
		x := rng.IntN(1000)
		switch {
		case x < 450: // deliver a few messages, chosen at random: reordering and delay
			for k := rng.IntN(6); k >= 0 && len(c.net) > 0; k-- {
				to := c.deliver(rng.IntN(len(c.net)))
				// usually a node reacts at once; sometimes its disk lags behind its network
				if to != nil {
					switch rng.IntN(4) {
					case 0, 1:
						c.process(to)
					case 2:
						c.beginReady(to)
					}
				}
			}
		case x < 650: // a node works through its Ready, possibly only halfway
			sn := pick()
			if len(sn.begun) > 0 && rng.IntN(2) == 0 {
				c.finishReady(sn)
			} else if c.beginReady(sn) && rng.IntN(3) > 0 {
				c.finishReady(sn)
			}
		case x < 770: // time passes on one node, or on all
			if rng.IntN(2) == 0 {
				c.tickAll()
			} else if sn := pick(); sn.node != nil {
				sn.node.Tick()
			}
		case x < 890: // a client writes, to whoever it thinks leads
			id := c.leader()
			if id == None || rng.IntN(10) == 0 {
				id = pick().id
			}
			for k := 1 + rng.IntN(3); k > 0; k-- {
				writes++
				c.propose(id, []byte(fmt.Sprintf("w%d", writes)))
			}
		case x < 920:
			if id := c.leader(); id != None {
				c.read(id)
			}
		case x < 928: // a crash, often of the leader
			id := c.leader()
			if id == None || rng.IntN(2) == 0 {
				id = pick().id
			}
			c.crash(id)
			// the agent tells followers when their leader's process is gone; some hear
			// of it, some do not (their link was down), and now and then a live leader is
			// reported gone by mistake
			for _, sn := range c.nodes {
				if sn.node != nil && rng.IntN(2) == 0 {
					sn.node.LeaderGone(id)
				}
			}
			if l := c.leader(); l != None && rng.IntN(4) == 0 {
				if sn := pick(); sn.node != nil {
					sn.node.LeaderGone(l)
				}
			}
		case x < 943:
			for _, id := range universe {
				if c.nodes[id].node == nil {
					c.restart(id)
					break
				}
			}
		case x < 951: // a partition: a random split, or the leader cut off
			if id := c.leader(); id != None && rng.IntN(3) == 0 {
				c.isolate(id)
				break
			}
			perm := rng.Perm(len(universe))
			cutAt := 1 + rng.IntN(len(universe)-1)
			var a, b []NodeID
			for i, p := range perm {
				if i < cutAt {
					a = append(a, universe[p])
				} else {
					b = append(b, universe[p])
				}
			}
			c.partition(a, b)
		case x < 966:
			c.heal()
		case x < 974:
			c.compact(pick().id)
		case x < 978:
			// the application begins writing a snapshot (SnapshotSoon), which a later
			// compact of the node brings; now and then the write fails instead
			if sn := pick(); sn.node != nil {
				if rng.IntN(4) == 0 {
					sn.node.SnapshotSoon(0)
					c.logf("snapshot soon on %s: failed", sn.id)
				} else {
					sn.node.SnapshotSoon(sn.appliedIndex)
					c.logf("snapshot soon on %s at %d", sn.id, sn.appliedIndex)
				}
			}
		case x < 989:
			if id := c.leader(); id != None {
				voters, learners := randomMembership(rng, universe)
				if _, err := c.nodes[id].node.ProposeMembership(voters, learners); err == nil {
					res.memberships++
					c.logf("membership on %s: voters=%v learners=%v", id, voters, learners)
				}
			}
		default:
			if id := c.leader(); id != None {
				to := pick().id
				if c.nodes[id].node.TransferLeadership(to) == nil && to != id {
					res.transfers++
					c.logf("transfer %s → %s", id, to)
				}
			}
		}
		c.checkStep()
	}
	res.steps = c.step
	if len(c.violations) == 0 {
		c.checkLiveness()
	}
	res.elections, res.commits, res.reads = c.elections, c.commits, c.reads
	res.snaps, res.restarts = c.snapshotsSent, c.restarts
	if len(c.violations) > 0 {
		if trace {
			res.failure = c.report()
		} else {
			res.failure = runSim(seed, steps, true).failure
		}
	}
	return res
}

func randomMembership(rng *rand.Rand, universe []NodeID) (voters, learners []NodeID) {
	n := []int{1, 2, 3, 3, 3, 4, 5}[rng.IntN(7)]
	perm := rng.Perm(len(universe))
	for i, p := range perm {
		switch {
		case i < n:
			voters = append(voters, universe[p])
		case rng.IntN(2) == 0:
			learners = append(learners, universe[p])
		}
	}
	slices.Sort(voters)
	return voters, learners
}

// checkLiveness stops all faults and requires that the cluster elects a leader and commits
// a new proposal on every member within a bounded time.
func (c *cluster) checkLiveness() {
	c.heal()
	for _, sn := range c.nodes {
		// a snapshot announced is written, or its write fails, in the end
		if sn.node != nil && !c.compact(sn.id) {
			sn.node.SnapshotSoon(0)
		}
	}
	c.dropRate, c.dupRate = 0, 0
	for _, id := range c.ids {
		c.restart(id)
	}
	var want [2]uint64
	proposed := false
	for round := 0; round < 100*10; round++ {
		c.step++
		c.tickAll()
		c.deliverAll(20)
		c.checkStep()
		if len(c.violations) > 0 {
			return
		}
		l := c.leader()
		if l == None {
			continue
		}
		ln := c.nodes[l].node
		if proposed {
			if _, pending := c.proposals[want]; !pending {
				// acknowledged; now every member must have applied it
				done := true
				for _, id := range ln.members.All() {
					if c.nodes[id].appliedIndex < want[0] {
						done = false
					}
				}
				if done && !ln.members.Joint() {
					return
				}
				continue
			}
			if t, _ := ln.log.term(want[0]); t == want[1] && ln.term == want[1] {
				continue // still on its way
			}
		}
		// first attempt, or the proposal was lost with a leader change: propose again
		if idx, term, err := ln.Propose([]byte("final")); err == nil {
			want = [2]uint64{idx, term}
			c.proposals[want] = proposal{node: l, index: idx, term: term, proposedStep: c.step}
			proposed = true
		}
	}
	var state []string
	for _, id := range c.ids {
		if n := c.nodes[id].node; n != nil {
			s := n.Status()
			state = append(state, fmt.Sprintf("%s: %s t%d lead=%s commit=%d last=%d members=%v",
				id, s.Role, s.Term, s.Lead, s.Commit, s.LastIndex, s.Members))
		}
	}
	c.fail("liveness: no leader committed a new proposal on all members within 100 election timeouts after faults stopped (proposed=%v want=%v)\n  %v",
		proposed, want, state)
}
