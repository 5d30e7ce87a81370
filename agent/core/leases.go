package core

import (
	"encoding/json"
	"fmt"
	"math"

	"lite-raft/api"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
)

// Leases: the state machine holds each lease's time to live; when it runs out is the
// leader's to say, on its own clock. The leader keeps a deadline per lease, renews it on
// each keep-alive it has confirmed (a read index: a deposed leader cannot renew), and
// proposes a revoke when it passes, so every member removes the lease's keys at the
// same index. A new leader gives every lease its whole time to live again: at least
// what was left, whatever the old leader had granted.

// revokeRetryMs is how long a proposed revoke may take before it is proposed again (the
// first may have been lost with a leader change).
const revokeRetryMs = 1000

// commandOf builds the state machine command of a write request (validated already). A
// revoke named by its key (no lease number) is resolved by the leader, from its state.
func commandOf(r api.Request) (kvstore.Command, error) {
	info, _ := r.Op.Info()
	cmd := kvstore.Command{Op: kvstore.Op(info.Command), ClientID: r.ClientID, Seq: r.Seq, Key: r.Key,
		Value: r.Value, Cond: r.Cond, CondValue: r.CondValue, Lease: r.Lease, TTLMs: r.TTLMs, Holder: r.Holder,
		Token: r.Token, Expect: r.Expect, Txn: r.Txn}
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

// leadLeases starts the leader's clocks: every lease gets its whole time to live.
func (c *Core) leadLeases() {
	c.leaseDue, c.revoking = map[uint64]Time{}, map[uint64]Time{}
	if c.node.Role() != raftcore.Leader {
		return
	}
	c.kv.Leases(func(id uint64, l kvstore.Lease) bool {
		c.leaseDue[id] = c.now + Time(l.TTLMs)
		return true
	})
}

// leaseApplied follows an applied command on the leader's clocks, and wakes whoever
// waits on what it changed: a revoke's keys (watches) and locks (lock waiters).
func (c *Core) leaseApplied(index uint64, cmd kvstore.Command, before []string, locks []string) {
	switch cmd.Op {
	case kvstore.OpSetLease, kvstore.OpLockAcquire, kvstore.OpLockAcquireV4:
		if c.node.Role() == raftcore.Leader {
			c.leaseDue[index] = c.now + Time(cmd.TTLMs)
		}
	case kvstore.OpRevoke, kvstore.OpRevokeV4:
		if _, refused := c.kv.LeaseByID(cmd.Lease); refused {
			break // a revoke without the lease's token: it lives on
		}
		delete(c.leaseDue, cmd.Lease)
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

// expireLeases proposes the revoke of every lease whose time is up (leader only).
func (c *Core) expireLeases() {
	if c.node.Role() != raftcore.Leader || len(c.leaseDue) == 0 {
		return
	}
	for _, id := range sortedKeys(c.leaseDue) {
		if c.leaseDue[id] > c.now {
			continue
		}
		if at, ok := c.revoking[id]; ok && c.now-at < revokeRetryMs {
			continue
		}
		cmd := kvstore.Command{Op: kvstore.OpRevoke, Lease: id}
		if l, ok := c.kv.LeaseByID(id); ok {
			cmd.Token = l.Token // the leader ends it, as its holder may
		}
		c.successor(api.OpRevoke, &cmd)
		if _, _, err := c.node.Propose(cmd.Encode()); err != nil {
			return // a transfer in progress: the next leader does it
		}
		c.revoking[id] = c.now
		c.logf("lease", "lease %d expired: revoking it", id)
	}
}

// keepLease renews a lease once the leader confirmed it leads (a read).
func (c *Core) keepLease(r api.Request) api.Response {
	id := c.leaseOf(r)
	l, ok := c.kv.LeaseByID(id)
	if id == 0 || !ok {
		what := fmt.Sprintf("lease %d", r.Lease)
		if r.Lease == 0 {
			what = fmt.Sprintf("key %s has no lease", r.Key)
			if _, exists := c.kv.Get(r.Key); !exists {
				what = fmt.Sprintf("key %s not found", r.Key)
			}
			return api.Response{Code: api.CodeNotFound, Msg: what}
		}
		return api.Response{Code: api.CodeNotFound, Msg: what + " expired or was revoked"}
	}
	if r.Stale {
		return api.Response{Code: api.CodeUsage, Msg: "a lease is kept by the leader: not with --stale"}
	}
	// a keep needs no token: it only delays when a lock passes on, never hands one over,
	// and clients from before tokens keep their leases by number. A token given must be
	// the lease's all the same (a client that mixed up its leases hears of it).
	if msg, refused := c.kv.TokenRefusal(id, r.Token); r.Token != 0 && refused {
		return api.Response{Code: api.CodeUsage, Msg: "lease keep: " + msg}
	}
	c.leaseDue[id] = c.now + Time(l.TTLMs)
	js, _ := json.Marshal(map[string]uint64{"lease": id, "ttl_ms": l.TTLMs})
	return api.Response{JSON: js}
}

// ttlOf is a key's lease and, on the leader, its time left, for get --json.
func (c *Core) ttlOf(key string) []byte {
	id := c.kv.LeaseOf(key)
	if id == 0 {
		return nil
	}
	m := map[string]int64{"lease": int64(id)}
	if due, ok := c.leaseDue[id]; ok {
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
		if due, ok := c.leaseDue[h.Lease]; ok {
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
