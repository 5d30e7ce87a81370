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
		if m.Type == MsgVote {
			r.electionElapsed = 0
			r.vote = m.From
		}
		return
	}
	r.send(Message{To: m.From, Type: resp, Reject: true})
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
