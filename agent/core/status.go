package core

import (
	"encoding/json"

	"lite-raft/api"
	"lite-raft/raftcore"
)

// Status reports this node's state, and on the leader its view of every member.
func (c *Core) Status() api.Status {
	st := c.node.Status()
	s := api.Status{ID: string(st.ID), Role: st.Role.String(), Term: st.Term, Leader: string(st.Lead),
		Commit: st.Commit, Applied: c.applied, LastIndex: st.LastIndex, Snapshot: st.Snapshot.Index,
		Members: st.Members.String(), Build: c.cfg.Build, Commands: api.CommandVersion,
		ElectionTimeoutMs: int64(c.cfg.Raft.ElectionTicks) * c.cfg.TickMs}
	s.Metrics = &api.Metrics{DataBytes: c.DataBytes(), SnapshotBytes: c.snapSize}
	if c.cfg.Metrics != nil {
		c.cfg.Metrics(s.Metrics)
	}
	if c.change != nil && st.Role == raftcore.Leader {
		ch := c.change.ChangeStatus
		s.Change = &ch
	}
	for _, id := range st.Members.All() {
		p, ok := st.Progress[id]
		if !ok {
			continue
		}
		role, state := "follower", p.State
		switch {
		case id == st.ID:
			// its own progress record never leaves probe (nothing is sent to itself);
			// its log matches itself, and scripts that check "all in replicate" need no
			// special case
			role, state = "leader", "replicate"
		case !st.Members.IsVoter(id):
			role = "learner"
		}
		ms := api.MemberStatus{Name: string(id), Role: role, Match: p.Match, State: state,
			LastContactMs: int64(p.TicksSinceHeard) * c.cfg.TickMs,
			SnapshotBytes: p.SnapshotAcked, SnapshotSize: p.SnapshotSize,
			Build: c.versions[id].Build, Commands: c.commandsOf(id),
			DataBytes: c.versions[id].DataBytes, DiskBytes: c.versions[id].DiskBytes, RTTUs: c.rtt[id]}
		if id == st.ID {
			ms.Build, ms.DataBytes, ms.DiskBytes = c.cfg.Build, s.Metrics.DataBytes, s.Metrics.DiskBytes
		}
		if st.LastIndex > p.Match {
			ms.Lag = st.LastIndex - p.Match
		}
		s.Nodes = append(s.Nodes, ms)
	}
	return s
}

func (c *Core) statusResponse() api.Response {
	js, _ := json.Marshal(c.Status())
	return api.Response{JSON: js, Leader: string(c.node.Lead())}
}
