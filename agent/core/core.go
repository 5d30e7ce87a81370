package core

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
)

// Time is a point on the driver's monotonic clock, in milliseconds. Only differences
// matter; the core never reads a clock itself.
type Time int64

// ReplyTo names, for the driver, where the answer to a request goes (a stream and a
// request id). The core hands it back in a Reply and never looks inside.
type ReplyTo uint64

// CallID names a call or a run the core asked for, so its result can be matched.
type CallID uint64

// Call asks the driver to send Req to peer To and report the result with CallDone, by
// Deadline at the latest.
type Call struct {
	ID       CallID
	To       raftcore.NodeID
	Req      api.Request
	Deadline Time
}

// Run asks the driver to run `lite-raft ARGS` on Host over ssh and report with RunDone.
type Run struct {
	ID       CallID
	Host     string
	Args     string
	Deadline Time
}

// Reply is the answer to a request.
type Reply struct {
	To   ReplyTo
	Resp api.Response
}

// CallResult is how a call ended, as far as the transport can tell.
type CallResult uint8

const (
	// Answered: the peer's agent answered; the response is authoritative.
	Answered CallResult = iota + 1
	// NotSent: the request never reached the transport (no link, backoff, closed).
	NotSent
	// Broken: the request was handed to the transport but no answer came (the stream
	// broke, the deadline passed): the peer may have acted on it.
	Broken
)

// Ready is a batch of work for the driver. Do it in this order (agent.processReady does,
// and so does the tests' testDriver):
//  1. send Replies, start Calls and Runs: they do not depend on this batch, and they are
//     due even if what follows fails;
//  2. Raft's part, as raftcore.Ready says: send Messages; make HardState, SnapshotChunks,
//     Snapshot and Entries durable (a save that fails is fatal: stop, without Advance);
//     when Snapshot is set, load the state machine from it into Restored; then send
//     PersistedMessages;
//  3. write Logs, rewrite the configuration for Members, drop the log before CompactLog;
//  4. call Advance, which applies CommittedEntries and answers whoever waited for them:
//     nothing is applied or acknowledged before the batch's Raft part is durable;
//  5. start SaveSnapshot (report it with SnapshotSaved) and the backup work (Backups,
//     BackupReads, DropBackups) away from the loop: none of it waits on Advance (a
//     snapshot's State is a clone).
//
// The save of step 2 may end some time after it began (a slow disk) while the core takes
// other inputs; steps 3 to 5 wait for it.
type Ready struct {
	raftcore.Ready
	Replies []Reply
	Calls   []Call
	Runs    []Run
	// SaveSnapshot asks for a snapshot of the state machine to be made durable, away from
	// the loop: its State is a clone the loop goes on without. Report the end with
	// SnapshotSaved; the log is compacted only then.
	SaveSnapshot *SnapshotJob
	// CompactLog, when set, is where the log now starts: drop what is before it from
	// Storage (a snapshot was saved and Raft let go of those entries).
	CompactLog uint64
	// Backups, BackupReads and DropBackups are the files of snapshot save (backup.go):
	// write each job away from the loop (report BackupWritten), read each piece away
	// from it (report BackupRead), remove the files dropped.
	Backups     []BackupJob
	BackupReads []BackupRead
	DropBackups []string
	// Restored is for the driver to fill: when Snapshot is set (a snapshot from the leader,
	// installed by the Save of this Ready), the state machine loaded from it, before
	// Advance.
	Restored *kvstore.Store
	// Members is a membership that committed (never a joint one): rewrite
	// conf/cluster_nodes and open or close links.
	Members *raftcore.Membership
	Logs    []string

	raft bool // Ready carries a raftcore.Ready to Advance
}

// SnapshotJob is a snapshot to save: its metadata and the state machine as of Meta.Index
// (an O(1) clone: serialize it on any goroutine).
type SnapshotJob struct {
	Meta  raftcore.SnapshotMeta
	State *kvstore.Store
}

// Config holds a core's fixed settings.
type Config struct {
	Raft raftcore.Config
	// TickMs is the length of a tick, for reporting (last contact) and for turning
	// measured round trips into ticks.
	TickMs int64
	// SnapshotPeriod is how many applied entries separate snapshots.
	SnapshotPeriod uint64
	// DefaultTimeoutMs bounds a request that did not say how long its client waits.
	DefaultTimeoutMs int64
	// Build is this agent's build (git describe), for status.
	Build string
	// BackupIdleMs is how long a snapshot save's file is kept unread (default a minute).
	BackupIdleMs int64
	// StartedAtNs is the wall clock when the core was made (Unix nanoseconds): with the
	// core's time since, it dates a restored cluster's rebase (the core reads no clock).
	StartedAtNs int64
	// Metrics, if set, adds the driver's counters (timings, which the core cannot take,
	// and what it counts of the answers it delivers) to a status answer's Metrics, which
	// the core has filled with what it knows itself. It runs on the driver's loop, within
	// the core's call.
	Metrics func(*api.Metrics)
}

// Core is one agent's state. It is not safe for concurrent use: the driver serializes
// every call.
type Core struct {
	cfg  Config
	id   raftcore.NodeID
	node *raftcore.Node
	kv   *kvstore.Store
	now  Time
	rand raftcore.Rand

	applied        uint64
	appliedMembers raftcore.Membership // of the last applied membership entry (or snapshot)
	lastSnapshot   uint64
	// the data applied since the last snapshot and that snapshot's size: a snapshot waits
	// until the log behind it holds as much as it would (see maybeSnapshot)
	logBytes, snapSize uint64
	saving             *SnapshotJob // handed out, not yet reported saved
	snapRetryAt        Time
	snapBackoff        int64

	nextReadID uint64
	nextCall   CallID
	proposals  map[uint64]*waiter   // log index → write waiting for its entry
	reads      map[uint64]*waiter   // read ID → read waiting for its ReadState
	readyReads []*waiter            // reads with an index, waiting for it to be applied
	conditions []*waiter            // membership and transfer steps waiting for a state
	watches    map[string][]*waiter // watch requests by key
	waiting    []*waiter            // requests to try again: no leader, no link, backoff
	calls      map[CallID]*waiter   // forwarded, waiting for CallDone
	change     *change              // the membership change this leader drives (or drove last)
	backups    backups              // snapshot save's files held for clients

	linkDown map[raftcore.NodeID]bool        // peers whose link the driver reported down
	rtt      map[raftcore.NodeID]int64       // each link's smoothed round trip, µs (LinkRTT)
	versions map[raftcore.NodeID]api.Version // what peers said of themselves

	// leases (leases.go): this member's countdown per lease (leasesToLoad: from the
	// state loaded, at the first time the driver gives), when it last counted every
	// lease from scratch (a load, a reset), the revokes it proposed as leader, and the
	// lock-waits parked until their lock changes
	leases       leaseClock
	leasesToLoad bool
	leaseFreshAt Time
	revoking     map[uint64]Time
	lockWaits    map[string][]*waiter
	// renewals (leases.go): the keeps confirmed for the next batch, the batches proposed
	// by index, how many of them name each lease, and the leader's terms: the one it
	// leads from leadFrom on, the one whose countdowns it resumed, the one it renews
	// through the log, and the leases it renewed on its own clock in oldKeptTerm
	keeps         []*waiter
	keepBatches   map[uint64]*keepBatch
	keepsInFlight map[uint64]int
	leadTerm      uint64
	leadFrom      uint64
	resumedTerm   uint64
	logTerm       uint64
	oldKept       map[uint64]bool
	oldKeptTerm   uint64
	// the terms of the entries applied: the last, whether it said it renews through the
	// log, and the greatest one that ended without saying so
	appliedTerm       uint64
	appliedTermMarked bool
	unmarkedTerm      uint64
	rebasing          Time // when this leader last proposed a restored state's rebase (0: never)

	// what watch reads (changes.go): the changes applied, and the watches parked on it
	changes    changeRing
	logWatches parkedWatches
	// watchScanned counts the changes watches looked at (for the tests: what a change
	// costs the parked watches)
	watchScanned uint64
	lead         raftcore.NodeID // the leader as of the last Ready

	out     Ready
	raftOut bool // a Ready with Raft's part is out, not yet advanced
	limiter limiter
	bugs    bugs
}

// bugs are deliberate mistakes the simulation plants to show that it catches them; the
// zero value is the correct core.
type bugs struct {
	brokenIsNotSent bool // a forward that broke after it was sent is taken as never sent
	staleLeaderRead bool // the leader serves reads from its state without a read index
	retryNewID      bool // a retried forward goes out with a fresh client ID
	noBackoff       bool // a forward that could not be sent is tried again at once
	// the store starts a lock whose record was dropped at generation 1 again
	// (kvstore.Bugs.GenerationReused; reaches every store the core applies to)
	generationReused bool
	// a txn does its actions before it tests its last condition
	// (kvstore.Bugs.TxnActsBeforeLastCondition)
	txnActsEarly bool
	// a new leader gives every lease its whole ttl again (as before version 6), and does
	// not say so in leaseFreshAt
	leaseRestart bool
	// the store forgets its oldest sessions past 100 clients, young or not
	// (kvstore.Bugs.SessionsEvictedByCount)
	sessionsByCount bool
	// the leader proposes a lease's revoke again every tick until one applies, not once
	// a revokeRetryMs
	revokeEveryTick bool
	// add-member makes a learner a voter as soon as it is one, caught up or not
	earlyPromotion bool
	// a linearizable read is served as soon as its read index is confirmed, from the
	// state as it is, without waiting for the applier to reach that index
	readBeforeApplied bool
}

// New makes a core from the node's durable state and the state machine loaded from its
// snapshot.
func New(cfg Config, st raftcore.State, kv *kvstore.Store) (*Core, error) {
	if cfg.DefaultTimeoutMs <= 0 {
		cfg.DefaultTimeoutMs = 10_000
	}
	if cfg.TickMs <= 0 {
		cfg.TickMs = 1
	}
	node, err := raftcore.NewNode(cfg.Raft, st)
	if err != nil {
		return nil, fmt.Errorf("restore the node: %w", err)
	}
	c := &Core{cfg: cfg, id: cfg.Raft.ID, node: node, kv: kv, rand: cfg.Raft.Rand,
		applied:        st.Snapshot.Meta.Index,
		appliedMembers: st.Snapshot.Meta.Members, lastSnapshot: st.Snapshot.Meta.Index, snapSize: st.Snapshot.Size,
		proposals: map[uint64]*waiter{}, reads: map[uint64]*waiter{}, watches: map[string][]*waiter{},
		calls: map[CallID]*waiter{}, linkDown: map[raftcore.NodeID]bool{}, rtt: map[raftcore.NodeID]int64{}, versions: map[raftcore.NodeID]api.Version{},
		leases: newLeaseClock(), leasesToLoad: true, revoking: map[uint64]Time{}, lockWaits: map[string][]*waiter{},
		keepBatches: map[uint64]*keepBatch{}, keepsInFlight: map[uint64]int{},
		appliedTerm: st.Snapshot.Meta.Term,
		limiter:     limiter{seen: map[string]*limit{}}}
	c.changes.since = st.Snapshot.Meta.Index
	return c, nil
}

// Node gives read access to the Raft node (status, debugging). Do not step it.
func (c *Core) Node() *raftcore.Node { return c.node }

// Applied is the last index the state machine reflects.
func (c *Core) Applied() uint64 { return c.applied }

// DataBytes is the size of the state machine's keys and values.
func (c *Core) DataBytes() uint64 { return uint64(c.kv.DataBytes()) }

func (c *Core) at(now Time) {
	if now > c.now {
		c.now = now
	}
	if c.leasesToLoad {
		// New has no time: the leases of the state it was given count from the first
		c.loadLeases(c.appliedTerm)
	}
}

// Tick advances Raft's clock by one tick and answers the requests whose time is up.
func (c *Core) Tick(now Time) {
	c.at(now)
	c.node.Tick()
	c.rebaseIfRestored()
	c.logKeeps()
	c.flushKeeps()
	c.expireLeases()
	c.expire()
	c.retryDue()
	c.advanceChange()
	c.sweepBackups()
}

// Step hands a peer's message to Raft.
func (c *Core) Step(now Time, m raftcore.Message) {
	c.at(now)
	if err := c.node.Step(m); err != nil {
		c.warnf("refused:"+string(m.From), "refused a message from %s: %v", m.From, err)
	}
}

// Link reports that the stream to peer came up or went down. A request waiting for that
// peer is tried again when it comes up.
func (c *Core) Link(now Time, peer raftcore.NodeID, up bool) {
	c.at(now)
	if up {
		if c.linkDown[peer] {
			delete(c.linkDown, peer)
			c.retryFor(func(w *waiter) bool { return w.waitFor == peer })
		}
		return
	}
	c.linkDown[peer] = true
}

// LinkRTT reports a round trip measured on the link to peer, in microseconds: status
// shows each link's, smoothed (7/8 of the last estimate, 1/8 of the new sample, as TCP
// smooths its own). Raft gets it too, for the snapshot window and for how long a voter
// that gave way to another's election waits for it.
func (c *Core) LinkRTT(now Time, peer raftcore.NodeID, us int64) {
	c.at(now)
	if us <= 0 || raftcore.ValidateID(peer) != nil {
		return
	}
	old, ok := c.rtt[peer]
	if !ok && len(c.rtt) > 1000 {
		clear(c.rtt) // bounded, whatever the peers
	}
	us = SmoothRTT(old, us)
	c.rtt[peer] = us
	c.node.SetSnapshotWindow(peer, snapshotWindow(us))
	tickUs := c.cfg.TickMs * 1000
	c.node.SetRoundTrip(peer, int(min((us+tickUs-1)/tickUs, 1<<20)))
}

// SmoothRTT is a round trip's estimate after a new sample, as TCP smooths its own: 7/8
// of the estimate, 1/8 of the sample (the sample alone when there is no estimate, 0).
func SmoothRTT(estimate, sample int64) int64 {
	if estimate <= 0 {
		return sample
	}
	return (7*estimate + sample) / 8
}

// snapshotRate is the rate a snapshot's window is sized for: a window carries at most
// one window of bytes a round trip, so a link 100 ms long with raftcore's 4 pieces of
// 1 MiB moves 40 MiB/s whatever its bandwidth.
const snapshotRate = 256 << 20 // bytes a second

// snapshotWindow is the snapshot bytes to keep in flight on a link whose round trip is
// rttUs µs: a round trip's worth at snapshotRate (raftcore rounds it to whole pieces,
// within its bounds).
func snapshotWindow(rttUs int64) uint64 {
	return uint64(rttUs) * snapshotRate / 1e6
}

// LeaderGone reports that peer's host says no agent runs there.
func (c *Core) LeaderGone(now Time, peer raftcore.NodeID) {
	c.at(now)
	if c.node.LeaderGone(peer) {
		c.logf("", "the agent of leader %s is gone (its host says no server runs there): standing for election early", peer)
	}
}

// HasReady reports whether Ready has anything.
func (c *Core) HasReady() bool {
	o := &c.out
	return (!c.raftOut && c.node.HasReady()) || len(o.Replies) > 0 || len(o.Calls) > 0 || len(o.Runs) > 0 ||
		o.SaveSnapshot != nil || o.Members != nil || len(o.Logs) > 0 || o.CompactLog > 0 ||
		len(o.Backups) > 0 || len(o.BackupReads) > 0 || len(o.DropBackups) > 0
}

// Ready hands out the work accumulated since the last call. Raft's part comes again
// only once the last one was advanced: a driver that asks for another Ready meanwhile
// (a reply that makes a new request at once) gets the rest, not the next entries, which
// it could otherwise apply before the ones it holds.
func (c *Core) Ready() Ready {
	rd := c.out
	c.out = Ready{}
	if !c.raftOut && c.node.HasReady() {
		rd.Ready = c.node.Ready()
		rd.raft = true
		c.raftOut = true
	}
	return rd
}

// Advance tells the core that rd has been done: Raft's part is durable and sent. It
// applies what committed and answers whoever waited for it.
func (c *Core) Advance(now Time, rd Ready) error {
	c.at(now)
	if !rd.raft {
		return nil
	}
	c.raftOut = false
	if rd.StorageErr != nil {
		return fmt.Errorf("storage: %w", rd.StorageErr)
	}
	if rd.Snapshot != nil {
		if rd.Restored == nil {
			return fmt.Errorf("install snapshot at %d from the leader: the state machine was not loaded", rd.Snapshot.Meta.Index)
		}
		c.installSnapshot(*rd.Snapshot, rd.Restored)
	}
	if err := c.apply(rd.CommittedEntries); err != nil {
		return err
	}
	for _, rs := range rd.ReadStates {
		c.readState(rs)
	}
	c.node.Advance(rd.Ready)
	if rd.SoftState != nil {
		c.roleChanged(*rd.SoftState)
	}
	c.resumeLeases()
	c.serveReads()
	c.checkConditions()
	c.advanceChange()
	c.maybeSnapshot()
	return nil
}

func (c *Core) installSnapshot(s raftcore.Snapshot, kv *kvstore.Store) {
	c.kv = kv
	c.applied, c.lastSnapshot = s.Meta.Index, s.Meta.Index
	c.logBytes, c.snapSize = 0, s.Size
	c.appliedMembers = s.Meta.Members
	c.logf("", "installed a snapshot at %d (term %d, %d bytes) from the leader", s.Meta.Index, s.Meta.Term, s.Size)
	c.membersCommitted(s.Meta.Members)
	c.loadLeases(s.Meta.Term)
	for _, i := range sortedKeys(c.keepBatches) {
		if i <= s.Meta.Index {
			// applied behind the snapshot, if at all: its keeps ask again
			for _, w := range c.keepBatches[i].waiters {
				c.wait(w, raftcore.None)
			}
			c.dropBatch(i)
		}
	}
	for _, k := range sortedKeys(c.watches) {
		c.wakeWatches(k)
	}
	c.changes.reset(s.Meta.Index)
	c.wakeLogWatches() // they are behind the snapshot now: told so
}

// apply applies committed entries in order. An entry it cannot decode stops it, with
// the entry left unapplied: skipping it would make this member's state differ from that
// of members that understood it (it was checked before it was proposed, so it comes from
// a newer lite-raft).
func (c *Core) apply(ents []raftcore.Entry) error {
	if c.bugs.generationReused || c.bugs.txnActsEarly || c.bugs.sessionsByCount {
		// a store from a snapshot has none
		c.kv.Plant(kvstore.Bugs{GenerationReused: c.bugs.generationReused, TxnActsBeforeLastCondition: c.bugs.txnActsEarly,
			SessionsEvictedByCount: c.bugs.sessionsByCount})
	}
	for _, e := range ents {
		if e.Index <= c.applied {
			continue
		}
		var cmd kvstore.Command
		if e.Type != raftcore.EntryMembership && len(e.Data) > 0 {
			var err error
			if cmd, err = kvstore.Decode(e.Data); err != nil {
				return fmt.Errorf("entry %d: %w: this agent stops rather than skip it, which would make its state differ from the other members'; "+
					"if the entry comes from a newer lite-raft, upgrade this host", e.Index, err)
			}
		}
		c.applied = e.Index
		c.logBytes += uint64(len(e.Data))
		c.noteTerm(e.Term)
		var res kvstore.Result
		switch {
		case e.Type == raftcore.EntryMembership:
			m, err := raftcore.DecodeMembership(e.Data)
			if err == nil {
				c.appliedMembers = m
				c.logf("", "membership committed at %d: %s", e.Index, m)
				c.membersCommitted(m)
			}
		case len(e.Data) == 0:
			// a new leader's empty entry
		default:
			// what a revoke takes with it, and whether the key was there, read before
			var keys, locks []string
			switch cmd.Op {
			case kvstore.OpRevoke, kvstore.OpRevokeV4:
				if l, ok := c.kv.LeaseByID(cmd.Lease); ok {
					keys, locks = l.Keys, l.Locks
				}
			case kvstore.OpLockAcquire, kvstore.OpLockAcquireV4:
				locks = []string{cmd.Key}
			}
			res = c.kv.Apply(e.Index, cmd)
			c.leaseApplied(e, cmd, keys, locks)
			c.record(res.Changes)
		}
		c.keepsApplied(e, cmd)
		if w := c.proposals[e.Index]; w != nil {
			delete(c.proposals, e.Index)
			if w.term == e.Term {
				c.reply(w, api.Response{Code: res.Code, Msg: res.Msg, Value: res.Value})
			} else {
				// another leader's entry took its place: try again (deduplicated)
				c.wait(w, raftcore.None)
			}
		}
	}
	return nil
}

// membersCommitted hands a committed membership to the driver.
func (c *Core) membersCommitted(m raftcore.Membership) {
	if m.Joint() {
		return
	}
	c.out.Members = &m
}

// roleChanged runs when role or leader changed.
func (c *Core) roleChanged(ss raftcore.SoftState) {
	c.logf("", "now %s in term %d, leader %s", ss.Role, c.node.Term(), orDash(string(ss.Lead)))
	c.leadershipChanged()
	c.leadLeases()
	c.rebasing = 0
	c.rebaseIfRestored()
	if ss.Lead != c.lead {
		c.lead = ss.Lead
		if ss.Lead != raftcore.None {
			c.reforward()
			// everything that waited for a leader may go now
			c.retryFor(func(*waiter) bool { return true })
		}
	}
}

func (c *Core) maybeSnapshot() {
	// At least SnapshotPeriod entries apart, and only once the log since the last snapshot
	// holds as much data as that snapshot: writing the state again costs at most what was
	// written to the log, whatever its size (a 500 MB state under 10 MB/s of writes is
	// rewritten every 50 s, not every second), and a restart replays at most that much.
	// Sooner, once the log holds a quarter of that, when a follower or a new member
	// begins receiving the last snapshot (raftcore holds it back for this one): it would
	// replay all the log since it, where writing a fresh snapshot goes several times as
	// fast (at 519 MB on the test VM: 100 MB of entries replayed in 4.4 s, 23 MB/s; a
	// 521 MB snapshot written in 6.3 s, 82 MB/s).
	if c.saving != nil || c.applied-c.lastSnapshot < c.cfg.SnapshotPeriod || c.now < c.snapRetryAt {
		return
	}
	if c.logBytes < c.snapSize && (c.logBytes < c.snapSize/4 || !c.node.SnapshotWanted()) {
		return
	}
	if c.applied <= c.node.Status().Snapshot.Index {
		return
	}
	meta, err := c.node.SnapshotMetaAt(c.applied)
	if err != nil {
		c.warnf("snapshot-fail", "snapshot at %d: %v", c.applied, err)
		return
	}
	job := &SnapshotJob{Meta: meta, State: c.kv.Clone()}
	c.saving = job
	c.out.SaveSnapshot = job
	// a transfer of the last snapshot that has barely begun waits for this one, and
	// starts over with it (raftcore.Node.SnapshotSoon)
	c.node.SnapshotSoon(meta.Index)
}

// SnapshotSaved reports the end of a SaveSnapshot: the snapshot as stored (its size and
// checksum, which Raft needs to send it), or why it failed. The log is compacted only
// now that the snapshot is durable; a failure is tried again after a backoff, not at the
// next batch.
func (c *Core) SnapshotSaved(now Time, snap raftcore.Snapshot, err error) {
	c.at(now)
	s := c.saving
	index := snap.Meta.Index
	if s == nil || s.Meta.Index != index {
		return
	}
	c.saving = nil
	// the write is over: transfers held for it go on, with this snapshot if Compact
	// takes it below, with the one before if the write failed or was overtaken
	c.node.SnapshotSoon(0)
	if err != nil {
		c.snapBackoff = min(max(2*c.snapBackoff, 1000), 60_000)
		c.snapRetryAt = c.now + Time(c.snapBackoff)
		c.warnf("snapshot-fail", "store snapshot at %d: %v (next try in %d s)", index, err, c.snapBackoff/1000)
		return
	}
	c.snapBackoff = 0
	c.lastSnapshot = index
	c.logBytes, c.snapSize = 0, snap.Size
	if index <= c.node.Status().Snapshot.Index {
		return // a snapshot from the leader came meanwhile
	}
	keepFrom, err := c.node.Compact(snap)
	if err != nil {
		c.warnf("", "compact the log to %d: %v", index, err)
		return
	}
	c.out.CompactLog = keepFrom
	c.logf("", "snapshot at %d (term %d, %d keys, %d bytes)", index, s.Meta.Term, s.State.Len(), snap.Size)
}

// Stop answers every request still waiting: the agent is going away.
func (c *Core) Stop(now Time) {
	c.at(now)
	for _, w := range c.allWaiters() {
		c.reply(w, client.Fail(w.req.Op, w.outcome, client.FailStopping, string(c.id)))
	}
}

// allWaiters lists every waiting request, in an order that depends on nothing but the
// core's state (maps in key order), so that a simulation replays exactly.
func (c *Core) allWaiters() []*waiter {
	var all []*waiter
	for _, m := range []map[uint64]*waiter{c.proposals, c.reads} {
		for _, k := range sortedKeys(m) {
			all = append(all, m[k])
		}
	}
	for _, k := range sortedKeys(c.calls) {
		all = append(all, c.calls[k])
	}
	all = append(all, c.keeps...)
	for _, k := range sortedKeys(c.keepBatches) {
		all = append(all, c.keepBatches[k].waiters...)
	}
	if c.change != nil {
		all = append(all, c.change.waiters...)
	}
	for _, k := range sortedKeys(c.watches) {
		all = append(all, c.watches[k]...)
	}
	all = append(all, c.readyReads...)
	all = append(all, c.waiting...)
	return append(all, c.conditions...)
}

// transferAway hands leadership to the most up-to-date other voter.
func (c *Core) transferAway() error {
	st := c.node.Status()
	var best raftcore.NodeID
	var bestMatch uint64
	for _, v := range st.Members.Voters {
		if p, ok := st.Progress[v]; ok && v != c.id && (best == "" || p.Match > bestMatch) {
			best, bestMatch = v, p.Match
		}
	}
	if best == "" {
		return errors.New("no other voter to hand leadership to")
	}
	c.logf("", "handing leadership to %s before leaving", best)
	return c.node.TransferLeadership(best)
}

func without(ids []raftcore.NodeID, host raftcore.NodeID) []raftcore.NodeID {
	return slices.DeleteFunc(slices.Clone(ids), func(x raftcore.NodeID) bool { return x == host })
}

// sortedKeys returns m's keys in order: the core never lets map order decide anything.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
