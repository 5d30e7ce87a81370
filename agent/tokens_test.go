package agent

import (
	"encoding/json"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/raftcore"
)

// sayVersion makes id say it understands version v (0: its build's) on new streams to
// every other member.
func (c *memCluster) sayVersion(id raftcore.NodeID, v int) {
	c.net.mu.Lock()
	delete(c.net.Silent, id)
	if c.net.Older == nil {
		c.net.Older = map[raftcore.NodeID]int{}
	}
	c.net.Older[id] = v
	c.net.mu.Unlock()
	for other := range c.agents {
		if other != id {
			c.net.Cut(id, other, true)
			c.net.Cut(id, other, false)
		}
	}
}

// TestMemClusterLockTokensOnceAllUpgraded: with a member on command version 3, lock and
// lease revoke go on under version 2's rules (no token, revoke by number), alike on
// every member; once it says version 4, a lock's lease has a token, a revoke without it
// is refused (10) and one with it releases the lock (issue 24).
func TestMemClusterLockTokensOnceAllUpgraded(t *testing.T) {
	ids := []raftcore.NodeID{"m1", "m2", "m3"}
	c := startMemMembers(t, systemClock{}, ids, ids, map[raftcore.NodeID]bool{"m3": true})
	if c.leader() == "m3" { // an older build would propose what it knows: not the case here
		if r := c.do("m3", api.Request{Op: api.OpTransfer, Member: "m1", TimeoutMs: 5000}); r.Code != 0 {
			t.Fatalf("transfer-leader m1: exit %d %s", r.Code, r.Msg)
		}
	}
	c.sayVersion("m3", 3)
	acquire := func(want func(api.LockPlace) bool) api.LockPlace {
		t.Helper()
		var p api.LockPlace
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) { // polling: the hello travels
			r := c.do("m1", api.Request{Op: api.OpLockAcquire, Key: "job", TTLMs: 5000, Holder: "t", TimeoutMs: 3000})
			if r.Code == api.CodeUpgrade && time.Now().Before(deadline) {
				continue // the leader has not heard every member yet
			}
			if r.Code != 0 || json.Unmarshal(r.Value, &p) != nil {
				t.Fatalf("lock: exit %d %s", r.Code, r.Msg)
			}
			if want(p) {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("lock: %+v", p)
			}
			c.do("m1", api.Request{Op: api.OpRevoke, Lease: p.Lease, Token: p.Token, TimeoutMs: 3000})
		}
	}
	old := acquire(func(p api.LockPlace) bool { return true })
	if old.Token != 0 || old.Position != 0 {
		t.Fatalf("lock with m3 on version 3: %+v, want the holder without a token", old)
	}
	if r := c.do("m2", api.Request{Op: api.OpRevoke, Lease: old.Lease, TimeoutMs: 3000}); r.Code != 0 {
		t.Fatalf("revoke by number with m3 on version 3: exit %d %s", r.Code, r.Msg)
	}
	c.sayVersion("m3", 0)
	p := acquire(func(p api.LockPlace) bool { return p.Token != 0 })
	if p.Generation <= old.Generation {
		t.Fatalf("lock after the upgrade: %+v, want a generation above %d", p, old.Generation)
	}
	for _, tok := range []uint64{0, p.Token + 2} {
		if r := c.do("m3", api.Request{Op: api.OpRevoke, Lease: p.Lease, Token: tok, TimeoutMs: 3000}); r.Code != api.CodeUsage {
			t.Fatalf("revoke with token %d: exit %d %s, want 10", tok, r.Code, r.Msg)
		}
	}
	if r := c.do("m3", api.Request{Op: api.OpRevoke, Lease: p.Lease, Token: p.Token, TimeoutMs: 3000}); r.Code != 0 {
		t.Fatalf("revoke with the token: exit %d %s", r.Code, r.Msg)
	}
	// every member applied the same: nobody holds it (the record was dropped)
	for _, id := range ids {
		var r api.Response
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if r = c.do(id, api.Request{Op: api.OpLocks, Stale: true}); string(r.JSON) == "[]" {
				break
			}
		}
		if string(r.JSON) != "[]" {
			t.Fatalf("locks on %s: %s", id, r.JSON)
		}
	}
}
