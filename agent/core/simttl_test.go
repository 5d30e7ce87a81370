package core

import (
	"fmt"
	"slices"
	"strconv"

	"lite-raft/api"
	"lite-raft/client/lockcore"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
)

// ---- TTL clients ----
//
// Each TTL client, on one host, sets a key of its own with --ttl (OpSetLease), renews
// it with lease keep every ttl/3 for a while (or not at all), then stops renewing and
// goes on to its next key. Leadership moves to another voter every 150 to 400 ms while
// the faults last (when no other admin request runs), on top of the nemesis's own
// transfers.
//
// Checks (checkTTLKeys), on the simulation's clock, for each lease the client knows:
//   - it is never revoked before its last renewal answered 0 + its ttl, as the fastest
//     leader's clock runs it (lockcore.DriftPPM);
//   - it is revoked no later than B + ttl (as the slowest clock runs it) + 2 election
//     timeouts + 1 s, B being the latest of the last keep sent plus its timeout and,
//     for every member that led from the first apply of its last renewal on, that
//     member's last apply of a renewal or grant naming it, or the last time it counted
//     every lease from scratch (booted, installed a snapshot, or gave every lease a
//     whole ttl for want of knowing how a term renewed: Core.leaseFreshAt). Stretches
//     of over 100 ms in which no leader could commit (none, or its commit index stood
//     still with entries to commit) are added: the bound holds for a cluster that works.

const (
	simTTLKeepTimeout = 300 // ms a keep waits (lease keep --timeout)
	simCommitGapMs    = 100 // a stall of the commit longer than this counts as an outage
)

type simTTLKey struct {
	key      string
	lease    uint64
	ttl      Time
	lastOK   Time // send of the last renewal (set or keep) answered 0
	lastSent Time // send of the last keep, any outcome (-1: none)
	// renewIndex is the greatest index of an entry that granted or renewed it, and
	// renewAt when it was first applied anywhere
	renewIndex uint64
	renewAt    Time
	gone       Time // its revoke's first apply (-1: not yet)
}

type simTTL struct {
	keys    map[uint64]*simTTLKey // by lease
	wrapped map[*testDriver]*simIncarnation
	leaders []simLeadership
	// stalls: ticks at which no leader could commit (none, or its commit did not move
	// while it had entries to commit)
	stalls     []Time
	lastCommit uint64
}

// simIncarnation is what one incarnation of a host applied and counted: when it was
// first watched (it knew nothing we saw before), its last apply of a renewal or grant
// of each lease, and when its core counted every lease from scratch (leaseFreshAt).
type simIncarnation struct {
	host      raftcore.NodeID
	watchedAt Time
	applied   map[uint64][]Time
	fresh     []Time
	lastFresh Time // the core's leaseFreshAt as last seen
}

type simLeadership struct {
	at  Time
	inc *simIncarnation
}

// startTTLClients starts six TTL clients, the transfers, the watchers and, at the end
// of the run (faults over at ms, healed for 3 s), the check.
func (s *sim) startTTLClients(voters []raftcore.NodeID, ms int) {
	s.ttl = &simTTL{keys: map[uint64]*simTTLKey{}, wrapped: map[*testDriver]*simIncarnation{}}
	for i := 0; i < 6; i++ {
		host := s.nodes[voters[(i+2)%len(voters)]]
		n := 0
		s.after(Time(s.rng.IntN(200)), func() { s.ttlClient(i, host, &n) })
	}
	var transfers func()
	transfers = func() {
		if s.faultsOver {
			return
		}
		s.ttlTransfer()
		s.after(Time(100+s.rng.IntN(200)), transfers)
	}
	s.after(Time(300+s.rng.IntN(300)), transfers)
	var watch func()
	watch = func() {
		s.ttlWatch()
		s.after(simTickMs, watch)
	}
	s.after(0, watch)
	s.after(Time(ms)+3000-1, s.checkTTLKeys)
}

// ttlTransfer hands leadership to another voter that is up, as transfer-leader does.
func (s *sim) ttlTransfer() {
	l := s.leader()
	if l == nil || s.adminBusy {
		return
	}
	var to []raftcore.NodeID
	for _, v := range l.core.node.Members().Voters {
		if v != l.id && s.nodes[v].up {
			to = append(to, v)
		}
	}
	if len(to) == 0 {
		return
	}
	s.adminBusy = true
	s.stats.transfers++
	via := s.upNodes()[s.rng.IntN(len(s.upNodes()))]
	s.admin(via, api.Request{Op: api.OpTransfer, Member: string(to[s.rng.IntN(len(to))])}, func() { s.adminBusy = false })
}

// ttlClient sets its next key and renews it for a while.
func (s *sim) ttlClient(id int, n *simNode, count *int) {
	if s.faultsOver {
		return
	}
	*count++
	k := &simTTLKey{key: fmt.Sprintf("ttl/%d/%d", id, *count), ttl: Time([]int{1000, 2000, 3000}[s.rng.IntN(3)]), lastSent: -1, gone: -1}
	renewFor := Time([]int{0, 0, 0, 500, 1500, 2500}[s.rng.IntN(6)])
	next := func() { s.after(Time(100+s.rng.IntN(300)), func() { s.ttlClient(id, n, count) }) }
	if !n.up {
		next()
		return
	}
	sent := s.now
	s.ttlAsk(n, api.Request{Op: api.OpSetLease, Key: k.key, Value: []byte("v"), TTLMs: uint64(k.ttl),
		ClientID: uint64(200+id)<<40 | uint64(*count)<<8 | 1, Seq: 1, TimeoutMs: clientTimeout - 100}, clientTimeout,
		func(r api.Response, ok bool) {
			lease, err := strconv.ParseUint(string(r.Value), 10, 64)
			if !ok || r.Code != 0 || err != nil {
				next() // an unknown outcome: the lease, if any, is not checked
				return
			}
			k.lease, k.lastOK = lease, sent
			s.ttl.keys[lease] = k
			s.stats.ttlKeys++
			until := s.now + renewFor
			var keep func()
			keep = func() {
				if s.now >= until || s.faultsOver || !n.up {
					next()
					return
				}
				sent := s.now
				k.lastSent = sent
				s.ttlAsk(n, api.Request{Op: api.OpLeaseKeep, Lease: lease, TimeoutMs: simTTLKeepTimeout - 50}, simTTLKeepTimeout,
					func(r api.Response, ok bool) {
						if ok && r.Code == 0 {
							k.lastOK = max(k.lastOK, sent)
						}
					})
				s.after(k.ttl/3, keep)
			}
			s.after(k.ttl/3, keep)
		})
}

// ttlAsk sends a request to host n's agent; answer gets its reply, or ok=false after
// timeout or when the host crashes.
func (s *sim) ttlAsk(n *simNode, req api.Request, timeout Time, answer func(api.Response, bool)) {
	done := false
	s.after(timeout, func() {
		if !done {
			done = true
			answer(api.Response{}, false)
		}
	})
	s.request(n, req, func(r api.Response, broken bool) {
		if !done {
			done = true
			answer(r, !broken)
		}
	})
}

// ttlWatch, every tick: the appliers of every new incarnation of a host, when each
// counted every lease from scratch, who leads, and whether it can commit.
func (s *sim) ttlWatch() {
	t := s.ttl
	for _, h := range s.hosts {
		n := s.nodes[h]
		if !n.up {
			continue
		}
		inc := t.wrapped[n.drv]
		if inc == nil {
			inc = &simIncarnation{host: h, watchedAt: s.now, applied: map[uint64][]Time{}, lastFresh: n.core.leaseFreshAt}
			t.wrapped[n.drv] = inc
			prev := n.drv.applying
			n.drv.applying = func(rd Ready) {
				if prev != nil {
					prev(rd)
				}
				s.ttlApplying(inc, rd)
			}
		}
		if f := n.core.leaseFreshAt; f != inc.lastFresh {
			inc.lastFresh = f
			inc.fresh = append(inc.fresh, s.now)
		}
	}
	l := s.leader()
	if l != nil && (len(t.leaders) == 0 || t.leaders[len(t.leaders)-1].inc != t.wrapped[l.drv]) {
		t.leaders = append(t.leaders, simLeadership{at: s.now, inc: t.wrapped[l.drv]})
	}
	if l == nil || (l.core.node.Status().LastIndex > l.core.node.Commit() && l.core.node.Commit() == t.lastCommit) {
		t.stalls = append(t.stalls, s.now)
	}
	if l != nil {
		t.lastCommit = l.core.node.Commit()
	}
}

// ttlApplying notes what host h is about to apply: grants, renewals and revokes of the
// leases checked.
func (s *sim) ttlApplying(inc *simIncarnation, rd Ready) {
	t := s.ttl
	for _, e := range rd.CommittedEntries {
		if e.Type == raftcore.EntryMembership || len(e.Data) == 0 {
			continue
		}
		cmd, err := kvstore.Decode(e.Data)
		if err != nil {
			continue
		}
		var named []uint64
		switch cmd.Op {
		case kvstore.OpSetLease:
			named = []uint64{e.Index}
		case kvstore.OpLeaseKeepBatch:
			named = cmd.Leases
		case kvstore.OpRevoke, kvstore.OpRevokeV4:
			if k := t.keys[cmd.Lease]; k != nil && k.gone < 0 {
				k.gone = s.now
			}
		}
		for _, id := range named {
			inc.applied[id] = append(inc.applied[id], s.now)
			if k := t.keys[id]; k != nil && e.Index > k.renewIndex {
				k.renewIndex, k.renewAt = e.Index, s.now
			}
		}
	}
}

// ttlBound is when lease k must be gone by. What happened after a lease should have
// gone excuses nothing (a leader that restarted later, holding a lease that should not
// be there any more, counts it from its restart): the bound is the least time B such
// that the bound computed from what happened up to B is B, found from below.
func (s *sim) ttlBound(k *simTTLKey) (Time, string) {
	limit, why := s.ttlBoundUpTo(k, -1)
	for range 1000 {
		b, w := s.ttlBoundUpTo(k, limit)
		if b <= limit {
			break
		}
		limit, why = b, w
	}
	return limit, why
}

// ttlBoundUpTo is lease k's bound from what happened up to limit (-1: only its
// client's renewals).
func (s *sim) ttlBoundUpTo(k *simTTLKey, limit Time) (Time, string) {
	t := s.ttl
	base, why := k.lastOK, "its last renewal answered"
	if k.lastSent >= 0 && k.lastSent+simTTLKeepTimeout > base {
		base, why = k.lastSent+simTTLKeepTimeout, "its last keep sent, plus its timeout"
	}
	upTo := func(at Time) bool { return limit >= 0 && at <= limit }
	for i, l := range t.leaders {
		if !upTo(l.at) || (i+1 < len(t.leaders) && t.leaders[i+1].at <= k.renewAt) {
			continue // not leading between its last renewal and the limit
		}
		b := l.inc.watchedAt
		for _, at := range append(slices.Clone(l.inc.applied[k.lease]), l.inc.fresh...) {
			if upTo(at) {
				b = max(b, at)
			}
		}
		if b > base {
			base, why = b, fmt.Sprintf("%s's last count of it (leader from %d)", l.inc.host, l.at)
		}
	}
	// a stretch of stalled ticks longer than simCommitGapMs is an outage
	outage, run := Time(0), Time(0)
	for i, at := range t.stalls {
		if i > 0 && at-t.stalls[i-1] <= simTickMs {
			run += at - t.stalls[i-1]
		} else {
			run = 0
		}
		if at > base && upTo(at) && run > simCommitGapMs {
			outage += simTickMs
		}
	}
	slow := k.ttl * Time(1_000_000+lockcore.DriftPPM) / 1_000_000
	return base + slow + 2*2*10*simTickMs + 1000 + outage, fmt.Sprintf("%s at %d, ttl %d, outage %d", why, base, k.ttl, outage)
}

// checkTTLKeys: every lease the clients know is gone within its bound, never before its
// last renewal + ttl.
func (s *sim) checkTTLKeys() {
	for _, id := range sortedKeys(s.ttl.keys) {
		k := s.ttl.keys[id]
		fast := k.ttl * Time(1_000_000-lockcore.DriftPPM) / 1_000_000
		if k.gone >= 0 && k.gone < k.lastOK+fast-2 { // 2: the clocks' readings are truncated to a ms
			s.violate("TTL key %s (lease %d, ttl %d) was revoked at %d, %d ms after its last renewal answered 0 (sent at %d)",
				k.key, id, k.ttl, k.gone, k.gone-k.lastOK, k.lastOK)
			return
		}
		bound, why := s.ttlBound(k)
		switch {
		case k.gone >= 0 && k.gone > bound:
			s.violate("TTL key %s (lease %d) was revoked at %d, %d ms past its bound %d (%s)", k.key, id, k.gone, k.gone-bound, bound, why)
			return
		case k.gone < 0 && s.now > bound:
			s.violate("TTL key %s (lease %d) is still there at %d, %d ms past its bound %d (%s)", k.key, id, s.now, s.now-bound, bound, why)
			return
		case k.gone >= 0:
			s.stats.ttlGone++
		}
	}
}
