package core

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"lite-raft/api"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
)

// Leases: the state machine holds each lease's time to live; when it runs out is for each
// member to count on its own clock (the state machine has none: apply must stay
// deterministic). Every member counts each lease down from its own apply of the entry
// that granted or last renewed it (leaseClock): renewals go through the log, a batch
// of them a tick (kvstore.OpLeaseKeepBatch), and a keep is answered once its batch
// applied. The leader proposes a revoke when its count runs out, so every member
// removes the lease's keys at the same index. A new leader resumes each countdown from
// its own apply of the last renewal: never earlier than the holder's (which counts from
// its send), never a whole ttl again, whatever the number of leader changes. No "time
// left" travels between members: one a new leader missed would make it count less
// than the holder, and a lock two holders.
//
// A cluster with a member from before command version 6 renews on the leader's clock
// only, as before (a new leader then gives every lease its whole ttl again). Such a
// term leaves no trace in the log, so a leader that renews through the log says so
// first: the first batch of its term, with the leases it renewed on its own clock in
// that term before (leadLeases). A new leader gives a whole ttl again to every lease it
// last counted from a term without that batch, or before it (resumeLeases).

// revokeRetryMs is how long a proposed revoke may take before it is proposed again (the
// first may have been lost with a leader change).
const revokeRetryMs = 1000

// commandOf builds the state machine command of a write request (validated already). A
// revoke named by its key (no lease number) is resolved by the leader, from its state.
func commandOf(r api.Request) (kvstore.Command, error) {
	info, _ := r.Op.Info()
	cmd := kvstore.Command{Op: kvstore.Op(info.Command), ClientID: r.ClientID, Seq: r.Seq, Key: r.Key,
		Value: r.Value, Cond: r.Cond, CondValue: r.CondValue, Lease: r.Lease, TTLMs: r.TTLMs, Holder: r.Holder,
		Token: r.Token, Expect: r.Expect, Txn: r.Txn, Batch: r.Batch}
	if cmd.Op == kvstore.OpRevoke && cmd.Lease == 0 {
		return cmd, nil
	}
	if r.FenceName != "" {
		// the same write, applied only while the lock is held at that generation
		cmd.Fenced, cmd.Op, cmd.FenceName, cmd.FenceGen = cmd.Op, kvstore.OpFenced, r.FenceName, r.FenceGen
	}
	return cmd, cmd.Validate()
}

// everyMember reports whether every member (learners and a joint configuration's
// outgoing voters too) is known to understand command version v.
func (c *Core) everyMember(v int) bool {
	for _, id := range c.node.Members().All() {
		if c.commandsOf(id) < v {
			return false
		}
	}
	return true
}

// successor turns cmd, the command of op, into its successor (api.SuccessorOf) once
// every member understands that: the new rule applies only where all apply it alike,
// and until then op goes on working under the old one. A lock's token is drawn here, by
// the leader, and travels in the command, so that every member stores the same one
// (apply must be deterministic) and a client needs no randomness of its own nor a new
// request field, and a client of any build gets one from a cluster that has them. The
// leader's source is seeded from its clock and pid: the token keeps a client from
// ending a lease it was not granted by mistake or by guessing a number, not from anyone
// who may read the log (debug, a backup), which holds it.
func (c *Core) successor(op api.Op, cmd *kvstore.Command) {
	s, ok := api.SuccessorOf(op)
	if !ok || !c.everyMember(s.Commands) {
		return
	}
	cmd.Op = kvstore.Op(s.Command)
	if cmd.Op == kvstore.OpLockAcquireV4 {
		cmd.Token = uint64(c.rand.IntN(math.MaxInt64))<<1 | 1 // never 0: 0 is "no token"
	}
}

// leaseOf is the lease a request names: its number, or Key's.
func (c *Core) leaseOf(r api.Request) uint64 {
	if r.Lease != 0 {
		return r.Lease
	}
	return c.kv.LeaseOf(r.Key)
}

// loadLeases counts every lease of the state from now: a member that loaded its state
// (a restart, a snapshot from the leader) cannot know when they were renewed, and counts
// longer rather than less. leaseFreshAt says when, for the simulation's bound.
func (c *Core) loadLeases(term uint64) {
	c.leases = newLeaseClock()
	c.kv.Leases(func(id uint64, l kvstore.Lease) bool {
		c.leases.set(id, c.now+Time(l.TTLMs), term)
		return true
	})
	c.appliedTerm, c.appliedTermMarked = term, false
	c.leasesToLoad = false
	c.leaseFreshAt = c.now
}

// leadLeases runs at a change of role: a new leader waits, before it expires anything,
// until it applied every entry of the terms before its own (resumeLeases); renewals
// through the log start at once where every member understands them.
func (c *Core) leadLeases() {
	// (keepsInFlight stays: a batch of an earlier term counts until its index applies)
	c.revoking = map[uint64]Time{}
	if c.node.Role() != raftcore.Leader {
		c.retryKeeps()
		return
	}
	if c.leadTerm != c.node.Term() {
		c.leadTerm, c.leadFrom = c.node.Term(), c.node.Status().LastIndex
	}
	c.logKeeps()
}

// logKeeps starts renewals through the log in this leader's term, once every member
// understands them: its first batch names the leases it renewed on its own clock in
// this term until now, so every member counts them from later than that. From then on
// the term renews through the log only (a member of unknown version added meanwhile
// holds the batches back, it does not bring the leader's clock back).
func (c *Core) logKeeps() {
	term := c.node.Term()
	if c.node.Role() != raftcore.Leader || c.logTerm == term || !c.everyMember(api.LeaseKeepCommands) {
		return
	}
	var ids []uint64
	if c.oldKeptTerm == term {
		ids = sortedKeys(c.oldKept)
	}
	if len(ids) > kvstore.MaxKeepBatch {
		return // a leader's own clock renewed more than one entry names: never in practice
	}
	index, _, err := c.node.Propose(kvstore.Command{Op: kvstore.OpLeaseKeepBatch, Leases: ids}.Encode())
	if err != nil {
		return // a transfer in progress: the next tick, or the next leader
	}
	c.logTerm = term
	c.oldKept, c.oldKeptTerm = nil, 0
	c.keepBatches[index] = &keepBatch{term: term, ids: ids}
	for _, id := range ids {
		c.keepsInFlight[id]++
	}
}

// resumeLeases: once a new leader applied the entries of the terms before its own, it
// knows which of them renewed through the log. A lease it last counted from a term that
// did not say so (or an earlier one) may have been renewed on that term's leader's
// clock, unseen: it gets a whole ttl from now. Every other lease goes on counting from
// this member's own apply of its last renewal. A term that does not renew through the
// log at all (a member from before version 6) gives every lease a whole ttl, as before.
func (c *Core) resumeLeases() {
	term := c.node.Term()
	if c.node.Role() != raftcore.Leader || c.leadTerm != term || c.resumedTerm == term || c.applied < c.leadFrom {
		return
	}
	c.resumedTerm = term
	all := c.logTerm != term || c.bugs.leaseRestart
	fresh := false
	c.kv.Leases(func(id uint64, l kvstore.Lease) bool {
		it := c.leases.byID[id]
		if all || it == nil || it.term <= c.unmarkedTerm {
			c.leases.set(id, c.now+Time(l.TTLMs), 0)
			fresh = true
		} else if it.next > it.due {
			c.leases.later(it, it.due) // a revoke this member proposed when it led before: not in flight now
		}
		return true
	})
	if fresh && !c.bugs.leaseRestart {
		c.leaseFreshAt = c.now
	}
}

// noteTerm follows the terms of the entries applied: a term ends without having said it
// renews through the log (its first batch) is one whose leader may have renewed on its
// own clock.
func (c *Core) noteTerm(term uint64) {
	if term == c.appliedTerm {
		return
	}
	if !c.appliedTermMarked {
		c.unmarkedTerm = max(c.unmarkedTerm, c.appliedTerm)
	}
	c.appliedTerm, c.appliedTermMarked = term, false
}

// leaseApplied follows an applied command on this member's lease clock, and wakes
// whoever waits on what it changed: a revoke's keys (watches) and locks (lock waiters).
func (c *Core) leaseApplied(e raftcore.Entry, cmd kvstore.Command, before []string, locks []string) {
	switch cmd.Op {
	case kvstore.OpSetLease, kvstore.OpLockAcquire, kvstore.OpLockAcquireV4:
		if l, ok := c.kv.LeaseByID(e.Index); ok { // not for a retry's answer, or a refusal
			c.leases.set(e.Index, c.now+Time(l.TTLMs), e.Term)
		}
	case kvstore.OpLeaseKeepBatch:
		c.appliedTermMarked = true
		for _, id := range cmd.Leases {
			if l, ok := c.kv.LeaseByID(id); ok {
				c.leases.set(id, c.now+Time(l.TTLMs), e.Term)
			}
		}
	case kvstore.OpRevoke, kvstore.OpRevokeV4:
		if _, refused := c.kv.LeaseByID(cmd.Lease); refused {
			break // a revoke without the lease's token: it lives on
		}
		c.leases.remove(cmd.Lease)
		delete(c.revoking, cmd.Lease)
		for _, k := range before {
			if len(c.watches[k]) > 0 {
				c.wakeWatches(k)
			}
		}
	}
	for _, name := range locks {
		c.wakeLockWaits(name)
	}
}

// keepBatch is a batch of renewals proposed by this leader: the keeps it answers once
// applied.
type keepBatch struct {
	term    uint64
	ids     []uint64
	waiters []*waiter
}

// keepsApplied answers the keeps of the batch this leader proposed at e's index: each
// from the state as the batch left it (a lease revoked before it is gone: 9), or, if
// another leader's entry took its place, tries them again.
func (c *Core) keepsApplied(e raftcore.Entry, cmd kvstore.Command) {
	b := c.keepBatches[e.Index]
	if b == nil {
		return
	}
	c.dropBatch(e.Index)
	ours := b.term == e.Term && cmd.Op == kvstore.OpLeaseKeepBatch
	for _, w := range b.waiters {
		if ours {
			c.reply(w, c.keepAnswer(w.req))
		} else {
			c.wait(w, raftcore.None)
		}
	}
}

// retryKeeps sends the keeps not yet proposed again: to the new leader.
func (c *Core) retryKeeps() {
	keeps := c.keeps
	c.keeps = nil
	for _, w := range keeps {
		c.wait(w, raftcore.None)
	}
}

// dropBatch forgets the batch at index: its leases are in flight no more.
func (c *Core) dropBatch(index uint64) {
	for _, id := range c.keepBatches[index].ids {
		if c.keepsInFlight[id]--; c.keepsInFlight[id] <= 0 {
			delete(c.keepsInFlight, id)
		}
	}
	delete(c.keepBatches, index)
}

// flushKeeps proposes the keeps confirmed since the last tick as one batch.
func (c *Core) flushKeeps() {
	if len(c.keeps) == 0 {
		return
	}
	if c.node.Role() != raftcore.Leader || c.logTerm != c.node.Term() {
		c.retryKeeps() // not the leader of their term any more: they go to the next
		return
	}
	if !c.everyMember(api.LeaseKeepCommands) {
		return // a member of unknown version: held back until it says (or their deadline)
	}
	seen := map[uint64]bool{}
	var ids []uint64
	var ws []*waiter
	n := 0
	for _, w := range c.keeps {
		id := c.leaseOf(w.req)
		if !seen[id] && len(ids) == kvstore.MaxKeepBatch {
			break
		}
		n++
		switch {
		case id == 0:
			c.reply(w, c.keepAnswer(w.req)) // its key went meanwhile: no lease to name
			continue
		case !seen[id]:
			seen[id] = true
			ids = append(ids, id)
		}
		ws = append(ws, w)
	}
	slices.Sort(ids)
	// ascending, each once, none 0, at most MaxKeepBatch: what every member's Decode
	// takes (one it refused would stop it)
	index, term, err := c.node.Propose(kvstore.Command{Op: kvstore.OpLeaseKeepBatch, Leases: ids}.Encode())
	if err != nil {
		return // a transfer in progress: the keeps wait for the next leader, or their deadline
	}
	c.keepBatches[index] = &keepBatch{term: term, ids: ids, waiters: ws}
	c.keeps = slices.Delete(c.keeps, 0, n)
	for _, id := range ids {
		c.keepsInFlight[id]++
	}
}

// rebaseIfRestored: the leader of a cluster restored from a backup (kvstore.MarkRestored)
// first moves its lock and package generations past anything the old cluster issued,
// with an epoch from its own wall clock: the same on every member, as it comes through
// the log, and another on each restore. It goes before anything this leader proposes
// after, and the store refuses what would issue a generation until it is applied. It
// is proposed again each revokeRetryMs until applied (a leader change may lose it). Not
// behind the version gate: only a build that reads snapshot format v3 holds such a state.
func (c *Core) rebaseIfRestored() {
	if c.node.Role() != raftcore.Leader || !c.kv.RebasePending() || (c.rebasing != 0 && c.now-c.rebasing < revokeRetryMs) {
		return
	}
	epoch := uint64(max(1, c.cfg.StartedAtNs+int64(c.now)*1_000_000))
	if _, _, err := c.node.Propose(kvstore.Command{Op: kvstore.OpRebase, Epoch: epoch}.Encode()); err != nil {
		return // a transfer in progress: the next leader does it
	}
	c.rebasing = max(1, c.now)
	c.logf("rebase", "this cluster was restored from a backup: moving its lock and package generations past the old cluster's (epoch %d)", epoch)
}

// expireLeases proposes the revoke of every lease whose time is up (leader only), once
// the leader resumed its countdowns (resumeLeases), taking them from a heap: a lease
// costs nothing a tick until it is due. A revoke in flight is proposed again only after
// revokeRetryMs (the first may have been lost with a leader change); a lease named by a
// batch of this leader not yet applied is not revoked before it is (the batch would
// renew it after its keep was confirmed: the holder counts from that).
func (c *Core) expireLeases() {
	if c.node.Role() != raftcore.Leader || c.resumedTerm != c.node.Term() {
		return
	}
	for it := c.leases.first(); it != nil && it.next <= c.now; it = c.leases.first() {
		id := it.id
		l, ok := c.kv.LeaseByID(id)
		switch {
		case !ok:
			c.leases.remove(id) // never: every revoke leaves the clock when applied
			continue
		case it.due > c.now:
			c.leases.later(it, it.due)
			continue
		case c.keepsInFlight[id] > 0:
			c.leases.later(it, c.now+1) // the next tick
			continue
		}
		if at, ok := c.revoking[id]; ok && c.now-at < revokeRetryMs && !c.bugs.revokeEveryTick {
			c.leases.later(it, at+revokeRetryMs)
			continue
		}
		cmd := kvstore.Command{Op: kvstore.OpRevoke, Lease: id, Token: l.Token} // the leader ends it, as its holder may
		c.successor(api.OpRevoke, &cmd)
		if _, _, err := c.node.Propose(cmd.Encode()); err != nil {
			return // a transfer in progress: the next leader does it
		}
		c.revoking[id] = c.now
		if c.bugs.revokeEveryTick {
			c.leases.later(it, c.now+1)
		} else {
			c.leases.later(it, c.now+revokeRetryMs)
		}
		c.logf("lease", "lease %d expired: revoking it", id)
	}
}

// keepLease serves a lease keep the leader confirmed it may serve (a read index: a
// deposed leader cannot renew). Where its term renews through the log, the keep waits
// for the next batch and is answered once that batch applied; otherwise the leader
// renews the lease on its own clock and answers at once, as before version 6.
func (c *Core) keepLease(w *waiter) {
	if c.node.Role() != raftcore.Leader || c.node.Term() != w.readTerm {
		// it stepped down (or came back in a later term) while the keep waited for its
		// read index to apply: a renewal on this member's clock would be counted by no
		// later leader, and the holder told it kept a lease that runs out sooner. Nothing
		// was renewed: 11, which a holder's next renewal asks again. (Re-queueing the keep
		// here made deposed members forward it to each other without end, found with
		// lagging appliers.)
		c.reply(w, api.Response{Code: api.CodeNoLeader, Msg: "this member stopped leading while the keep waited: not renewed; ask again"})
		return
	}
	id, resp, ok := c.checkKeep(w.req)
	if !ok {
		c.reply(w, resp)
		return
	}
	if term := c.node.Term(); c.logTerm != term {
		if c.oldKeptTerm != term {
			c.oldKept, c.oldKeptTerm = map[uint64]bool{}, term
		}
		c.oldKept[id] = true
		l, _ := c.kv.LeaseByID(id)
		c.leases.set(id, c.now+Time(l.TTLMs), 0)
		c.reply(w, resp)
		return
	}
	c.keeps = append(c.keeps, w)
}

// keepAnswer is a keep's answer from the state as it is.
func (c *Core) keepAnswer(r api.Request) api.Response {
	_, resp, _ := c.checkKeep(r)
	return resp
}

// checkKeep says whether a keep may renew its lease, and what to answer.
func (c *Core) checkKeep(r api.Request) (uint64, api.Response, bool) {
	id := c.leaseOf(r)
	l, ok := c.kv.LeaseByID(id)
	if id == 0 || !ok {
		what := fmt.Sprintf("lease %d", r.Lease)
		if r.Lease == 0 {
			what = fmt.Sprintf("key %s has no lease", r.Key)
			if _, exists := c.kv.Get(r.Key); !exists {
				what = fmt.Sprintf("key %s not found", r.Key)
			}
			return 0, api.Response{Code: api.CodeNotFound, Msg: what}, false
		}
		return 0, api.Response{Code: api.CodeNotFound, Msg: what + " expired or was revoked"}, false
	}
	if r.Stale {
		return 0, api.Response{Code: api.CodeUsage, Msg: "a lease is kept by the leader: not with --stale"}, false
	}
	// a keep needs no token: it only delays when a lock passes on, never hands one over,
	// and clients from before tokens keep their leases by number. A token given must be
	// the lease's all the same (a client that mixed up its leases hears of it).
	if msg, refused := c.kv.TokenRefusal(id, r.Token); r.Token != 0 && refused {
		return 0, api.Response{Code: api.CodeUsage, Msg: "lease keep: " + msg}, false
	}
	js, _ := json.Marshal(map[string]uint64{"lease": id, "ttl_ms": l.TTLMs})
	return id, api.Response{JSON: js}, true
}

// ttlOf is a key's lease and its time left as this member counts it, for get --json.
func (c *Core) ttlOf(key string) []byte {
	id := c.kv.LeaseOf(key)
	if id == 0 {
		return nil
	}
	m := map[string]int64{"lease": int64(id)}
	if due, ok := c.leases.due(id); ok {
		m["ttl_ms"] = max(0, int64(due-c.now))
	}
	js, _ := json.Marshal(m)
	return js
}

// lockWait answers a lock-wait once its lease holds the lock (9 if it is not queued any
// more), else parks it until the lock changes or its deadline.
func (c *Core) lockWait(w *waiter) {
	id := c.leaseOf(w.req)
	p, ok := c.kv.LockPlaceOf(w.req.Key, id)
	switch {
	case !ok:
		c.reply(w, api.Response{Code: api.CodeNotFound,
			Msg: fmt.Sprintf("lease %d is not queued for lock %s: it expired or was released", id, w.req.Key)})
	case p.Position == 0:
		js, _ := json.Marshal(p)
		c.reply(w, api.Response{JSON: js})
	default:
		c.lockWaits[w.req.Key] = append(c.lockWaits[w.req.Key], w)
	}
}

// wakeLockWaits sends the lock-waits of a lock that changed through a read index again.
func (c *Core) wakeLockWaits(name string) {
	ws := c.lockWaits[name]
	delete(c.lockWaits, name)
	for _, w := range ws {
		if !w.replied {
			c.handle(w)
		}
	}
}

// locksResponse lists every held lock.
func (c *Core) locksResponse() api.Response {
	out := []api.LockStatus{}
	c.kv.Locks(func(name string, l kvstore.Lock) bool {
		h := l.Queue[0]
		st := api.LockStatus{Name: name, Generation: l.Generation, Holder: h.Holder, Lease: h.Lease, Since: h.Since, TTLMs: -1,
			Waiting: []string{}}
		if due, ok := c.leases.due(h.Lease); ok {
			st.TTLMs = max(0, int64(due-c.now))
		}
		for _, q := range l.Queue[1:] {
			st.Waiting = append(st.Waiting, q.Holder)
		}
		out = append(out, st)
		return true
	})
	js, _ := json.Marshal(out)
	return api.Response{JSON: js}
}
