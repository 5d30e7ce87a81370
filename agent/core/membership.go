package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/raftcore"
)

// A membership change (add-member, del-member) is carried out by the leader's core from
// start to end, whoever asked and whether or not they are still there: the CLI only
// starts it and follows its steps.
//
// add-member HOST: boot HOST in join mode over ssh (first-boot --join), add it as a
// learner, wait until it has caught up, make it a voter (joint consensus, which raftcore
// leaves by itself). A learner that makes no progress for catchUpStall is removed again,
// and the change fails. del-member HOST: remove it (joint consensus, then the new
// membership), then stop lite-raft there over ssh; a failed stop is a warning. A leader
// asked to remove itself hands leadership over first, and the request goes to the next.
//
// The change lives in the leader's memory. A new leader inherits what the replicated
// membership shows: a joint configuration raftcore leaves by itself, and a learner,
// which only add-member makes, is caught up and promoted (or removed if it stalls).

// catchUpStall is how long a learner may make no progress before add-member gives up.
const catchUpStall = 60_000

// runTimeout bounds a command the change runs over ssh.
const runTimeout = 120_000

type phase uint8

const (
	phaseBoot phase = iota + 1
	phaseLearner
	phaseCatchUp
	phasePromote
	phaseAbandon // remove a learner that did not catch up
	phaseRemove
	phaseStop
	phaseDone
)

type change struct {
	api.ChangeStatus
	add        bool
	host       raftcore.NodeID
	phase      phase
	proposed   bool // the membership entry of this phase is in the log
	run        CallID
	lastMatch  uint64
	progressAt Time
	waiters    []*waiter
}

// startChange takes an add-member or del-member request on the leader.
func (c *Core) startChange(w *waiter) {
	host := raftcore.NodeID(w.req.Member)
	if err := raftcore.ValidateID(host); err != nil {
		c.reply(w, api.Response{Code: api.CodeUsage, Msg: err.Error()})
		return
	}
	add := w.req.Op == api.OpAddMember
	if ch := c.change; ch != nil && ch.phase != phaseDone {
		if ch.host == host && ch.add == add {
			c.reply(w, ch.response()) // already under way: follow it
			return
		}
		c.reply(w, api.Response{Code: api.CodeFailed,
			Msg: fmt.Sprintf("another membership change is in progress: %s %s", ch.Op, ch.Host)})
		return
	}
	if !add && host == c.id {
		// hand over first; the next leader removes us
		if err := c.transferAway(); err != nil {
			c.reply(w, api.Response{Code: api.CodeFailed, Msg: err.Error()})
			return
		}
		w.outcome = client.MaybeApplied
		c.wait(w, raftcore.None)
		return
	}
	ch := &change{add: add, host: host, progressAt: c.now}
	ch.ID = fmt.Sprintf("%s/%d/%d", c.id, c.node.Term(), c.applied)
	ch.Op, ch.Host = w.req.Op.String(), string(host)
	m := c.appliedMembers
	switch {
	case add && m.IsVoter(host):
		ch.finish(api.CodeOK, fmt.Sprintf("%s is already a voter; members: %s", host, m))
	case add && slices.Contains(m.Learners, host):
		ch.step(c, phaseCatchUp, fmt.Sprintf("%s is a learner already; waiting for %s to catch up", host, host))
	case add:
		ch.step(c, phaseBoot, fmt.Sprintf("booting %s in join mode (first-boot --join over ssh)", host))
	case !m.Contains(host):
		ch.finish(api.CodeOK, fmt.Sprintf("%s is not a member; members: %s", host, m))
	default:
		ch.step(c, phaseRemove, fmt.Sprintf("removing %s (joint consensus, then the new membership)", host))
	}
	c.change = ch
	c.logf("", "%s %s: started", ch.Op, host)
	if ch.phase != phaseDone {
		w.outcome = client.MaybeApplied
	}
	c.reply(w, ch.response())
	c.advanceChange()
}

// waitChange answers a change-wait request once the change has more steps than the
// client saw, or is done; at the deadline, as it is.
func (c *Core) waitChange(w *waiter) {
	host := raftcore.NodeID(w.req.Member)
	ch := c.change
	if ch == nil || ch.host != host {
		// not (or no longer) here: say what the membership shows
		m := c.appliedMembers
		st := api.ChangeStatus{Host: string(host), Done: true, Code: api.CodeFailed,
			Msg: fmt.Sprintf("no membership change of %s in progress on the leader %s (members: %s)", host, c.id, m)}
		js, _ := json.Marshal(st)
		c.reply(w, api.Response{JSON: js})
		return
	}
	seen := w.req.Steps
	if ch.phase == phaseDone || uint64(len(ch.Steps)) != seen {
		c.reply(w, ch.response())
		return
	}
	ch.waiters = append(ch.waiters, w)
}

func (ch *change) response() api.Response {
	js, _ := json.Marshal(ch.ChangeStatus)
	return api.Response{JSON: js}
}

// step records a step and moves to phase p.
func (ch *change) step(c *Core, p phase, line string) {
	ch.phase, ch.proposed, ch.Stopping = p, false, p == phaseStop
	ch.Steps = append(ch.Steps, line)
	ch.wake(c)
}

func (ch *change) finish(code int, msg string) {
	ch.phase, ch.Done, ch.Code, ch.Msg, ch.Stopping = phaseDone, true, code, msg, false
	ch.Steps = append(ch.Steps, msg)
}

func (ch *change) wake(c *Core) {
	for _, w := range ch.waiters {
		c.reply(w, ch.response())
	}
	ch.waiters = nil
}

func (c *Core) endChange(code int, msg string) {
	ch := c.change
	ch.finish(code, msg)
	ch.wake(c)
	c.logf("", "%s %s: %s", ch.Op, ch.host, msg)
}

// advanceChange moves the change on as far as it can now. It runs after every batch
// and tick on the leader.
func (c *Core) advanceChange() {
	ch := c.change
	if ch == nil || ch.phase == phaseDone || c.node.Role() != raftcore.Leader {
		return
	}
	m := c.node.Members()
	cm := c.appliedMembers
	host := ch.host
	switch ch.phase {
	case phaseBoot:
		if ch.run == 0 {
			c.nextCall++
			ch.run = c.nextCall
			c.out.Runs = append(c.out.Runs, Run{ID: ch.run, Host: string(host), Args: "first-boot --join", Deadline: c.now + runTimeout})
		}
	case phaseLearner:
		if cm.Contains(host) {
			ch.progressAt = c.now
			ch.step(c, phaseCatchUp, fmt.Sprintf("waiting for %s to catch up", host))
			c.advanceChange()
			return
		}
		c.proposeChange(ch, m.Voters, append(slices.Clone(m.Learners), host))
	case phaseCatchUp:
		st := c.node.Status()
		p, ok := st.Progress[host]
		if !ok {
			return
		}
		if p.Match > ch.lastMatch {
			ch.lastMatch, ch.progressAt = p.Match, c.now
		}
		// (a commit index of an earlier term may lag what was committed: a new leader's
		// until its own first entry commits; the learner is measured against it after)
		if p.Match > 0 && p.Match+1 >= st.Commit && st.CommitTerm == st.Term || c.bugs.earlyPromotion {
			ch.step(c, phasePromote, fmt.Sprintf("%s caught up (match %d, commit %d); making %s a voter (joint consensus, then the new membership)",
				host, p.Match, st.Commit, host))
			c.advanceChange()
			return
		}
		if c.now-ch.progressAt > catchUpStall {
			why := ""
			if have := c.commandsOf(host); have < api.CommandVersion {
				// the likeliest cause: a build that stopped at the first entry it cannot read
				why = fmt.Sprintf("; it understands commands up to version %d and this cluster's build writes version %d: "+
					"if its log says it met an entry it cannot read, upgrade lite-raft on %s and add it again", have, api.CommandVersion, host)
			}
			ch.step(c, phaseAbandon, fmt.Sprintf("%s made no progress for %d s (match %d, commit %d)%s: removing the learner",
				host, catchUpStall/1000, p.Match, st.Commit, why))
			c.advanceChange()
		}
	case phasePromote:
		if !cm.Joint() && cm.IsVoter(host) {
			c.endChange(api.CodeOK, "members: "+cm.String())
			return
		}
		if !m.Joint() && !m.IsVoter(host) {
			c.proposeChange(ch, append(without(m.Voters, host), host), without(m.Learners, host))
		}
	case phaseAbandon:
		if !cm.Contains(host) {
			c.endChange(api.CodeFailed, fmt.Sprintf("%s did not catch up; it was removed again (members: %s)", host, cm))
			return
		}
		c.proposeChange(ch, without(m.Voters, host), without(m.Learners, host))
	case phaseRemove:
		if !cm.Joint() && !cm.Contains(host) {
			ch.step(c, phaseStop, fmt.Sprintf("members: %s; stopping lite-raft on %s over ssh", cm, host))
			c.advanceChange()
			return
		}
		if m.Contains(host) && !m.Joint() {
			c.proposeChange(ch, without(m.Voters, host), without(m.Learners, host))
		}
	case phaseStop:
		if ch.run == 0 {
			c.nextCall++
			ch.run = c.nextCall
			c.out.Runs = append(c.out.Runs, Run{ID: ch.run, Host: string(host), Args: "stop", Deadline: c.now + runTimeout})
		}
	}
}

// proposeChange proposes a membership, once per phase; a change that must wait (another
// in the log, a transfer) is tried again at the next tick.
func (c *Core) proposeChange(ch *change, voters, learners []raftcore.NodeID) {
	if ch.proposed {
		return
	}
	_, err := c.node.ProposeMembership(voters, learners)
	switch {
	case err == nil:
		ch.proposed = true
	case errors.Is(err, raftcore.ErrMembershipChange) || errors.Is(err, raftcore.ErrTransferring):
	default:
		c.endChange(api.CodeFailed, fmt.Sprintf("propose the membership: %v", err))
	}
}

// changeRunDone takes the end of a command the change ran over ssh.
func (c *Core) changeRunDone(id CallID, err error) {
	ch := c.change
	if ch == nil || ch.run != id || ch.phase == phaseDone {
		return
	}
	ch.run = 0
	switch ch.phase {
	case phaseBoot:
		// the host's state was made anew (or may have been): what the leader knew it
		// holds, if it was a member already, is gone with it
		c.node.ForgetProgress(raftcore.NodeID(ch.host))
		if err != nil {
			c.endChange(api.CodeFailed, fmt.Sprintf("booting %s failed: %v", ch.host, err))
			return
		}
		ch.step(c, phaseLearner, fmt.Sprintf("adding %s as a learner", ch.host))
	case phaseStop:
		if err != nil {
			c.endChange(api.CodeOK, fmt.Sprintf("warning: %s was removed, but stopping it failed: %v", ch.host, err))
		} else {
			c.endChange(api.CodeOK, fmt.Sprintf("stopped lite-raft on %s", ch.host))
		}
		return
	}
	c.advanceChange()
}

// leadershipChanged hands the change over when this node stops leading (its followers
// ask again, and the next leader answers), and picks up an inherited learner when it
// starts.
func (c *Core) leadershipChanged() {
	if c.node.Role() != raftcore.Leader {
		if ch := c.change; ch != nil && ch.phase != phaseDone {
			ws := ch.waiters
			ch.waiters = nil
			c.change = nil
			c.logf("", "%s %s: no longer the leader; the next one takes it over", ch.Op, ch.host)
			for _, w := range ws {
				c.wait(w, raftcore.None)
			}
		}
		return
	}
	if c.change != nil && c.change.phase != phaseDone {
		return
	}
	if m := c.node.Members(); len(m.Learners) > 0 {
		host := m.Learners[0]
		ch := &change{add: true, host: host, progressAt: c.now}
		ch.ID = fmt.Sprintf("%s/%d/%d", c.id, c.node.Term(), c.applied)
		ch.Op, ch.Host = api.OpAddMember.String(), string(host)
		ch.step(c, phaseCatchUp, fmt.Sprintf("%s (a learner) taken over by the new leader %s; waiting for %s to catch up", host, c.id, host))
		c.change = ch
		c.logf("", "add-member %s: resumed (a learner in the membership)", host)
	}
}
