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

func logLines(h *harness.Host) int {
	b, _ := os.ReadFile(filepath.Join(h.Dir, "message-log", "lite-raft-server.log"))
	return strings.Count(string(b), "\n")
}

// TestOneWayLink: a follower that still hears its leader, but whose own ssh to the
// leader is refused (as a wrong host key or authorized_keys on one side makes it). A
// script looping over sets there is answered 0 (the follower passes the writes on
// through the third member), never 11 or 12 for a write that may have been applied, and
// the follower's log stays small: before, one set wrote 186,586 lines.
func TestOneWayLink(t *testing.T) {
	c := newCluster(t, 3, 3, "1", 1000)
	for _, h := range c.Hosts {
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(c.Hosts, 20*time.Second)
	f := others(c.Hosts, lead)[0]
	c.expect(f, "./lite-raft-client set warm up", 0, "")
	before := logLines(f)
	if err := c.RefuseSSH(f, lead); err != nil {
		t.Fatal(err)
	}
	codes := map[int]int{}
	for i := 0; i < 20; i++ {
		_, e, code := c.lr(f, fmt.Sprintf("./lite-raft-client --timeout 3 set k%d v%d", i, i))
		codes[code]++
		if code != 0 && code != 2 {
			t.Fatalf("set %d through %s, whose ssh to the leader %s is refused: exit %d %s", i, f.Name, lead.Name, code, e)
		}
	}
	n := logLines(f) - before
	t.Logf("20 sets through %s with its ssh to %s refused: exits %v, %d log lines", f.Name, lead.Name, codes, n)
	if n >= 100 {
		b, _ := os.ReadFile(filepath.Join(f.Dir, "message-log", "lite-raft-server.log"))
		lines := strings.Split(string(b), "\n")
		t.Fatalf("%s wrote %d log lines; the last ones:\n%s", f.Name, n, strings.Join(lines[max(0, len(lines)-30):], "\n"))
	}
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if codes[0] == 20 {
			c.expect(lead, fmt.Sprintf("./lite-raft-client get k%d", i), 0, fmt.Sprintf("v%d", i))
		}
	}
}
