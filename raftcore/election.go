package raftcore

// campaign starts a pre-vote: the node asks the voters whether they would vote for it in
// the next term, without changing its own term. Only if a quorum says yes does it start
// the real election, so a node that is cut off never inflates the term and never forces a
// healthy leader to step down when it comes back.
func (r *Node) campaign(transfer bool) {
	if transfer {
		r.startElection(true)
		return
	}
	r.becomePreCandidate()
	r.requestVotes(MsgPreVote, r.term+1, 0)
}

// startElection is the real election of §5.2: a new term, a vote for itself, and vote
// requests to every voter. A leadership transfer skips the pre-vote and marks its
// requests so that voters grant them even while they still hear from the old leader.
func (r *Node) startElection(transfer bool) {
	r.becomeCandidate()
	ctx := uint64(0)
	if transfer {
		ctx = campaignTransfer
	}
	r.requestVotes(MsgVote, r.term, ctx)
}

func (r *Node) requestVotes(t MsgType, term, ctx uint64) {
	r.votes[r.id] = true
	if won, _ := r.members.voteResult(r.votes); won {
		// a single voter: nobody to ask
		if t == MsgPreVote {
			r.startElection(ctx == campaignTransfer)
		} else {
			r.becomeLeader()
		}
		return
	}
	for _, id := range r.members.All() {
		if id == r.id || !r.members.IsVoter(id) {
			continue
		}
		r.send(Message{To: id, Type: t, Term: term, Index: r.log.lastIndex(), LogTerm: r.log.lastTerm(), Context: ctx})
	}
}

// handleVoteRequest answers a pre-vote or vote request whose term is at least ours (Step
// has already adopted a newer term for real votes).
func (r *Node) handleVoteRequest(m Message) {
	resp := MsgVoteResp
	if m.Type == MsgPreVote {
		resp = MsgPreVoteResp
	}
	canVote := r.vote == m.From ||
		(r.vote == None && r.lead == None) ||
		(m.Type == MsgPreVote && m.Term > r.term)
	if canVote && r.log.isUpToDate(m.Index, m.LogTerm) {
		// The answer carries the request's term: for a pre-vote that is a term we have not
		// entered, which tells the pre-candidate the grant is for its future election.
		r.send(Message{To: m.From, Type: resp, Term: m.Term})
		switch {
		case m.Type == MsgVote:
			r.electionElapsed = 0
			r.vote = m.From
		case r.role == PreCandidate && m.Term == r.term+1 && r.yieldsTo(m):
			r.deferCampaign(m.From)
		}
		return
	}
	r.send(Message{To: m.From, Type: resp, Reject: true})
}

// yieldsTo reports whether a pre-candidate gives way to another standing in the same
// round: one whose log is newer (it would refuse ours), or as new and first in name order.
func (r *Node) yieldsTo(m Message) bool {
	if m.LogTerm != r.log.lastTerm() {
		return m.LogTerm > r.log.lastTerm()
	}
	if m.Index != r.log.lastIndex() {
		return m.Index > r.log.lastIndex()
	}
	return m.From < r.id
}

// deferCampaign ends our pre-campaign in favour of from's, met on the way. Two voters
// whose timeouts fire less than a round trip apart each grant the other's pre-vote before
// they see its request, both become candidates and split the vote: with three voters and
// one of them down that costs a whole new timeout every time, and on a link whose round
// trip is half the election timeout it happened in most failovers. Each pre-vote request
// reaches the other before the grant that follows it (a link keeps its order), so the one
// that yields is known before either counts the other's grant; it grants, steps back, and
// stands again only if from has not won within two round trips (its pre-vote's answers,
// then its vote's) and a tick, never later than an election timeout.
func (r *Node) deferCampaign(from NodeID) {
	r.becomeFollower(r.term, None)
	hold := min(2*r.roundTrip(from)+1, r.cfg.ElectionTicks)
	r.electionElapsed = max(r.randomizedElectionTimeout-hold, 0)
}

// SetRoundTrip tells the node the round trip of its link to id, in ticks rounded up (0
// if not known): the driver measures it, the node only uses it. It bounds how long a
// pre-candidate that gave way to another waits for that one's election (deferCampaign).
func (r *Node) SetRoundTrip(id NodeID, ticks int) {
	if ticks <= 0 || ValidateID(id) != nil {
		delete(r.roundTrips, id)
		return
	}
	setBounded(&r.roundTrips, id, min(ticks, r.cfg.ElectionTicks))
}

// roundTrip is the link to id's round trip in ticks: one when it is not known, as on a
// LAN where a tick is far longer than a round trip.
func (r *Node) roundTrip(id NodeID) int {
	return max(r.roundTrips[id], 1)
}

// LeaderGone tells a follower that its leader id is known to have stopped, not merely to
// be silent: its host answered and said no Raft process runs there. The follower forgets
// the leader, so that it no longer refuses (pre-)votes by lease, and stands for election
// after a short wait instead of a full randomized election timeout.
//
// The wait depends on the follower's rank among the other voters, in name order: the
// first stands at its next tick, the next a quarter of an election timeout later, and so
// on. The followers of a dead leader all get the news at about the same time; ranks keep
// them from splitting the vote, where random waits of a tick's granularity would often
// collide. A wrong report costs at most a refused pre-vote (the voters that still hear
// the leader refuse it by lease) and never safety: elections are always safe.
//
// Ignored unless this node is a follower of id that may stand for election; it reports
// whether it acted.
func (r *Node) LeaderGone(id NodeID) bool {
	if id == None || r.role != Follower || r.lead != id || !r.promotable() {
		return false
	}
	r.lead = None
	rank := 0
	for _, v := range r.members.All() {
		if v != id && v < r.id && r.members.IsVoter(v) {
			rank++
		}
	}
	wait := 1 + rank*max(r.cfg.ElectionTicks/4, 1)
	if left := r.randomizedElectionTimeout - r.electionElapsed; left > wait {
		r.electionElapsed = r.randomizedElectionTimeout - wait
	}
	return true
}
