package core

import (
	"encoding/json"

	"lite-raft/client"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
)

// Status is the JSON document `lite-raft client status --json` prints.
type Status struct {
	ID        string `json:"id"`
	Role      string `json:"role"`
	Term      uint64 `json:"term"`
	Leader    string `json:"leader"`
	Commit    uint64 `json:"commit"`
	Applied   uint64 `json:"applied"`
	LastIndex uint64 `json:"last_index"`
	Snapshot  uint64 `json:"snapshot_index"`
	Members   string `json:"members"`
	// Build is this agent's build and Commands the newest command version it understands.
	Build    string `json:"build"`
	Commands int    `json:"commands"`
	// ElectionTimeoutMs is conf/election_timeout, which tells how long a member may stay
	// silent before it counts as unreachable (lite-raft-client check).
	ElectionTimeoutMs int64          `json:"election_timeout_ms"`
	Nodes             []MemberStatus `json:"nodes,omitempty"`
	// Change is the membership change this leader drives, or drove last.
	Change *ChangeStatus `json:"change,omitempty"`
}

// MemberStatus is the leader's view of one member.
type MemberStatus struct {
	Name          string `json:"name"`
	Role          string `json:"role"`
	Match         uint64 `json:"match"`
	Lag           uint64 `json:"lag"`
	State         string `json:"state"`
	LastContactMs int64  `json:"last_contact_ms"`
	// SnapshotBytes of SnapshotSize: how far a snapshot being sent to it is
	SnapshotBytes uint64 `json:"snapshot_bytes,omitempty"`
	SnapshotSize  uint64 `json:"snapshot_size,omitempty"`
	// Build and Commands are what the member said of itself (empty and 1: a build from
	// before versions, or not heard from since this agent started)
	Build    string `json:"build"`
	Commands int    `json:"commands"`
}

// Status reports this node's state, and on the leader its view of every member.
func (c *Core) Status() Status {
	st := c.node.Status()
	s := Status{ID: string(st.ID), Role: st.Role.String(), Term: st.Term, Leader: string(st.Lead),
		Commit: st.Commit, Applied: c.applied, LastIndex: st.LastIndex, Snapshot: st.Snapshot.Index,
		Members: st.Members.String(), Build: c.cfg.Build, Commands: kvstore.CommandVersion,
		ElectionTimeoutMs: int64(c.cfg.Raft.ElectionTicks) * c.cfg.TickMs}
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
		ms := MemberStatus{Name: string(id), Role: role, Match: p.Match, State: state,
			LastContactMs: int64(p.TicksSinceHeard) * c.cfg.TickMs,
			SnapshotBytes: p.SnapshotAcked, SnapshotSize: p.SnapshotSize,
			Build: c.versions[id].Build, Commands: c.commandsOf(id)}
		if id == st.ID {
			ms.Build = c.cfg.Build
		}
		if st.LastIndex > p.Match {
			ms.Lag = st.LastIndex - p.Match
		}
		s.Nodes = append(s.Nodes, ms)
	}
	return s
}

func (c *Core) statusResponse() client.Response {
	js, _ := json.Marshal(c.Status())
	return client.Response{JSON: js, Leader: string(c.node.Lead())}
}
