package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lite-raft/internal/harness"
)

// expectCheck polls `cmd` (a check) on h until it exits with code and its status line
// starts with prefix and holds every one of has, and returns that line.
func (c *cluster) expectCheck(h *harness.Host, cmd string, code int, prefix string, within time.Duration, has ...string) string {
	c.t.Helper()
	var line string
	c.eventually(within, h.Name+": "+cmd+" giving "+prefix, func() (bool, string) {
		out, errOut, got := c.lr(h, cmd)
		line = strings.TrimSpace(out)
		ok := got == code && strings.HasPrefix(line, prefix) && strings.Count(line, "\n") == 0
		for _, s := range has {
			ok = ok && strings.Contains(line, s)
		}
		return ok, fmt.Sprintf("exit %d: %s %s", got, line, errOut)
	})
	return line
}

// TestCheckPlugin: lite-raft-client check gives the monitoring plugin's codes on real
// hosts: 0 for a healthy cluster (from a follower, and through lite-raft-remote from
// outside), 3 on a host with no agent, 1 once a follower is powered off (the quorum
// holds), 2 once a second one is (the quorum is lost).
func TestCheckPlugin(t *testing.T) {
	c := newCluster(t, 4, 3, "1", 1000)
	members, outside := c.Hosts[:3], c.Hosts[3]
	for _, h := range members {
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(members, 20*time.Second)
	os.WriteFile(filepath.Join(outside.Dir, "conf", "remote_hosts"), []byte("host1 host2 host3\n"), 0o644)
	os.Remove(filepath.Join(outside.Dir, "conf", "cluster_nodes"))
	c.must(lead, "./lite-raft-client set some data")
	fs := others(members, lead)

	healthy := "members=3 reachable=3;;2:;0;3 leader=1;;1:;0;1 commit="
	line := c.expectCheck(fs[0], "./lite-raft-client check", 0, "LITE-RAFT OK - leader "+lead.Name, 10*time.Second, healthy)
	t.Logf("healthy: %s", line)
	c.expectCheck(outside, "./lite-raft-remote check --timeout 10", 0, "LITE-RAFT OK - leader "+lead.Name, 10*time.Second, healthy)
	line = c.expectCheck(outside, "./lite-raft-client check", 3, "LITE-RAFT UNKNOWN - no agent to ask", 5*time.Second)
	t.Logf("no agent: %s", line)

	down := fs[0]
	if err := down.PowerOff(); err != nil {
		t.Fatal(err)
	}
	line = c.expectCheck(lead, "./lite-raft-client check", 1, "LITE-RAFT WARNING - leader "+lead.Name, 15*time.Second,
		"2/3 members reachable", "unreachable: "+down.Name, "reachable=2;;2:;0;3")
	t.Logf("one member down: %s", line)
	c.expectCheck(fs[1], "./lite-raft-client check", 1, "LITE-RAFT WARNING", 10*time.Second)
	c.expectCheck(outside, "./lite-raft-remote check --timeout 15", 1, "LITE-RAFT WARNING", 30*time.Second)

	if err := fs[1].PowerOff(); err != nil {
		t.Fatal(err)
	}
	// the leader's view without a quorum, or, once check-quorum made it step down, no
	// leader at all: CRITICAL either way, and in the end the latter
	line = c.expectCheck(lead, "./lite-raft-client check", 2, "LITE-RAFT CRITICAL", 15*time.Second)
	t.Logf("quorum lost: %s", line)
	line = c.expectCheck(lead, "./lite-raft-client check", 2, "LITE-RAFT CRITICAL - no leader", 15*time.Second, "leader=0;;1:;0;1")
	t.Logf("then: %s", line)
	c.expectCheck(outside, "./lite-raft-remote check --timeout 20", 2, "LITE-RAFT CRITICAL", 40*time.Second)
}
