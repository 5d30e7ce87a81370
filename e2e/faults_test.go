package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"lite-raft/internal/harness"
)

// writer runs `lite-raft-client set PREFIX/i i` for i = 1..n on h, one after another,
// and reports each acknowledged i.
type writer struct {
	acked  chan int
	done   chan error
	cancel context.CancelFunc
}

func startWriter(c *cluster, h *harness.Host, prefix string, n int) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	script := fmt.Sprintf("cd %s && for i in $(seq 1 %d); do ./lite-raft-client --timeout 5 set %s/$i $i >/dev/null 2>&1 && echo ok $i; done",
		harness.RemoteDir, n, prefix)
	cmd := h.SSHCommand(ctx, script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	w := &writer{acked: make(chan int, n), done: make(chan error, 1), cancel: cancel}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var i int
			if _, err := fmt.Sscanf(sc.Text(), "ok %d", &i); err == nil {
				w.acked <- i
			}
		}
		w.done <- cmd.Wait()
		close(w.acked)
	}()
	return w
}

// waitAcked waits for k acknowledgements and returns them.
func (w *writer) waitAcked(t *testing.T, k int, within time.Duration) []int {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	var got []int
	for i := 0; i < k; i++ {
		select {
		case v, ok := <-w.acked:
			if !ok {
				t.Fatalf("writer ended after %d acknowledgements", i)
			}
			got = append(got, v)
		case <-timer.C:
			t.Fatalf("only %d of %d writes acknowledged within %v", i, k, within)
		}
	}
	return got
}

// rest waits for the writer to finish and returns the acknowledgements waitAcked did
// not take.
func (w *writer) rest(t *testing.T, within time.Duration) []int {
	t.Helper()
	var got []int
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case i, ok := <-w.acked:
			if !ok {
				return got
			}
			got = append(got, i)
		case <-timer.C:
			w.cancel()
			t.Fatalf("writer did not finish within %v", within)
		}
	}
}

// TestKillLeaderDuringWrites: kill -9 of the leader while a follower writes; a new leader
// comes (how soon is reported), a follower learnt from the leader's host that its agent
// was gone (the early election), and every acknowledged write is readable.
func TestKillLeaderDuringWrites(t *testing.T) {
	c := newCluster(t, 3, 3, "1", 1000)
	for _, h := range c.Hosts {
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(c.Hosts, 20*time.Second)
	writerHost := others(c.Hosts, lead)[0]
	w := startWriter(c, writerHost, "w", 60)
	early := w.waitAcked(t, 10, 30*time.Second)
	killed := time.Now()
	if n, err := lead.Signal(`lite-raft .*agent --foreground`, 9); err != nil || n != 1 {
		t.Fatalf("kill -9 the leader's agent: %d %v", n, err)
	}
	// leader() only accepts a leader among rest: the killed one is out
	rest := others(c.Hosts, lead)
	newLead := c.leader(rest, 10*time.Second)
	// the new leader's own log says when it won (polling over ssh would add its latency)
	won := leaderSince(t, newLead, killed)
	// The figure is reported, not asserted: a loaded machine stretches it, and timings
	// belong to benchmarks. The bound only catches an election that does not converge.
	t.Logf("%s led %v after kill -9 of %s (election timeout 1 s)", newLead.Name, won.Round(time.Millisecond), lead.Name)
	if won > 15*time.Second {
		t.Fatalf("a new leader took %v after the kill", won)
	}
	// the followers learnt from the leader's host that its agent was gone, rather than
	// waiting out an election timeout (the figure above is what that buys)
	c.eventually(10*time.Second, "a follower told that the leader's agent is gone", func() (bool, string) {
		for _, h := range rest {
			b, _ := os.ReadFile(filepath.Join(h.Dir, "message-log", "lite-raft-server.log"))
			if strings.Contains(string(b), "the agent of leader "+lead.Name+" is gone") {
				return true, ""
			}
		}
		return false, "no such line in the followers' logs"
	})
	all := append(early, w.rest(t, 120*time.Second)...)
	c.must(lead, "./lite-raft start")
	for _, i := range all {
		c.expect(rest[0], fmt.Sprintf("./lite-raft-client get w/%d", i), 0, fmt.Sprint(i))
	}
	if len(all) < 40 {
		t.Fatalf("only %d of 60 writes acknowledged across the leader's death", len(all))
	}
}

// TestStopAllAndStart: every host stopped and started again keeps all its data.
func TestStopAllAndStart(t *testing.T) {
	c := newCluster(t, 3, 3, "0.5", 7)
	for _, h := range c.Hosts {
		c.must(h, "./lite-raft first-boot")
	}
	c.leader(c.Hosts, 20*time.Second)
	for i := 0; i < 20; i++ {
		c.must(c.Hosts[i%3], fmt.Sprintf("./lite-raft-client set k%d v%d", i, i))
	}
	for _, h := range c.Hosts {
		c.must(h, "./lite-raft stop")
	}
	for _, h := range c.Hosts {
		c.expect(h, "./lite-raft-client get k1", 12, "")
		c.must(h, "./lite-raft start")
	}
	c.leader(c.Hosts, 20*time.Second)
	for i := 0; i < 20; i++ {
		c.expect(c.Hosts[(i+1)%3], fmt.Sprintf("./lite-raft-client get k%d", i), 0, fmt.Sprintf("v%d", i))
	}
	// snapshots were taken (period 7) and the log compacted
	if out := c.must(c.Hosts[0], "./lite-raft debug"); !strings.Contains(out, "snapshot:   index") || strings.Contains(out, "snapshot:   index 0 ") {
		t.Fatalf("no snapshot after 20 writes with snapshot_period 7:\n%s", out)
	}
}

// TestCatchUpBySnapshot: a host down for longer than snapshot_period entries gets the
// leader's snapshot when it comes back.
func TestCatchUpBySnapshot(t *testing.T) {
	c := newCluster(t, 3, 3, "0.5", 10)
	for _, h := range c.Hosts {
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(c.Hosts, 20*time.Second)
	down := others(c.Hosts, lead)[0]
	c.must(down, "./lite-raft stop")
	for i := 0; i < 40; i++ {
		c.must(lead, fmt.Sprintf("./lite-raft-client set s%d %d", i, i))
	}
	c.must(down, "./lite-raft start")
	c.eventually(30*time.Second, down.Name+" catching up", func() (bool, string) {
		o, _, code := c.lr(down, "./lite-raft-client --stale get s39")
		return code == 0 && strings.TrimSpace(o) == "39", fmt.Sprintf("get s39 → exit %d %q", code, o)
	})
	log := c.must(down, "cat message-log/lite-raft-server.log")
	if !strings.Contains(log, "installed a snapshot") {
		t.Fatalf("%s caught up without a snapshot:\n%s", down.Name, log)
	}
	c.expect(down, "./lite-raft-client --stale get s0", 0, "0")
}

// TestMembershipChanges: add-member host4 and del-member host1 while a writer runs, then
// del-member of the leader.
func TestMembershipChanges(t *testing.T) {
	c := newCluster(t, 4, 3, "0.5", 50)
	for _, h := range c.Hosts[:3] {
		c.must(h, "./lite-raft first-boot")
	}
	c.leader(c.Hosts[:3], 20*time.Second)
	w := startWriter(c, c.Hosts[1], "m", 80)
	early := w.waitAcked(t, 5, 30*time.Second)

	out := c.must(c.Hosts[1], "./lite-raft-client add-member host4")
	for _, step := range []string{"booting host4", "adding host4 as a learner", "waiting for host4 to catch up", "making host4 a voter"} {
		if !strings.Contains(out, step) {
			t.Errorf("add-member did not print %q:\n%s", step, out)
		}
	}
	c.expect(c.Hosts[1], "cat conf/cluster_nodes", 0, "host1 host2 host3 host4")
	// with --json (issue 29): one object a line, the steps, then the outcome
	out = c.must(c.Hosts[2], "./lite-raft-client --json del-member host1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i, l := range lines {
		var o map[string]any
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Errorf("del-member --json: line %d is no JSON object: %q", i+1, l)
		} else if i == len(lines)-1 && (o["exit"] != float64(0) || o["verb"] != "del-member") {
			t.Errorf("del-member --json: the last line is not the outcome: %q", l)
		}
	}
	if !strings.Contains(out, `stopping lite-raft on host1`) || !strings.Contains(out, `{"step":"stopped lite-raft on host1"}`) {
		t.Errorf("del-member did not stop host1:\n%s", out)
	}
	c.expect(c.Hosts[2], "cat conf/cluster_nodes", 0, "host2 host3 host4")
	acked := append(early, w.rest(t, 120*time.Second)...)
	if len(acked) < 55 {
		t.Fatalf("only %d of 80 writes acknowledged during the membership changes", len(acked))
	}
	rest := c.Hosts[1:]
	lead := c.leader(rest, 20*time.Second)
	c.must(rest[0], "./lite-raft-client del-member "+lead.Name)
	remaining := others(rest, lead)
	c.leader(remaining, 20*time.Second) // a leader among those that remain
	for _, i := range acked {
		c.expect(remaining[0], fmt.Sprintf("./lite-raft-client get m/%d", i), 0, fmt.Sprint(i))
	}
	c.must(remaining[1], "./lite-raft-client set after-removal yes")
	c.expect(remaining[0], "./lite-raft-client get after-removal", 0, "yes")
}

// leaderSince reads from h's server log how long after since it became leader.
func leaderSince(t *testing.T, h *harness.Host, since time.Time) time.Duration {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.Dir, "message-log", "lite-raft-server.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, " now leader in term ") || len(line) < 26 {
			continue
		}
		at, err := time.ParseInLocation("2006/01/02 15:04:05.000000", line[:26], time.Local)
		if err == nil && at.After(since) {
			return at.Sub(since)
		}
	}
	t.Fatalf("%s's log has no \"now leader\" line after %v", h.Name, since)
	return 0
}

// TestTransferAndUnknownOutcome: transfer-leader moves leadership; a write to a leader cut
// off from its followers cannot commit and exits 2 (unknown outcome), never 0 or 3.
func TestTransferAndUnknownOutcome(t *testing.T) {
	c := newCluster(t, 3, 3, "1", 1000)
	for _, h := range c.Hosts {
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(c.Hosts, 20*time.Second)
	target := others(c.Hosts, lead)[0]
	out := c.must(others(c.Hosts, lead)[1], "./lite-raft-client transfer-leader "+target.Name)
	if !strings.Contains(out, "making "+target.Name+" the leader ... done") {
		t.Fatalf("transfer-leader said:\n%s", out)
	}
	if got := c.leader(c.Hosts, 10*time.Second); got != target {
		t.Fatalf("leader after the transfer: %s, want %s", got.Name, target.Name)
	}
	c.must(target, "./lite-raft-client set before cut")

	// the leader keeps leading for at least one election timeout after it is cut off
	// (check-quorum), so a write sent at once is appended but cannot commit
	if err := c.Isolate(target); err != nil {
		t.Fatal(err)
	}
	c.expect(target, "./lite-raft-client --timeout 0.5 set during cut", 2, "")
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	c.leader(c.Hosts, 20*time.Second)
	o, _, code := c.lr(lead, "./lite-raft-client get during")
	if !(code == 0 && strings.TrimSpace(o) == "cut") && code != 9 {
		t.Fatalf("after the cut, get during: exit %d %q (want the value or no key)", code, o)
	}
	c.expect(lead, "./lite-raft-client get before", 0, "cut")
}

// TestAddMemberOutlivesItsCLI: the lite-raft-client that started add-member is killed
// at once; the leader's agent carries the change through all the same (host4 ends a
// voter, not a learner nobody promotes), and status shows how it ended.
func TestAddMemberOutlivesItsCLI(t *testing.T) {
	c := newCluster(t, 4, 3, "0.5", 1000)
	for _, h := range c.Hosts[:3] {
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(c.Hosts[:3], 20*time.Second)
	c.must(lead, "./lite-raft-client set before add")
	// killed a quarter of a second in: during the boot of host4 over ssh
	o, e, code, err := c.Hosts[1].Exec("sh", "-c", "cd "+harness.RemoteDir+" && timeout -s KILL 0.25 ./lite-raft-client add-member host4")
	if err != nil || code != 137 {
		t.Fatalf("the CLI was not killed midway (exit %d, %v): the test proves nothing\n%s%s", code, err, o, e)
	}
	c.eventually(60*time.Second, "host4 a voter", func() (bool, string) {
		st, ok := c.status(lead)
		if !ok {
			return false, "no status"
		}
		voters := ""
		for _, f := range strings.Fields(st.Members) {
			if v, ok := strings.CutPrefix(f, "voters="); ok {
				voters = v
			}
		}
		done := st.Change != nil && st.Change.Done
		return done && slices.Contains(strings.Split(voters, ","), "host4"),
			fmt.Sprintf("members %s, change %+v", st.Members, st.Change)
	})
	st, _ := c.status(lead)
	if st.Change.Code != 0 {
		t.Fatalf("the change ended with exit %d: %v", st.Change.Code, st.Change.Steps)
	}
	c.expect(c.Hosts[3], "./lite-raft-client get before", 0, "add")
	c.expect(lead, "./lite-raft-client status", 0, "")
}
