package e2e

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestWatch: a watch on a follower sees every one of a burst of writes, in order, while
// the leader's agent is killed -9 and started again in the middle of it; --once exits
// after one change, and --from replays what it missed.
func TestWatch(t *testing.T) {
	c := newCluster(t, 3, 3, "0.5", 1000)
	for _, h := range c.Hosts {
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(c.Hosts, 20*time.Second)
	rest := others(c.Hosts, lead)
	watcher, writer := rest[0], rest[1]
	c.must(writer, "./lite-raft-client set w/start 0")
	st, _ := c.status(watcher)
	from := st.Applied

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ssh := watcher.SSHCommand(ctx, fmt.Sprintf("cd /opt/lite-raft && ./lite-raft-client watch w/ --from %d", from))
	stdout, _ := ssh.StdoutPipe()
	if err := ssh.Start(); err != nil {
		t.Fatal(err)
	}
	events := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			events <- sc.Text()
		}
		close(events)
	}()

	// the burst: one writer, in order, each write retried until acknowledged (a retry
	// after an unknown outcome may apply it twice: the same change twice in a row)
	const n = 120
	var want []string
	for i := 0; i < n; i++ {
		if i == n/3 {
			if k, err := lead.Signal(`lite-raft .*agent --foreground`, 9); err != nil || k != 1 {
				t.Fatalf("kill -9 the leader's agent: %d %v", k, err)
			}
		}
		if i == 2*n/3 {
			c.must(lead, "./lite-raft start")
		}
		cmd := fmt.Sprintf("./lite-raft-client set w/%d v%d", i%7, i)
		ev := fmt.Sprintf("set w/%d v%d", i%7, i)
		if i%10 == 9 {
			cmd, ev = fmt.Sprintf("./lite-raft-client unset w/%d", (i-1)%7), fmt.Sprintf("deleted w/%d", (i-1)%7)
		}
		c.eventually(30*time.Second, cmd, func() (bool, string) {
			_, e, code := c.lr(writer, cmd)
			return code == 0, fmt.Sprintf("exit %d %s", code, e)
		})
		want = append(want, ev)
	}
	var got []string
	var last uint64
	deadline := time.After(30 * time.Second)
	for len(got) < len(want) || got[len(got)-1] != want[len(want)-1] {
		select {
		case line, ok := <-events:
			if !ok {
				t.Fatalf("the watch ended after %d changes (want %d)", len(got), len(want))
			}
			var idx uint64
			var rest string
			if _, err := fmt.Sscanf(line, "%d", &idx); err != nil {
				t.Fatalf("watch printed %q", line)
			}
			rest = strings.SplitN(line, " ", 2)[1]
			if idx <= last {
				t.Fatalf("index %d after %d: %q", idx, last, line)
			}
			last = idx
			if len(got) > 0 && got[len(got)-1] == rest && !strings.HasPrefix(rest, "deleted") {
				continue // a write applied twice (retried after an unknown outcome)
			}
			got = append(got, rest)
		case <-deadline:
			t.Fatalf("after 30 s the watch printed %d of %d changes; last %q", len(got), len(want), got[max(0, len(got)-1):])
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		for i := range want {
			if i >= len(got) || got[i] != want[i] {
				t.Fatalf("change %d: watch printed %q, the writer made %q", i, got[min(i, len(got)-1)], want[i])
			}
		}
	}
	cancel()
	// --once: the next change; --from: what a watch started later missed
	done := make(chan string, 1)
	go func() { // not c.lr: it must not touch t if the test has ended meanwhile
		out, _, _, _ := watcher.Run("cd /opt/lite-raft && ./lite-raft-client watch w/0 --once")
		done <- out
	}()
	time.Sleep(500 * time.Millisecond) // let it start: a wait for a process, with no state to poll
	c.must(writer, "./lite-raft-client set w/0 once")
	select {
	case out := <-done:
		if !strings.HasSuffix(strings.TrimSpace(out), "set w/0 once") {
			t.Fatalf("watch --once printed %q", out)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("watch --once did not return after a change")
	}
	out := c.must(watcher, fmt.Sprintf("./lite-raft-client watch w/start --from %d --once", from-1))
	if !strings.HasSuffix(strings.TrimSpace(out), "set w/start 0") {
		t.Fatalf("watch --from %d --once printed %q", from-1, out)
	}
	t.Logf("watch: %d changes in order across a kill -9 of the leader (%s)", len(got), lead.Name)
}
