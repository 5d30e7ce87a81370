package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/raftcore"
	"lite-raft/sshrpc"
)

// leaderView is a leader's status with the members given as name: last contact in ms.
func leaderView(members string, contact map[string]int64, lag map[string]uint64) api.Status {
	st := api.Status{ID: "h1", Role: "leader", Term: 7, Leader: "h1", Commit: 120, Members: members, ElectionTimeoutMs: 1000}
	for _, n := range []string{"h1", "h2", "h3", "h4", "h5"} {
		c, ok := contact[n]
		if !ok {
			continue
		}
		role := "follower"
		if n == "h1" {
			role = "leader"
		}
		if m, _ := raftcore.DecodeMembership([]byte(members)); slices.Contains(m.Learners, raftcore.NodeID(n)) {
			role = "learner"
		}
		st.Nodes = append(st.Nodes, api.MemberStatus{Name: n, Role: role, LastContactMs: c, Lag: lag[n], State: "replicate"})
	}
	return st
}

// TestCheckJudgesTheLeadersView: the state for each kind of cluster, with the default
// thresholds (unreachable after the election timeout, a lag of 1000 entries) and others.
func TestCheckJudgesTheLeadersView(t *testing.T) {
	three := "voters=h1,h2,h3 outgoing= learners="
	def := checkOpts{warnLag: 1000}
	for _, tc := range []struct {
		name string
		st   api.Status
		opts checkOpts
		want client.PluginState
		says string
	}{
		{"healthy", leaderView(three, map[string]int64{"h1": 0, "h2": 100, "h3": 1000}, nil), def, client.PluginOK, "3/3 members reachable"},
		{"one silent past the election timeout", leaderView(three, map[string]int64{"h1": 0, "h2": 100, "h3": 1001}, nil), def, client.PluginWarning, "unreachable: h3"},
		{"one lagging", leaderView(three, map[string]int64{"h1": 0, "h2": 0, "h3": 0}, map[string]uint64{"h3": 1001}), def, client.PluginWarning, "lagging more than 1000: h3 (1001 entries"},
		{"a lag at the threshold", leaderView(three, map[string]int64{"h1": 0, "h2": 0, "h3": 0}, map[string]uint64{"h3": 1000}), def, client.PluginOK, "max lag 1000"},
		{"two silent: no quorum", leaderView(three, map[string]int64{"h1": 0, "h2": 5000, "h3": 9000}, nil), def, client.PluginCritical, "quorum lost"},
		{"a member missing from the view", leaderView(three, map[string]int64{"h1": 0, "h2": 0}, nil), def, client.PluginWarning, "h3 (not in the leader's view)"},
		{"a silent learner", leaderView("voters=h1,h2,h3 outgoing= learners=h4", map[string]int64{"h1": 0, "h2": 0, "h3": 0, "h4": 60000}, nil), def, client.PluginWarning, "4 members reachable"},
		{"joint: the outgoing set lost", leaderView("voters=h1,h2,h3 outgoing=h1,h4,h5 learners=", map[string]int64{"h1": 0, "h2": 0, "h3": 0, "h4": 9000, "h5": 9000}, nil), def, client.PluginCritical, "quorum lost"},
		{"--unreachable-after", leaderView(three, map[string]int64{"h1": 0, "h2": 100, "h3": 2500}, nil), checkOpts{warnLag: 1000, unreachable: 3 * time.Second}, client.PluginOK, "3/3"},
		{"--warn-lag", leaderView(three, map[string]int64{"h1": 0, "h2": 0, "h3": 0}, map[string]uint64{"h2": 11}), checkOpts{warnLag: 10}, client.PluginWarning, "h2 (11 entries"},
		{"no leader", api.Status{ID: "h2", Role: "candidate", Term: 9, Members: three}, def, client.PluginCritical, "no leader: h2 is candidate in term 9"},
		{"not the leader's view", api.Status{ID: "h2", Role: "follower", Term: 9, Leader: "h1", Members: three}, def, client.PluginUnknown, "without the leader's view"},
		{"bad members", api.Status{ID: "h2", Role: "leader", Leader: "h2", Members: "voters=,,"}, def, client.PluginUnknown, "unreadable members"},
	} {
		got := evaluateStatus(tc.st, tc.opts)
		if got.State != tc.want || !strings.Contains(got.Summary, tc.says) {
			t.Errorf("%s: %s %q; want %s and %q", tc.name, got.State, got.Summary, tc.want, tc.says)
		}
	}
	// the status line and its performance data
	got := evaluateStatus(leaderView(three, map[string]int64{"h1": 0, "h2": 100, "h3": 5000}, map[string]uint64{"h2": 3, "h3": 40}), def)
	got.warnLag = 1000
	want := "LITE-RAFT WARNING - leader h1 in term 7, 2/3 members reachable, max lag 40; unreachable: h3 (last contact 5s ago) | " +
		"members=3 reachable=2;;2:;0;3 leader=1;;1:;0;1 commit=120c max_lag=40;1000;;0 term=7c"
	if line := got.line(); line != want {
		t.Errorf("status line:\n got %s\nwant %s", line, want)
	}
	failed := failedCheck(api.CodeNoServer, "no server running on h9.\ncannot | process")
	failed.warnLag = 5
	want = "LITE-RAFT UNKNOWN - no agent to ask: no server running on h9. cannot / process | " +
		"members=U reachable=U leader=U;;1:;0;1 commit=U max_lag=U;5;;0 term=U"
	if line := failed.line(); line != want {
		t.Errorf("status line of a failure:\n got %s\nwant %s", line, want)
	}
}

// TestCheckExitCodes: check exits with the plugin's codes, whatever happened: a real
// one-member cluster is OK; no agent (no socket, or one that is stopping) is UNKNOWN; an
// agent that cannot get the leader's answer is CRITICAL; a bad option is UNKNOWN, not 10.
func TestCheckExitCodes(t *testing.T) {
	noAgent := t.TempDir()
	out, code := runApp(t, "--dir", noAgent, "client", "check")
	if code != 3 || !strings.HasPrefix(out, "LITE-RAFT UNKNOWN - no agent to ask: no server running on") {
		t.Errorf("check without an agent: exit %d %q; want 3 UNKNOWN", code, out)
	}
	for _, tc := range []struct {
		answer api.Response // nil Code -1: never answer
		code   int
		prefix string
	}{
		{client.Fail(api.OpStatus, client.NotSent, client.FailNoLeader, "h1"), 2, "LITE-RAFT CRITICAL - no answer from the leader: leader is not available."},
		{client.Fail(api.OpStatus, client.NotSent, client.FailTimeout, "h1"), 2, "LITE-RAFT CRITICAL - no answer from the leader: leader is stale."},
		{client.Fail(api.OpStatus, client.NotSent, client.FailStopping, "h1"), 3, "LITE-RAFT UNKNOWN - no agent to ask: no server running on h1"},
		{api.Response{Code: -1}, 2, "LITE-RAFT CRITICAL - no answer from the leader: leader is stale."},
		{api.Response{JSON: []byte("{not json")}, 3, "LITE-RAFT UNKNOWN - unreadable status"},
	} {
		dir := t.TempDir()
		answer := tc.answer
		fakeSocket(t, dir, func(c *sshrpc.Conn, f sshrpc.Frame) {
			if answer.Code >= 0 {
				c.Reply(f.ID, api.FrameRequest, answer.Encode())
			}
		})
		out, code := runApp(t, "--dir", dir, "client", "check", "--timeout", "0.3")
		if code != tc.code || !strings.HasPrefix(out, tc.prefix) {
			t.Errorf("check, agent answering %d %q: exit %d %q; want %d and %q", answer.Code, answer.Msg, code, out, tc.code, tc.prefix)
		}
	}
	for _, args := range [][]string{{"check", "--warn-lag", "x"}, {"check", "--bogus"}, {"check", "--timeout"}, {"--stale", "check"}} {
		if out, code := runApp(t, append([]string{"--dir", noAgent, "client"}, args...)...); code != 3 || !strings.Contains(out, "usage: lite-raft-client check") {
			t.Errorf("client %v: exit %d %q; want 3 and the usage", args, code, out)
		}
	}
	if out, code := runApp(t, "--dir", noAgent, "client", "check", "--help"); code != 0 || !strings.Contains(out, "3  UNKNOWN") {
		t.Errorf("check --help: exit %d %q", code, out)
	}

	dir := t.TempDir()
	startAgent(t, dir)
	out, code = runApp(t, "--dir", dir, "client", "check")
	if code != 0 || !strings.HasPrefix(out, "LITE-RAFT OK - leader "+thisHost()) || !strings.Contains(out, "| members=1 reachable=1;;1:;0;1 leader=1;;1:;0;1 commit=") {
		t.Errorf("check of a one-member cluster: exit %d %q", code, out)
	}
	out, code = runApp(t, "--dir", dir, "client", "--json", "check", "--warn-lag", "5")
	var res struct {
		State  string `json:"state"`
		Code   int    `json:"code"`
		Leader string `json:"leader"`
		MaxLag *int   `json:"max_lag"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.State != "OK" || res.Code != 0 || res.Leader != thisHost() || res.MaxLag == nil {
		t.Errorf("check --json: exit %d %q (%+v)", code, out, res)
	}
}
