package core

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"lite-raft/kvstore"
	"lite-raft/raftcore"
)

// Checks of the whole-system simulation made from outside the cores (issue 26), on what
// the simulation sees of each host's log and disk rather than on what a core says of
// itself:
//
//   - revokes: the entries of a term are the proposals of its one leader, which
//     persists each of them once. A leader proposes the revoke of an expired lease
//     again only once revokeRetryMs passed on its clock (the first may have been lost
//     with a leader change, or be stuck behind a cut link), so two revokes of one lease
//     (same ID and token) that one leader persisted in its term must be at least
//     revokeRetryMs/2 apart; the half takes in when each reached its disk (a lagging
//     disk holds a batch up to 20 ms, and the next waits for it) and the clocks' drift.
//     A revoke a leader of a later term proposes again at once is allowed: it is
//     another term. A holder's own revoke (a client ID) is not the leader's and is left
//     out: it may meet the leader's as the lease runs out.
//   - promotions: add-member makes a learner a voter once the leader's match index of
//     it is within one entry of its commit index (membership.go, phaseCatchUp). The
//     learner acknowledged only what its disk held, and a later leader truncates
//     nothing at or below a commit index, nor installs a snapshot there; so from the
//     moment of the promotion on, the learner's disk holds entries up to that commit
//     index less one, at least. Each leadership is watched after every batch of its
//     host: a voter its membership gained since it was last seen is a promotion made
//     in between, with a commit index no lower than the one seen then. A learner whose
//     disk was wiped (first-boot --join) since it became a member in that leadership is
//     not checked: the leader's match of it may be the old disk's.

type simChecks struct {
	revokes    map[simRevoke]Time // when the leader of the term last persisted it
	leads      map[raftcore.NodeID]*simLeadView
	revokeByte [4]byte // the first byte of a revoke's encoding: plain, stamped, v4 plain, v4 stamped
}

type simRevoke struct{ term, lease, token uint64 }

// simLeadView is a leadership as last seen: its host's incarnation and term, its
// membership and commit index then, and every host's disk when it was first seen.
type simLeadView struct {
	gen     int
	term    uint64
	members raftcore.Membership
	commit  uint64
	disks   map[raftcore.NodeID]*raftcore.MemoryStorage
}

func newSimChecks() *simChecks {
	c := &simChecks{revokes: map[simRevoke]Time{}, leads: map[raftcore.NodeID]*simLeadView{}}
	for i, cmd := range []kvstore.Command{{Op: kvstore.OpRevoke}, {Op: kvstore.OpRevoke, StampMs: 1},
		{Op: kvstore.OpRevokeV4}, {Op: kvstore.OpRevokeV4, StampMs: 1}} {
		c.revokeByte[i] = cmd.Encode()[0]
	}
	return c
}

// watchAppends makes host n's new driver show the checks what it persists (boot's
// hook): Ready.Entries, with the batch, once saved.
func (s *sim) watchAppends(n *simNode) {
	prev := n.drv.applying
	n.drv.applying = func(rd Ready) {
		if prev != nil {
			prev(rd)
		}
		s.checkRevokes(n, rd.Entries)
	}
}

// checkRevokes: no leader persists a second revoke of one lease within revokeRetryMs/2
// in its term.
func (s *sim) checkRevokes(n *simNode, ents []raftcore.Entry) {
	node := n.core.node
	if node.Role() != raftcore.Leader {
		return
	}
	c := s.checks
	for _, e := range ents {
		if e.Term != node.Term() || e.Type == raftcore.EntryMembership || len(e.Data) == 0 ||
			!slices.Contains(c.revokeByte[:], e.Data[0]) {
			continue
		}
		cmd, err := kvstore.Decode(e.Data)
		if err != nil || cmd.ClientID != 0 {
			continue
		}
		s.stats.leaderRevokes++
		k := simRevoke{e.Term, cmd.Lease, cmd.Token}
		if at, ok := c.revokes[k]; ok && s.now-at < revokeRetryMs/2 {
			s.violate("leader %s proposed the revoke of lease %d (token %x) again in term %d at index %d, %d ms after the last (it waits %d ms)",
				n.id, cmd.Lease, cmd.Token, e.Term, e.Index, s.now-at, revokeRetryMs)
		}
		c.revokes[k] = s.now
	}
}

// watchPromotions looks at host n after a batch (pump's hook): a leadership first seen
// is noted; one seen before is checked for voters it gained since.
func (s *sim) watchPromotions(n *simNode) {
	c := s.checks
	node := n.core.node
	v := c.leads[n.id]
	if node.Role() != raftcore.Leader {
		if v != nil {
			v.term = 0
		}
		return
	}
	if v == nil || v.gen != n.gen || v.term != node.Term() {
		v = &simLeadView{gen: n.gen, term: node.Term(), members: node.Members(), commit: node.Commit(),
			disks: map[raftcore.NodeID]*raftcore.MemoryStorage{}}
		for _, h := range s.hosts {
			v.disks[h] = s.nodes[h].disk.store
		}
		c.leads[n.id] = v
		return
	}
	m := node.Members()
	for _, h := range slices.Concat(m.Voters, m.Learners) { // (Outgoing: voters already)
		switch {
		case !v.members.Contains(h):
			// the leader's progress of it starts now: with the disk it has now
			v.disks[h] = s.nodes[h].disk.store
		case !v.members.IsVoter(h) && m.IsVoter(h) && v.disks[h] == s.nodes[h].disk.store:
			s.checkPromoted(n, h, v.commit)
		}
	}
	v.members, v.commit = m, node.Commit()
}

// checkPromoted: learner h, just made a voter by leader n whose commit index was at
// least commit then, holds entries up to commit-1 on its disk.
func (s *sim) checkPromoted(n *simNode, h raftcore.NodeID, commit uint64) {
	s.stats.promotions++
	d := s.nodes[h].disk
	st := d.store.State(d.hs)
	last := st.First + uint64(len(st.Terms)) - 1
	last = max(last, st.Snapshot.Meta.Index)
	if last == 0 || last+1 < commit {
		s.violate("leader %s made %s a voter while %s's disk held entries up to %d only, its commit index at least %d (it waits for the learner's match within one of its commit index)",
			n.id, h, h, last, commit)
	}
}

// startMemberChanges: the nemesis's membership changes often find a transfer under
// way and do nothing, and a schedule without add-member has no promotion to check. So
// each schedule also makes two changes at random times while the faults last, trying
// again every 20 to 50 ms while another admin request runs or no leader is known.
func (s *sim) startMemberChanges(ms int) {
	var try func(left int)
	try = func(left int) {
		if s.faultsOver || left == 0 {
			return
		}
		before := s.stats.memberships
		s.membershipChange()
		if s.stats.memberships == before {
			s.after(Time(20+s.rng.IntN(30)), func() { try(left - 1) })
		}
	}
	for range 2 {
		s.after(Time(300+s.rng.IntN(max(1, ms-2500))), func() { try(100) })
	}
}

// catchRate runs n seeds with the bugs b planted and says how many fail with a failure
// that says sign, with the first such failure.
func catchRate(b bugs, n int, sign string) (int, string) {
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	caught, first := 0, ""
	for _, r := range runSims(seeds, b, "", *agentSimMs, false) {
		if r.failure != "" && strings.Contains(r.failure, sign) {
			caught++
			if first == "" {
				first = fmt.Sprintf("seed %d: %s", r.seed, r.failure)
			}
		}
	}
	return caught, first
}

// TestAgentSimCatchesPlantedBugsInMostSeeds: a leader that proposes a lease's revoke
// every tick until it applies, add-member promoting a learner that has not caught up,
// a store that forgets sessions past 100 clients, and a read served before its index
// applied (appliers lag, with the plant) are each seen by most schedules.
func TestAgentSimCatchesPlantedBugsInMostSeeds(t *testing.T) {
	if *agentSimBug != "" || *agentSimSeed != 0 {
		t.Skip("runs only without -agentsim.bug and -agentsim.seed")
	}
	for _, tc := range []struct {
		name string
		b    bugs
		sign string // what a failure must say to count ("" anything)
	}{
		{"revoke-every-tick", bugs{revokeEveryTick: true}, ""},
		{"early-promotion", bugs{earlyPromotion: true}, ""},
		// the late retries are applied a second time
		{"sessions-by-count", bugs{sessionsByCount: true}, ""},
		// only the stale reads count: a lagging applier could show other bugs too
		{"read-before-applied", bugs{readBeforeApplied: true}, "is not linearizable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 32
			caught, first := catchRate(tc.b, n, tc.sign)
			t.Logf("planted %s: caught by %d of %d seeds; first: %.300s", tc.name, caught, n, first)
			if caught <= n/2 {
				t.Fatalf("planted %s: caught by only %d of %d seeds", tc.name, caught, n)
			}
		})
	}
}

// ---- overlapping clients ----
//
// Two clients send their operations in pairs, as two shell scripts running
// lite-raft-client on one key at the same moment do: the second 0 to 4 ms after the
// first, before its answer, on the same key (one pair in four: any key), the next pair
// 20 to 80 ms after both ended (sooner costs run time more than it finds). Each of a
// pair goes through a lane of its own, with its own client ID and porcupine client (a
// lane's operations never overlap one another), and is made, answered and recorded as
// the other clients' are (clientOp, record), unknown outcomes included. One client's
// lanes share a host, the other's are on two hosts: porcupine sees operations on one
// key overlap through one agent, and through two.
const overlapClients = 2

func (s *sim) startOverlapClients(voters []raftcore.NodeID) {
	for i := 0; i < overlapClients; i++ {
		last := map[string]string{} // one script's knowledge of the values, for its conditions
		var lanes [2]*simClient
		for j := range lanes {
			id := 6 + 2*i + j // after the six one-at-a-time clients
			host := voters[i%len(voters)]
			if i == 1 {
				host = voters[(1+j)%len(voters)]
			}
			lanes[j] = &simClient{id: id, host: host, clientID: uint64(id+1)<<8 | 1, last: last}
		}
		s.after(Time(s.rng.IntN(100)), func() { s.overlapPair(lanes) })
	}
}

// overlapPair sends one pair of operations; the next goes once both ended.
func (s *sim) overlapPair(lanes [2]*simClient) {
	if s.faultsOver {
		return
	}
	key := s.keys[s.rng.IntN(len(s.keys))]
	left := len(lanes)
	ended := func() {
		if left--; left == 0 {
			s.after(Time(20+s.rng.IntN(60)), func() { s.overlapPair(lanes) })
		}
	}
	for j, c := range lanes {
		c.key, c.then = key, ended
		if j > 0 && s.rng.IntN(4) == 0 {
			c.key = s.keys[s.rng.IntN(len(s.keys))]
		}
		s.after(Time(j*s.rng.IntN(5)), func() { s.clientOp(c) })
	}
}

// ---- progress once the faults are over ----
//
// With every fault healed, a slower cluster is a bug, not bad luck: the lock must pass
// on promptly, and the live writes (checkLive) be answered promptly. From lockSettleMs
// after the faults ended, checked every tick: once the leader's state hands lock lk to
// a lease (its queue's head: the holder before released it, or its lease ran out and
// was revoked), the lock process it names starts its COMMAND within lockHandBoundMs,
// unless that process was frozen lately (a SIGSTOP from before the faults ended) or is
// gone. Lockers start no new turns once the faults are over; the processes under way go
// on.
const (
	lockSettleMs    = 1000
	lockHandBoundMs = 300
)

// lockHand is the lock process the leader's state last handed lock lk to, while it had
// not started its COMMAND, and since when.
type lockHand struct {
	p     *simLockProc
	since Time
}

func (s *sim) watchLockProgress(end Time, hand lockHand) {
	if s.now >= end || len(s.violations) > 0 {
		return
	}
	defer func() { s.after(simTickMs, func() { s.watchLockProgress(end, hand) }) }()
	l := s.leader()
	if l == nil {
		hand = lockHand{}
		return
	}
	head := ""
	l.core.kv.Locks(func(name string, lk kvstore.Lock) bool {
		if name == "lk" && len(lk.Queue) > 0 {
			head = lk.Queue[0].Holder
		}
		return true
	})
	var p *simLockProc
	for _, lr := range s.lockers { // (the holder names lockTurn gives)
		if q := lr.proc; q != nil && fmt.Sprintf("locker %d turn %d", lr.id, q.turn) == head {
			p = q
		}
	}
	if p == nil || p.killed || p.run != nil || p.frozenTill > s.now-Time(simLockTTL.Milliseconds()) {
		hand = lockHand{}
		return
	}
	if hand.p != p {
		hand = lockHand{p: p, since: s.now}
	}
	s.stats.lockHandMax = max(s.stats.lockHandMax, int(s.now-hand.since))
	if bound := lockHandBoundMs + s.lagAllowance(); s.now-hand.since > bound {
		s.violate("with every fault healed, locker %d turn %d holds lock lk in the leader's state since %d ms and has not started its COMMAND %d ms later (bound %d)",
			p.l.id, p.turn, hand.since, s.now-hand.since, bound)
	}
}
