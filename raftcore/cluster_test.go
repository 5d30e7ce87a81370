package raftcore

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
)

// This file is the test driver shared by the focused tests and the simulator: a cluster
// of Nodes with in-memory "disks", a network that can lose, duplicate, reorder and cut
// messages, and a checker that validates Raft's safety properties as things happen.

// simNode is one member and what survives its crashes.
type simNode struct {
	id   NodeID
	node *Node // nil while crashed

	// durable state: what a Ready asked to persist, once the Ready finished
	hard   HardState
	store  *MemoryStorage
	commit uint64

	// volatile application state: applied index and a chain hash of what was applied
	appliedIndex uint64
	appliedHash  uint64

	begun []Ready // Readies whose Messages went out but which are not persisted yet
	reads map[uint64]pendingSimRead
}

// pendingSimRead is a read waiting for its ReadState and then for the apply index.
type pendingSimRead struct {
	invokedStep int
	mustSee     uint64 // highest index of a write acknowledged before the read began
	index       uint64 // from the ReadState, 0 until then
}

type proposal struct {
	node         NodeID
	index, term  uint64
	proposedStep int
}

type cluster struct {
	rng   *rand.Rand
	seed  uint64
	ids   []NodeID
	nodes map[NodeID]*simNode
	net   []Message
	cut   map[[2]NodeID]bool
	step  int
	cfg   func(id NodeID) Config

	// network faults, as probabilities
	dropRate, dupRate float64

	// checker state
	leaders    map[uint64]NodeID       // term → leader
	entryFacts map[[2]uint64][2]uint64 // (index, term) → (data hash, previous entry's term)
	committed  map[uint64][2]uint64    // index → (term, data hash) of what was applied
	stateAt    map[uint64]uint64       // index → application state hash after applying it
	maxApplied uint64
	proposals  map[[2]uint64]proposal // (index, term) → proposal waiting for its apply
	maxAcked   uint64                 // highest index of an acknowledged write
	nextReadID uint64
	violations []string
	trace      []string // last events, printed with a violation
	traceOn    bool

	elections, commits, reads, acked, snapshotsSent, restarts int
}

func newCluster(seed uint64, ids []NodeID, voters []NodeID) *cluster {
	c := &cluster{
		rng:        rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		seed:       seed,
		ids:        slices.Clone(ids),
		nodes:      map[NodeID]*simNode{},
		cut:        map[[2]NodeID]bool{},
		leaders:    map[uint64]NodeID{},
		entryFacts: map[[2]uint64][2]uint64{},
		committed:  map[uint64][2]uint64{},
		stateAt:    map[uint64]uint64{0: 0},
		proposals:  map[[2]uint64]proposal{},
	}
	// the seed also picks how much of the log stays in memory and how snapshots move, so
	// that reads from storage, entries kept behind snapshots and windows of chunks all
	// happen in some schedules, and pieces and appends held out of order
	window := 1 + int(seed%3)
	cache := []uint64{1, 64, 1 << 20}[seed/3%3]
	keep := []uint64{0, 3, 20}[seed/9%3]
	ahead := []uint64{8, 1 << 20}[seed/54%2]       // room for one piece held out of order, or many
	appAhead := []uint64{256, 1 << 20}[seed/108%2] // one append (MaxMsgBytes) held, or many
	bulk := []uint64{1, 64, 1 << 20}[seed/216%3]   // every append may be reordered, large ones, none
	c.cfg = func(id NodeID) Config {
		return Config{ID: id, ElectionTicks: 10, HeartbeatTicks: 1, MaxInflight: 4,
			MaxMsgBytes: 256, SnapshotChunkBytes: 8, SnapshotWindow: window, MaxSnapshotAhead: ahead, MaxAppendAhead: appAhead, BulkAppendBytes: bulk,
			MaxCacheBytes: cache, KeepEntries: keep, KeepPrevious: seed/27%2 == 1,
			Rand: rand.New(rand.NewPCG(seed, uint64(len(id))+uint64(id[len(id)-1])))}
	}
	for _, id := range ids {
		sn := &simNode{id: id, reads: map[uint64]pendingSimRead{}}
		var boot Snapshot
		if slices.Contains(voters, id) {
			boot.Meta.Members = Membership{Voters: slices.Clone(voters)}
		}
		sn.store = NewMemoryStorage(boot, nil)
		c.nodes[id] = sn
		c.start(sn)
	}
	return c
}

// configure changes the settings of every node (and restarts them, which loses nothing
// before they did any work).
func (c *cluster) configure(change func(*Config)) {
	base := c.cfg
	c.cfg = func(id NodeID) Config {
		cfg := base(id)
		change(&cfg)
		return cfg
	}
	for _, id := range c.ids {
		c.start(c.nodes[id])
	}
}

func (c *cluster) fail(format string, args ...any) {
	c.violations = append(c.violations, fmt.Sprintf("step %d: ", c.step)+fmt.Sprintf(format, args...))
}

func (c *cluster) logf(format string, args ...any) {
	if !c.traceOn {
		return
	}
	c.trace = append(c.trace, fmt.Sprintf("%5d ", c.step)+fmt.Sprintf(format, args...))
	if len(c.trace) > 100000 {
		c.trace = c.trace[50000:]
	}
}

// start (re)creates a node from its durable state only.
func (c *cluster) start(sn *simNode) {
	cfg := c.cfg(sn.id)
	cfg.Storage = sn.store
	st := sn.store.State(sn.hard)
	st.Commit = sn.commit
	n, err := NewNode(cfg, st)
	if err != nil {
		c.fail("restart %s: %v", sn.id, err)
		return
	}
	sn.node = n
	sn.begun = nil
	sn.reads = map[uint64]pendingSimRead{}
	_, data := sn.store.Snapshot()
	sn.appliedIndex, sn.appliedHash = decodeSimState(data)
}

func (c *cluster) crash(id NodeID) {
	sn := c.nodes[id]
	if sn.node == nil {
		return
	}
	c.logf("crash %s", id)
	sn.node = nil
	sn.begun = nil
	sn.reads = nil
}

func (c *cluster) restart(id NodeID) {
	sn := c.nodes[id]
	if sn.node != nil {
		return
	}
	c.logf("restart %s", id)
	c.restarts++
	c.start(sn)
}

// snapData reads snapshot s back from storage.
func snapData(st *MemoryStorage, s Snapshot) []byte {
	b := make([]byte, s.Size)
	if st.ReadSnapshot(s, 0, b) != nil {
		return nil
	}
	return b
}

func encodeSimState(index, hash uint64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, index)
	binary.BigEndian.PutUint64(b[8:], hash)
	return b
}

func decodeSimState(b []byte) (uint64, uint64) {
	if len(b) != 16 {
		return 0, 0
	}
	return binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
}

func hashBytes(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

func chain(prev uint64, e Entry) uint64 {
	h := fnv.New64a()
	var buf [24]byte
	binary.BigEndian.PutUint64(buf[:], prev)
	binary.BigEndian.PutUint64(buf[8:], e.Index)
	binary.BigEndian.PutUint64(buf[16:], e.Term)
	h.Write(buf[:])
	h.Write(e.Data)
	return h.Sum64()
}

// --- the network ---

func (c *cluster) isCut(a, b NodeID) bool {
	return c.cut[[2]NodeID{a, b}] || c.cut[[2]NodeID{b, a}]
}

// partition cuts every link between the two groups.
func (c *cluster) partition(groups ...[]NodeID) {
	c.cut = map[[2]NodeID]bool{}
	for i, g := range groups {
		for _, h := range groups[i+1:] {
			for _, a := range g {
				for _, b := range h {
					c.cut[[2]NodeID{a, b}] = true
				}
			}
		}
	}
	c.logf("partition %v", groups)
}

// isolate cuts id from everyone.
func (c *cluster) isolate(id NodeID) {
	var rest []NodeID
	for _, x := range c.ids {
		if x != id {
			rest = append(rest, x)
		}
	}
	c.partition([]NodeID{id}, rest)
}

func (c *cluster) heal() {
	c.cut = map[[2]NodeID]bool{}
	c.logf("heal")
}

func (c *cluster) post(msgs []Message) {
	for _, m := range msgs {
		if c.isCut(m.From, m.To) {
			continue
		}
		if m.Type == MsgSnap {
			c.snapshotsSent++
		}
		c.net = append(c.net, m)
	}
	if len(c.net) > 2000 {
		c.net = c.net[len(c.net)-1000:]
	}
}

// deliver hands message i of the network to its addressee, with the configured faults,
// and returns the node that received it (nil if it was lost).
func (c *cluster) deliver(i int) *simNode {
	m := c.net[i]
	c.net[i] = c.net[len(c.net)-1]
	c.net = c.net[:len(c.net)-1]
	if c.isCut(m.From, m.To) || (c.dropRate > 0 && c.rng.Float64() < c.dropRate) {
		return nil
	}
	if c.dupRate > 0 && c.rng.Float64() < c.dupRate {
		c.net = append(c.net, m)
	}
	sn := c.nodes[m.To]
	if sn == nil || sn.node == nil {
		return nil
	}
	c.logf("deliver %v", m)
	defer func() {
		if s := sn.node; s != nil && (s.term != m.Term || s.role != Follower) {
			c.logf("    %s now %s t%d vote=%s lead=%s last=%d commit=%d members=%s mi=%d", sn.id, s.role, s.term, s.vote, s.lead, s.log.lastIndex(), s.log.committed, s.members, s.membersIndex)
		}
	}()
	if err := sn.node.Step(m); err != nil {
		c.fail("%s refused %v: %v", m.To, m, err)
	}
	return sn
}

// deliverAll delivers every message now in flight, and what they cause, until the network
// is quiet or rounds run out.
func (c *cluster) deliverAll(rounds int) {
	for r := 0; r < rounds; r++ {
		c.processAll()
		if len(c.net) == 0 {
			return
		}
		batch := c.net
		c.net = nil
		for len(batch) > 0 {
			c.net = append(c.net, batch[0])
			batch = batch[1:]
			c.deliver(len(c.net) - 1)
		}
	}
	c.processAll()
}

// --- Ready processing ---

// beginReady takes a Ready from the node and sends what may go before persisting.
func (c *cluster) beginReady(sn *simNode) bool {
	if sn.node == nil || !sn.node.HasReady() {
		return false
	}
	rd := sn.node.Ready()
	c.post(rd.Messages)
	sn.begun = append(sn.begun, rd)
	return true
}

// finishReady persists, sends and applies the oldest begun Ready and advances the node.
func (c *cluster) finishReady(sn *simNode) bool {
	if sn.node == nil || len(sn.begun) == 0 {
		return false
	}
	rd := sn.begun[0]
	sn.begun = sn.begun[1:]
	if rd.SoftState != nil && rd.SoftState.Role == Leader {
		c.elections++
	}
	c.persist(sn, rd)
	c.post(rd.PersistedMessages)
	c.apply(sn, rd)
	sn.node.Advance(rd)
	return true
}

// process handles everything the node has ready.
func (c *cluster) process(sn *simNode) {
	for c.finishReady(sn) {
	}
	for i := 0; i < 10 && c.beginReady(sn); i++ {
		c.finishReady(sn)
	}
}

func (c *cluster) processAll() {
	for _, id := range c.ids {
		c.process(c.nodes[id])
	}
}

func (c *cluster) persist(sn *simNode, rd Ready) {
	if rd.HardState != nil {
		if rd.HardState.Term < sn.hard.Term {
			c.fail("%s: term went back from %d to %d", sn.id, sn.hard.Term, rd.HardState.Term)
		}
		if rd.HardState.Term == sn.hard.Term && sn.hard.Vote != None && rd.HardState.Vote != sn.hard.Vote {
			c.fail("%s: changed its vote in term %d from %s to %s", sn.id, sn.hard.Term, sn.hard.Vote, rd.HardState.Vote)
		}
		sn.hard = *rd.HardState
	}
	snapIndex := sn.store.snap.Meta.Index
	if rd.Snapshot != nil && rd.Snapshot.Meta.Index <= snapIndex {
		c.fail("%s: snapshot at %d does not follow the stored one at %d", sn.id, rd.Snapshot.Meta.Index, snapIndex)
	}
	if rd.Snapshot != nil {
		snapIndex = rd.Snapshot.Meta.Index
	}
	if len(rd.Entries) > 0 && rd.Entries[0].Index <= snapIndex {
		c.fail("%s: asked to persist entry %d below its snapshot %d", sn.id, rd.Entries[0].Index, snapIndex)
		return
	}
	if err := sn.store.Save(rd); err != nil {
		c.fail("%s: persist: %v", sn.id, err)
		return
	}
	for _, e := range rd.Entries {
		c.checkEntry(sn, e)
	}
	if rd.StorageErr != nil {
		c.fail("%s: %v", sn.id, rd.StorageErr)
	}
	if rd.Commit > sn.commit && rd.Commit <= sn.store.last() {
		sn.commit = rd.Commit
	}
}

func (c *cluster) storedTerm(sn *simNode, i uint64) (uint64, bool) {
	st := sn.store
	if i == st.snap.Meta.Index {
		return st.snap.Meta.Term, true
	}
	if i < st.first || i > st.last() {
		return 0, false
	}
	return st.ents[i-st.first].Term, true
}

// checkEntry is the log matching property, checked by induction: every log that holds
// (index, term) must hold the same data there and the same term just before it.
func (c *cluster) checkEntry(sn *simNode, e Entry) {
	prevTerm, _ := c.storedTerm(sn, e.Index-1)
	fact := [2]uint64{hashBytes(e.Data) ^ uint64(e.Type)<<60, prevTerm}
	key := [2]uint64{e.Index, e.Term}
	if old, ok := c.entryFacts[key]; ok {
		if old != fact {
			c.fail("log matching: %s holds entry %d term %d with data/prev-term %v, another log had %v",
				sn.id, e.Index, e.Term, fact, old)
		}
		return
	}
	c.entryFacts[key] = fact
}

// apply plays a Ready's snapshot and committed entries into the application state and
// checks that every node applies the same entries in the same order.
func (c *cluster) apply(sn *simNode, rd Ready) {
	if rd.Snapshot != nil {
		_, data := sn.store.Snapshot()
		idx, h := decodeSimState(data)
		if idx != rd.Snapshot.Meta.Index {
			c.fail("%s: snapshot at %d carries state of index %d", sn.id, rd.Snapshot.Meta.Index, idx)
		}
		if want, ok := c.stateAt[idx]; ok && want != h {
			c.fail("%s: snapshot at %d holds a state no node had there", sn.id, idx)
		}
		if idx > sn.appliedIndex {
			sn.appliedIndex, sn.appliedHash = idx, h
		}
	}
	for _, e := range rd.CommittedEntries {
		if e.Index != sn.appliedIndex+1 {
			c.fail("%s: applies entry %d after %d", sn.id, e.Index, sn.appliedIndex)
		}
		fact := [2]uint64{e.Term, hashBytes(e.Data) ^ uint64(e.Type)<<60}
		if old, ok := c.committed[e.Index]; ok && old != fact {
			c.fail("state machine safety: %s applies (term %d) at %d where another node applied (term %d)",
				sn.id, e.Term, e.Index, old[0])
		}
		if _, ok := c.committed[e.Index]; !ok {
			c.committed[e.Index] = fact
			c.commits++
		}
		sn.appliedIndex = e.Index
		sn.appliedHash = chain(sn.appliedHash, e)
		if want, ok := c.stateAt[e.Index]; ok && want != sn.appliedHash {
			c.fail("%s: state after applying %d differs from another node's", sn.id, e.Index)
		}
		c.stateAt[e.Index] = sn.appliedHash
		c.maxApplied = max(c.maxApplied, e.Index)
		key := [2]uint64{e.Index, e.Term}
		if p, ok := c.proposals[key]; ok && p.node == sn.id {
			delete(c.proposals, key)
			c.maxAcked = max(c.maxAcked, e.Index)
			c.acked++
		}
	}
	for _, rs := range rd.ReadStates {
		pr, ok := sn.reads[rs.ID]
		if !ok {
			c.fail("%s: ReadState for unknown read %d", sn.id, rs.ID)
			continue
		}
		if rs.Lost {
			delete(sn.reads, rs.ID)
			continue
		}
		pr.index = rs.Index
		sn.reads[rs.ID] = pr
	}
	for id, pr := range sn.reads {
		if pr.index == 0 || pr.index > sn.appliedIndex {
			continue // no ReadState yet (a leader's commit index is never 0), or not applied
		}
		// served now, from the state at appliedIndex ≥ pr.index
		if pr.index < pr.mustSee {
			c.fail("linearizability: read on %s begun at step %d got index %d, but write %d was acknowledged before",
				sn.id, pr.invokedStep, pr.index, pr.mustSee)
		}
		delete(sn.reads, id)
		c.reads++
	}
}

// --- client operations ---

func (c *cluster) propose(id NodeID, data []byte) bool {
	sn := c.nodes[id]
	if sn.node == nil {
		return false
	}
	idx, term, err := sn.node.Propose(data)
	if err != nil {
		return false
	}
	c.proposals[[2]uint64{idx, term}] = proposal{node: id, index: idx, term: term, proposedStep: c.step}
	c.logf("propose on %s at %d/%d", id, idx, term)
	return true
}

func (c *cluster) read(id NodeID) bool {
	sn := c.nodes[id]
	if sn.node == nil {
		return false
	}
	c.nextReadID++
	if err := sn.node.ReadIndex(c.nextReadID); err != nil {
		return false
	}
	sn.reads[c.nextReadID] = pendingSimRead{invokedStep: c.step, mustSee: c.maxAcked}
	return true
}

// compact snapshots a node at its applied index, as the application would.
func (c *cluster) compact(id NodeID) bool {
	sn := c.nodes[id]
	if sn.node == nil || len(sn.begun) > 0 || sn.appliedIndex <= sn.store.snap.Meta.Index {
		return false
	}
	data := encodeSimState(sn.appliedIndex, sn.appliedHash)
	meta, err := sn.node.SnapshotMetaAt(sn.appliedIndex)
	if err != nil {
		return false
	}
	s := SnapshotOf(meta, data)
	// the application stores the snapshot durably, then drops the log prefix the node
	// no longer needs
	sn.store.TakeSnapshot(s, data)
	keepFrom, err := sn.node.Compact(s)
	if err != nil {
		c.fail("%s: compact to %d: %v", id, meta.Index, err)
		return false
	}
	sn.store.CompactLog(keepFrom)
	c.logf("compact %s at %d", id, meta.Index)
	return true
}

// --- checks over the whole cluster ---

// checkStep runs the checks that look at every node after each step.
func (c *cluster) checkStep() {
	for _, id := range c.ids {
		sn := c.nodes[id]
		// A leader counts once its term and vote are durable: before that it cannot send
		// anything (see Ready), and a crash makes it as if it never was.
		if sn.node == nil || sn.node.role != Leader || sn.hard.Term != sn.node.term {
			continue
		}
		t := sn.node.term
		if l, ok := c.leaders[t]; ok {
			if l != id {
				c.fail("election safety: %s and %s are both leaders of term %d", l, id, t)
			}
			continue
		}
		c.leaders[t] = id
		c.checkLeaderCompleteness(sn)
	}
}

// checkLeaderCompleteness: a new leader's log holds every entry applied anywhere.
func (c *cluster) checkLeaderCompleteness(sn *simNode) {
	l := &sn.node.log
	for i := l.snap.Meta.Index + 1; i <= c.maxApplied; i++ {
		want, ok := c.committed[i]
		if !ok || want[0] > sn.node.term {
			// An entry of a later term was committed by a later leader, in the same step
			// in which this one was first seen: completeness holds for later terms only.
			continue
		}
		if t, ok := l.term(i); !ok || t != want[0] {
			c.fail("leader completeness: leader %s of term %d lacks committed entry %d (term %d)",
				sn.id, sn.node.term, i, want[0])
			return
		}
	}
	if l.snap.Meta.Index > 0 {
		if want, ok := c.stateAt[l.snap.Meta.Index]; ok {
			if _, h := decodeSimState(snapData(sn.store, l.snap)); h != want {
				c.fail("leader completeness: leader %s snapshot at %d differs", sn.id, l.snap.Meta.Index)
			}
		}
	}
}

func (c *cluster) leader() NodeID {
	var best NodeID
	var bestTerm uint64
	for _, id := range c.ids {
		sn := c.nodes[id]
		if sn.node != nil && sn.node.role == Leader && sn.node.term >= bestTerm {
			best, bestTerm = id, sn.node.term
		}
	}
	return best
}

func (c *cluster) tickAll() {
	for _, id := range c.ids {
		if sn := c.nodes[id]; sn.node != nil {
			sn.node.Tick()
		}
	}
}

// stabilize ticks and delivers until a leader is known to all live voters, or gives up.
func (c *cluster) electLeader(maxTicks int) NodeID {
	for i := 0; i < maxTicks; i++ {
		c.deliverAll(50)
		if l := c.leader(); l != None {
			return l
		}
		c.tickAll()
		c.checkStep()
	}
	return None
}

func (c *cluster) report() string {
	var b strings.Builder
	for _, v := range c.violations {
		fmt.Fprintln(&b, v)
	}
	if len(c.trace) > 0 {
		fmt.Fprintln(&b, "last events:")
		for _, t := range c.trace[max(0, len(c.trace)-*simTraceLen):] {
			fmt.Fprintln(&b, t)
		}
	}
	return b.String()
}
