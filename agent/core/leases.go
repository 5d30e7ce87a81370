package core

import (
	"encoding/json"
	"fmt"
	"strconv"

	"lite-raft/client"
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

// commandOf builds the state machine command of a write request. A revoke named by its
// key (no lease number) is resolved by the leader, from its state.
func commandOf(r client.Request) (kvstore.Command, error) {
	cmd := kvstore.Command{Op: kvOps[r.Op], ClientID: r.ClientID, Seq: r.Seq, Key: r.Key,
		Value: r.Value, Cond: r.Cond, CondValue: r.CondValue}
	switch r.Op {
	case client.OpSetLease, client.OpLockAcquire:
		ttl, err := strconv.ParseUint(r.Args, 10, 64)
		if err != nil {
			return cmd, fmt.Errorf("ttl %q: not a number of milliseconds", r.Args)
		}
		cmd.TTLMs, cmd.Holder = ttl, r.Host
	case client.OpRevoke:
		if r.Args == "" {
			return cmd, kvstore.ValidateKey(r.Key)
		}
		id, err := strconv.ParseUint(r.Args, 10, 64)
		if err != nil || id == 0 {
			return cmd, fmt.Errorf("lease %q: not a lease number", r.Args)
		}
		cmd.Lease = id
	}
	return cmd, cmd.Validate()
}

// leaseOf is the lease a request names: Args (a number) or Key's.
func (c *Core) leaseOf(r client.Request) uint64 {
	if r.Args != "" {
		id, _ := strconv.ParseUint(r.Args, 10, 64)
		return id
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
	case kvstore.OpSetLease, kvstore.OpLockAcquire:
		if c.node.Role() == raftcore.Leader {
			c.leaseDue[index] = c.now + Time(cmd.TTLMs)
		}
	case kvstore.OpRevoke:
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
		if _, _, err := c.node.Propose(kvstore.Command{Op: kvstore.OpRevoke, Lease: id}.Encode()); err != nil {
			return // a transfer in progress: the next leader does it
		}
		c.revoking[id] = c.now
		c.logf("lease", "lease %d expired: revoking it", id)
	}
}

// keepLease renews a lease once the leader confirmed it leads (a read).
func (c *Core) keepLease(r client.Request) client.Response {
	id := c.leaseOf(r)
	l, ok := c.kv.LeaseByID(id)
	if id == 0 || !ok {
		what := fmt.Sprintf("lease %s", r.Args)
		if r.Args == "" {
			what = fmt.Sprintf("key %s has no lease", r.Key)
			if _, exists := c.kv.Get(r.Key); !exists {
				what = fmt.Sprintf("key %s not found", r.Key)
			}
			return client.Response{Code: client.CodeNotFound, Msg: what}
		}
		return client.Response{Code: client.CodeNotFound, Msg: what + " expired or was revoked"}
	}
	if r.Stale {
		return client.Response{Code: client.CodeUsage, Msg: "a lease is kept by the leader: not with --stale"}
	}
	c.leaseDue[id] = c.now + Time(l.TTLMs)
	js, _ := json.Marshal(map[string]uint64{"lease": id, "ttl_ms": l.TTLMs})
	return client.Response{JSON: js}
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
		c.reply(w, client.Response{Code: client.CodeNotFound,
			Msg: fmt.Sprintf("lease %d is not queued for lock %s: it expired or was released", id, w.req.Key)})
	case p.Position == 0:
		js, _ := json.Marshal(p)
		c.reply(w, client.Response{JSON: js})
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

// LockStatus is one lock in `locks`.
type LockStatus struct {
	Name       string `json:"name"`
	Generation uint64 `json:"generation"`
	Holder     string `json:"holder"`
	Lease      uint64 `json:"lease"`
	// TTLMs is the holder's lease time left, known on the leader only (-1 elsewhere)
	TTLMs   int64    `json:"ttl_ms"`
	Since   uint64   `json:"since_index"`
	Waiting []string `json:"waiting"`
}

// locksResponse lists every held lock.
func (c *Core) locksResponse() client.Response {
	out := []LockStatus{}
	c.kv.Locks(func(name string, l kvstore.Lock) bool {
		h := l.Queue[0]
		st := LockStatus{Name: name, Generation: l.Generation, Holder: h.Holder, Lease: h.Lease, Since: h.Since, TTLMs: -1,
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
	return client.Response{JSON: js}
}
