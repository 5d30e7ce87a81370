package core

import (
	"fmt"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
)

// PeerVersion records what a peer said of itself (api.FrameVersion): the newest
// commands its build understands. A member that never said anything runs a build from
// before versions, which understands version 1. What was said is kept while the core
// lives: a peer says it again on every stream it opens, so a restarted or upgraded one
// is heard at once.
func (c *Core) PeerVersion(now Time, v api.Version) {
	c.at(now)
	id := raftcore.NodeID(v.ID)
	if raftcore.ValidateID(id) != nil || id == c.id {
		return
	}
	if old, ok := c.versions[id]; !ok || old.Commands != v.Commands {
		c.logf("", "%s runs lite-raft %s (commands version %d)", id, orDash(v.Build), v.Commands)
	}
	c.versions[id] = v
}

// commandsOf is the command version a member is known to understand.
func (c *Core) commandsOf(id raftcore.NodeID) int {
	if id == c.id {
		return api.CommandVersion
	}
	if v, ok := c.versions[id]; ok {
		return v.Commands
	}
	return 1
}

// refuseNewer answers a command that some member would not understand: the leader
// proposes a kind of command only once every member (learners and a joint
// configuration's outgoing voters too) has said it understands it. It reports whether it
// refused. The refusal says that this attempt appended nothing; after an earlier attempt
// that may have been applied (a forward to a leader that died, then this agent became
// leader and does not know a member's version yet) it is a 2.
func (c *Core) refuseNewer(w *waiter, op kvstore.Op) bool {
	need := op.Version()
	for _, id := range c.node.Members().All() {
		if have := c.commandsOf(id); have < need {
			how := fmt.Sprintf("understands commands up to version %d", have)
			if _, ok := c.versions[id]; !ok {
				how = "has not said which commands it understands (a build from before versions, or not heard from since this agent started)"
			}
			c.reply(w, client.Downgrade(w.req.Op, w.outcome, api.Response{Code: api.CodeUpgrade, Msg: fmt.Sprintf(
				"%s needs commands version %d, and member %s %s: upgrade it first (nothing was written)", w.req.Op, need, id, how)}))
			return true
		}
	}
	return false
}

// requestsOf is the request version a member is known to understand: 1 (every op up to
// snapshot-read) for one that never said.
func (c *Core) requestsOf(id raftcore.NodeID) int {
	if id == c.id {
		return api.RequestVersion
	}
	return c.versions[id].RequestsOr1()
}

// understands reports whether peer can read w's request: a request goes to a member
// only once it said it understands the request version of the request's op (an older
// build would refuse it, or worse, take it for a malformed one).
func (c *Core) understands(peer raftcore.NodeID, w *waiter) bool {
	return c.requestsOf(peer) >= w.req.RequestVersion()
}

// refuseUnknownTo answers a request that peer, where it must go, would not understand,
// naming the member to upgrade; it reports whether it refused.
func (c *Core) refuseUnknownTo(w *waiter, peer raftcore.NodeID) bool {
	if c.understands(peer, w) {
		return false
	}
	how := fmt.Sprintf("understands requests up to version %d", c.requestsOf(peer))
	if _, ok := c.versions[peer]; !ok {
		how = "has not said which requests it understands (a build from before versions, or not heard from since this agent started)"
	}
	c.reply(w, client.Downgrade(w.req.Op, w.outcome, api.Response{Code: api.CodeUpgrade, Msg: fmt.Sprintf(
		"%s needs requests version %d, and member %s, which must serve it, %s: upgrade it first (nothing was done)", w.req.Op, w.req.RequestVersion(), peer, how)}))
	return true
}
