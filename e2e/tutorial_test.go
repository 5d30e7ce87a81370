package e2e

import (
	"testing"
	"time"

	"lite-raft/internal/harness"
)

// TestTutorial is the raft tutorial of the original README on three hosts, then every
// client verb from the leader and from a follower with the exit codes of SPEC.md.
func TestTutorial(t *testing.T) {
	c := newCluster(t, 3, 3, "0.5", 1000)
	for _, h := range c.Hosts {
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(c.Hosts, 20*time.Second)
	follower := others(c.Hosts, lead)[0]

	for _, h := range []*harness.Host{lead, follower} {
		c.must(h, "./lite-raft-client set key value")
		c.expect(h, "./lite-raft-client get key", 0, "value")
		c.must(h, "./lite-raft-client set n 1")
		c.expect(h, "./lite-raft-client if n = 1 set 2", 0, "")
		c.expect(h, "./lite-raft-client if n = 1 set 3", 6, "")
		c.expect(h, "./lite-raft-client if n -ge 2 set 2", 5, "")
		c.expect(h, "./lite-raft-client if nokey = 1 set 2", 7, "")
		c.expect(h, "./lite-raft-client get n", 0, "2")
		c.must(h, "./lite-raft-client set t -5")
		c.expect(h, "./lite-raft-client get t", 0, "-5")
		c.expect(h, "./lite-raft-client if t -lt 3 set 4", 0, "")
		c.must(h, "./lite-raft-client set packages/web/owner "+h.Name)
		c.expect(h, "./lite-raft-client list packages", 0, "web")
		c.expect(h, "./lite-raft-client list nothing", 8, "")
		c.expect(h, "./lite-raft-client get nothing", 9, "")
		c.expect(h, "./lite-raft-client get", 10, "null")
		c.expect(h, "./lite-raft-client set onlykey", 10, "")
		c.expect(h, "./lite-raft-client if n ~ 1 set 2", 10, "")
		c.expect(h, "./lite-raft-client set ../../etc/x v", 10, "")
		c.must(h, "./lite-raft-client unset key")
		c.expect(h, "./lite-raft-client get key", 9, "")
		c.must(h, "./lite-raft-client noop")
		c.must(h, "./lite-raft-client status")
	}
	// a write from a follower is visible on every host, read linearizably
	c.must(follower, "./lite-raft-client set from-follower yes")
	for _, h := range c.Hosts {
		c.expect(h, "./lite-raft-client get from-follower", 0, "yes")
	}
	// conf/cluster_nodes shows the members
	c.expect(lead, "cat conf/cluster_nodes", 0, "host1 host2 host3")
	// a second start is refused by the lock
	c.expect(lead, "./lite-raft start", 1, "")
	c.expect(lead, "./lite-raft first-boot", 1, "")
}
