package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHealFast (issue 30): a follower cut off for 20 s (its packets dropped, as a firewall
// or a dead switch does) serves again as soon as the network is back: its first write
// after the heal takes within one election timeout and a little (not TCP's retransmission
// backoff on the stalled ssh connections), and a lock with a 3 s ttl started there right
// after the heal runs its COMMAND.
func TestHealFast(t *testing.T) {
	c := newCluster(t, 3, 3, "1", 1000)
	for _, h := range c.Hosts {
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(c.Hosts, 20*time.Second)
	cut := others(c.Hosts, lead)[0]
	c.must(cut, "./lite-raft-client set heal/before 1")
	if err := c.Isolate(cut); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Second) // the cut is the test: its length is what TCP backs off over
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	out := c.must(cut, "s=$(date +%s%N); ./lite-raft-client --timeout 30 set heal/after 1 && echo $(( $(date +%s%N) - s ))")
	ns, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("the first write after the heal: %q", out)
	}
	took := time.Duration(ns)
	t.Logf("the first write on %s after a 20 s cut took %v", cut.Name, took)
	// 1.1 s measured here; left to TCP's retransmission backoff it took 8.3 s. The bound
	// is loose (a shared, loaded machine), but far below the backoff it must not wait out.
	if took > 4*time.Second {
		t.Errorf("the first write after the heal took %v: want about one election timeout (1 s), not TCP's backoff", took)
	}
	c.expect(cut, "./lite-raft-client lock heal/lock --ttl 3s -- echo ran", 0, "ran")
}
