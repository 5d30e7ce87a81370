package core

import (
	"fmt"
	"slices"
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
	for _, h := range m.All() {
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

// catchRate runs n seeds with the bugs b planted and says how many fail, with the first
// failure.
func catchRate(b bugs, n int) (int, string) {
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	caught, first := 0, ""
	for _, r := range runSims(seeds, b, "", *agentSimMs, false) {
		if r.failure != "" {
			caught++
			if first == "" {
				first = fmt.Sprintf("seed %d: %s", r.seed, r.failure)
			}
		}
	}
	return caught, first
}

// TestAgentSimCatchesRevokesAndPromotions: a leader that proposes a lease's revoke
// every tick until it applies, and add-member promoting a learner that has not caught
// up, are each seen by most schedules.
func TestAgentSimCatchesRevokesAndPromotions(t *testing.T) {
	if *agentSimBug != "" || *agentSimSeed != 0 {
		t.Skip("runs only without -agentsim.bug and -agentsim.seed")
	}
	for _, tc := range []struct {
		name string
		b    bugs
	}{
		{"revoke-every-tick", bugs{revokeEveryTick: true}},
		{"early-promotion", bugs{earlyPromotion: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 32
			caught, first := catchRate(tc.b, n)
			t.Logf("planted %s: caught by %d of %d seeds; first: %.300s", tc.name, caught, n, first)
			if caught <= n/2 {
				t.Fatalf("planted %s: caught by only %d of %d seeds", tc.name, caught, n)
			}
		})
	}
}
