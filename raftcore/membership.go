package raftcore

import (
	"fmt"
	"slices"
)

// refreshMembers sets the membership from the last membership entry in the log (or the
// snapshot). A membership takes effect when it is appended, not when committed, so a
// truncated log can also take one back; this is why it is recomputed rather than patched.
func (r *Node) refreshMembers() {
	r.membersIndex = r.log.snap.Meta.Index
	r.members = r.log.snap.Meta.Members.clone()
	r.prevMembers = r.members
	ms := r.log.memberships
	for k := len(ms) - 1; k >= 0 && k >= len(ms)-2; k-- {
		m, err := DecodeMembership(ms[k].Data)
		if err != nil {
			continue // validated when appended; cannot happen
		}
		if k == len(ms)-1 {
			r.members, r.membersIndex = m, ms[k].Index
			r.prevMembers = r.log.snap.Meta.Members.clone()
		} else {
			r.prevMembers = m
		}
	}
	if r.role == Leader {
		r.syncProgress()
		if r.transferee != None && !r.members.IsVoter(r.transferee) {
			r.transferee = None
		}
	}
}

// syncProgress gives the leader a progress record for exactly the current members.
func (r *Node) syncProgress() {
	for id := range r.prs {
		if !r.members.Contains(id) && id != r.id {
			delete(r.prs, id)
		}
	}
	for _, id := range append(r.members.All(), r.id) {
		if r.prs[id] == nil {
			r.prs[id] = &progress{next: r.log.lastIndex() + 1, recentActive: true, lastHeard: r.ticks}
		}
	}
	r.prs[r.id].match = r.log.stable
}

// ProposeMembership asks the leader to change the membership to voters and learners. A
// change of voters goes through the joint configuration C_old,new, which the leader
// leaves by itself once it is committed. Only one change may be in progress at a time.
// It returns the index of the first membership entry.
func (r *Node) ProposeMembership(voters, learners []NodeID) (uint64, error) {
	if r.role != Leader {
		return 0, ErrNotLeader
	}
	if r.transferee != None {
		return 0, ErrTransferring
	}
	// the membership in force is the last one in the log: if it is not committed yet (or
	// joint, which the leader will leave by itself) another change must wait
	if r.members.Joint() || r.membersIndex > r.log.committed {
		return 0, ErrMembershipChange
	}
	if len(voters) == 0 {
		return 0, fmt.Errorf("membership without voters")
	}
	next := Membership{Voters: slices.Clone(voters), Learners: slices.Clone(learners)}
	if err := next.Validate(); err != nil {
		return 0, err
	}
	if !sameSet(voters, r.members.Voters) {
		next.Outgoing = slices.Clone(r.members.Voters)
	}
	r.appendEntries(Entry{Type: EntryMembership, Data: EncodeMembership(next)})
	return r.membersIndex, nil
}

// maybeLeaveJoint appends C_new once C_old,new is committed.
func (r *Node) maybeLeaveJoint() {
	// once C_new is appended the membership is no longer joint, so this runs once
	if r.role != Leader || !r.members.Joint() || r.membersIndex > r.log.committed {
		return
	}
	next := Membership{Voters: slices.Clone(r.members.Voters), Learners: slices.Clone(r.members.Learners)}
	r.appendEntries(Entry{Type: EntryMembership, Data: EncodeMembership(next)})
}

// maybeStepDownRemoved makes a leader that is no longer a voter step down once the
// membership that removed it is committed. It first tells the most up-to-date voter to
// campaign at once, so the cluster does not wait an election timeout.
func (r *Node) maybeStepDownRemoved() {
	if r.role != Leader || r.members.IsVoter(r.id) || r.membersIndex > r.log.committed {
		return
	}
	var best NodeID
	var bestMatch uint64
	for _, id := range r.members.Voters {
		if pr := r.prs[id]; pr != nil && pr.match > bestMatch {
			best, bestMatch = id, pr.match
		}
	}
	if best != None && bestMatch == r.log.lastIndex() {
		r.send(Message{To: best, Type: MsgTimeoutNow})
	}
	r.becomeFollower(r.term, None)
}
