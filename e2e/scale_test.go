package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"lite-raft/internal/harness"
)

// rssMB is the resident memory of h's agent, in MB.
func rssMB(t *testing.T, h *harness.Host) int {
	b, err := os.ReadFile(filepath.Join(h.Dir, "temp", "agent.pid"))
	if err != nil {
		return -1
	}
	st, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(st), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return -1
}

// TestScaleCatchUp, sized for CI (about 100 MB of data): a follower stopped under load
// catches up, a new member is added with all that data, and the leader's memory stays
// bounded while it sends.
func TestScaleCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 100 MB")
	}
	c := newCluster(t, 4, 3, "1", 20000)
	for _, h := range c.Hosts[:3] {
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(c.Hosts[:3], 20*time.Second)
	start := time.Now()
	// 100,000 keys of 1 KB, pre-populated by the bench (a get-only run fills its keys first)
	c.must(lead, "./lite-raft bench --clients 32 --conns 4 --keys 100000 --value-size 1000 --mix get=1 --duration 1s")
	t.Logf("filled 100,000 keys of 1 KB in %v; leader RSS %d MB", time.Since(start).Round(time.Second), rssMB(t, lead))
	down := others(c.Hosts[:3], lead)[0]
	// writes go on through the whole stop and the catch-up: 8 clients in the background
	load := make(chan string, 1)
	go func() {
		out, errOut, code, err := lead.Run("cd " + harness.RemoteDir +
			" && ./lite-raft bench --clients 8 --keys 100000 --value-size 1000 --duration 40s")
		if err != nil || code != 0 {
			load <- fmt.Sprintf("the load failed: exit %d, %v\n%s%s", code, err, out, errOut)
			return
		}
		load <- ""
	}()
	c.must(down, "./lite-raft stop")
	// the fault's length, not a wait for a condition: the follower is down 15 s
	time.Sleep(15 * time.Second)
	c.must(down, "./lite-raft start")
	restarted := time.Now()
	caughtUp := func(h *harness.Host) func() (bool, string) {
		return func() (bool, string) {
			st, ok := c.status(lead)
			if !ok {
				return false, "no status"
			}
			for _, n := range st.Nodes {
				if n.Name == h.Name {
					return n.Lag < 1000 && n.Match > 0, fmt.Sprintf("%s: match %d lag %d state %s", h.Name, n.Match, n.Lag, n.State)
				}
			}
			return false, st.Members
		}
	}
	c.eventually(120*time.Second, down.Name+" caught up", caughtUp(down))
	took := time.Since(restarted)
	t.Logf("%s caught up %v after its restart, under load; leader RSS %d MB", down.Name, took.Round(100*time.Millisecond), rssMB(t, lead))
	select {
	case msg := <-load:
		t.Fatalf("the load ended before %s caught up: not a catch-up under load %s", down.Name, msg)
	default:
	}
	if took > 30*time.Second {
		t.Errorf("%s took %v to catch up (target 10 s; this bound leaves room for a slow CI machine)", down.Name, took)
	}
	if msg := <-load; msg != "" {
		t.Fatal(msg)
	}
	peak := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond): // sampling the leader's memory
			}
			peak = max(peak, rssMB(t, lead))
		}
	}()
	added := time.Now()
	out := c.must(lead, "./lite-raft-client add-member host4")
	close(stop)
	<-done
	t.Logf("add-member host4 with 100 MB: %v; leader RSS peak %d MB while sending\n%s", time.Since(added).Round(100*time.Millisecond), peak, out)
	// 100 MB of live data: the state machine, the Go heap's headroom (GOGC) and a window
	// of snapshot chunks per follower; the log's cache is bounded and snapshots are
	// streamed, so nothing grows with the data being sent
	if peak > 500 {
		t.Errorf("the leader's RSS reached %d MB while sending 100 MB of data", peak)
	}
	c.expect(c.Hosts[3], "./lite-raft-client --stale get bench/k99999", 0, "")
}
