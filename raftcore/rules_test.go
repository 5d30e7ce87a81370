package raftcore

// Focused, deterministic tests, one group per rule of the Raft paper (and of the
// dissertation for pre-vote, check-quorum, read index, membership and transfer). They use
// the cluster driver of cluster_test.go where it fits, through rtRunner, which delivers
// messages one at a time and lets a test watch, hold back or lose them; where a rule needs
// finer control they drive single Nodes by hand.

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// ---------------------------------------------------------------------------------------
// helpers

func rtIDs(n int) []NodeID {
	ids := make([]NodeID, n)
	for i := range ids {
		ids[i] = NodeID(fmt.Sprintf("n%d", i+1))
	}
	return ids
}

// rtRunner drives a cluster: it delivers the messages in flight first in, first out, one at
// a time, and processes the addressee's Readies after each one, so the effects of every
// message are visible before the next. Tests can watch what is sent and delivered and lose
// chosen messages.
type rtRunner struct {
	t *testing.T
	c *cluster

	drop      func(m Message) bool // lose a message instead of delivering it
	onSend    func(m Message)      // every message a node hands out in a Ready (cut or not)
	onDeliver func(m Message)      // every message about to be stepped
	after     func()               // after each delivery (and its processing)

	reads   map[NodeID][]ReadState     // every ReadState handed out, by node
	leaders map[uint64]map[NodeID]bool // term → nodes seen as leader in it
	ticks   int                        // ticks given through tick
	dropped int                        // messages lost through drop
}

// rtCluster makes a cluster with the driver's default settings, changed by tweak.
func rtCluster(t *testing.T, seed uint64, ids, voters []NodeID, tweak func(*Config)) (*cluster, *rtRunner) {
	t.Helper()
	c := newCluster(seed, ids, voters)
	// the rule tests are written for one snapshot chunk in flight, the whole log in
	// memory and nothing kept behind a snapshot, whatever the seed picks for the simulator
	c.configure(func(cfg *Config) {
		cfg.SnapshotWindow, cfg.MaxCacheBytes, cfg.KeepEntries, cfg.KeepPrevious = 1, 1<<20, 0, false
		if tweak != nil {
			tweak(cfg)
		}
	})
	c.traceOn = true
	if len(c.violations) > 0 {
		t.Fatal(c.report())
	}
	return c, &rtRunner{t: t, c: c, reads: map[NodeID][]ReadState{}, leaders: map[uint64]map[NodeID]bool{}}
}

func (r *rtRunner) node(id NodeID) *Node {
	r.t.Helper()
	sn := r.c.nodes[id]
	if sn == nil || sn.node == nil {
		r.t.Fatalf("%s is not running", id)
	}
	return sn.node
}

func (r *rtRunner) st(id NodeID) Status { r.t.Helper(); return r.node(id).Status() }

// process hands out and handles every Ready the node has.
func (r *rtRunner) process(id NodeID) {
	c := r.c
	sn := c.nodes[id]
	if sn == nil || sn.node == nil {
		return
	}
	for c.finishReady(sn) {
	}
	for i := 0; i < 100 && c.beginReady(sn); i++ {
		rd := sn.begun[len(sn.begun)-1]
		if r.onSend != nil {
			for _, m := range rd.Messages {
				r.onSend(m)
			}
			for _, m := range rd.PersistedMessages {
				r.onSend(m)
			}
		}
		r.reads[id] = append(r.reads[id], rd.ReadStates...)
		c.finishReady(sn)
	}
	r.observe()
}

func (r *rtRunner) processAll() {
	for _, id := range r.c.ids {
		r.process(id)
	}
}

// observe runs the driver's per-step checks and records who leads which term (as the
// driver does, once the leader's term is durable: before that it can send nothing).
func (r *rtRunner) observe() {
	r.c.checkStep()
	for _, id := range r.c.ids {
		sn := r.c.nodes[id]
		if sn.node == nil || sn.node.role != Leader || sn.hard.Term != sn.node.term {
			continue
		}
		if r.leaders[sn.node.term] == nil {
			r.leaders[sn.node.term] = map[NodeID]bool{}
		}
		r.leaders[sn.node.term][id] = true
	}
}

func (r *rtRunner) deliverMsg(m Message) {
	c := r.c
	if r.drop != nil && r.drop(m) {
		r.dropped++
		return
	}
	if to := c.nodes[m.To]; r.onDeliver != nil && to != nil && to.node != nil && !c.isCut(m.From, m.To) {
		r.onDeliver(m)
	}
	c.net = append(c.net, m)
	c.deliver(len(c.net) - 1)
	r.process(m.To)
	if r.after != nil {
		r.after()
	}
}

// deliverNext delivers the oldest message in flight.
func (r *rtRunner) deliverNext() bool {
	if len(r.c.net) == 0 {
		return false
	}
	m := r.c.net[0]
	r.c.net = r.c.net[1:]
	r.deliverMsg(m)
	return true
}

// deliverWhere delivers, oldest first, the messages in flight that pred selects, including
// those their delivery causes, and leaves the others in flight.
func (r *rtRunner) deliverWhere(pred func(m Message) bool) int {
	n := 0
	for {
		i := slices.IndexFunc(r.c.net, pred)
		if i < 0 {
			return n
		}
		m := r.c.net[i]
		r.c.net = slices.Delete(r.c.net, i, i+1)
		r.deliverMsg(m)
		n++
	}
}

// runUntil processes and delivers until cond holds or the network is quiet.
func (r *rtRunner) runUntil(cond func() bool) bool {
	r.processAll()
	for i := 0; i < 50000; i++ {
		if cond() {
			return true
		}
		if !r.deliverNext() {
			return cond()
		}
	}
	r.t.Fatalf("network never went quiet\n%s", r.c.report())
	return false
}

// settle delivers until nothing is in flight.
func (r *rtRunner) settle() { r.t.Helper(); r.runUntil(func() bool { return false }) }

// tick advances the clock of the given live nodes (all if none) by one tick.
func (r *rtRunner) tick(ids ...NodeID) {
	if len(ids) == 0 {
		ids = r.c.ids
	}
	for _, id := range ids {
		if sn := r.c.nodes[id]; sn.node != nil {
			sn.node.Tick()
		}
	}
	r.ticks++
	r.processAll()
}

func (r *rtRunner) tickSettle(n int) {
	for i := 0; i < n; i++ {
		r.tick()
		r.settle()
	}
}

// elect ticks until some live node is leader.
func (r *rtRunner) elect(maxTicks int) NodeID {
	for i := 0; ; i++ {
		r.settle()
		if l := r.c.leader(); l != None {
			return l
		}
		if i == maxTicks {
			return None
		}
		r.tick()
	}
}

// check fails the test on any safety violation the driver recorded, and on two leaders in
// one term.
func (r *rtRunner) check() {
	r.t.Helper()
	for term, ls := range r.leaders {
		if len(ls) > 1 {
			r.t.Errorf("election safety: term %d had leaders %v", term, ls)
		}
	}
	if len(r.c.violations) > 0 {
		r.t.Fatalf("violations:\n%s", r.c.report())
	}
}

// rtCampaignAt makes id campaign at once, as a MsgTimeoutNow does. A follower at term obeys
// it in its own term; a node below term first moves up to it. It then asks for votes for
// term+1 (without pre-vote, and voters set aside their leader lease, as for a transfer).
// Voters still check the candidate's log and their vote in that term.
func rtCampaignAt(t *testing.T, c *cluster, id NodeID, term uint64) {
	t.Helper()
	n := c.nodes[id].node
	if n == nil {
		t.Fatalf("campaign on crashed %s", id)
	}
	from := c.ids[0]
	if from == id {
		from = c.ids[1]
	}
	if err := n.Step(Message{Type: MsgTimeoutNow, From: from, To: id, Term: term}); err != nil {
		t.Fatalf("campaign %s: %v", id, err)
	}
	if n.role != Candidate && n.role != Leader {
		t.Fatalf("%s did not campaign (%v at term %d)", id, n.role, n.term)
	}
}

// rtCampaign makes id campaign in a term above every live node's.
func rtCampaign(t *testing.T, c *cluster, id NodeID) {
	t.Helper()
	top := uint64(1)
	for _, x := range c.ids {
		if sn := c.nodes[x]; sn.node != nil {
			top = max(top, sn.node.term)
		}
	}
	if n := c.nodes[id].node; n != nil && n.term == top && n.role != Follower {
		top++
	}
	rtCampaignAt(t, c, id, top)
}

// rtEntries builds a log from index 1 with the given terms; the data names index and term,
// so equal (index, term) pairs carry equal data in every log built this way.
func rtEntries(terms ...uint64) []Entry {
	ents := make([]Entry, len(terms))
	for i, term := range terms {
		ents[i] = Entry{Index: uint64(i + 1), Term: term, Data: []byte(fmt.Sprintf("e%d/t%d", i+1, term))}
	}
	return ents
}

// rtTerms repeats term n times.
func rtTerms(term uint64, n int) []uint64 {
	ts := make([]uint64, n)
	for i := range ts {
		ts[i] = term
	}
	return ts
}

// rtDisk replaces what node id has on disk and restarts it from there.
func rtDisk(t *testing.T, c *cluster, id NodeID, term uint64, ents []Entry, commit uint64) {
	t.Helper()
	sn := c.nodes[id]
	sn.hard = HardState{Term: term}
	sn.store.first = sn.store.snap.Meta.Index + 1
	sn.store.ents = slices.Clone(ents)
	sn.commit = commit
	sn.node = nil
	c.start(sn)
	if sn.node == nil {
		t.Fatalf("restart %s from its disk:\n%s", id, c.report())
	}
}

func rtCarries(m Message, index uint64) bool {
	for _, e := range m.Entries {
		if e.Index == index {
			return true
		}
	}
	return false
}

// rtStoredTerm is the term of entry i on id's disk (0 if it has none).
func rtStoredTerm(c *cluster, id NodeID, i uint64) uint64 {
	t, _ := c.storedTerm(c.nodes[id], i)
	return t
}

// rtNode builds a lone Node for hand-driven tests.
func rtNode(t *testing.T, id NodeID, voters []NodeID, st State, ents ...Entry) *Node {
	t.Helper()
	st.Snapshot.Meta.Members = Membership{Voters: voters}
	store := NewMemoryStorage(st.Snapshot, nil)
	if err := store.Append(ents); err != nil {
		t.Fatal(err)
	}
	hs, commit, applied := st.HardState, st.Commit, st.Applied
	st = store.State(hs)
	st.Commit, st.Applied = commit, applied
	n, err := NewNode(Config{ID: id, ElectionTicks: 10, HeartbeatTicks: 1, Rand: rand.New(rand.NewPCG(1, 2)), Storage: store}, st)
	if err != nil {
		t.Fatalf("NewNode: %v", err)
	}
	return n
}

// rtDrain takes the node's Ready, treating it as handled, and returns it.
func rtDrain(n *Node) Ready {
	rd := n.Ready()
	n.Advance(rd)
	return rd
}

func rtFind(msgs []Message, typ MsgType, to NodeID) (Message, bool) {
	for _, m := range msgs {
		if m.Type == typ && m.To == to {
			return m, true
		}
	}
	return Message{}, false
}

// ---------------------------------------------------------------------------------------
// 1. Election safety: at most one leader per term.

// A node grants one vote per term, keeps it across a restart, and may repeat it to the same
// candidate (a retransmitted request).
func TestRuleElectionSafetyOneVotePerTerm(t *testing.T) {
	voters := []NodeID{"a", "b", "c"}
	n := rtNode(t, "a", voters, State{HardState: HardState{Term: 1}})
	vote := func(n *Node, from NodeID, term uint64) (granted bool) {
		t.Helper()
		if err := n.Step(Message{Type: MsgVote, From: from, To: "a", Term: term}); err != nil {
			t.Fatal(err)
		}
		rd := rtDrain(n)
		m, ok := rtFind(rd.PersistedMessages, MsgVoteResp, from)
		if !ok {
			t.Fatalf("no vote answer to %s in %+v", from, rd)
		}
		return !m.Reject
	}
	if !vote(n, "b", 2) {
		t.Fatal("a did not vote for b, the first candidate of term 2")
	}
	if vote(n, "c", 2) {
		t.Fatal("a voted for c in term 2 after voting for b")
	}
	if !vote(n, "b", 2) {
		t.Fatal("a refused a repeated request from b, whom it voted for")
	}
	if hs := (HardState{Term: n.Status().Term, Vote: n.Status().Vote}); hs != (HardState{Term: 2, Vote: "b"}) {
		t.Fatalf("hard state %+v, want term 2 vote b", hs)
	}
	// the vote is durable: a restart from the hard state still refuses c
	n2 := rtNode(t, "a", voters, State{HardState: HardState{Term: 2, Vote: "b"}})
	if vote(n2, "c", 2) {
		t.Fatal("after a restart a voted for c in term 2, having voted for b")
	}
	if !vote(n2, "c", 3) {
		t.Fatal("a refused c in term 3, where it had not voted")
	}
}

// Two candidates in one term split the votes of five nodes 2-2 (the fifth cut off): neither
// wins that term, and once the partition heals exactly one leader emerges in a later term.
func TestRuleElectionSafetySplitVote(t *testing.T) {
	ids := rtIDs(5)
	c, r := rtCluster(t, 1, ids, ids, nil)
	c.partition([]NodeID{"n1", "n2"}, []NodeID{"n3", "n4"}, []NodeID{"n5"})
	rtCampaignAt(t, c, "n1", 1)
	rtCampaignAt(t, c, "n3", 1)
	r.settle()
	split := r.st("n1").Term
	if st := r.st("n3"); st.Term != split || st.Role != Candidate || r.st("n1").Role != Candidate {
		t.Fatalf("want two candidates in term %d, got n1 %v, n3 %v in term %d", split, r.st("n1").Role, st.Role, st.Term)
	}
	if v2, v4 := r.st("n2").Vote, r.st("n4").Vote; v2 != "n1" || v4 != "n3" {
		t.Fatalf("votes: n2→%s n4→%s, want n1 and n3", v2, v4)
	}
	for i := 0; i < 30; i++ { // the partition holds: nobody can gather 3 of 5
		r.tick()
		r.settle()
	}
	for term, ls := range r.leaders {
		t.Fatalf("a leader was elected with at most 2 of 5 votes: term %d %v", term, ls)
	}
	c.heal()
	l := r.elect(200)
	if l == None {
		t.Fatalf("no leader after healing\n%s", c.report())
	}
	lt := r.st(l).Term
	if lt <= split {
		t.Fatalf("leader %s of term %d, want a term after the split term %d", l, lt, split)
	}
	if len(r.leaders[split]) != 0 {
		t.Fatalf("term %d of the split vote had leader(s) %v", split, r.leaders[split])
	}
	r.tickSettle(3)
	for _, id := range ids {
		if st := r.st(id); st.Lead != l || st.Term != lt {
			t.Errorf("%s follows %q in term %d, want %s in term %d", id, st.Lead, st.Term, l, lt)
		}
	}
	r.check()
}

// A leader cut off in a minority keeps believing it leads its (old) term while the
// majority elects a leader of a newer term: two leaders at once, never two in one term.
func TestRuleElectionSafetyMinorityLeader(t *testing.T) {
	ids := rtIDs(5)
	c, r := rtCluster(t, 2, ids, ids, nil)
	old := r.elect(200)
	if old == None {
		t.Fatal("no leader")
	}
	oldTerm := r.st(old).Term
	var minority, majority []NodeID
	minority = append(minority, old)
	for _, id := range ids {
		if id == old {
			continue
		}
		if len(minority) < 2 {
			minority = append(minority, id)
		} else {
			majority = append(majority, id)
		}
	}
	c.partition(minority, majority)
	var nl NodeID
	for i := 0; i < 100 && nl == None; i++ {
		r.tick(majority...) // the old leader's clock stands still: it does not step down
		r.settle()
		for _, id := range majority {
			if r.st(id).Role == Leader {
				nl = id
			}
		}
	}
	if nl == None {
		t.Fatalf("the majority elected no leader\n%s", c.report())
	}
	if r.st(old).Role != Leader {
		t.Fatalf("the old leader %s stepped down without ticks or messages", old)
	}
	if nt := r.st(nl).Term; nt <= oldTerm {
		t.Fatalf("new leader %s has term %d, old leader %s term %d", nl, nt, old, oldTerm)
	}
	c.heal()
	r.tickSettle(3)
	if st := r.st(old); st.Role != Follower || st.Lead != nl {
		t.Fatalf("after healing the old leader is %v following %q, want follower of %s", st.Role, st.Lead, nl)
	}
	r.check()
}

// ---------------------------------------------------------------------------------------
// 2. Election restriction (§5.4.1) and leader completeness.

// The vote goes only to a candidate whose log is at least as up to date: last term first,
// then length.
func TestRuleElectionRestrictionUpToDate(t *testing.T) {
	voters := []NodeID{"a", "b", "c"}
	// a holds terms 1, 2, 2: last entry (3, 2)
	for _, tc := range []struct {
		lastIndex, lastTerm uint64
		grant               bool
	}{
		{10, 1, false}, // longer, but an older last term
		{2, 2, false},  // same last term, shorter
		{3, 2, true},   // the same log
		{4, 2, true},   // same last term, longer
		{1, 3, true},   // shorter, but a newer last term
	} {
		n := rtNode(t, "a", voters, State{HardState: HardState{Term: 2}}, rtEntries(1, 2, 2)...)
		if err := n.Step(Message{Type: MsgVote, From: "b", To: "a", Term: 5, Index: tc.lastIndex, LogTerm: tc.lastTerm}); err != nil {
			t.Fatal(err)
		}
		m, ok := rtFind(rtDrain(n).PersistedMessages, MsgVoteResp, "b")
		if !ok || m.Reject == tc.grant {
			t.Errorf("candidate with last entry (%d, term %d): granted=%v, want %v", tc.lastIndex, tc.lastTerm, ok && !m.Reject, tc.grant)
		}
		// a pre-vote applies the same restriction
		n = rtNode(t, "a", voters, State{HardState: HardState{Term: 2}}, rtEntries(1, 2, 2)...)
		if err := n.Step(Message{Type: MsgPreVote, From: "b", To: "a", Term: 3, Index: tc.lastIndex, LogTerm: tc.lastTerm}); err != nil {
			t.Fatal(err)
		}
		m, ok = rtFind(rtDrain(n).PersistedMessages, MsgPreVoteResp, "b")
		if !ok || m.Reject == tc.grant {
			t.Errorf("pre-candidate with last entry (%d, term %d): granted=%v, want %v", tc.lastIndex, tc.lastTerm, ok && !m.Reject, tc.grant)
		}
	}
}

// A node that missed committed entries cannot win; the node that holds them wins, and its
// log has every committed entry.
func TestRuleElectionRestrictionStaleNodeLoses(t *testing.T) {
	ids := rtIDs(3)
	c, r := rtCluster(t, 3, ids, ids, nil)
	rtCampaign(t, c, "n1")
	r.settle()
	r.tickSettle(1)
	c.isolate("n3")
	for i := 0; i < 5; i++ {
		if !c.propose("n1", []byte{byte(i)}) {
			t.Fatal("propose")
		}
	}
	r.settle()
	r.tickSettle(1)
	committed := r.st("n1").Commit
	if committed < 6 || r.st("n2").Commit != committed {
		t.Fatalf("commit n1 %d n2 %d, want ≥ 6 on both", committed, r.st("n2").Commit)
	}
	if r.st("n3").LastIndex >= committed {
		t.Fatalf("n3 holds %d entries, should have missed the last ones", r.st("n3").LastIndex)
	}
	c.crash("n1")
	c.heal()
	for try := 0; try < 3; try++ {
		rtCampaign(t, c, "n3")
		r.settle()
		if r.st("n3").Role == Leader {
			t.Fatalf("stale n3 (last index %d) won against n2 holding committed index %d", r.st("n3").LastIndex, committed)
		}
		if v := r.st("n2").Vote; v == "n3" {
			t.Fatal("n2 voted for the stale n3")
		}
	}
	l := r.elect(200)
	if l != "n2" {
		t.Fatalf("leader %q, want n2, the only node with every committed entry", l)
	}
	lg := &r.node("n2").log
	for i := uint64(1); i <= committed; i++ {
		want, ok := c.committed[i]
		if !ok {
			continue
		}
		if got, _ := lg.term(i); got != want[0] {
			t.Errorf("leader n2 has term %d at committed index %d, want %d", got, i, want[0])
		}
	}
	c.restart("n1")
	r.tickSettle(3)
	for _, id := range ids {
		if got := c.nodes[id].appliedIndex; got < committed {
			t.Errorf("%s applied %d, want ≥ %d", id, got, committed)
		}
	}
	r.check()
}

// ---------------------------------------------------------------------------------------
// 3. Log matching: consistency check, truncation of a divergent suffix, fast backtracking.

// A follower refuses an append whose previous entry it lacks, hinting where its log could
// match; it replaces a conflicting uncommitted suffix; it never cuts entries on a
// duplicated or late append.
func TestRuleLogMatchingFollower(t *testing.T) {
	voters := []NodeID{"a", "b", "c"}
	// a: entry 1 of term 1, then 50 entries of term 2 from an old leader, commit 1
	n := rtNode(t, "a", voters, State{HardState: HardState{Term: 2}, Commit: 1}, rtEntries(append([]uint64{1}, rtTerms(2, 50)...)...)...)
	rtDrain(n)
	before := n.Status()
	if err := n.Step(Message{Type: MsgApp, From: "b", To: "a", Term: 3, Index: 60, LogTerm: 3}); err != nil {
		t.Fatal(err)
	}
	rd := rtDrain(n)
	m, ok := rtFind(rd.PersistedMessages, MsgAppResp, "b")
	if !ok || !m.Reject || m.Index != 60 || m.RejectHint != 51 || m.LogTerm != 2 {
		t.Fatalf("answer to an append after 60/3: %v, want reject index 60 hint 51 term 2", m)
	}
	if st := n.Status(); st.LastIndex != before.LastIndex || st.Commit != 1 {
		t.Fatalf("a refused append changed the log: last %d commit %d", st.LastIndex, st.Commit)
	}
	// the leader's entries of term 3 from index 2 replace the term-2 suffix
	app := Message{Type: MsgApp, From: "b", To: "a", Term: 3, Index: 1, LogTerm: 1, Commit: 3,
		Entries: []Entry{{Index: 2, Term: 3, Data: []byte("x")}, {Index: 3, Term: 3, Data: []byte("y")}}}
	if err := n.Step(app); err != nil {
		t.Fatal(err)
	}
	rd = rtDrain(n)
	if st := n.Status(); st.LastIndex != 3 || st.LastTerm != 3 || st.Commit != 3 {
		t.Fatalf("after the append: last %d/%d commit %d, want 3/3 commit 3", st.LastIndex, st.LastTerm, st.Commit)
	}
	if len(rd.Entries) != 2 || rd.Entries[0].Index != 2 || rd.Entries[1].Term != 3 {
		t.Fatalf("entries to persist %v, want the new 2 and 3", rd.Entries)
	}
	if m, ok := rtFind(rd.PersistedMessages, MsgAppResp, "b"); !ok || m.Reject || m.Index != 3 {
		t.Fatalf("answer %v, want accept index 3", m)
	}
	// a duplicate and a late, shorter copy change nothing
	for _, m := range []Message{app, {Type: MsgApp, From: "b", To: "a", Term: 3, Index: 1, LogTerm: 1, Entries: app.Entries[:1]}} {
		if err := n.Step(m); err != nil {
			t.Fatal(err)
		}
		if st := n.Status(); st.LastIndex != 3 || st.LastTerm != 3 {
			t.Fatalf("a repeated append cut the log to %d/%d", st.LastIndex, st.LastTerm)
		}
		if rd := rtDrain(n); len(rd.Entries) != 0 {
			t.Fatalf("a repeated append rewrote entries %v", rd.Entries)
		}
	}
	// an append that contradicts committed entries never changes them
	bad := Message{Type: MsgApp, From: "b", To: "a", Term: 9, Index: 1, LogTerm: 1, Commit: 3,
		Entries: []Entry{{Index: 2, Term: 9}, {Index: 3, Term: 9}, {Index: 4, Term: 9}}}
	_ = n.Step(bad)
	rtDrain(n)
	if st := n.Status(); st.Commit != 3 || st.LastTerm != 3 || st.LastIndex != 3 {
		t.Fatalf("an append below the commit index rewrote committed entries: %+v", st)
	}
}

// rtConverge runs a three-node cluster where n1 and n2 hold leaderLog and n3 holds
// followerLog, elects n1, and returns how many appends n3 rejected before its log matched.
func rtConverge(t *testing.T, seed uint64, leaderLog, followerLog []Entry) int {
	t.Helper()
	ids := rtIDs(3)
	c, r := rtCluster(t, seed, ids, ids, nil)
	term := max(leaderLog[len(leaderLog)-1].Term, followerLog[len(followerLog)-1].Term)
	rtDisk(t, c, "n1", term, leaderLog, 0)
	rtDisk(t, c, "n2", term, leaderLog, 0)
	rtDisk(t, c, "n3", term, followerLog, 0)
	rejects := 0
	r.onDeliver = func(m Message) {
		if m.Type == MsgAppResp && m.From == "n3" && m.Reject {
			rejects++
		}
	}
	rtCampaign(t, c, "n1")
	r.settle()
	if r.st("n1").Role != Leader {
		t.Fatalf("n1 did not win\n%s", c.report())
	}
	r.tickSettle(2)
	lead, fol := c.nodes["n1"].store.ents, c.nodes["n3"].store.ents
	if len(lead) != len(fol) {
		t.Fatalf("n3 holds %d entries, leader %d", len(fol), len(lead))
	}
	for i := range lead {
		if lead[i].Index != fol[i].Index || lead[i].Term != fol[i].Term || !bytes.Equal(lead[i].Data, fol[i].Data) {
			t.Fatalf("n3 entry %d/%d differs from the leader's %d/%d", fol[i].Index, fol[i].Term, lead[i].Index, lead[i].Term)
		}
	}
	if got, want := c.nodes["n3"].appliedIndex, uint64(len(lead)); got != want {
		t.Fatalf("n3 applied %d, want %d", got, want)
	}
	r.check()
	return rejects
}

// Figure 7 of the Raft paper: the leader of term 8 brings each of the followers (a)-(f),
// missing or holding extra or conflicting entries, in line with its log, skipping a whole
// conflicting term per rejection.
func TestRuleLogMatchingFigure7(t *testing.T) {
	leader := []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6}
	for i, tc := range []struct {
		name  string
		terms []uint64
	}{
		{"a", []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6}},
		{"b", []uint64{1, 1, 1, 4}},
		{"c", []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}},
		{"d", []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}},
		{"e", []uint64{1, 1, 1, 4, 4, 4, 4}},
		{"f", []uint64{1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rejects := rtConverge(t, uint64(70+i), rtEntries(leader...), rtEntries(tc.terms...))
			t.Logf("follower (%s): %d rejections", tc.name, rejects)
			if rejects > 2 {
				t.Errorf("follower (%s) needed %d rejected appends, want at most 2", tc.name, rejects)
			}
		})
	}
}

// A follower holding 50 conflicting entries of one old term converges after a constant
// number of rejections, whether its log is shorter or longer than the leader's.
func TestRuleLogMatchingFastBacktrack(t *testing.T) {
	follower := rtEntries(append([]uint64{1}, rtTerms(2, 50)...)...) // indexes 2..51 of term 2
	for _, tc := range []struct {
		name   string
		leader []Entry
	}{
		{"leader longer", rtEntries(append([]uint64{1}, rtTerms(3, 60)...)...)},
		{"leader shorter", rtEntries(append([]uint64{1}, rtTerms(3, 4)...)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rejects := rtConverge(t, 80, tc.leader, follower)
			t.Logf("%d rejections", rejects)
			if rejects > 2 {
				t.Errorf("%d rejected appends to replace 50 conflicting entries of one term, want at most 2", rejects)
			}
		})
	}
}

// ---------------------------------------------------------------------------------------
// 4. The commit rule (§5.4.2) and Figure 8 of the Raft paper.

// rtFigure8 plays (a)-(c) of Figure 8 with n1..n5 as S1..S5. Every new leader here first
// appends an empty entry of its term, so the indexes are one higher than in the figure:
// X is S1's entry at index 2 of term t1, S5's entry at index 2 has term t2, and S1's
// entry of term t3 sits at index 3. It returns with S1 leader of t3, X on S1-S4 and known
// by S1 to be on S1, S3 and S4 (a majority), and S1's entry of t3 on S1 only.
func rtFigure8(t *testing.T) (c *cluster, r *rtRunner, t1, t2, t3 uint64) {
	t.Helper()
	ids := rtIDs(5)
	c, r = rtCluster(t, 8, ids, ids, nil)
	rtCampaign(t, c, "n1")
	r.settle()
	r.tickSettle(1)
	t1 = r.st("n1").Term
	if r.st("n1").Role != Leader || r.st("n5").Commit != 1 {
		t.Fatalf("setup: n1 %v, n5 commit %d", r.st("n1").Role, r.st("n5").Commit)
	}

	// (a) S1 replicates X only to S2. X is large, so that it travels alone in an append.
	c.partition([]NodeID{"n1", "n2"}, []NodeID{"n3", "n4", "n5"})
	if !c.propose("n1", bytes.Repeat([]byte("X"), 240)) {
		t.Fatal("propose X")
	}
	r.settle()
	if rtStoredTerm(c, "n2", 2) != t1 || r.st("n1").Commit != 1 {
		t.Fatalf("(a): n2 term at 2 is %d, n1 commit %d", rtStoredTerm(c, "n2", 2), r.st("n1").Commit)
	}

	// (b) S1 crashes; S5 wins with the votes of S3 and S4 and appends its own entry at
	// index 2, which reaches nobody.
	c.crash("n1")
	r.drop = func(m Message) bool { return m.From == "n5" && m.Type == MsgApp }
	rtCampaign(t, c, "n5")
	r.settle()
	r.drop, r.dropped = nil, 0
	if r.st("n5").Role != Leader {
		t.Fatalf("(b): n5 did not win\n%s", c.report())
	}
	t2 = r.st("n5").Term
	if rtStoredTerm(c, "n5", 2) != t2 || r.st("n3").LastIndex != 1 || r.st("n4").LastIndex != 1 {
		t.Fatalf("(b): n5 term at 2 is %d; n3, n4 last %d, %d", rtStoredTerm(c, "n5", 2), r.st("n3").LastIndex, r.st("n4").LastIndex)
	}

	// (c) S5 crashes; S1 restarts and wins with S2, S3, S4. It brings X to S3 and S4, but
	// every append of its own entry at index 3 that would land is lost.
	c.crash("n5")
	c.heal()
	c.restart("n1")
	r.drop = func(m Message) bool {
		if m.From != "n1" || m.Type != MsgApp || !rtCarries(m, 3) {
			return false
		}
		to := c.nodes[m.To].node
		return to != nil && to.log.matchTerm(m.Index, m.LogTerm)
	}
	rtCampaign(t, c, "n1")
	r.settle()
	if r.st("n1").Role != Leader || r.dropped == 0 {
		t.Fatalf("(c): n1 %v, %d appends of index 3 lost\n%s", r.st("n1").Role, r.dropped, c.report())
	}
	t3 = r.st("n1").Term
	holders := 0
	for _, id := range ids {
		if rtStoredTerm(c, id, 2) == t1 {
			holders++
		}
	}
	st := r.st("n1")
	known := 0
	for _, p := range st.Progress {
		if p.Match >= 2 {
			known++
		}
	}
	if holders < 3 || known < 3 || rtStoredTerm(c, "n1", 3) != t3 || r.st("n3").LastIndex != 2 {
		t.Fatalf("(c): X on %d nodes, leader knows of %d; n1 term at 3: %d; n3 last %d", holders, known,
			rtStoredTerm(c, "n1", 3), r.st("n3").LastIndex)
	}
	// the commit rule: X is on a majority, and the leader knows it, but it is of term t1
	if st.Commit != 1 {
		t.Fatalf("(c): leader of term %d committed %d by counting replicas of X (term %d)", t3, st.Commit, t1)
	}
	return c, r, t1, t2, t3
}

// (d): S1 crashes before any entry of its term is on a majority; S5 wins with the votes of
// S2, S3 and S4 and overwrites X everywhere. That is allowed only because X was never
// committed, which is what the commit rule ensured in (c).
func TestRuleCommitFigure8UncommittedOverwritten(t *testing.T) {
	c, r, t1, t2, _ := rtFigure8(t)
	r.drop = nil
	c.crash("n1")
	c.restart("n5")
	rtCampaign(t, c, "n5")
	r.settle()
	if r.st("n5").Role != Leader {
		t.Fatalf("(d): n5 did not win\n%s", c.report())
	}
	c.restart("n1")
	r.tickSettle(3)
	for _, id := range c.ids {
		if got := rtStoredTerm(c, id, 2); got != t2 {
			t.Errorf("%s holds term %d at index 2, want S5's entry of term %d", id, got, t2)
		}
	}
	if got := c.committed[2]; got[0] != t2 {
		t.Errorf("index 2 applied with term %d, want %d", got[0], t2)
	}
	if got := c.committed[2]; got[0] == t1 {
		t.Errorf("X (term %d) was applied although it was overwritten", t1)
	}
	r.check()
}

// (e): S1 brings an entry of its own term to a majority before crashing. X is committed
// with it, and only then; S5 can no longer win and X survives.
func TestRuleCommitFigure8CommittedSurvives(t *testing.T) {
	c, r, t1, _, t3 := rtFigure8(t)
	// first the entry of term t3 reaches S3 only: with X on S1, S3, S4 and the t3 entry on
	// S1, S3, no index of term t3 is on a majority, so nothing is committed
	r.drop = func(m Message) bool {
		return m.From == "n1" && m.Type == MsgApp && rtCarries(m, 3) && m.To != "n3"
	}
	r.tick("n1")
	r.settle()
	if rtStoredTerm(c, "n3", 3) != t3 {
		t.Fatalf("n3 did not get index 3")
	}
	if got := r.st("n1").Commit; got != 1 {
		t.Fatalf("commit %d with the t3 entry on 2 of 5 nodes, want 1", got)
	}
	// now S4 gets it too: index 3 is on a majority and commits, and X with it
	r.drop = nil
	r.tick("n1")
	r.settle()
	if got := r.st("n1").Commit; got != 3 {
		t.Fatalf("commit %d with the t3 entry on a majority, want 3", got)
	}
	if got := c.committed[2]; got[0] != t1 {
		t.Fatalf("index 2 applied with term %d, want X of term %d", got[0], t1)
	}
	c.crash("n1")
	c.restart("n5")
	for try := 0; try < 3; try++ {
		rtCampaign(t, c, "n5")
		r.settle()
		if r.st("n5").Role == Leader {
			t.Fatalf("S5 won without committed X\n%s", c.report())
		}
	}
	l := r.elect(200)
	if l == None || l == "n5" {
		t.Fatalf("leader %q, want one of S2-S4", l)
	}
	c.restart("n1")
	r.tickSettle(3)
	for _, id := range c.ids {
		if got := rtStoredTerm(c, id, 2); got != t1 {
			t.Errorf("%s holds term %d at index 2, want committed X of term %d", id, got, t1)
		}
		if got := c.nodes[id].appliedIndex; got < 3 {
			t.Errorf("%s applied %d, want ≥ 3", id, got)
		}
	}
	r.check()
}

// ---------------------------------------------------------------------------------------
// 4b. A follower commits only what it knows matches the leader.

// The follower never takes the leader's commit index past the last entry the append it
// received vouches for: entries after it may be a divergent suffix of an old term.
func TestRuleCommitFollowerVerifiedPrefixOnly(t *testing.T) {
	voters := []NodeID{"a", "b", "c"}
	// a: 1 of term 1, then 2..6 of term 2 from an old leader; the new leader of term 3
	// holds 1 of term 1 and 2.. of term 3
	n := rtNode(t, "a", voters, State{HardState: HardState{Term: 2}}, rtEntries(1, 2, 2, 2, 2, 2)...)
	rtDrain(n)
	if err := n.Step(Message{Type: MsgApp, From: "b", To: "a", Term: 3, Index: 1, LogTerm: 1, Commit: 6}); err != nil {
		t.Fatal(err)
	}
	if st := n.Status(); st.Commit != 1 || st.LastIndex != 6 {
		t.Fatalf("empty append matching at 1 with leader commit 6: commit %d last %d, want commit 1 (last 6 unverified)", st.Commit, st.LastIndex)
	}
	// a: 1/1, 2/2, 3/2; the leader of term 3 holds 1/1, 2/2, 3/3: a's entry 3 is a leftover
	n = rtNode(t, "a", voters, State{HardState: HardState{Term: 3}}, rtEntries(1, 2, 2)...)
	rtDrain(n)
	if err := n.Step(Message{Type: MsgApp, From: "b", To: "a", Term: 3, Index: 1, LogTerm: 1, Commit: 6,
		Entries: rtEntries(1, 2)[1:]}); err != nil {
		t.Fatal(err)
	}
	if st := n.Status(); st.Commit != 2 || st.LastIndex != 3 {
		t.Fatalf("append of 2/2 with leader commit 6 over a log ending in 3/2: commit %d last %d, want commit 2, last 3", st.Commit, st.LastIndex)
	}
	if rd := rtDrain(n); len(rd.CommittedEntries) != 2 || rd.CommittedEntries[1].Index != 2 {
		t.Fatalf("committed entries %v, want 1 and 2", rd.CommittedEntries)
	}
}

// The leader's heartbeats tell a follower to commit no further than the follower is known
// to match: a follower with a divergent suffix, which only hears heartbeats, applies none
// of it.
func TestRuleCommitHeartbeatCappedAtMatch(t *testing.T) {
	ids := rtIDs(3)
	c, r := rtCluster(t, 41, ids, ids, nil)
	leader := rtEntries(1, 3, 3, 3, 3, 3)
	rtDisk(t, c, "n1", 3, leader, 1)
	rtDisk(t, c, "n2", 3, leader, 1)
	rtDisk(t, c, "n3", 3, rtEntries(1, 2, 2, 2, 2, 2), 1) // same length, divergent from 2
	c.isolate("n3")
	rtCampaign(t, c, "n1")
	r.settle()
	r.tickSettle(2)
	if st := r.st("n1"); st.Role != Leader || st.Commit != 7 {
		t.Fatalf("n1 %v commit %d, want leader with 7 committed", st.Role, st.Commit)
	}
	c.heal()
	r.drop = func(m Message) bool { return m.From == "n1" && m.To == "n3" && m.Type != MsgHeartbeat }
	heartbeats := 0
	r.onDeliver = func(m Message) {
		if m.Type == MsgHeartbeat && m.To == "n3" {
			heartbeats++
			if match := r.st("n1").Progress["n3"].Match; m.Commit > match {
				t.Errorf("heartbeat to n3 carries commit %d, its match is %d", m.Commit, match)
			}
		}
	}
	r.tickSettle(3)
	if heartbeats == 0 {
		t.Fatal("no heartbeat reached n3")
	}
	if st := r.st("n3"); st.Commit > 1 || c.nodes["n3"].appliedIndex > 1 {
		t.Fatalf("n3 commit %d applied %d from heartbeats alone, over a divergent log", st.Commit, c.nodes["n3"].appliedIndex)
	}
	r.drop = nil
	r.tickSettle(2)
	if got := c.nodes["n3"].appliedIndex; got != 7 || rtStoredTerm(c, "n3", 2) != 3 {
		t.Fatalf("n3 applied %d, term at 2 is %d; want 7 and 3", got, rtStoredTerm(c, "n3", 2))
	}
	r.check()
}

// A leader counts itself toward a commit only for entries on its own disk: its appends go
// out before its write completes, and an answer from one follower of three is then not
// enough.
func TestRuleCommitLeaderCountsItselfOnlyWhenDurable(t *testing.T) {
	ids := rtIDs(3)
	c, r := rtCluster(t, 43, ids, ids, nil)
	rtCampaign(t, c, "n1")
	r.settle()
	r.tickSettle(1)
	sn := c.nodes["n1"]
	if !c.propose("n1", []byte("e")) {
		t.Fatal("propose")
	}
	e := r.st("n1").LastIndex
	if !c.beginReady(sn) { // appends sent, the write not done
		t.Fatal("no Ready")
	}
	r.deliverWhere(func(m Message) bool { return m.Type == MsgApp && m.To == "n2" })
	i := slices.IndexFunc(c.net, func(m Message) bool { return m.Type == MsgAppResp && m.From == "n2" && m.Index == e })
	if i < 0 {
		t.Fatalf("n2 did not acknowledge %d; in flight %v", e, c.net)
	}
	c.deliver(i) // to the leader, whose Ready is still being written
	if st := r.st("n1"); st.Commit >= e || st.Stable >= e {
		t.Fatalf("leader committed %d (stable %d) with one follower of three holding it durably", st.Commit, st.Stable)
	}
	c.finishReady(sn)
	if st := r.st("n1"); st.Commit != e {
		t.Fatalf("once its own write is done the leader has commit %d, want %d", st.Commit, e)
	}
	r.settle()
	r.check()
}

// ---------------------------------------------------------------------------------------
// 5. State machine safety: crashes, restarts, partitions and compactions, and every node
// still applies the same entry at each index.

func TestRuleStateMachineSafety(t *testing.T) {
	for _, tc := range []struct {
		name      string
		seed      uint64
		drop, dup float64
	}{
		{"reliable", 51, 0, 0},
		{"lossy", 52, 0.1, 0.05},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids := rtIDs(5)
			c, r := rtCluster(t, tc.seed, ids, ids, nil)
			c.dropRate, c.dupRate = tc.drop, tc.dup
			var down, downLong NodeID // restarted next round; restarted after the snapshots
			proposed, leaders := 0, map[NodeID]bool{}
			for round := 0; round < 16; round++ {
				c.heal()
				if down != None {
					c.restart(down)
					down = None
				}
				if round%4 == 0 && downLong != None {
					c.restart(downLong) // it missed entries everyone compacted: it needs a snapshot
					downLong = None
				}
				l := r.elect(300)
				if l == None {
					t.Fatalf("round %d: no leader\n%s", round, c.report())
				}
				leaders[l] = true
				for i := 0; i < 4; i++ {
					if c.propose(l, []byte(fmt.Sprintf("r%d.%d", round, i))) {
						proposed++
					}
				}
				switch round % 4 {
				case 0: // the leader sends its appends, then crashes before they are on its disk
					c.beginReady(c.nodes[l])
					c.crash(l)
					down = l
				case 1: // a follower crashes and stays down until the snapshots are taken
					r.settle()
					downLong = ids[(slices.Index(ids, l)+1+round)%len(ids)]
					c.crash(downLong)
				case 2: // the leader is cut off until the others elect another
					r.settle()
					c.isolate(l)
					for i := 0; i < 100; i++ {
						r.tick()
						r.settle()
						if nl := c.leader(); nl != None && nl != l {
							break
						}
					}
				case 3: // everyone up snapshots
					r.settle()
					r.tickSettle(1)
					for _, id := range ids {
						c.compact(id)
					}
				}
				r.tickSettle(2)
			}
			c.heal()
			for _, id := range []NodeID{down, downLong} {
				if id != None {
					c.restart(id)
				}
			}
			c.dropRate, c.dupRate = 0, 0
			converged := false
			for i := 0; i < 100 && !converged; i++ {
				r.tickSettle(1)
				converged = true
				for _, id := range ids {
					if sn := c.nodes[id]; sn.appliedIndex != c.maxApplied || sn.appliedHash != c.nodes[ids[0]].appliedHash {
						converged = false
					}
				}
			}
			if !converged {
				for _, id := range ids {
					t.Errorf("%s applied %d (hash %x), max %d", id, c.nodes[id].appliedIndex, c.nodes[id].appliedHash, c.maxApplied)
				}
			}
			t.Logf("%d proposed, %d indexes applied, %d acknowledged, %d leaders, %d elections, %d snapshot chunks",
				proposed, c.commits, c.acked, len(leaders), c.elections, c.snapshotsSent)
			if c.commits < proposed/2 || c.acked < proposed/3 {
				t.Errorf("only %d indexes applied and %d proposals acknowledged of %d", c.commits, c.acked, proposed)
			}
			if len(leaders) < 3 || c.snapshotsSent == 0 || c.restarts < 8 {
				t.Errorf("%d different leaders, %d snapshot chunks, %d restarts: the schedule did not exercise what it should",
					len(leaders), c.snapshotsSent, c.restarts)
			}
			r.check()
		})
	}
}

// ---------------------------------------------------------------------------------------
// 6. Pre-vote and check-quorum.

// A node cut off for many election timeouts keeps campaigning by pre-vote, which never
// raises its term; back in the cluster it does not unseat the healthy leader.
func TestRulePreVoteKeepsTermAndLeader(t *testing.T) {
	ids := rtIDs(3)
	c, r := rtCluster(t, 6, ids, ids, nil)
	l := r.elect(200)
	r.tickSettle(2)
	term := r.st(l).Term
	victim := ids[(slices.Index(ids, l)+1)%3]
	preVotes, votes := 0, 0
	r.onSend = func(m Message) {
		if m.From == victim && m.Type == MsgPreVote {
			preVotes++
		}
		if m.From == victim && m.Type == MsgVote {
			votes++
		}
	}
	c.isolate(victim)
	et := c.cfg(victim).ElectionTicks
	for i := 0; i < 10*et; i++ {
		r.tick()
		r.settle()
		if got := r.st(victim).Term; got != term {
			t.Fatalf("tick %d: the isolated %s raised its term to %d", i, victim, got)
		}
	}
	if preVotes < 3 || votes != 0 {
		t.Fatalf("isolated %s sent %d pre-votes and %d votes, want several pre-votes and no vote", victim, preVotes, votes)
	}
	c.heal()
	r.tickSettle(3 * et)
	for _, id := range ids {
		if st := r.st(id); st.Term != term || st.Lead != l {
			t.Errorf("%s: term %d lead %q, want term %d lead %s", id, st.Term, st.Lead, term, l)
		}
	}
	if r.st(l).Role != Leader {
		t.Errorf("%s lost leadership", l)
	}
	r.check()
}

// Nodes that hear from a leader ignore elections: a node cut off from the leader's
// messages only (a one-way link failure), with a log as up to date as anyone's, campaigns
// again and again in vain, and the leader keeps its term.
func TestRuleLeaderLeaseIgnoresDisruptiveNode(t *testing.T) {
	ids := rtIDs(3)
	c, r := rtCluster(t, 61, ids, ids, nil)
	l := r.elect(200)
	r.tickSettle(2)
	term := r.st(l).Term
	v := ids[(slices.Index(ids, l)+1)%3]
	campaigns := 0
	r.onSend = func(m Message) {
		if m.From == v && (m.Type == MsgPreVote || m.Type == MsgVote) {
			campaigns++
		}
	}
	r.drop = func(m Message) bool { return m.From == l && m.To == v }
	et := c.cfg(l).ElectionTicks
	r.tickSettle(6 * et)
	if campaigns == 0 {
		t.Fatalf("%s never campaigned: the test shows nothing", v)
	}
	for _, id := range ids {
		if st := r.st(id); st.Term != term {
			t.Errorf("%s moved to term %d (from %d) after %d vote requests from %s", id, st.Term, term, campaigns, v)
		}
	}
	if c.leader() != l {
		t.Fatalf("leader %s, was %s", c.leader(), l)
	}
	r.drop = nil
	r.tickSettle(2)
	if st := r.st(v); st.Lead != l || st.Term != term {
		t.Fatalf("%s follows %q in term %d, want %s in %d", v, st.Lead, st.Term, l, term)
	}
	r.check()
}

// A follower told that its leader's process is gone stands for election within a quarter
// of an election timeout per voter ranked before it, not a full randomized timeout, and
// wins when the other followers were told too; the followers never split the vote. A
// false report while the leader lives changes neither leader nor term.
func TestRuleLeaderGone(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		ids := rtIDs(5)
		c, r := rtCluster(t, 70+seed, ids, ids, nil)
		l := r.elect(200)
		r.tickSettle(2)
		term := r.st(l).Term
		et := c.cfg(l).ElectionTicks

		// a false report to one follower: its pre-vote is refused by lease
		f := others(ids, l)[int(seed)%4]
		if !r.node(f).LeaderGone(l) {
			t.Fatalf("seed %d: %s ignored LeaderGone of its leader %s", seed, f, l)
		}
		if st := r.st(f); st.Lead != None {
			t.Fatalf("seed %d: %s still follows %s after LeaderGone", seed, f, st.Lead)
		}
		r.tickSettle(et)
		if c.leader() != l || r.st(l).Term != term {
			t.Fatalf("seed %d: a false LeaderGone on %s moved leadership to %s term %d (was %s, %d)", seed, f, c.leader(), r.st(l).Term, l, term)
		}
		// reports about someone else, or to the leader itself, are ignored
		if r.node(l).LeaderGone(l) || r.node(f).LeaderGone(f) {
			t.Fatalf("seed %d: LeaderGone acted on the leader itself, or on a follower about itself", seed)
		}
		r.settle()
		if r.st(l).Role != Leader || r.st(f).Lead != l {
			t.Fatalf("seed %d: an irrelevant LeaderGone changed something", seed)
		}

		// the leader dies; every follower is told
		c.crash(l)
		rest := others(ids, l)
		for _, id := range rest {
			r.node(id).LeaderGone(l)
		}
		candidates := map[NodeID]bool{}
		r.onSend = func(m Message) {
			if m.Type == MsgVote || m.Type == MsgPreVote {
				candidates[m.From] = true
			}
		}
		ticks := 0
		for ; ticks < 2*et && c.leader() == None; ticks++ {
			r.tick(rest...)
			r.settle()
		}
		r.onSend = nil
		if nl := c.leader(); nl == None || ticks > 1+et/4 {
			t.Fatalf("seed %d: leader %q after %d ticks, want one within %d (election timeout %d)", seed, nl, ticks, 1+et/4, et)
		}
		if want := min(rest[0], rest[1], rest[2], rest[3]); c.leader() != want || len(candidates) != 1 {
			t.Fatalf("seed %d: %s won with candidates %v, want %s (first in name order) alone", seed, c.leader(), candidates, want)
		}
		r.check()
	}
}

func others(ids []NodeID, not NodeID) []NodeID {
	return slices.DeleteFunc(slices.Clone(ids), func(id NodeID) bool { return id == not })
}

// A leader that cannot hear from a majority steps down within two election timeouts, and
// not before a full election timeout of silence, without raising its term; whatever the
// phase of its check period when it was cut off. One that can hear from a majority stays.
func TestRuleCheckQuorum(t *testing.T) {
	for phase := 0; phase < 10; phase++ {
		ids := rtIDs(3)
		c, r := rtCluster(t, 60, ids, ids, nil)
		l := r.elect(200)
		et := c.cfg(l).ElectionTicks
		if phase >= et {
			break
		}
		r.tickSettle(3*et + phase) // a connected leader stays
		if r.st(l).Role != Leader || r.c.leader() != l {
			t.Fatalf("%s lost leadership in a healthy cluster", l)
		}
		term := r.st(l).Term
		c.isolate(l)
		stepped := 0
		for i := 1; i <= 2*et; i++ {
			r.tick(l)
			r.settle()
			if r.st(l).Role != Leader {
				stepped = i
				break
			}
		}
		if stepped == 0 {
			t.Fatalf("phase %d: isolated leader %s still leads after %d ticks (election timeout %d)", phase, l, 2*et, et)
		}
		if stepped < et {
			t.Errorf("phase %d: leader stepped down %d ticks after isolation, less than the election timeout %d", phase, stepped, et)
		}
		if st := r.st(l); st.Term != term || st.Role != Follower || st.Lead != None {
			t.Fatalf("after stepping down: %v term %d lead %q, want follower of no one in term %d", st.Role, st.Term, st.Lead, term)
		}
		r.check()
	}
}

// ---------------------------------------------------------------------------------------
// 7. Pipelining: a follower in replicate state gets several appends before it answers,
// never more than MaxInflight unacknowledged.

func TestRulePipelining(t *testing.T) {
	ids := rtIDs(3)
	c, r := rtCluster(t, 7, ids, ids, nil)
	l := r.elect(200)
	r.tickSettle(1)
	maxInflight := c.cfg(l).MaxInflight
	if maxInflight < 2 {
		t.Fatalf("MaxInflight %d: nothing to pipeline", maxInflight)
	}
	for id, p := range r.st(l).Progress {
		if id != l && p.State != "replicate" {
			t.Fatalf("%s in state %s, want replicate", id, p.State)
		}
	}
	sent := map[NodeID][]uint64{} // last index of each append with entries, by follower
	acked := map[NodeID]uint64{}
	unacked := func(f NodeID) int {
		n := 0
		for _, i := range sent[f] {
			if i > acked[f] {
				n++
			}
		}
		return n
	}
	most := 0
	r.onSend = func(m Message) {
		if m.From == l && m.Type == MsgApp && len(m.Entries) > 0 {
			sent[m.To] = append(sent[m.To], m.Entries[len(m.Entries)-1].Index)
		}
	}
	r.onDeliver = func(m Message) {
		if m.To == l && m.Type == MsgAppResp && !m.Reject {
			acked[m.From] = max(acked[m.From], m.Index)
		}
	}
	r.after = func() {
		for _, f := range ids {
			if f == l {
				continue
			}
			most = max(most, unacked(f))
			if n := unacked(f); n > maxInflight {
				t.Fatalf("%d appends to %s unacknowledged, MaxInflight %d", n, f, maxInflight)
			}
		}
	}
	const n = 12
	for i := 0; i < n; i++ { // each entry too large to share an append with another
		if !c.propose(l, bytes.Repeat([]byte{byte('a' + i)}, 200)) {
			t.Fatal("propose")
		}
	}
	r.process(l)
	for _, f := range ids {
		if f == l {
			continue
		}
		if got := unacked(f); got != maxInflight {
			t.Fatalf("before any answer %d appends went to %s, want a full window of %d", got, f, maxInflight)
		}
	}
	r.settle()
	r.tickSettle(1)
	last := r.st(l).LastIndex
	for _, id := range ids {
		if st := r.st(id); st.Commit != last || c.nodes[id].appliedIndex != last {
			t.Errorf("%s commit %d applied %d, want %d", id, st.Commit, c.nodes[id].appliedIndex, last)
		}
	}
	if most != maxInflight {
		t.Errorf("at most %d appends were in flight, want the window of %d to fill", most, maxInflight)
	}
	r.check()
}

// ---------------------------------------------------------------------------------------
// 8. Snapshots: a follower that missed compacted entries catches up by a snapshot sent in
// chunks, and an interrupted transfer resumes where the follower stands.

type rtChunk struct {
	from   NodeID
	offset uint64
	size   int
	done   bool
}

// rtSnapSetup: three nodes sending snapshots in 3-byte chunks. n3 crashes, n1 (leader) and
// n2 commit 20 more entries and compact their logs, and n3 restarts needing the snapshot,
// whose 16 bytes take 6 chunks. chunks records every MsgSnap delivered to n3.
func rtSnapSetup(t *testing.T) (c *cluster, r *rtRunner, snap Snapshot, chunks *[]rtChunk) {
	return rtSnapSetupWith(t, func(cfg *Config) {})
}

func rtSnapSetupWith(t *testing.T, tweak func(*Config)) (c *cluster, r *rtRunner, snap Snapshot, chunks *[]rtChunk) {
	t.Helper()
	ids := rtIDs(3)
	c, r = rtCluster(t, 88, ids, ids, func(cfg *Config) { cfg.SnapshotChunkBytes = 3; cfg.SnapshotWindow = 1; tweak(cfg) })
	rtCampaign(t, c, "n1")
	r.settle()
	r.tickSettle(1)
	c.crash("n3")
	for i := 0; i < 20; i++ {
		if !c.propose("n1", []byte{byte(i)}) {
			t.Fatal("propose")
		}
	}
	r.settle()
	r.tickSettle(2)
	if !c.compact("n1") || !c.compact("n2") {
		t.Fatal("compact")
	}
	snap = c.nodes["n1"].store.snap
	if s2 := c.nodes["n2"].store.snap; !sameSnapshot(s2, snap) {
		t.Fatalf("n1 and n2 snapshots differ: %+v / %+v", snap.Meta, s2.Meta)
	}
	c.restart("n3")
	if last := r.st("n3").LastIndex; last >= snap.Meta.Index {
		t.Fatalf("n3 holds %d entries, the snapshot is at %d", last, snap.Meta.Index)
	}
	if snap.Size != 16 {
		t.Fatalf("snapshot of %d bytes, want the driver's 16", snap.Size)
	}
	chunks = new([]rtChunk)
	r.onDeliver = func(m Message) {
		if m.Type == MsgSnap && m.To == "n3" {
			*chunks = append(*chunks, rtChunk{m.From, m.Snapshot.Offset, len(m.Snapshot.Data), m.Snapshot.Done})
		}
	}
	return c, r, snap, chunks
}

func rtOffsets(chunks []rtChunk, from NodeID) []uint64 {
	var offs []uint64
	for _, ch := range chunks {
		if ch.from == from {
			offs = append(offs, ch.offset)
		}
	}
	return offs
}

// rtInstalled checks that n3 holds the snapshot and catches up after it.
func rtInstalled(t *testing.T, c *cluster, r *rtRunner, snap Snapshot) {
	t.Helper()
	if got := c.nodes["n3"].store.snap.Meta; got.Index != snap.Meta.Index || got.Term != snap.Meta.Term {
		t.Fatalf("n3 stored snapshot %d/%d, want %d/%d", got.Index, got.Term, snap.Meta.Index, snap.Meta.Term)
	}
	r.tickSettle(2)
	if got, want := c.nodes["n3"].appliedIndex, c.nodes["n1"].appliedIndex; got != want || got < snap.Meta.Index {
		t.Fatalf("n3 applied %d, n1 %d", got, want)
	}
	r.check()
}

func TestRuleSnapshotChunkedCatchUp(t *testing.T) {
	c, r, snap, chunks := rtSnapSetup(t)
	r.tick()
	r.settle()
	if got, want := rtOffsets(*chunks, "n1"), []uint64{0, 3, 6, 9, 12, 15}; !slices.Equal(got, want) {
		t.Fatalf("chunk offsets %v, want %v", got, want)
	}
	for i, ch := range *chunks {
		if last := i == len(*chunks)-1; ch.done != last || (ch.size != 3 && !last) {
			t.Fatalf("chunk %d: %+v", i, ch)
		}
	}
	rtInstalled(t, c, r, snap)
}

// A lost chunk is sent again from the offset the follower confirmed, not from zero.
func TestRuleSnapshotResumesAfterLostChunk(t *testing.T) {
	c, r, snap, chunks := rtSnapSetup(t)
	lost := false
	r.drop = func(m Message) bool {
		if m.Type == MsgSnap && m.Snapshot.Offset == 6 && !lost {
			lost = true
			return true
		}
		return false
	}
	r.tick()
	r.settle()
	if !lost || !slices.Equal(rtOffsets(*chunks, "n1"), []uint64{0, 3}) {
		t.Fatalf("lost=%v, chunks %v, want 0 and 3 delivered and 6 lost", lost, *chunks)
	}
	if c.nodes["n3"].store.snap.Meta.Index == snap.Meta.Index {
		t.Fatal("n3 installed a snapshot it did not receive whole")
	}
	for i := 0; i < snapIdleBeats; i++ {
		// heartbeat answers with no progress tell the leader to send again
		r.tick()
		r.settle()
	}
	if got, want := rtOffsets(*chunks, "n1"), []uint64{0, 3, 6, 9, 12, 15}; !slices.Equal(got, want) {
		t.Fatalf("chunk offsets %v, want %v (resumed at 6)", got, want)
	}
	rtInstalled(t, c, r, snap)
}

// After a leader change the new leader, holding the same snapshot, resumes from the
// offset the follower holds: it sends the first chunk (it cannot know better), and from
// the follower's answer on, only what is missing.
func TestRuleSnapshotResumesAcrossLeaderChange(t *testing.T) {
	c, r, snap, chunks := rtSnapSetup(t)
	r.drop = func(m Message) bool { return m.Type == MsgSnap && m.From == "n1" && m.Snapshot.Offset >= 9 }
	r.tick()
	r.settle()
	if in := c.nodes["n3"].node.incoming; in == nil || in.Have != 9 {
		t.Fatalf("n3 should hold the first 9 bytes; chunks %v", *chunks)
	}
	r.drop = nil
	c.isolate("n3")
	if err := r.node("n1").TransferLeadership("n2"); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if r.st("n2").Role != Leader {
		t.Fatalf("n2 did not take over\n%s", c.report())
	}
	c.heal()
	for i := 0; i < 5 && c.nodes["n3"].store.snap.Meta.Index != snap.Meta.Index; i++ {
		r.tick()
		r.settle()
	}
	got := rtOffsets(*chunks, "n2")
	if want := []uint64{0, 9, 12, 15}; !slices.Equal(got, want) {
		t.Fatalf("new leader sent chunks at %v, want %v (resuming at the 9 bytes n3 held)", got, want)
	}
	rtInstalled(t, c, r, snap)
}

// ---------------------------------------------------------------------------------------
// 9. Membership changes.

// rtMemberships decodes the membership entries on id's disk from index from on.
func rtMemberships(t *testing.T, c *cluster, id NodeID, from uint64) (idx []uint64, ms []Membership) {
	t.Helper()
	for _, e := range c.nodes[id].store.ents {
		if e.Index < from || e.Type != EntryMembership {
			continue
		}
		m, err := DecodeMembership(e.Data)
		if err != nil {
			t.Fatalf("%s entry %d: %v", id, e.Index, err)
		}
		idx, ms = append(idx, e.Index), append(ms, m)
	}
	return idx, ms
}

func rtWithout(ids []NodeID, x NodeID) []NodeID {
	return slices.DeleteFunc(slices.Clone(ids), func(id NodeID) bool { return id == x })
}

func TestRuleMembership(t *testing.T) {
	ids := rtIDs(5)
	voters, learners := ids[:3], ids[3:] // n4 and n5 join as learners; n4 is then promoted
	c, r := rtCluster(t, 9, ids, voters, nil)
	rtCampaign(t, c, "n1")
	r.settle()
	r.tickSettle(1)
	askedToVote := map[NodeID]int{}
	campaigned := map[NodeID]int{}
	r.onSend = func(m Message) {
		if m.Type == MsgVote || m.Type == MsgPreVote {
			askedToVote[m.To]++
			campaigned[m.From]++
		}
	}

	// --- n4 and n5 join as learners: they receive the log
	if _, err := r.node("n1").ProposeMembership(voters, learners); err != nil {
		t.Fatal(err)
	}
	r.settle()
	r.tickSettle(2)
	st1 := r.st("n1")
	if st1.Members.Joint() || !sameSet(st1.Members.Learners, learners) {
		t.Fatalf("leader members %v", st1.Members)
	}
	for _, id := range learners {
		if st := r.st(id); st.LastIndex != st1.LastIndex || c.nodes[id].appliedIndex != st1.Commit || !st.Members.Equal(st1.Members) {
			t.Fatalf("learner %s: last %d applied %d members %v; leader last %d commit %d members %v",
				id, st.LastIndex, c.nodes[id].appliedIndex, st.Members, st1.LastIndex, st1.Commit, st1.Members)
		}
	}
	// ... but do not count toward a commit: the leader and both learners, three of five
	// nodes, hold an entry that stays uncommitted
	c.partition([]NodeID{"n1", "n4", "n5"}, []NodeID{"n2", "n3"})
	before := r.st("n1").Commit
	c.propose("n1", []byte("learners only"))
	r.settle()
	if st := r.st("n1"); st.Progress["n4"].Match != st.LastIndex || st.Progress["n5"].Match != st.LastIndex || st.Commit != before {
		t.Fatalf("with only the learners: n4, n5 match %d, %d of %d, commit %d (was %d)", st.Progress["n4"].Match,
			st.Progress["n5"].Match, st.LastIndex, st.Commit, before)
	}
	c.heal()
	r.tickSettle(1)
	if st := r.st("n1"); st.Commit != st.LastIndex {
		t.Fatalf("after healing commit %d, last %d", st.Commit, st.LastIndex)
	}
	// ... is never asked to vote, and never campaigns, even when told to or left alone
	rtCampaign(t, c, "n2")
	r.settle()
	if r.st("n2").Role != Leader {
		t.Fatalf("n2 did not win\n%s", c.report())
	}
	for _, id := range learners {
		if err := r.node(id).Step(Message{Type: MsgTimeoutNow, From: "n2", To: id, Term: r.st(id).Term}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 30; i++ {
		r.tick(learners...)
		r.settle()
	}
	for _, id := range learners {
		if askedToVote[id] != 0 || campaigned[id] != 0 || r.st(id).Role != Follower {
			t.Fatalf("learner %s: asked to vote %d times, campaigned %d times, role %v", id, askedToVote[id], campaigned[id], r.st(id).Role)
		}
	}
	r.tickSettle(1)

	// --- n4 is promoted through the joint configuration, which the leader leaves by itself
	l := c.leader()
	four, n5 := ids[:4], []NodeID{"n5"}
	joint, err := r.node(l).ProposeMembership(four, n5)
	if err != nil {
		t.Fatal(err)
	}
	if m := r.st(l).Members; !m.Joint() || !sameSet(m.Voters, four) || !sameSet(m.Outgoing, voters) {
		t.Fatalf("right after the proposal the leader uses %v, want joint %v / %v", m, four, voters)
	}
	if _, err := r.node(l).ProposeMembership(voters, nil); !errors.Is(err, ErrMembershipChange) {
		t.Fatalf("a second change during the first: %v, want ErrMembershipChange", err)
	}
	r.settle()
	r.tickSettle(2)
	idx, ms := rtMemberships(t, c, l, joint)
	if len(ms) != 2 || idx[0] != joint || !ms[0].Joint() || ms[1].Joint() || !ms[1].Equal(Membership{Voters: four, Learners: n5}) {
		t.Fatalf("membership entries from %d: %v at %v, want the joint one then the final one", joint, ms, idx)
	}
	for _, id := range ids {
		if st := r.st(id); !st.Members.Equal(Membership{Voters: four, Learners: n5}) || st.Commit < idx[1] {
			t.Errorf("%s: members %v commit %d, want voters %v learner n5 and commit ≥ %d", id, st.Members, st.Commit, four, idx[1])
		}
	}

	// --- a follower is removed; it is then cut off from the log but cannot disrupt
	var gone NodeID
	for _, id := range voters {
		if id != l {
			gone = id
			break
		}
	}
	rest := rtWithout(four, gone)
	if _, err := r.node(l).ProposeMembership(rest, n5); err != nil {
		t.Fatal(err)
	}
	r.settle()
	r.tickSettle(2)
	if st := r.st(l); !st.Members.Equal(Membership{Voters: rest, Learners: n5}) || st.Progress[gone] != (ProgressStatus{}) {
		t.Fatalf("after removing %s the leader has members %v, progress %v", gone, st.Members, st.Progress)
	}
	term := r.st(l).Term
	campaigned[gone] = 0
	r.tickSettle(50) // the removed node times out again and again
	if campaigned[gone] == 0 {
		t.Errorf("removed %s never tried to campaign: the test shows nothing", gone)
	}
	if c.leader() != l || r.st(l).Term != term {
		t.Fatalf("the removed %s disrupted the cluster: leader %s term %d, was %s term %d", gone, c.leader(), r.st(c.leader()).Term, l, term)
	}
	c.crash(gone)
	if !c.propose(l, []byte("three voters")) {
		t.Fatal("propose")
	}
	r.settle()
	r.tickSettle(1)
	if st := r.st(l); st.Commit != st.LastIndex {
		t.Fatalf("commit %d, last %d, with the three remaining voters up", st.Commit, st.LastIndex)
	}

	// --- the leader removes itself: it steps down once the final configuration is
	// committed, and a remaining voter takes over at once, without an election timeout
	old := l
	remaining := rtWithout(rest, old)
	start, err := r.node(old).ProposeMembership(remaining, n5)
	if err != nil {
		t.Fatal(err)
	}
	var commitAtStepDown uint64
	stepped := false
	r.after = func() {
		if sn := c.nodes[old]; !stepped && sn.node != nil && sn.node.role != Leader {
			stepped, commitAtStepDown = true, sn.node.log.committed
		}
	}
	ticks := r.ticks
	r.settle()
	r.after = nil
	idx, ms = rtMemberships(t, c, old, start)
	if len(ms) != 2 || !ms[0].Joint() || ms[1].Joint() || !sameSet(ms[1].Voters, remaining) {
		t.Fatalf("membership entries from %d: %v, want joint then %v", start, ms, remaining)
	}
	if !stepped || commitAtStepDown < idx[1] {
		t.Fatalf("leader stepped down=%v with commit %d; the final configuration is at %d", stepped, commitAtStepDown, idx[1])
	}
	nl := c.leader()
	if nl == None || nl == old || !slices.Contains(remaining, nl) || r.ticks != ticks {
		t.Fatalf("new leader %q after %d ticks, want one of %v without ticks", nl, r.ticks-ticks, remaining)
	}
	if !c.propose(nl, []byte("after the leader left")) {
		t.Fatal("propose on the new leader")
	}
	r.settle()
	r.tickSettle(1)
	for _, id := range remaining {
		if st := r.st(id); st.Commit != r.st(nl).LastIndex || !st.Members.Equal(Membership{Voters: remaining, Learners: n5}) {
			t.Errorf("%s: commit %d (leader last %d), members %v", id, st.Commit, r.st(nl).LastIndex, st.Members)
		}
	}
	if st := r.st(old); st.Role == Leader || st.Members.IsVoter(old) {
		t.Errorf("removed leader %s: %v, members %v", old, st.Role, st.Members)
	}
	r.check()
}

// In the joint configuration every decision needs a majority of the old voters and a
// majority of the new ones. Here n1, n2, n3 hand over to n1, n4, n5: neither side of a
// partition that holds only one of the two majorities commits anything.
func TestRuleMembershipJointNeedsBothMajorities(t *testing.T) {
	for _, tc := range []struct {
		name string
		side []NodeID // the leader's side of the partition
	}{
		{"new majority only", []NodeID{"n1", "n4", "n5"}},
		{"old majority only", []NodeID{"n1", "n2", "n3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids := rtIDs(5)
			c, r := rtCluster(t, 29, ids, ids[:3], nil)
			rtCampaign(t, c, "n1")
			r.settle()
			if _, err := r.node("n1").ProposeMembership(ids[:3], ids[3:]); err != nil { // learners first, to get the log
				t.Fatal(err)
			}
			r.settle()
			r.tickSettle(1)
			final := []NodeID{"n1", "n4", "n5"}
			joint, err := r.node("n1").ProposeMembership(final, nil)
			if err != nil {
				t.Fatal(err)
			}
			var other []NodeID
			for _, id := range ids {
				if !slices.Contains(tc.side, id) {
					other = append(other, id)
				}
			}
			c.partition(tc.side, other)
			c.propose("n1", []byte("in the joint configuration"))
			r.settle()
			r.tickSettle(2)
			st := r.st("n1")
			for _, id := range tc.side {
				if id != "n1" && st.Progress[id].Match != st.LastIndex {
					t.Fatalf("%s holds %d of %d", id, st.Progress[id].Match, st.LastIndex)
				}
			}
			if st.Commit >= joint || !st.Members.Joint() {
				t.Fatalf("with %v only: commit %d (joint entry at %d), members %v", tc.side, st.Commit, joint, st.Members)
			}
			c.heal()
			r.tickSettle(3)
			l := c.leader()
			if st := r.st(l); !st.Members.Equal(Membership{Voters: final}) || st.Commit != st.LastIndex || !slices.Contains(final, l) {
				t.Fatalf("after healing: leader %s members %v commit %d last %d", l, st.Members, st.Commit, st.LastIndex)
			}
			r.check()
		})
	}
}

// A leader elected while the joint configuration is in force (its predecessor appended it,
// and more entries after it, then crashed) must still leave it once it is committed.
func TestRuleMembershipNewLeaderLeavesJoint(t *testing.T) {
	ids := rtIDs(4)
	voters := ids[:3]
	c, r := rtCluster(t, 19, ids, voters, nil)
	rtCampaign(t, c, "n1")
	r.settle()
	r.tickSettle(1)
	joint, err := r.node("n1").ProposeMembership(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.propose("n1", []byte("after the joint entry")) {
		t.Fatal("propose")
	}
	// the appends reach the followers, but no answer reaches n1, which then crashes
	r.drop = func(m Message) bool { return m.To == "n1" }
	r.settle()
	r.drop = nil
	c.crash("n1")
	if st := r.st("n2"); !st.Members.Joint() || st.LastIndex != joint+1 {
		t.Fatalf("n2: members %v last %d, want joint and %d", st.Members, st.LastIndex, joint+1)
	}
	rtCampaign(t, c, "n2")
	r.settle()
	if r.st("n2").Role != Leader {
		t.Fatalf("n2 did not win\n%s", c.report())
	}
	r.tickSettle(5)
	st := r.st("n2")
	if st.Commit < joint+2 {
		t.Fatalf("n2 committed only %d", st.Commit)
	}
	if st.Members.Joint() || !st.Members.Equal(Membership{Voters: ids}) {
		t.Fatalf("leader n2 has committed up to %d but stays in %v (joint entry at %d): it must append C_new by itself",
			st.Commit, st.Members, joint)
	}
	// and, being out of the joint configuration, it accepts the next change
	if _, err := r.node("n2").ProposeMembership(voters, nil); err != nil {
		t.Fatalf("next change refused: %v", err)
	}
	r.settle()
	r.tickSettle(2)
	if st := r.st("n2"); !st.Members.Equal(Membership{Voters: voters}) || st.Commit != st.LastIndex {
		t.Fatalf("after removing n4 again: members %v commit %d last %d", st.Members, st.Commit, st.LastIndex)
	}
	r.check()
}

// ---------------------------------------------------------------------------------------
// 10. Leadership transfer.

// The target is brought up to date, then told to campaign, and wins without waiting for
// an election timeout; in between the leader refuses proposals.
func TestRuleLeadershipTransfer(t *testing.T) {
	ids := rtIDs(3)
	c, r := rtCluster(t, 10, ids, ids, nil)
	rtCampaign(t, c, "n1")
	r.settle()
	r.tickSettle(1)
	c.isolate("n3")
	for i := 0; i < 5; i++ {
		c.propose("n1", []byte{byte(i)})
	}
	r.settle()
	r.tickSettle(1)
	c.heal()
	if r.st("n3").LastIndex >= r.st("n1").LastIndex {
		t.Fatal("n3 should lag")
	}
	term := r.st("n1").Term
	if err := r.node("n1").TransferLeadership("n3"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.node("n1").Propose([]byte("during")); !errors.Is(err, ErrTransferring) {
		t.Fatalf("Propose during the transfer: %v, want ErrTransferring", err)
	}
	if _, err := r.node("n1").ProposeMembership(ids, []NodeID{}); !errors.Is(err, ErrTransferring) {
		t.Fatalf("ProposeMembership during the transfer: %v, want ErrTransferring", err)
	}
	timeoutNows := 0
	r.onDeliver = func(m Message) {
		if m.Type == MsgTimeoutNow {
			timeoutNows++
			if a, b := r.st("n3").LastIndex, r.st("n1").LastIndex; m.To != "n3" || a != b {
				t.Errorf("MsgTimeoutNow to %s with its log at %d, the leader's at %d", m.To, a, b)
			}
		}
	}
	et := c.cfg("n1").ElectionTicks
	ticks := 0
	for ; ticks < et; ticks++ {
		r.settle()
		if r.st("n3").Role == Leader {
			break
		}
		if r.st("n1").Role == Leader {
			if _, _, err := r.node("n1").Propose([]byte("during")); !errors.Is(err, ErrTransferring) {
				t.Fatalf("Propose during the transfer: %v, want ErrTransferring", err)
			}
		}
		r.tick()
	}
	if r.st("n3").Role != Leader || timeoutNows != 1 {
		t.Fatalf("after %d ticks n3 is %v, %d MsgTimeoutNow", ticks, r.st("n3").Role, timeoutNows)
	}
	t.Logf("n3 leader after %d ticks (election timeout %d)", ticks, et)
	if got := r.st("n3").Term; got != term+1 {
		t.Errorf("n3 leads term %d, want %d", got, term+1)
	}
	if _, _, err := r.node("n1").Propose([]byte("x")); !errors.Is(err, ErrNotLeader) {
		t.Errorf("old leader Propose: %v, want ErrNotLeader", err)
	}
	if !c.propose("n3", []byte("on the new leader")) {
		t.Error("new leader refused a proposal")
	}
	r.settle()
	r.tickSettle(1)
	r.check()
}

// A transfer to an unreachable target is given up after an election timeout, and the
// leader takes proposals again.
func TestRuleLeadershipTransferAbandoned(t *testing.T) {
	ids := rtIDs(3)
	c, r := rtCluster(t, 11, ids, ids, nil)
	rtCampaign(t, c, "n1")
	r.settle()
	r.tickSettle(1)
	term := r.st("n1").Term
	c.isolate("n3")
	if err := r.node("n1").TransferLeadership("n3"); err != nil {
		t.Fatal(err)
	}
	et := c.cfg("n1").ElectionTicks
	resumed := 0
	for i := 1; i <= et && resumed == 0; i++ {
		r.tick()
		r.settle()
		switch _, _, err := r.node("n1").Propose([]byte("x")); {
		case err == nil:
			resumed = i
		case !errors.Is(err, ErrTransferring):
			t.Fatalf("tick %d: Propose: %v", i, err)
		}
	}
	if resumed == 0 {
		t.Fatalf("still refusing proposals %d ticks after the transfer began", et)
	}
	if st := r.st("n1"); st.Role != Leader || st.Term != term {
		t.Fatalf("n1 %v in term %d, want still leader of %d", st.Role, st.Term, term)
	}
	r.check()
}

// ---------------------------------------------------------------------------------------
// 11. Read index.

func rtOnlyRead(t *testing.T, r *rtRunner, id NodeID, read uint64) (ReadState, bool) {
	t.Helper()
	var found []ReadState
	for _, rs := range r.reads[id] {
		if rs.ID == read {
			found = append(found, rs)
		}
	}
	switch len(found) {
	case 0:
		return ReadState{}, false
	case 1:
		return found[0], true
	}
	t.Fatalf("read %d answered %d times: %v", read, len(found), found)
	return ReadState{}, false
}

// A read is confirmed only by answers to a heartbeat sent after it arrived: answers to an
// earlier round do not count, and one answer from a follower (with the leader, a majority
// of three) does.
func TestRuleReadIndexNeedsHeartbeatRound(t *testing.T) {
	ids := rtIDs(3)
	c, r := rtCluster(t, 110, ids, ids, nil)
	rtCampaign(t, c, "n1")
	r.settle()
	r.tickSettle(1)
	c.read("n1") // a first read, so that rounds have numbers above zero
	r.settle()
	if rs, ok := rtOnlyRead(t, r, "n1", c.nextReadID); !ok || rs.Lost {
		t.Fatalf("first read: %+v %v", rs, ok)
	}
	// an earlier round: heartbeats delivered, answers still in flight
	r.tick("n1")
	isHB := func(m Message) bool { return m.Type == MsgHeartbeat && m.From == "n1" }
	if r.deliverWhere(isHB) != 2 {
		t.Fatal("want two heartbeats")
	}
	if !c.read("n1") {
		t.Fatal("read refused")
	}
	read := c.nextReadID
	r.process("n1")
	var round uint64
	for _, m := range c.net {
		if isHB(m) {
			round = m.Context
		}
	}
	if round == 0 {
		t.Fatalf("no heartbeat round for the read; in flight %v", c.net)
	}
	if r.deliverWhere(func(m Message) bool { return m.Type == MsgHeartbeatResp && m.Context < round }) != 2 {
		t.Fatal("want the two answers of the earlier round")
	}
	if rs, ok := rtOnlyRead(t, r, "n1", read); ok {
		t.Fatalf("read confirmed by answers to an earlier round: %+v", rs)
	}
	r.deliverWhere(func(m Message) bool { return isHB(m) && m.To == "n2" })
	if rs, ok := rtOnlyRead(t, r, "n1", read); ok {
		t.Fatalf("read confirmed before any answer of its round: %+v", rs)
	}
	r.deliverWhere(func(m Message) bool { return m.Type == MsgHeartbeatResp && m.From == "n2" })
	rs, ok := rtOnlyRead(t, r, "n1", read)
	if !ok || rs.Lost || rs.Index != r.st("n1").Commit {
		t.Fatalf("after n2 answered the round: %+v %v, want index %d", rs, ok, r.st("n1").Commit)
	}
	r.settle()
	r.check()
}

// A leader cut off from the majority confirms no read; the read is reported lost when it
// steps down.
func TestRuleReadIndexPartitionedLeader(t *testing.T) {
	ids := rtIDs(3)
	c, r := rtCluster(t, 111, ids, ids, nil)
	l := r.elect(200)
	r.tickSettle(1)
	c.isolate(l)
	if !c.read(l) {
		t.Fatal("read refused")
	}
	read := c.nextReadID
	et := c.cfg(l).ElectionTicks
	for i := 0; i < 2*et && r.st(l).Role == Leader; i++ {
		r.tick()
		r.settle()
		if rs, ok := rtOnlyRead(t, r, l, read); ok && !rs.Lost {
			t.Fatalf("tick %d: isolated leader confirmed a read: %+v", i, rs)
		}
	}
	rs, ok := rtOnlyRead(t, r, l, read)
	if r.st(l).Role == Leader || !ok || !rs.Lost {
		t.Fatalf("leader role %v, read %+v %v: want it stepped down and the read lost", r.st(l).Role, rs, ok)
	}
	r.check()
}

// A new leader does not know the commit index until it commits an entry of its own term:
// its predecessor may have committed (and acknowledged) entries it has but does not know
// are committed. Reads wait for that.
func TestRuleReadIndexNewLeaderWaitsForOwnTerm(t *testing.T) {
	ids := rtIDs(3)
	c, r := rtCluster(t, 112, ids, ids, nil)
	rtCampaign(t, c, "n1")
	r.settle()
	r.tickSettle(1)
	c.isolate("n3")
	if !c.propose("n1", []byte("w")) {
		t.Fatal("propose")
	}
	w := r.st("n1").LastIndex
	r.settle() // n1 commits and applies w with n2's answer; n2 does not learn it
	if r.st("n1").Commit != w || c.maxAcked != w || r.st("n2").Commit >= w || r.st("n2").LastIndex != w {
		t.Fatalf("setup: n1 commit %d, acked %d, n2 commit %d last %d; w at %d", r.st("n1").Commit, c.maxAcked,
			r.st("n2").Commit, r.st("n2").LastIndex, w)
	}
	c.crash("n1")
	c.heal()
	rtCampaign(t, c, "n2")
	r.runUntil(func() bool { return r.st("n2").Role == Leader })
	own := r.st("n2").LastIndex
	if st := r.st("n2"); st.Role != Leader || st.Commit >= w {
		t.Fatalf("n2 %v commit %d, want a new leader whose commit is below %d", st.Role, st.Commit, w)
	}
	if !c.read("n2") {
		t.Fatal("read refused")
	}
	read := c.nextReadID
	r.process("n2")
	if _, ok := rtOnlyRead(t, r, "n2", read); ok {
		t.Fatal("answered at once")
	}
	r.settle()
	r.tickSettle(1)
	rs, ok := rtOnlyRead(t, r, "n2", read)
	if !ok || rs.Lost || rs.Index < own {
		t.Fatalf("read %+v %v, want confirmed at ≥ %d, the new leader's own first entry (w at %d)", rs, ok, own, w)
	}
	r.check() // includes the driver's linearizability check
}

// Reads that arrive together share one heartbeat round.
func TestRuleReadIndexBatching(t *testing.T) {
	ids := rtIDs(5)
	c, r := rtCluster(t, 113, ids, ids, nil)
	l := r.elect(200)
	r.tickSettle(1)
	var contexts []uint64
	r.onSend = func(m Message) {
		if m.From == l && m.Type == MsgHeartbeat {
			contexts = append(contexts, m.Context)
		}
	}
	var reads []uint64
	for i := 0; i < 6; i++ {
		if !c.read(l) {
			t.Fatal("read refused")
		}
		reads = append(reads, c.nextReadID)
	}
	r.settle()
	if len(contexts) != len(ids)-1 || slices.Min(contexts) != slices.Max(contexts) {
		t.Fatalf("heartbeats for 6 reads carried rounds %v, want one round to each of the %d followers", contexts, len(ids)-1)
	}
	commit := r.st(l).Commit
	for _, id := range reads {
		if rs, ok := rtOnlyRead(t, r, l, id); !ok || rs.Lost || rs.Index != commit {
			t.Errorf("read %d: %+v %v, want index %d", id, rs, ok, commit)
		}
	}
	r.check()
}

// ---------------------------------------------------------------------------------------
// 12. Bad input is refused and changes nothing.

func TestRuleBadMessagesRefused(t *testing.T) {
	voters := []NodeID{"a", "b", "c"}
	follower := func() *Node {
		n := rtNode(t, "a", voters, State{HardState: HardState{Term: 3, Vote: "b"}, Commit: 2, Applied: 2}, rtEntries(1, 2, 3)...)
		if err := n.Step(Message{Type: MsgHeartbeat, From: "b", To: "a", Term: 3, Commit: 2}); err != nil {
			t.Fatal(err)
		}
		rtDrain(n)
		return n
	}
	ids := rtIDs(3)
	c, r := rtCluster(t, 120, ids, ids, nil)
	rtCampaign(t, c, "n1")
	r.settle()
	r.tickSettle(1)
	leader := r.node("n1")

	mem := Entry{Index: 4, Term: 4, Type: EntryMembership}
	for _, tc := range []struct {
		name string
		m    Message // written for the follower a (term 3) and a message from b of term 4
	}{
		{"wrong addressee", Message{Type: MsgHeartbeat, To: "c"}},
		{"no addressee", Message{Type: MsgHeartbeat, To: None}},
		{"no sender", Message{Type: MsgHeartbeat, From: None}},
		{"from itself", Message{Type: MsgHeartbeat, From: "self"}},
		{"type 0", Message{Type: 0}},
		{"type past the last", Message{Type: msgTypeEnd}},
		{"type 200", Message{Type: 200}},
		{"term 0", Message{Type: MsgApp, Term: 0, Index: 3, LogTerm: 3}},
		{"term 0 vote", Message{Type: MsgVote, Term: 0}},
		{"entries with a gap", Message{Type: MsgApp, Index: 3, LogTerm: 3, Entries: []Entry{{Index: 5, Term: 4}}}},
		{"first entry not after Index", Message{Type: MsgApp, Index: 3, LogTerm: 3, Entries: []Entry{{Index: 3, Term: 4}}}},
		{"entries going back", Message{Type: MsgApp, Index: 3, LogTerm: 3, Entries: []Entry{{Index: 4, Term: 4}, {Index: 4, Term: 4}}}},
		{"terms going down", Message{Type: MsgApp, Index: 3, LogTerm: 3, Entries: []Entry{{Index: 4, Term: 4}, {Index: 5, Term: 3}}}},
		{"entry term below LogTerm", Message{Type: MsgApp, Index: 3, LogTerm: 3, Entries: []Entry{{Index: 4, Term: 2}}}},
		{"entry term above the message", Message{Type: MsgApp, Index: 3, LogTerm: 3, Entries: []Entry{{Index: 4, Term: 5}}}},
		{"undecodable membership", Message{Type: MsgApp, Index: 3, LogTerm: 3, Entries: []Entry{{Index: 4, Term: 4, Type: EntryMembership, Data: []byte("voters=a")}}}},
		{"invalid membership", Message{Type: MsgApp, Index: 3, LogTerm: 3, Entries: []Entry{func() Entry {
			e := mem
			e.Data = []byte("voters=a,a outgoing= learners=")
			return e
		}()}}},
		{"unknown entry type", Message{Type: MsgApp, Index: 3, LogTerm: 3, Entries: []Entry{{Index: 4, Term: 4, Type: 9}}}},
		{"MsgSnap without chunk", Message{Type: MsgSnap}},
		{"chunk on MsgApp", Message{Type: MsgApp, Index: 3, LogTerm: 3, Snapshot: &SnapshotChunk{}}},
		{"chunk on a heartbeat", Message{Type: MsgHeartbeat, Snapshot: &SnapshotChunk{}}},
		{"snapshot with invalid members", Message{Type: MsgSnap, Snapshot: &SnapshotChunk{
			Meta: SnapshotMeta{Index: 9, Term: 4, Members: Membership{Voters: []NodeID{"a", "a b"}}}, Done: true}}},
	} {
		for _, target := range []struct {
			node     *Node
			self, as NodeID
		}{{follower(), "a", "b"}, {leader, "n1", "n2"}} {
			m := tc.m
			switch m.To {
			case "a":
			case "c":
				m.To = "n3"
				if target.self == "a" {
					m.To = "c"
				}
			case None:
				if tc.name != "no addressee" {
					m.To = target.self
				}
			}
			if m.From == "self" {
				m.From = target.self
			} else if m.From == None && tc.name != "no sender" {
				m.From = target.as
			}
			if !strings.HasPrefix(tc.name, "term 0") {
				// the table is written for a message of term 4 to a node of term 3: shift
				// every term by the same amount to fit the target's term
				term := target.node.Status().Term + 1
				shift := func(x uint64) uint64 { return x + term - 4 }
				m.Term = term
				if m.LogTerm != 0 {
					m.LogTerm = shift(m.LogTerm)
				}
				m.Entries = slices.Clone(m.Entries)
				for i := range m.Entries {
					m.Entries[i].Term = shift(m.Entries[i].Term)
				}
			}
			before, hadReady := target.node.Status(), target.node.HasReady()
			err := target.node.Step(m)
			if err == nil {
				t.Errorf("%s: %s accepted %v", tc.name, target.self, m)
			}
			if after := target.node.Status(); !reflect.DeepEqual(before, after) || target.node.HasReady() != hadReady {
				t.Errorf("%s: refusing %v changed %s:\n before %+v\n after  %+v", tc.name, m, target.self, before, after)
			}
		}
	}
	r.check()
}

// Step's contract (node.go): a message whose log contradicts what is committed is refused
// with an error and changes nothing; committed entries never change whatever the message.
func TestRuleAppendContradictingCommitted(t *testing.T) {
	voters := []NodeID{"a", "b", "c"}
	for _, tc := range []struct {
		name string
		m    Message
	}{
		{"previous entry at the commit index has another term",
			Message{Type: MsgApp, From: "b", To: "a", Term: 3, Index: 2, LogTerm: 1, Commit: 2}},
		{"entries rewrite a committed entry",
			Message{Type: MsgApp, From: "b", To: "a", Term: 3, Index: 1, LogTerm: 1, Commit: 2, Entries: []Entry{{Index: 2, Term: 3}}}},
	} {
		n := rtNode(t, "a", voters, State{HardState: HardState{Term: 3}, Commit: 2, Applied: 2}, rtEntries(1, 2, 3)...)
		if err := n.Step(Message{Type: MsgHeartbeat, From: "b", To: "a", Term: 3, Commit: 2}); err != nil {
			t.Fatal(err)
		}
		rtDrain(n)
		before := n.Status()
		err := n.Step(tc.m)
		rd := rtDrain(n)
		after := n.Status()
		if t2, _ := n.log.term(2); t2 != 2 || after.Commit != 2 || len(rd.Entries) != 0 || len(rd.CommittedEntries) != 0 {
			t.Fatalf("%s: committed entry 2 now has term %d, commit %d, entries %v %v", tc.name, t2, after.Commit, rd.Entries, rd.CommittedEntries)
		}
		if err == nil {
			t.Errorf("%s (%v): accepted without an error", tc.name, tc.m)
		} else if !reflect.DeepEqual(before, after) {
			t.Errorf("%s: refused (%v) but changed the node: %+v → %+v", tc.name, err, before, after)
		}
	}
}

func TestRuleDecodeMembershipRejectsGarbage(t *testing.T) {
	for _, m := range []Membership{
		{Voters: []NodeID{"a"}},
		{Voters: []NodeID{"b", "a", "c"}, Outgoing: []NodeID{"a", "b"}, Learners: []NodeID{"d", "e"}},
		{},
	} {
		got, err := DecodeMembership(EncodeMembership(m))
		if err != nil || !got.Equal(m) {
			t.Errorf("round trip of %v: %v, %v", m, got, err)
		}
	}
	for _, s := range []string{
		"",
		"garbage",
		"voters=a",
		"voters=a outgoing=",
		"voters=a outgoing= learners= extra=",
		"voters=a  outgoing= learners=",
		"voter=a outgoing= learners=",
		"voters=a learners= outgoing=",
		"voters=a outgoing learners=",
		"voters=a,a outgoing= learners=",
		"voters=a, outgoing= learners=",
		"voters=,a outgoing= learners=",
		"voters=a outgoing= learners=a",
		"voters= outgoing=a learners=",
		"voters=a=b outgoing= learners=",
		"voters=a;b outgoing= learners=",
		"voters=a\tb outgoing= learners=",
		"voters=a\x00 outgoing= learners=",
		"voters=" + strings.Repeat("x", 256) + " outgoing= learners=",
	} {
		if m, err := DecodeMembership([]byte(s)); err == nil {
			t.Errorf("DecodeMembership(%q) = %v, want an error", s, m)
		}
	}
}

func TestRuleNewNodeRejectsInconsistentState(t *testing.T) {
	members := Membership{Voters: []NodeID{"a", "b", "c"}}
	snap := Snapshot{Meta: SnapshotMeta{Index: 5, Term: 2, Members: members}}
	good := Config{ID: "a", ElectionTicks: 10, HeartbeatTicks: 1, Rand: rand.New(rand.NewPCG(1, 1)),
		Storage: NewMemoryStorage(snap, nil)}
	st := func(term uint64, first uint64, terms ...uint64) State {
		return State{HardState: HardState{Term: term}, Snapshot: snap, First: first, Terms: terms}
	}
	ok := st(3, 6, 2, 3)
	ok.Commit, ok.Applied = 7, 6
	kept := st(3, 4, 2, 2, 2, 3) // entries 4 and 5 kept behind the snapshot
	member := st(3, 6, 2)
	member.Memberships = []Entry{{Index: 6, Term: 2, Type: EntryMembership, Data: EncodeMembership(members)}}
	for _, good2 := range []State{ok, kept, member} {
		if _, err := NewNode(good, good2); err != nil {
			t.Fatalf("a consistent state refused: %v", err)
		}
	}
	withCommit := func(s State, commit, applied uint64) State {
		s.Commit, s.Applied = commit, applied
		return s
	}
	withMembers := func(s State, ents ...Entry) State {
		s.Memberships = ents
		return s
	}
	for _, tc := range []struct {
		name string
		cfg  func(*Config)
		st   State
	}{
		{"gap after the snapshot", nil, st(3, 7, 2)},
		{"entry at the snapshot's index of another term", nil, st(3, 5, 1, 2)},
		{"term going down", nil, st(3, 6, 3, 2)},
		{"entry below the snapshot term", nil, st(3, 6, 1)},
		{"log beyond the stored term", nil, st(2, 6, 3)},
		{"snapshot beyond the stored term", nil, st(1, 0)},
		{"applied beyond commit", nil, withCommit(st(3, 6, 2, 3), 6, 7)},
		{"applied beyond the log", nil, withCommit(st(3, 6, 2), 9, 9)},
		{"undecodable membership entry", nil, withMembers(st(3, 6, 2), Entry{Index: 6, Term: 2, Type: EntryMembership, Data: []byte("nonsense")})},
		{"membership entry not in the log", nil, withMembers(st(3, 6, 2), Entry{Index: 7, Term: 2, Type: EntryMembership, Data: EncodeMembership(members)})},
		{"membership entry of another term", nil, withMembers(st(3, 6, 2), Entry{Index: 6, Term: 3, Type: EntryMembership, Data: EncodeMembership(members)})},
		{"no storage", func(c *Config) { c.Storage = nil }, State{}},
		{"invalid snapshot membership", nil, State{Snapshot: Snapshot{Meta: SnapshotMeta{Members: Membership{Voters: []NodeID{"a", "a"}}}}}},
		{"empty id", func(c *Config) { c.ID = None }, State{}},
		{"id with a comma", func(c *Config) { c.ID = "a,b" }, State{}},
		{"election timeout 1", func(c *Config) { c.ElectionTicks = 1 }, State{}},
		{"heartbeat 0", func(c *Config) { c.HeartbeatTicks = 0 }, State{}},
		{"heartbeat not below the election timeout", func(c *Config) { c.HeartbeatTicks = 10 }, State{}},
		{"no random source", func(c *Config) { c.Rand = nil }, State{}},
	} {
		cfg := good
		if tc.cfg != nil {
			tc.cfg(&cfg)
		}
		if n, err := NewNode(cfg, tc.st); err == nil {
			t.Errorf("%s: NewNode accepted it (%+v)", tc.name, n.Status())
		}
	}
}
