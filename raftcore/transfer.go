package raftcore

import "fmt"

// TransferLeadership asks the leader to hand over to the voter to. The leader stops
// taking proposals, brings to's log up to date, then sends it MsgTimeoutNow so that it
// campaigns at once (§3.10 of the dissertation). If that has not worked within an election
// timeout the transfer is abandoned and proposals are taken again.
func (r *Node) TransferLeadership(to NodeID) error {
	if r.role != Leader {
		return ErrNotLeader
	}
	if to == r.id {
		return nil
	}
	if !r.members.IsVoter(to) {
		return fmt.Errorf("transfer leadership to %s: not a voter", to)
	}
	if r.transferee == to {
		return nil
	}
	r.transferee = to
	r.electionElapsed = 0
	pr := r.prs[to]
	if pr.match == r.log.lastIndex() {
		r.send(Message{To: to, Type: MsgTimeoutNow})
	} else {
		r.sendAppends(to)
	}
	return nil
}
