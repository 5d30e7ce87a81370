package core

import (
	"container/heap"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/client/lockcore"
	"lite-raft/internal/kvmodel"
	"lite-raft/raftcore"
)

// The whole-system simulation runs 3 to 5 agent cores, each with its state machine, over
// a simulated network and simulated disks, in virtual time, one seed a schedule:
//   - the network delays, reorders, duplicates and drops Raft messages, and cuts links
//     both ways or one way (a host whose ssh to another is refused while the other way
//     works); forwarded calls fail before they are sent (no link), or break after (the
//     request or its answer lost, the callee crashed);
//   - hosts crash and restart from their durable state only; disks lag (a batch is
//     durable some milliseconds after it was handed out, and a crash loses it);
//     snapshot saves fail for a while;
//   - membership changes (del-member, add-member with a first boot in join mode) and
//     leadership transfers run as the CLI runs them;
//   - clients, each on one host as lite-raft-client is, run get, set and conditional set
//     and map what they are told through client's exit-code table.
//
// Checks: porcupine over the clients' histories, with exit 2 as unknown and every other
// failure of a write as "not applied" (so a wrong 11 or 12 is a violation); the same
// entry at each index on every host; no request forwarded more than maxForwards times
// and no host logging more than its budget (a spin is a violation); and at the end, with
// the faults healed, a write through every member must succeed.

var (
	agentSimSeeds = flag.Int("agentsim.seeds", 1000, "number of schedules TestAgentSim runs")
	agentSimSeed  = flag.Uint64("agentsim.seed", 0, "run only this seed, with a trace on failure")
	agentSimMs    = flag.Int("agentsim.ms", 6000, "virtual milliseconds of faults per schedule")
	agentSimBug   = flag.String("agentsim.bug", "", "plant a bug: broken-is-not-sent, stale-leader-read, retry-new-id, no-backoff, generation-reused, txn-acts-early, lease-restart, sessions-by-count, revoke-every-tick, early-promotion, read-before-applied")
)

const (
	simTickMs     = 10
	clientTimeout = 800 // ms a simulated client waits (lite-raft-client --timeout)
	maxForwards   = 40  // forwards of one request by one host before it counts as a spin
	liveBoundMs   = 500 // ms a healed cluster may take to answer checkLive's writes
)

func TestAgentSim(t *testing.T) {
	var b bugs
	if err := b.plant(*agentSimBug); err != nil {
		t.Fatal(err)
	}
	seeds := make([]uint64, 0, *agentSimSeeds)
	if *agentSimSeed != 0 {
		seeds = append(seeds, *agentSimSeed)
	} else {
		for i := 1; i <= *agentSimSeeds; i++ {
			seeds = append(seeds, uint64(i))
		}
	}
	if testing.Short() && *agentSimSeed == 0 {
		seeds = seeds[:min(len(seeds), 50)]
	}
	start := time.Now()
	results := runSims(seeds, b, "", *agentSimMs, *agentSimSeed != 0)
	var total simStats
	failed := 0
	for _, r := range results {
		total.add(r.stats)
		if r.failure != "" {
			failed++
			if failed <= 3 {
				t.Errorf("seed %d failed; replay with:\n  go test ./agent/core/ -run 'TestAgentSim$' -agentsim.seed=%d -agentsim.ms=%d%s -v\n%s",
					r.seed, r.seed, *agentSimMs, bugFlag(*agentSimBug), r.failure)
			}
		}
	}
	fmt.Printf("agentsim: seeds=%d ops=%d ok=%d unknown=%d notapplied=%d failedreads=%d lockruns=%d fenced=%d/%d refused holderfaults=%d frozenoverlaps=%d ttlkeys=%d/%d gone leaderrevokes=%d promotions=%d watched=%d changes/%d restarts faults=%d crashes=%d memberships=%d (configurations committed %d) transfers=%d forwards=%d snapshots=%d maxlog=%d lockhandmax=%d livemax=%d violations=%d (%.1fs)\n",
		len(seeds), total.ops, total.ok, total.unknown, total.notApplied, total.failedReads, total.lockRuns, total.fencedOK, total.fencedRefused, total.holderFaults, total.frozenOverlaps, total.ttlKeys, total.ttlGone, total.leaderRevokes, total.promotions, total.watchChanges, total.watchRestarts, total.faults, total.crashes,
		total.memberships, total.configs, total.transfers, total.forwards, total.snapshots, total.maxLog, total.lockHandMax, total.liveMax, failed, time.Since(start).Seconds())
}

// TestAgentSimCatchesPlantedBugs plants each bug the simulation must catch and checks
// that some seed fails for each, within a bounded number of seeds.
func TestAgentSimCatchesPlantedBugs(t *testing.T) {
	if *agentSimBug != "" || *agentSimSeed != 0 {
		t.Skip("runs only without -agentsim.bug and -agentsim.seed")
	}
	for _, name := range []string{"broken-is-not-sent", "stale-leader-read", "retry-new-id", "no-backoff", "generation-reused", "txn-acts-early", "lease-restart", "revoke-every-tick", "early-promotion", "read-before-applied"} {
		t.Run(name, func(t *testing.T) {
			var b bugs
			if err := b.plant(name); err != nil {
				t.Fatal(err)
			}
			const limit = 400
			if r, ok := firstFailure(b, "", limit); ok {
				line, _, _ := strings.Cut(r.failure, "\n")
				t.Logf("caught by seed %d: %s", r.seed, line)
				return
			}
			t.Fatalf("no seed of %d caught the planted bug %s", limit, name)
		})
	}
}

// firstFailure runs seeds from 1 on, 16 at a time, up to limit, with the bugs b planted
// in the cores and plant in their drivers (testDriver.plant), until one fails.
func firstFailure(b bugs, plant string, limit uint64) (simResult, bool) {
	const batch = 16
	for first := uint64(1); first <= limit; first += batch {
		seeds := make([]uint64, batch)
		for i := range seeds {
			seeds[i] = first + uint64(i)
		}
		for _, r := range runSims(seeds, b, plant, *agentSimMs, false) {
			if r.failure != "" {
				return r, true
			}
		}
	}
	return simResult{}, false
}

func bugFlag(name string) string {
	if name == "" {
		return ""
	}
	return " -agentsim.bug=" + name
}

func (b *bugs) plant(name string) error {
	switch name {
	case "":
	case "broken-is-not-sent":
		b.brokenIsNotSent = true
	case "stale-leader-read":
		b.staleLeaderRead = true
	case "retry-new-id":
		b.retryNewID = true
	case "no-backoff":
		b.noBackoff = true
	case "generation-reused":
		b.generationReused = true
	case "txn-acts-early":
		b.txnActsEarly = true
	case "lease-restart":
		b.leaseRestart = true
	case "sessions-by-count":
		b.sessionsByCount = true
	case "revoke-every-tick":
		b.revokeEveryTick = true
	case "early-promotion":
		b.earlyPromotion = true
	case "read-before-applied":
		b.readBeforeApplied = true
	default:
		return fmt.Errorf("unknown bug %q", name)
	}
	return nil
}

type simResult struct {
	seed    uint64
	stats   simStats
	failure string
}

type simStats struct {
	lockRuns, fencedOK, fencedRefused         int
	holderFaults, frozenOverlaps              int
	ops, ok, unknown, notApplied, failedReads int
	faults, crashes, memberships, transfers   int
	forwards, snapshots, maxLog               int
	configs                                   int // membership entries committed
	ttlKeys, ttlGone                          int // TTL keys set, and revoked within their bound
	leaderRevokes, promotions                 int // seen by simchecks_test.go
	lockHandMax, liveMax                      int // ms, once the faults are over (simchecks_test.go, checkLive)
	watchChanges, watchRestarts               int // changes watches saw, and their restarts after a 17
}

func (s *simStats) add(o simStats) {
	s.ops += o.ops
	s.lockRuns += o.lockRuns
	s.fencedOK += o.fencedOK
	s.fencedRefused += o.fencedRefused
	s.holderFaults += o.holderFaults
	s.frozenOverlaps += o.frozenOverlaps
	s.ok += o.ok
	s.unknown += o.unknown
	s.notApplied += o.notApplied
	s.failedReads += o.failedReads
	s.faults += o.faults
	s.crashes += o.crashes
	s.memberships += o.memberships
	s.configs += o.configs
	s.transfers += o.transfers
	s.forwards += o.forwards
	s.snapshots += o.snapshots
	s.maxLog = max(s.maxLog, o.maxLog)
	s.ttlKeys += o.ttlKeys
	s.ttlGone += o.ttlGone
	s.leaderRevokes += o.leaderRevokes
	s.promotions += o.promotions
	s.lockHandMax = max(s.lockHandMax, o.lockHandMax)
	s.liveMax = max(s.liveMax, o.liveMax)
	s.watchChanges += o.watchChanges
	s.watchRestarts += o.watchRestarts
}

func runSims(seeds []uint64, b bugs, plant string, ms int, trace bool) []simResult {
	results := make([]simResult, len(seeds))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = runSim(seeds[i], b, plant, ms, trace)
			}
		}()
	}
	for i := range seeds {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// ---- the simulated world ----

type simEvent struct {
	at  Time
	seq uint64
	fn  func()
}

type eventQueue []*simEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int)     { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)       { *q = append(*q, x.(*simEvent)) }
func (q *eventQueue) Pop() any         { old := *q; e := old[len(old)-1]; *q = old[:len(old)-1]; return e }
func (q *eventQueue) push(e *simEvent) { heap.Push(q, e) }

type simNode struct {
	// ppm is how fast its clock runs, in millionths (up to lockcore.DriftPPM each way):
	// its core and its lock clients read the time on it
	ppm      int
	id       raftcore.NodeID
	core     *Core
	up       bool
	stopped  bool // removed by del-member and stopped: stays down until booted again
	gen      int  // incarnation: events meant for an earlier one are dropped
	disk     memDisk
	drv      *testDriver // this incarnation's driver
	lagMs    int         // its disk lags: a batch is durable up to lagMs later
	hashedAt uint64      // the applied index whose state it last hashed
	snapFail bool
	replies  map[ReplyTo]func(resp api.Response, broken bool)
	next     ReplyTo
	logLines int
	linkSeen map[raftcore.NodeID]bool // the link state last reported to the core

	// its applier lags: committed entries are applied a few at a time, up to applyLagMs
	// apart (0: at once)
	applyLagMs int
}

type simClient struct {
	id       int
	host     raftcore.NodeID
	clientID uint64
	seq      uint64
	last     map[string]string // the last value seen per key, for conditional sets
	// an overlapping client's lane (simchecks_test.go): its next key, and what to do once
	// its operation finished, instead of the next one
	key  string
	then func()
}

type sim struct {
	ttl      *simTTL
	checks   *simChecks
	watch    *simWatch
	lockers  []*simLocker
	lockRuns []*simLockRun
	writes   []simFencedWrite
	stateAt  map[uint64]uint64 // applied index → hash of the state machine there
	seed     uint64
	keep     uint64 // entries kept behind a snapshot (the same on every host, as Storage needs)
	rng      *rand.Rand
	bugs     bugs
	plant    string // a driver's planted bug (testDriver.plant)
	now      Time
	seq      uint64
	q        eventQueue
	hosts    []raftcore.NodeID
	nodes    map[raftcore.NodeID]*simNode
	cut      map[[2]raftcore.NodeID]bool // {from, to}: from cannot reach to
	// lastReport is when the last link report from→to is delivered
	lastReport map[[2]raftcore.NodeID]Time

	dropRate, dupRate float64
	keys              []string
	history           []porcupine.Operation
	committed         map[uint64]uint64 // index → hash of the entry committed there
	forwards          map[string]int
	adminBusy         bool
	faultsOver        bool

	stats      simStats
	violations []string
	trace      []string
	tracing    bool
}

func runSim(seed uint64, b bugs, plant string, ms int, trace bool) (res simResult) {
	res.seed = seed
	s := &sim{seed: seed, rng: rand.New(rand.NewPCG(seed, 0xa6e17)), bugs: b, plant: plant,
		nodes: map[raftcore.NodeID]*simNode{}, cut: map[[2]raftcore.NodeID]bool{}, lastReport: map[[2]raftcore.NodeID]Time{},
		committed: map[uint64]uint64{}, stateAt: map[uint64]uint64{}, forwards: map[string]int{}, tracing: trace,
		keys: []string{"p/k0", "p/k1", "q/k2", "q/k3"}, keep: []uint64{0, 5, 50}[seed%3], checks: newSimChecks()}
	defer func() {
		if p := recover(); p != nil {
			s.violate("panic: %v\n%s", p, debug.Stack())
		}
		res.stats = s.stats
		if len(s.violations) > 0 {
			res.failure = strings.Join(s.violations[:min(5, len(s.violations))], "\n")
			if trace {
				res.failure += "\ntrace (last events):\n  " + strings.Join(s.trace[max(0, len(s.trace)-300):], "\n  ")
			} else {
				res.failure += "\n(the replay command prints a trace)"
			}
		}
	}()
	s.dropRate = []float64{0, 0.01, 0.05}[s.rng.IntN(3)]
	s.dupRate = []float64{0, 0.01}[s.rng.IntN(2)]
	s.hosts = []raftcore.NodeID{"h1", "h2", "h3", "h4", "h5"}
	nVoters := 3 + s.rng.IntN(2)
	voters := s.hosts[:nVoters]
	for _, h := range s.hosts {
		n := &simNode{id: h, linkSeen: map[raftcore.NodeID]bool{}, stopped: true,
			ppm: s.rng.IntN(2*lockcore.DriftPPM+1) - lockcore.DriftPPM}
		n.disk.store = raftcore.NewMemoryStorage(raftcore.Snapshot{}, nil)
		s.nodes[h] = n
	}
	s.lagAppliers() // some members apply late (simwatch_test.go)
	for _, h := range voters {
		n := s.nodes[h]
		n.disk.store = raftcore.NewMemoryStorage(raftcore.Snapshot{Meta: raftcore.SnapshotMeta{
			Members: raftcore.Membership{Voters: slices.Clone(voters)}}}, nil)
		s.boot(n)
	}
	for i := 0; i < 6; i++ {
		c := &simClient{id: i, host: voters[i%len(voters)], clientID: uint64(i+1)<<8 | 1, last: map[string]string{}}
		s.after(Time(s.rng.IntN(100)), func() { s.clientOp(c) })
	}
	// clients with two operations at a time (simchecks_test.go)
	s.startOverlapClients(voters)
	s.startLockers(voters)
	s.startTTLClients(voters, ms)
	s.startSessionClients() // crowds of client IDs and late retries (simsession_test.go)
	// a membership change in most schedules (simchecks_test.go)
	s.startMemberChanges(ms)
	s.startWatchClients(ms) // watches that must see every change once (simwatch_test.go)
	s.after(Time(200+s.rng.IntN(300)), s.nemesis)
	end := Time(ms)
	s.runUntil(end)
	// faults end: heal everything, bring every member back, then every member must serve
	s.faultsOver = true
	s.healAll()
	s.after(lockSettleMs, func() { s.watchLockProgress(end+3000, lockHand{}) })
	for _, h := range s.hosts {
		n := s.nodes[h]
		n.lagMs, n.snapFail = 0, false
		if !n.up && !n.stopped {
			s.boot(n)
		}
	}
	s.runUntil(end + 3000)
	if len(s.violations) == 0 {
		s.checkLive(end + 3000)
	}
	if len(s.violations) == 0 {
		s.checkHistory()
	}
	if len(s.violations) == 0 {
		s.checkLockRuns()
	}
	for _, n := range s.nodes {
		s.stats.maxLog = max(s.stats.maxLog, n.logLines)
	}
	return res
}

func (s *sim) violate(format string, args ...any) {
	msg := fmt.Sprintf("violation at %d ms: ", s.now) + fmt.Sprintf(format, args...)
	s.violations = append(s.violations, msg)
	s.tracef("%s", msg)
}

func (s *sim) tracef(format string, args ...any) {
	if s.tracing {
		s.trace = append(s.trace, fmt.Sprintf("%6d ", s.now)+fmt.Sprintf(format, args...))
	}
}

func (s *sim) after(d Time, fn func()) {
	s.seq++
	s.q.push(&simEvent{at: s.now + d, seq: s.seq, fn: fn})
}

func (s *sim) runUntil(t Time) {
	same := 0 // events in a row at one virtual time: a spin never lets time pass
	for len(s.q) > 0 && len(s.violations) == 0 {
		if s.q[0].at > t {
			break
		}
		e := heap.Pop(&s.q).(*simEvent)
		if e.at == s.now {
			if same++; same > 200_000 {
				s.violate("200,000 events at %d ms without time passing: something spins", s.now)
				return
			}
		} else {
			same = 0
		}
		s.now = e.at
		e.fn()
	}
	s.now = max(s.now, t)
}

// ---- hosts ----

// clock is host n's clock now, in ms, as its core reads it.
func (s *sim) clock(n *simNode) Time { return Time(s.reading(n) / 1e6) }

// reading is host n's clock now, in ns, as its lock clients and guards read it: the
// simulation's time, running ppm fast.
func (s *sim) reading(n *simNode) lockcore.Reading {
	return lockcore.Reading(int64(s.now) * int64(1_000_000+n.ppm))
}

// simTime is when host n's clock shows r: the earliest simulation time at which it does.
func (s *sim) simTime(n *simNode, r lockcore.Reading) Time {
	per := int64(1_000_000 + n.ppm)
	return Time((int64(r) + per - 1) / per)
}

func (s *sim) boot(n *simNode) {
	cfg := Config{Raft: raftcore.Config{ID: n.id, ElectionTicks: 10, HeartbeatTicks: 1,
		Rand: rand.New(rand.NewPCG(s.rng.Uint64(), 1)), MaxMsgBytes: 4096, SnapshotChunkBytes: 512,
		SnapshotWindow: 1 + s.rng.IntN(4), MaxCacheBytes: []uint64{1, 2048, 1 << 20}[s.rng.IntN(3)],
		KeepEntries: s.keep, KeepPrevious: s.seed%2 == 0, Storage: n.disk.store},
		TickMs: simTickMs, SnapshotPeriod: uint64(20 + s.rng.IntN(60))}
	kv, err := n.disk.kv()
	if err != nil {
		s.violate("%s: its snapshot does not load: %v", n.id, err)
		return
	}
	c, err := New(cfg, n.disk.state(), kv)
	if err != nil {
		s.violate("%s does not restart from its durable state: %v", n.id, err)
		return
	}
	c.bugs = s.bugs
	n.core, n.up, n.stopped = c, true, false
	n.drv = s.driver(n)
	s.watchAppends(n)
	n.gen++
	n.replies = map[ReplyTo]func(api.Response, bool){}
	n.linkSeen = map[raftcore.NodeID]bool{}
	s.tracef("%s boots (term %d, log to %d, snapshot %d)", n.id, n.disk.hs.Term, c.Node().Status().LastIndex, c.Node().Status().Snapshot.Index)
	gen := n.gen
	var tick func()
	tick = func() {
		if n.gen != gen || !n.up {
			return
		}
		n.core.Tick(s.clock(n))
		s.pump(n)
		s.after(simTickMs, tick)
	}
	s.after(Time(s.rng.IntN(simTickMs)+1), tick)
	s.reportLinks()
}

func (s *sim) crash(n *simNode) {
	if !n.up {
		return
	}
	s.stats.crashes++
	s.tracef("%s crashes", n.id)
	n.up, n.core = false, nil
	n.drv.stop() // what its disk had not saved yet is lost
	n.gen++
	// calls and requests it held: their streams break
	for _, to := range sortedKeys(n.replies) {
		n.replies[to](api.Response{}, true)
	}
	n.replies = nil
	s.reportLinks()
}

// driver makes the driver of host n's core: its disk, the simulated network and
// clients, and the checks made on what it applies.
func (s *sim) driver(n *simNode) *testDriver {
	d := &testDriver{c: n.core, disk: &n.disk, now: func() Time { return s.clock(n) }, after: s.after,
		reply: func(r Reply) {
			if fn := n.replies[r.To]; fn != nil {
				delete(n.replies, r.To)
				fn(r.Resp, false)
			}
		},
		call: func(c Call) { s.call(n, c) },
		run:  func(r Run) { s.run(n, r) },
		send: func(m raftcore.Message) { s.send(n.id, m) },
		log: func(l string) {
			n.logLines++
			s.tracef("%s log: %s", n.id, l)
			if budget := 100 + int(s.now/1000)*40; n.logLines > budget {
				s.violate("%s logged %d lines in %d ms (budget %d): a failure is logged without limit", n.id, n.logLines, s.now, budget)
			}
		},
		applying: func(rd Ready) {
			for _, e := range rd.CommittedEntries {
				h := fnv.New64a()
				fmt.Fprintf(h, "%d/%d/%d/", e.Term, e.Type, e.Index)
				h.Write(e.Data)
				if prev, ok := s.committed[e.Index]; ok && prev != h.Sum64() {
					s.violate("%s applied another entry at %d than a host before it", n.id, e.Index)
				} else if !ok && e.Type == raftcore.EntryMembership {
					s.stats.configs++
				}
				s.committed[e.Index] = h.Sum64()
			}
		},
		advanced: func(Ready) {
			// every member holds the same state at the same applied index: checked at
			// every 32nd index (the whole state is hashed)
			// (once an index: with lagging appliers, many batches advance at one applied index)
			if a := n.core.Applied(); a%32 == 0 && a != n.hashedAt {
				n.hashedAt = a
				h := fnv.New64a()
				h.Write(n.core.kv.Snapshot())
				if prev, ok := s.stateAt[a]; ok && prev != h.Sum64() {
					s.violate("%s's state at %d differs from another member's at that index", n.id, a)
				}
				s.stateAt[a] = h.Sum64()
			}
		},
		snapSaved: func(raftcore.Snapshot) { s.stats.snapshots++ },
		fail:      func(err error) { s.violate("%s: %v", n.id, err) },
		lag: func() Time {
			if n.lagMs == 0 {
				return 0
			}
			return Time(1 + s.rng.IntN(n.lagMs))
		},
		snapshotErr: func() error {
			if n.snapFail {
				return fmt.Errorf("no space left on device")
			}
			return nil
		},
		snapshotLag: func() Time { return Time(s.rng.IntN(40)) },
		plant:       s.plant,
	}
	if n.applyLagMs > 0 {
		// a few entries at a time, more as they pile up: it lags, and catches up
		d.applyLag = func() (int, Time) {
			return max(1+s.rng.IntN(4), len(d.toApply)/8), Time(1 + s.rng.IntN(n.applyLagMs))
		}
	}
	return d
}

// pump does a host's Ready batches, as the agent's loop does.
func (s *sim) pump(n *simNode) {
	if n.up {
		n.drv.pump()
		s.watchPromotions(n)
	}
}

// request hands a request to host n's core; answer is called once with its reply, or
// with broken=true if the host crashes first.
func (s *sim) request(n *simNode, req api.Request, answer func(api.Response, bool)) {
	n.next++
	n.replies[n.next] = answer
	n.core.Request(s.clock(n), n.next, req)
	s.pump(n)
}

// ---- network ----

func (s *sim) reachable(from, to raftcore.NodeID) bool {
	return !s.cut[[2]raftcore.NodeID{from, to}] && s.nodes[to].up
}

func (s *sim) delay() Time {
	if s.rng.IntN(20) == 0 {
		return Time(20 + s.rng.IntN(60))
	}
	return Time(1 + s.rng.IntN(5))
}

func (s *sim) send(from raftcore.NodeID, m raftcore.Message) {
	if s.cut[[2]raftcore.NodeID{from, m.To}] || s.rng.Float64() < s.dropRate {
		return
	}
	copies := 1
	if s.rng.Float64() < s.dupRate {
		copies = 2
	}
	for range copies {
		s.after(s.delay(), func() {
			if t := s.nodes[m.To]; t != nil && t.up {
				t.core.Step(s.clock(t), m)
				s.pump(t)
			}
		})
	}
}

// call is the transport of a forwarded request: it fails before it is sent without a
// link, or breaks after (lost on the way, lost answer, callee crashed), or is answered.
func (s *sim) call(n *simNode, c Call) {
	s.stats.forwards++
	key := fmt.Sprintf("%s/%x/%d", n.id, c.Req.ClientID&^(1<<62), c.Req.Seq)
	if c.Req.ClientID != 0 {
		s.forwards[key]++
		if s.forwards[key] > maxForwards {
			s.violate("%s forwarded %s %s (client %x seq %d) %d times: it spins instead of backing off",
				n.id, c.Req.Op, c.Req.Key, c.Req.ClientID, c.Req.Seq, s.forwards[key])
			return
		}
	}
	gen := n.gen
	done := func(d Time, res CallResult, resp api.Response, err error) {
		s.after(d, func() {
			if n.gen == gen && n.up {
				n.core.CallDone(s.clock(n), c.ID, res, resp, err)
				s.pump(n)
			}
		})
	}
	if !s.reachable(n.id, c.To) {
		done(0, NotSent, api.Response{}, fmt.Errorf("%s: not connected", c.To))
		return
	}
	// the caller's deadline: a call still unanswered then has broken
	answered := false
	s.after(max(0, c.Deadline-s.clock(n)), func() { // (a deadline of n's clock: close enough)
		if !answered {
			answered = true
			done(0, Broken, api.Response{}, fmt.Errorf("context deadline exceeded"))
		}
	})
	if s.rng.IntN(30) == 0 {
		// the stream broke under it: the caller notices soon after
		s.tracef("%s → %s: call %s %s lost on the way", n.id, c.To, c.Req.Op, c.Req.Key)
		answered = true
		done(Time(20+s.rng.IntN(200)), Broken, api.Response{}, fmt.Errorf("stream to %s broke", c.To))
		return
	}
	s.after(s.delay(), func() {
		t := s.nodes[c.To]
		if !t.up || answered {
			return
		}
		s.request(t, c.Req, func(resp api.Response, broken bool) {
			if answered {
				return
			}
			if broken || s.rng.IntN(30) == 0 {
				answered = true
				done(s.delay(), Broken, api.Response{}, fmt.Errorf("stream to %s broke", c.To))
				return
			}
			s.after(s.delay(), func() {
				if !answered {
					answered = true
					done(0, Answered, resp, nil)
				}
			})
		})
	})
}

// run carries out a Run: a first boot in join mode, or a stop.
func (s *sim) run(n *simNode, r Run) {
	gen := n.gen
	s.after(Time(5+s.rng.IntN(20)), func() {
		t := s.nodes[raftcore.NodeID(r.Host)]
		var err error
		switch {
		case t == nil:
			err = fmt.Errorf("no such host")
		case r.Args == "first-boot --join":
			s.crash(t)
			t.disk = memDisk{store: raftcore.NewMemoryStorage(raftcore.Snapshot{}, nil)}
			s.boot(t)
		case r.Args == "stop":
			s.crash(t)
			t.stopped = true
		}
		if n.gen == gen && n.up {
			n.core.RunDone(s.clock(n), r.ID, nil, err)
			s.pump(n)
		}
	})
}

// reportLinks tells each core of changes in its links, as the driver's link watchers do,
// and that a host's agent is gone when its host still answers.
func (s *sim) reportLinks() {
	for _, a := range s.hosts {
		na := s.nodes[a]
		if !na.up {
			continue
		}
		for _, b := range s.hosts {
			if a == b {
				continue
			}
			up := s.reachable(a, b)
			if prev, ok := na.linkSeen[b]; ok && prev == up {
				continue
			}
			na.linkSeen[b] = up
			gone := !up && !s.cut[[2]raftcore.NodeID{a, b}] && !s.nodes[b].stopped
			gen := na.gen
			// a link's reports arrive in the order they were made
			at := max(s.now+Time(1+s.rng.IntN(20)), s.lastReport[[2]raftcore.NodeID{a, b}])
			s.lastReport[[2]raftcore.NodeID{a, b}] = at
			s.after(at-s.now, func() {
				if na.gen != gen || !na.up {
					return
				}
				if gone {
					na.core.LeaderGone(s.clock(na), b)
				}
				na.core.Link(s.clock(na), b, up)
				s.pump(na)
				if nb := s.nodes[b]; up && nb.up {
					// a's stream to b opens with what a says of itself
					nb.core.PeerVersion(s.clock(nb), api.Version{ID: string(a), Commands: api.CommandVersion, Requests: api.RequestVersion})
					s.pump(nb)
				}
			})
		}
	}
}

func (s *sim) healAll() {
	clear(s.cut)
	s.reportLinks()
}

// ---- faults ----

func (s *sim) leader() *simNode {
	var best *simNode
	for _, h := range s.hosts {
		n := s.nodes[h]
		if n.up && n.core.node.Role() == raftcore.Leader && (best == nil || n.core.node.Term() > best.core.node.Term()) {
			best = n
		}
	}
	return best
}

func (s *sim) upNodes() []*simNode {
	var up []*simNode
	for _, h := range s.hosts {
		if s.nodes[h].up {
			up = append(up, s.nodes[h])
		}
	}
	return up
}

func (s *sim) nemesis() {
	if s.faultsOver {
		return
	}
	s.stats.faults++
	pick := func() *simNode { return s.nodes[s.hosts[s.rng.IntN(len(s.hosts))]] }
	switch x := s.rng.IntN(100); {
	case x < 15: // crash a host; it comes back later
		n := pick()
		if n.up {
			s.crash(n)
			s.after(Time(100+s.rng.IntN(1200)), func() {
				if !n.up && !n.stopped && !s.faultsOver {
					s.boot(n)
				}
			})
		}
	case x < 25: // cut one host off, both ways
		n := pick()
		for _, h := range s.hosts {
			if h != n.id {
				s.cut[[2]raftcore.NodeID{n.id, h}] = true
				s.cut[[2]raftcore.NodeID{h, n.id}] = true
			}
		}
		s.tracef("nemesis: %s cut off", n.id)
		s.reportLinks()
	case x < 45: // a one-way link: a follower's ssh to its leader is refused
		a, b := pick(), pick()
		if l := s.leader(); l != nil && s.rng.IntN(2) == 0 {
			b = l
		}
		if a != b {
			s.cut[[2]raftcore.NodeID{a.id, b.id}] = true
			s.tracef("nemesis: %s cannot reach %s (one way)", a.id, b.id)
			s.reportLinks()
		}
	case x < 60:
		s.tracef("nemesis: heal")
		s.healAll()
	case x < 70: // a disk that lags, or one that recovers
		n := pick()
		n.lagMs = []int{0, 0, 5, 20}[s.rng.IntN(4)]
	case x < 75: // snapshot saves fail (disk full) for a while
		n := pick()
		n.snapFail = true
		s.after(Time(200+s.rng.IntN(1000)), func() { n.snapFail = false })
	case x < 85:
		s.transfer()
	default:
		s.membershipChange()
	}
	s.after(Time(100+s.rng.IntN(400)), s.nemesis)
}

// admin runs a request as the CLI does through host via: transfer-leader waits for its
// answer; add-member and del-member start the change and then follow its steps with
// change-wait until it is done. Sometimes the CLI goes away halfway, as a killed
// lite-raft-client would: the leader must carry the change out all the same.
func (s *sim) admin(via *simNode, req api.Request, done func()) {
	if !via.up {
		done()
		return
	}
	req.TimeoutMs = 2000
	s.request(via, req, func(resp api.Response, broken bool) {
		s.tracef("admin: %s %s via %s: exit %d %s%s (broken %v)", req.Op, req.Member, via.id, resp.Code, resp.Msg, resp.JSON, broken)
		if broken || resp.Code != 0 || req.Op == api.OpTransfer || s.rng.IntN(4) == 0 {
			done()
			return
		}
		var st api.ChangeStatus
		if err := json.Unmarshal(resp.JSON, &st); err != nil {
			s.violate("%s answered %s %s with %q: %v", via.id, req.Op, req.Member, resp.JSON, err)
			done()
			return
		}
		if st.Done {
			done()
			return
		}
		s.after(Time(1+s.rng.IntN(50)), func() {
			s.admin(via, api.Request{Op: api.OpChangeWait, Member: req.Member, Steps: uint64(len(st.Steps))}, done)
		})
	})
}

func (s *sim) transfer() {
	l := s.leader()
	if l == nil || s.adminBusy {
		return
	}
	m := l.core.node.Members()
	to := m.Voters[s.rng.IntN(len(m.Voters))]
	s.adminBusy = true
	s.stats.transfers++
	via := s.upNodes()[s.rng.IntN(len(s.upNodes()))]
	s.admin(via, api.Request{Op: api.OpTransfer, Member: string(to)}, func() { s.adminBusy = false })
}

func (s *sim) membershipChange() {
	l := s.leader()
	if l == nil || s.adminBusy {
		return
	}
	m := l.core.appliedMembers
	if m.Joint() || len(m.Learners) > 0 {
		return
	}
	var spare []raftcore.NodeID
	for _, h := range s.hosts {
		if !m.Contains(h) {
			spare = append(spare, h)
		}
	}
	var req api.Request
	switch {
	case len(m.Voters) > 3 && (len(spare) == 0 || s.rng.IntN(2) == 0):
		req = api.Request{Op: api.OpDelMember, Member: string(m.Voters[s.rng.IntN(len(m.Voters))])}
	case len(spare) > 0:
		req = api.Request{Op: api.OpAddMember, Member: string(spare[s.rng.IntN(len(spare))])}
	default:
		return
	}
	s.adminBusy = true
	s.stats.memberships++
	via := s.upNodes()[s.rng.IntN(len(s.upNodes()))]
	s.admin(via, req, func() { s.adminBusy = false })
}

// ---- clients ----

func (s *sim) clientOp(c *simClient) {
	if s.faultsOver {
		return
	}
	key := c.key
	if key == "" {
		key = s.keys[s.rng.IntN(len(s.keys))]
	}
	c.seq++
	req := api.Request{ClientID: c.clientID, Seq: c.seq, Key: key, TimeoutMs: clientTimeout - 100}
	in := kvmodel.Input{Key: key}
	value := fmt.Sprintf("c%d.%d", c.id, c.seq)
	cond := c.last[key]
	if cond == "" {
		cond = "0" // never read: the key is missing or holds another value
	}
	switch x := s.rng.IntN(14); {
	case x < 3:
		req.Op, in.Op = api.OpGet, kvmodel.Get
	case x < 4:
		req.Op, in.Op = api.OpExists, kvmodel.Exists
	case x < 7:
		in.Op, in.Value = kvmodel.Set, value
		req.Op, req.Value = api.OpSet, []byte(in.Value)
	case x < 9:
		in.Op, in.Value, in.Cond = kvmodel.Cas, value, cond
		req.Op, req.Cond, req.CondValue, req.Value = api.OpIfSet, "=", []byte(in.Cond), []byte(in.Value)
	case x < 10:
		in.Op, in.Value = kvmodel.Create, value
		req.Op, req.Value = api.OpCreate, []byte(in.Value)
	case x < 12:
		in.Op, in.Cond = kvmodel.DelIf, cond
		req.Op, req.Cond, req.CondValue = api.OpIfUnset, "=", []byte(in.Cond)
	case x == 13:
		// every key of the key's folder at once (p/k0 and p/k1, or q/k2 and q/k3)
		dir, _, _ := strings.Cut(key, "/")
		in = kvmodel.Input{Op: kvmodel.DelPrefix, Key: dir}
		req.Op, req.Key = api.OpUnsetPrefix, dir
	default:
		// a txn on key and its pair (k0 and k1, k2 and k3): both as last seen (or
		// missing), then both set
		pair := s.keys[slices.Index(s.keys, key)^1]
		in = kvmodel.Input{Op: kvmodel.Txn}
		req.Op, req.Key = api.OpTxn, ""
		for i, k := range []string{key, pair} {
			v := fmt.Sprintf("%s.%d", value, i)
			in.Conds = append(in.Conds, kvmodel.KV{Key: k, Value: c.last[k]})
			in.Sets = append(in.Sets, kvmodel.KV{Key: k, Value: v})
			cond := api.TxnCond{Key: k, Test: api.TestEquals, Value: []byte(c.last[k])}
			if c.last[k] == "" {
				cond = api.TxnCond{Key: k, Test: api.TestMissing}
			}
			req.Txn.If = append(req.Txn.If, cond)
			req.Txn.Then = append(req.Txn.Then, api.TxnAction{Do: api.DoSet, Key: k, Value: []byte(v)})
		}
	}
	call := s.now
	finished := false
	failed := "" // a txn's false condition, as its answer names it
	finish := func(code int) {
		if finished {
			return
		}
		finished = true
		s.record(c, in, call, code, failed)
		if c.then != nil {
			c.then()
			return
		}
		s.after(Time(1+s.rng.IntN(30)), func() { s.clientOp(c) })
	}
	n := s.nodes[c.host]
	if !n.up {
		// no agent to connect to: nothing was sent
		finish(client.ExitCode(req.Op, client.NotSent, client.FailNoServer))
		return
	}
	// lite-raft-client's own deadline: no answer by then is an unknown outcome
	s.after(clientTimeout, func() { finish(client.ExitCode(req.Op, client.MaybeApplied, client.FailTimeout)) })
	s.request(n, req, func(resp api.Response, broken bool) {
		if broken {
			// the local agent hung up after it took the request
			finish(client.ExitCode(req.Op, client.MaybeApplied, client.FailNoServer))
			return
		}
		if resp.Code == 0 && req.Op == api.OpGet {
			c.last[key] = string(resp.Value)
		}
		if req.Op == api.OpTxn && resp.Code == api.CodeCondFalse {
			if r, err := api.DecodeTxnResult(resp.Value); err == nil {
				failed = strconv.Itoa(r.Failed)
			}
		}
		finish(resp.Code)
	})
}

// record adds a finished operation to the history, by what its exit code says
// (kvmodel.Classify: the sim's clients get an answer or the code of the table, never
// nothing).
func (s *sim) record(c *simClient, in kvmodel.Input, call Time, code int, txnFailed string) {
	s.stats.ops++
	value := txnFailed
	if in.Op == kvmodel.Get && code == api.CodeOK {
		value = c.last[in.Key]
	}
	op, o := kvmodel.Operation(c.id, in, int64(call), int64(s.now), code, true, value)
	switch o {
	case kvmodel.OK:
		s.stats.ok++
	case kvmodel.Unknown:
		s.stats.unknown++
	case kvmodel.NotApplied:
		s.stats.notApplied++
	case kvmodel.ReadFailed:
		s.stats.failedReads++ // observed nothing: no constraint
		return
	}
	s.tracef("client %d on %s: %s %s %q (if = %q) → exit %d", c.id, c.host, in.Op, in.Key, in.Value, in.Cond, code)
	s.history = append(s.history, op)
}

func (s *sim) checkHistory() {
	res, info := porcupine.CheckOperationsVerbose(kvmodel.Model.ToModel(), s.history, 20*time.Second)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		_ = info
		s.violate("the history of %d operations is not linearizable", len(s.history))
		if s.tracing {
			for _, op := range s.history {
				s.trace = append(s.trace, fmt.Sprintf("op client %d [%d, %d] %s", op.ClientId, op.Call, op.Return,
					kvmodel.Model.DescribeOperation(op.Input, op.Output)))
			}
		}
	default:
		s.violate("porcupine could not decide within 20 s (%d operations)", len(s.history))
	}
}

// checkLive: with every fault healed, a write through every member must succeed, and
// within liveBoundMs: a cluster healed for 3 s that answers slower is a slowdown.
// (Plus lagAllowance: an applier that lags holds a backlog that takes a while to drain.)
// (watchLockProgress holds the lock's hand-offs to a bound likewise.)
func (s *sim) checkLive(at Time) {
	l := s.leader()
	if l == nil {
		s.violate("no leader %d ms after the faults ended", 3000)
		return
	}
	members := l.core.node.Members()
	if cm := l.core.appliedMembers; cm.Joint() || len(cm.Learners) > 0 || !cm.Equal(members) {
		s.violate("a membership change was left half done: committed %s, in force %s", cm, members)
	}
	pending := map[raftcore.NodeID]int{}
	took := map[raftcore.NodeID]Time{}
	for i, h := range members.Voters {
		n := s.nodes[h]
		if !n.up {
			s.violate("member %s is down after the faults ended", h)
			continue
		}
		pending[h] = -1
		req := api.Request{Op: api.OpSet, Key: "live/" + string(h), Value: []byte("x"),
			ClientID: uint64(1000 + i), Seq: 1, TimeoutMs: 3000}
		s.request(n, req, func(resp api.Response, broken bool) {
			pending[h] = resp.Code
			if broken {
				pending[h] = 99
			}
			took[h] = s.now - at
		})
	}
	s.runUntil(at + 4000)
	for _, h := range sortedKeys(pending) {
		if pending[h] != 0 {
			s.violate("with every fault healed, a set through %s got exit %d (-1: no answer)", h, pending[h])
		} else if s.stats.liveMax = max(s.stats.liveMax, int(took[h])); took[h] > liveBoundMs+s.lagAllowance() {
			s.violate("with every fault healed, a set through %s took %d ms (bound %d)", h, took[h], liveBoundMs+s.lagAllowance())
		}
	}
}
