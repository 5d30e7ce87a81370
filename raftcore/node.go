package raftcore

import (
	"fmt"
	"slices"
)

// Rand is the only source of randomness raftcore uses (randomized election timeouts).
// *math/rand/v2.Rand satisfies it; simulations pass a seeded one.
type Rand interface {
	IntN(n int) int
}

// Config holds a node's fixed settings.
type Config struct {
	ID NodeID
	// ElectionTicks is the election timeout T in ticks. A follower that hears no leader for
	// a random time in [T, 2T) starts a (pre-)election; a leader that has not heard from a
	// quorum within T steps down (check-quorum).
	ElectionTicks int
	// HeartbeatTicks is how often a leader sends heartbeats; lite-raft uses T/10.
	HeartbeatTicks int
	Rand           Rand
	// MaxInflight bounds the unacknowledged appends in flight to one follower (default 256).
	MaxInflight int
	// MaxMsgBytes bounds the entry data in one append (default 1 MiB; one entry always fits).
	MaxMsgBytes uint64
	// MaxInflightBytes bounds the entry data in flight to one follower (default 32 MiB;
	// one append always goes): a follower catching up gets a window of appends, not
	// hundreds of MB queued at once. A busy leader answers acknowledgements late, so a
	// window much smaller makes catching up wait on the leader's loop.
	MaxInflightBytes uint64
	// SnapshotChunkBytes is the size of the pieces a snapshot is sent in (default 1 MiB).
	SnapshotChunkBytes int
	// SnapshotWindow is how many pieces of a snapshot may be in flight to one follower
	// (default 4); SetSnapshotWindow widens it for a long link.
	SnapshotWindow int
	// MaxSnapshotAhead bounds the bytes of snapshot pieces a follower holds in memory
	// because they arrived before a piece sent ahead of them (default 64 MiB): a driver
	// may spread pieces over several streams, which do not keep their order.
	MaxSnapshotAhead uint64
	// BulkAppendBytes is the entry data from which an append sent while replicating may
	// travel out of order (Unordered: the driver may spread those over several streams),
	// default 256 KiB: a follower catching up gets appends of MaxMsgBytes, a busy
	// cluster's steady appends are far smaller and keep their order. A follower holds
	// such an append when it arrives after a gap, instead of refusing it.
	BulkAppendBytes uint64
	// MaxAppendAhead bounds the bytes of entries a follower holds in memory because their
	// appends arrived before one sent ahead of them (default 64 MiB), as MaxSnapshotAhead
	// for snapshot pieces.
	MaxAppendAhead uint64
	// MaxCacheBytes bounds the entry data kept in memory beyond what is not yet durable or
	// applied (default 16 MiB); older entries are read from Storage.
	MaxCacheBytes uint64
	// KeepEntries is how many entries before a snapshot stay in the log when it is taken,
	// so that a follower a little behind gets entries, not the snapshot. Storage must keep
	// them too: compact it to Snapshot.Meta.Index - KeepEntries.
	KeepEntries uint64
	// KeepPrevious keeps, when a snapshot is taken, every entry since the one before it as
	// well: a follower less than a snapshot interval behind catches up from the log,
	// whenever the snapshots fall. Storage then holds up to two intervals of log.
	KeepPrevious bool
	// Storage gives back entries and snapshot data (required).
	Storage Storage
}

// State is what a node restarts from: everything a previous Ready asked to make durable.
type State struct {
	HardState HardState
	// Snapshot is the latest snapshot. At first boot it is the bootstrap configuration:
	// Index 0, Term 0, Members = the initial voters (or no members at all for a host that
	// waits to be added).
	Snapshot Snapshot
	// First and Terms describe the entries in Storage: Terms[i] is the term of entry
	// First+i. They may start before the snapshot's index (entries kept behind it) and
	// must reach at least up to it without a gap (First ≤ Snapshot.Meta.Index+1).
	First uint64
	Terms []uint64
	// Memberships are the membership entries after the snapshot, in order.
	Memberships []Entry
	// Commit is a commit index stored from Ready.Commit (0 if unknown).
	Commit uint64
	// Applied is the last index the state machine already reflects (at least the
	// snapshot's index); committed entries after it are handed out again.
	Applied uint64
	// Incoming is a snapshot partly received before the restart, if any.
	Incoming *IncomingSnapshot
}

// Node is one member's Raft state machine. It is not safe for concurrent use: the caller
// serializes Step, Tick, the proposal calls and Ready/Advance.
type Node struct {
	id  NodeID
	cfg Config

	term uint64
	vote NodeID
	lead NodeID
	role Role

	log raftLog

	members      Membership
	membersIndex uint64     // index of the entry (or snapshot) members come from
	prevMembers  Membership // the membership before members
	prs          map[NodeID]*progress
	votes        map[NodeID]bool

	ticks                     uint64
	electionElapsed           int
	heartbeatElapsed          int
	randomizedElectionTimeout int

	transferee NodeID // leader: target of a transfer in progress

	reads readIndex
	// follower: the snapshot being received in chunks, and the pieces to write
	incoming   *IncomingSnapshot
	snapWrites []SnapshotChunk
	ahead      snapAhead // pieces after incoming.Have, waiting for the ones before them
	appAhead   appAhead  // appends after a gap in the log, waiting for the ones before them
	// leader: the snapshot window of each member whose driver set one
	snapWindows map[NodeID]int
	roundTrips  map[NodeID]int // SetRoundTrip: each link's round trip, in ticks
	snapSoon    uint64         // SnapshotSoon: the index of a snapshot being written, or 0
	storageErr  error          // Storage failed to give back what it holds

	appendsDue bool // leader: proposals wait to be sent in the next Ready, batched
	msgs       []Message
	msgsAfter  []Message

	emittedHard HardState // last handed out in a Ready
	durableHard HardState // last acknowledged by Advance
	emittedSoft SoftState
}

// NewNode creates a node from its settings and durable state.
func NewNode(cfg Config, st State) (*Node, error) {
	if err := ValidateID(cfg.ID); err != nil {
		return nil, fmt.Errorf("node id: %w", err)
	}
	if cfg.ElectionTicks < 2 {
		return nil, fmt.Errorf("election timeout of %d ticks: must be at least 2", cfg.ElectionTicks)
	}
	if cfg.HeartbeatTicks <= 0 || cfg.HeartbeatTicks >= cfg.ElectionTicks {
		return nil, fmt.Errorf("heartbeat of %d ticks: must be in [1, %d)", cfg.HeartbeatTicks, cfg.ElectionTicks)
	}
	if cfg.Rand == nil {
		return nil, fmt.Errorf("no random source")
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 256
	}
	if cfg.MaxMsgBytes == 0 {
		cfg.MaxMsgBytes = 1 << 20
	}
	if cfg.MaxInflightBytes == 0 {
		cfg.MaxInflightBytes = 32 << 20
	}
	if cfg.SnapshotChunkBytes <= 0 {
		cfg.SnapshotChunkBytes = 1 << 20
	}
	if err := st.Snapshot.Meta.Members.Validate(); err != nil {
		return nil, fmt.Errorf("snapshot at %d: %w", st.Snapshot.Meta.Index, err)
	}
	if cfg.SnapshotWindow <= 0 {
		cfg.SnapshotWindow = 4
	}
	if cfg.MaxSnapshotAhead == 0 {
		cfg.MaxSnapshotAhead = 64 << 20
	}
	if cfg.MaxAppendAhead == 0 {
		cfg.MaxAppendAhead = 64 << 20
	}
	if cfg.BulkAppendBytes == 0 {
		cfg.BulkAppendBytes = 256 << 10
	}
	if cfg.MaxCacheBytes == 0 {
		cfg.MaxCacheBytes = 16 << 20
	}
	if cfg.Storage == nil {
		return nil, fmt.Errorf("no storage")
	}
	snapIndex := st.Snapshot.Meta.Index
	first := st.First
	if len(st.Terms) == 0 {
		first = snapIndex + 1
	}
	if first == 0 || first > snapIndex+1 {
		return nil, fmt.Errorf("log starts at %d, after the snapshot at %d", first, snapIndex)
	}
	if last := first + uint64(len(st.Terms)) - 1; last < snapIndex {
		// the log is all behind the snapshot: only the snapshot counts
		first, st.Terms = snapIndex+1, nil
	}
	prevTerm := uint64(0)
	for i, t := range st.Terms {
		idx := first + uint64(i)
		if idx == snapIndex+1 {
			prevTerm = max(prevTerm, st.Snapshot.Meta.Term)
		}
		if t < prevTerm {
			return nil, fmt.Errorf("log entry %d (term %d) follows one of term %d", idx, t, prevTerm)
		}
		if idx == snapIndex && t != st.Snapshot.Meta.Term {
			return nil, fmt.Errorf("log entry %d has term %d, the snapshot there term %d", idx, t, st.Snapshot.Meta.Term)
		}
		prevTerm = t
	}
	if prevTerm = max(prevTerm, st.Snapshot.Meta.Term); prevTerm > st.HardState.Term {
		return nil, fmt.Errorf("log holds term %d but the stored term is only %d", prevTerm, st.HardState.Term)
	}
	r := &Node{id: cfg.ID, cfg: cfg, term: st.HardState.Term, vote: st.HardState.Vote}
	r.log = raftLog{storage: cfg.Storage, snap: st.Snapshot, first: first,
		terms: slices.Clone(st.Terms), maxCache: cfg.MaxCacheBytes}
	if first == snapIndex+1 {
		r.log.prevTerm, r.log.prevOK = st.Snapshot.Meta.Term, true
	}
	last := r.log.lastIndex()
	for _, e := range st.Memberships {
		if e.Index <= snapIndex || e.Index > last || e.Type != EntryMembership || !r.log.matchTerm(e.Index, e.Term) {
			return nil, fmt.Errorf("membership entry %d (term %d) is not in the log", e.Index, e.Term)
		}
		if n := len(r.log.memberships); n > 0 && r.log.memberships[n-1].Index >= e.Index {
			return nil, fmt.Errorf("membership entry %d out of order", e.Index)
		}
		if _, err := DecodeMembership(e.Data); err != nil {
			return nil, fmt.Errorf("log entry %d: %w", e.Index, err)
		}
		r.log.memberships = append(r.log.memberships, e)
	}
	if in := st.Incoming; in != nil && in.Meta.Index > snapIndex && in.Have <= in.Size {
		if err := in.Meta.Members.Validate(); err == nil {
			c := *in
			r.incoming = &c
		}
	}
	r.log.stable = r.log.lastIndex()
	r.log.emitted = r.log.stable
	r.log.committed = min(max(st.Commit, st.Snapshot.Meta.Index), r.log.lastIndex())
	applied := max(st.Applied, st.Snapshot.Meta.Index)
	if applied > r.log.committed {
		return nil, fmt.Errorf("applied index %d is beyond the commit index %d", applied, r.log.committed)
	}
	r.log.applied, r.log.appliedEmitted = applied, applied
	r.refreshMembers()
	r.emittedHard = HardState{Term: r.term, Vote: r.vote}
	r.durableHard = r.emittedHard
	r.becomeFollower(r.term, None)
	r.emittedSoft = r.softState()
	return r, nil
}

func (r *Node) softState() SoftState { return SoftState{Lead: r.lead, Role: r.role} }

// send queues m. Answers that vouch for durable state (votes, append acks) wait for the
// batch to be persisted; a leader's own appends and heartbeats need not.
func (r *Node) send(m Message) {
	m.From = r.id
	if m.Term == 0 {
		m.Term = r.term
	}
	switch m.Type {
	case MsgApp, MsgHeartbeat, MsgHeartbeatResp, MsgSnap, MsgTimeoutNow:
		r.msgs = append(r.msgs, m)
	default:
		r.msgsAfter = append(r.msgsAfter, m)
	}
}

func (r *Node) resetRandomizedElectionTimeout() {
	r.randomizedElectionTimeout = r.cfg.ElectionTicks + r.cfg.Rand.IntN(r.cfg.ElectionTicks)
}

func (r *Node) reset(term uint64) {
	if r.term != term {
		r.term = term
		r.vote = None
	}
	r.lead = None
	r.electionElapsed = 0
	r.heartbeatElapsed = 0
	r.resetRandomizedElectionTimeout()
	r.transferee = None
	r.votes = map[NodeID]bool{}
	r.prs = nil
	r.appendsDue = false
	r.reads.dropAll()
	r.appAhead.reset() // they came from the leader of the term that ends
}

func (r *Node) becomeFollower(term uint64, lead NodeID) {
	r.reset(term)
	r.role = Follower
	r.lead = lead
}

func (r *Node) becomePreCandidate() {
	// The term does not change: a pre-vote only asks whether an election could be won.
	r.votes = map[NodeID]bool{}
	r.lead = None
	r.role = PreCandidate
	r.reads.dropAll()
}

func (r *Node) becomeCandidate() {
	r.reset(r.term + 1)
	r.vote = r.id
	r.role = Candidate
}

func (r *Node) becomeLeader() {
	r.reset(r.term)
	r.role = Leader
	r.lead = r.id
	r.prs = map[NodeID]*progress{}
	r.syncProgress()
	r.appendEntries(Entry{Type: EntryNormal})
}

// promotable reports whether this node may stand for election: it votes in the latest
// membership, or in the one before while the latest is not known to be committed. The
// second case matters when a leader appended a membership without itself and lost its
// quorum before committing it: it may hold entries nobody else has, and the voters of
// the new membership may need its vote in the joint one. Letting it campaign is safe,
// since votes are counted under the candidate's latest membership either way; if it
// wins, it commits the change and steps down.
func (r *Node) promotable() bool {
	if r.log.pendingSnap != nil {
		return false
	}
	return r.members.IsVoter(r.id) ||
		(r.membersIndex > r.log.committed && r.prevMembers.IsVoter(r.id))
}

// Tick advances the node's logical clock by one tick.
func (r *Node) Tick() {
	r.ticks++
	if r.role == Leader {
		r.tickLeader()
		return
	}
	r.tickAppAhead()
	// A node that may not campaign lets electionElapsed grow, so that once it has not
	// heard from a leader for an election timeout it answers (pre-)votes again.
	r.electionElapsed++
	if r.promotable() && r.electionElapsed >= r.randomizedElectionTimeout {
		r.electionElapsed = 0
		r.campaign(false)
	}
}

func (r *Node) tickLeader() {
	r.heartbeatElapsed++
	r.electionElapsed++
	if r.electionElapsed >= r.cfg.ElectionTicks {
		r.electionElapsed = 0
		if !r.quorumActive() {
			r.becomeFollower(r.term, None) // check-quorum: we may be cut off
			return
		}
		if r.transferee != None {
			r.transferee = None // the transfer did not finish within an election timeout
		}
	}
	if r.heartbeatElapsed >= r.cfg.HeartbeatTicks {
		r.heartbeatElapsed = 0
		r.bcastHeartbeat()
	}
}

// quorumActive reports whether a quorum has been heard from since the last check, and
// starts the next period.
func (r *Node) quorumActive() bool {
	active := map[NodeID]bool{}
	for id, pr := range r.prs {
		active[id] = pr.recentActive || id == r.id
		if id != r.id {
			pr.recentActive = false
		}
	}
	won, _ := r.members.voteResult(active)
	return won
}

// Step feeds a message from a peer into the node. A message that makes no sense (wrong
// addressee, unknown type, a log that contradicts what is committed) is refused with an
// error and changes nothing.
func (r *Node) Step(m Message) error {
	if err := r.validate(m); err != nil {
		return err
	}
	switch {
	case m.Term > r.term:
		if m.Type == MsgVote || m.Type == MsgPreVote {
			inLease := r.lead != None && r.electionElapsed < r.cfg.ElectionTicks
			if inLease && m.Context != campaignTransfer {
				// We heard from a leader less than an election timeout ago: a node that
				// wants an election is probably cut off or removed. Ignoring it keeps it
				// from disrupting a healthy leader.
				return nil
			}
		}
		switch {
		case m.Type == MsgPreVote:
			// a pre-vote never changes our term
		case m.Type == MsgPreVoteResp && !m.Reject:
			// granted pre-votes carry the term we would campaign in
		case m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgSnap:
			r.becomeFollower(m.Term, m.From)
		default:
			r.becomeFollower(m.Term, None)
		}
	case m.Term < r.term:
		switch m.Type {
		case MsgApp, MsgHeartbeat, MsgSnap:
			// A stale leader, perhaps partitioned away and back: tell it our term so it
			// steps down, rather than letting it wait forever.
			r.send(Message{To: m.From, Type: MsgAppResp})
		case MsgPreVote:
			r.send(Message{To: m.From, Type: MsgPreVoteResp, Reject: true})
		}
		return nil
	}

	switch m.Type {
	case MsgPreVote, MsgVote:
		r.handleVoteRequest(m)
		return nil
	}
	switch r.role {
	case Leader:
		return r.stepLeader(m)
	case Candidate, PreCandidate:
		return r.stepCandidate(m)
	default:
		return r.stepFollower(m)
	}
}

func (r *Node) validate(m Message) error {
	if !m.Type.Valid() {
		return fmt.Errorf("message from %s: unknown type %d", m.From, m.Type)
	}
	if m.To != r.id {
		return fmt.Errorf("%s from %s: addressed to %q, not %q", m.Type, m.From, m.To, r.id)
	}
	if m.From == None || m.From == r.id {
		return fmt.Errorf("%s: bad sender %q", m.Type, m.From)
	}
	if m.Term == 0 {
		return fmt.Errorf("%s from %s: term 0", m.Type, m.From)
	}
	if (m.Type == MsgSnap) != (m.Snapshot != nil) {
		return fmt.Errorf("%s from %s: snapshot chunk present=%v", m.Type, m.From, m.Snapshot != nil)
	}
	if m.Type == MsgApp {
		prev := Entry{Index: m.Index, Term: m.LogTerm}
		for _, e := range m.Entries {
			if e.Index != prev.Index+1 || e.Term < prev.Term || e.Term > m.Term {
				return fmt.Errorf("MsgApp from %s: entry %d (term %d) does not follow %d (term %d) in term %d",
					m.From, e.Index, e.Term, prev.Index, prev.Term, m.Term)
			}
			if e.Type == EntryMembership {
				if _, err := DecodeMembership(e.Data); err != nil {
					return fmt.Errorf("MsgApp from %s: entry %d: %w", m.From, e.Index, err)
				}
			} else if e.Type != EntryNormal {
				return fmt.Errorf("MsgApp from %s: entry %d has unknown type %d", m.From, e.Index, e.Type)
			}
			prev = e
		}
		if m.Term >= r.term {
			if err := r.checkAgainstCommitted(m); err != nil {
				return err
			}
		}
	}
	if m.Snapshot != nil {
		if err := m.Snapshot.Meta.Members.Validate(); err != nil {
			return fmt.Errorf("MsgSnap from %s: %w", m.From, err)
		}
	}
	return nil
}

// checkAgainstCommitted refuses an append of the current (or a newer) term that
// disagrees with a committed entry. A leader holds every committed entry (leader
// completeness), so such an append comes from a broken leader; stale appends of older
// terms are dropped by the term rule before this matters.
func (r *Node) checkAgainstCommitted(m Message) error {
	l := &r.log
	check := func(i, t uint64) error {
		if i > l.snap.Meta.Index && i <= l.committed && !l.matchTerm(i, t) {
			lt, _ := l.term(i)
			return fmt.Errorf("MsgApp from %s in term %d: says entry %d has term %d, but the committed entry there has term %d",
				m.From, m.Term, i, t, lt)
		}
		return nil
	}
	if err := check(m.Index, m.LogTerm); err != nil {
		return err
	}
	for _, e := range m.Entries {
		if e.Index > l.committed {
			break
		}
		if err := check(e.Index, e.Term); err != nil {
			return err
		}
	}
	return nil
}

func (r *Node) stepFollower(m Message) error {
	switch m.Type {
	case MsgApp:
		r.electionElapsed = 0
		r.lead = m.From
		return r.handleAppend(m)
	case MsgHeartbeat:
		r.electionElapsed = 0
		r.lead = m.From
		r.log.commitTo(min(m.Commit, r.log.lastIndex()))
		r.send(Message{To: m.From, Type: MsgHeartbeatResp, Context: m.Context})
	case MsgSnap:
		r.electionElapsed = 0
		r.lead = m.From
		r.handleSnapshotChunk(m)
	case MsgTimeoutNow:
		if r.promotable() {
			r.startElection(true)
		}
	}
	return nil
}

func (r *Node) stepCandidate(m Message) error {
	switch m.Type {
	case MsgApp, MsgHeartbeat, MsgSnap:
		// someone won this term (or, for a pre-candidate, a leader is alive)
		r.becomeFollower(m.Term, m.From)
		return r.stepFollower(m)
	case MsgPreVoteResp, MsgVoteResp:
		if (m.Type == MsgPreVoteResp) != (r.role == PreCandidate) {
			return nil
		}
		r.votes[m.From] = !m.Reject
		won, lost := r.members.voteResult(r.votes)
		switch {
		case won && r.role == PreCandidate:
			r.startElection(false)
		case won:
			r.becomeLeader()
		case lost:
			r.becomeFollower(r.term, None)
		}
	}
	return nil
}

// Status is a snapshot of the node's state for reporting.
type Status struct {
	ID     NodeID
	Term   uint64
	Vote   NodeID
	Lead   NodeID
	Role   Role
	Commit uint64
	// CommitTerm is the term of the entry at Commit: a new leader's Commit may lag what
	// its predecessor committed until an entry of its own term is committed
	// (CommitTerm == Term), the empty one it appends at once.
	CommitTerm uint64
	Applied    uint64
	LastIndex  uint64
	LastTerm   uint64
	Stable     uint64
	Snapshot   SnapshotMeta
	Members    Membership
	// Progress is the leader's view of each member (empty on followers).
	Progress map[NodeID]ProgressStatus
}

// ProgressStatus is what the leader knows of one member's log.
type ProgressStatus struct {
	Match, Next  uint64
	State        string
	RecentActive bool
	// TicksSinceHeard counts ticks since the last message from the member.
	TicksSinceHeard uint64
	// SnapshotAcked and SnapshotSize tell how far a snapshot transfer is (state snapshot):
	// bytes the member confirmed, of the whole.
	SnapshotAcked, SnapshotSize uint64
}

// Status reports the node's state.
func (r *Node) Status() Status {
	s := Status{ID: r.id, Term: r.term, Vote: r.vote, Lead: r.lead, Role: r.role,
		Commit: r.log.committed, Applied: r.log.applied, LastIndex: r.log.lastIndex(),
		LastTerm: r.log.lastTerm(), Stable: r.log.stable, Snapshot: r.log.snap.Meta,
		Members: r.members.clone()}
	s.CommitTerm, _ = r.log.term(r.log.committed)
	if r.role == Leader {
		s.Progress = map[NodeID]ProgressStatus{}
		for id, pr := range r.prs {
			ps := ProgressStatus{Match: pr.match, Next: pr.next, State: pr.state.String(),
				RecentActive: pr.recentActive, TicksSinceHeard: r.ticks - pr.lastHeard}
			if pr.state == stateSnapshot {
				ps.SnapshotAcked, ps.SnapshotSize = pr.snapAcked, pr.snap.Size
			}
			if id == r.id {
				ps.TicksSinceHeard = 0
				ps.RecentActive = true
			}
			s.Progress[id] = ps
		}
	}
	return s
}

// Role, Lead and Term are cheap reads of the node's current state.
func (r *Node) Role() Role     { return r.role }
func (r *Node) Lead() NodeID   { return r.lead }
func (r *Node) Term() uint64   { return r.term }
func (r *Node) Commit() uint64 { return r.log.committed }

// Members returns the membership in force (the last one in the log).
func (r *Node) Members() Membership { return r.members.clone() }
