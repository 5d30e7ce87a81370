package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"lite-raft/internal/harness"
)

// TestWatch: a watch on a follower, and one through lite-raft-remote on a host outside
// the cluster that asks the leader first, see every one of a burst of writes, in order,
// while the leader's agent is killed -9 and started again in the middle of it; --once
// exits after one change, and --from replays what it missed.
func TestWatch(t *testing.T) {
	c := newCluster(t, 4, 3, "0.5", 1000)
	members, outside := c.Hosts[:3], c.Hosts[3]
	for _, h := range members {
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(members, 20*time.Second)
	rest := others(members, lead)
	watcher, writer := rest[0], rest[1]
	// the remote asks the host it last knew as leader first: the leader, whose agent is
	// killed
	c.remoteOn(outside, "host1 host2 host3", lead)
	c.must(writer, "./lite-raft-client set w/start 0")
	st, _ := c.status(watcher)
	from := st.Applied

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	local := startWatch(ctx, t, watcher, fmt.Sprintf("./lite-raft-client watch w/ --from %d", from))
	remote := startWatch(ctx, t, outside, fmt.Sprintf("./lite-raft-remote watch w/ --from %d 2>remote-watch.err", from))

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
	got := watchSees(t, "the watch on "+watcher.Name, local, want)
	watchSees(t, "the watch through lite-raft-remote", remote, want)
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
	if b, err := os.ReadFile(filepath.Join(outside.Dir, "remote-watch.err")); err != nil || len(b) > 0 {
		t.Fatalf("the watch through lite-raft-remote said on stderr: %q %v", b, err)
	}
	// through lite-raft-remote, a watch that waits longer than the remote gives one host
	// (5 s) before it tries the next: the host answers in time, nothing is printed but
	// the change (one host, so that one not answering in time is an error)
	if err := os.WriteFile(filepath.Join(outside.Dir, "conf", "remote_hosts"), []byte(watcher.Name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		out, e, code, err := outside.Run("cd /opt/lite-raft && ./lite-raft-remote watch w/0 --once")
		done <- fmt.Sprintf("%s|%s|%d|%v", out, e, code, err)
	}()
	time.Sleep(8 * time.Second) // the quiet time is what is tested
	c.must(writer, "./lite-raft-client set w/0 after-quiet")
	select {
	case res := <-done:
		if !strings.HasSuffix(res, " set w/0 after-quiet\n||0|<nil>") {
			t.Fatalf("lite-raft-remote watch --once after 8 s of quiet: stdout|stderr|exit|error: %q", res)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("lite-raft-remote watch --once did not return after a change")
	}
	t.Logf("watch: %d changes in order across a kill -9 of the leader (%s), on a follower and through lite-raft-remote", len(got), lead.Name)
	watchResumesAfterRestart(c, watcher, writer)
}

// watchResumesAfterRestart: a watch on member h dies (its script lost its terminal) at
// index L; the member goes on applying and takes a snapshot past L, then its agent is
// killed -9 and started again while writes go on. A watch started there with --from L
// (the changes after L) prints, with the first one's lines, exactly the lines of a watch on a member that kept
// running: every change once, in order, at the same indexes. (Before issue 26 the
// restarted member held only the changes since its last snapshot and answered 17.)
func watchResumesAfterRestart(c *cluster, h, writer *harness.Host) {
	t := c.t
	st, _ := c.status(writer)
	from := st.Applied // --from N: the changes after N
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ref := startWatch(ctx, t, writer, fmt.Sprintf("./lite-raft-client watch r/ --from %d", from))
	firstCtx, killFirst := context.WithCancel(ctx)
	first := startWatch(firstCtx, t, h, fmt.Sprintf("./lite-raft-client watch r/ --from %d", from))
	bench := func(prefix string, keys int) {
		c.must(writer, fmt.Sprintf("./lite-raft bench --fill --keys %d --key-prefix %s --clients 4 >/dev/null", keys, prefix))
	}
	bench("r/a", 300)
	c.must(writer, "./lite-raft-client set r/a-end 1")
	var got []string
	// the first watch has seen the fill, and is then cut off
	for deadline := time.After(30 * time.Second); len(got) == 0 || !strings.HasSuffix(got[len(got)-1], " set r/a-end 1"); {
		select {
		case line := <-first:
			got = append(got, line)
		case <-deadline:
			t.Fatalf("the first watch printed %d lines in 30 s, not r/a-end", len(got))
		}
	}
	killFirst()
	for line := range first {
		got = append(got, line)
	}
	last := watchIndex(t, got[len(got)-1])
	// chunks far smaller than the snapshot period (1000), until h's snapshot passes L:
	// the snapshot before it is at most L, so h holds the changes after L after a
	// restart only if it keeps those since that one
	chunks := 0
	c.eventually(60*time.Second, h.Name+" snapshots past "+fmt.Sprint(last), func() (bool, string) {
		st, ok := c.status(h)
		if ok && st.Snapshot > last {
			return true, ""
		}
		chunks++
		bench(fmt.Sprintf("r/b%d.", chunks), 250)
		return false, fmt.Sprintf("snapshot at %d", st.Snapshot)
	})
	st, _ = c.status(h)
	// writes go on, one at a time, while h's agent is killed and started again
	stop := make(chan struct{})
	writes := make(chan int, 1)
	var written atomic.Int64
	go func() {
		n := 0
		defer func() { writes <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			n++
			written.Add(1)
			writer.Exec("sh", "-c", fmt.Sprintf("cd %s && ./lite-raft-client set r/c%d %d", harness.RemoteDir, n, n))
		}
	}()
	c.restartAgent(h)
	second := startWatch(ctx, t, h, fmt.Sprintf("./lite-raft-client watch r/ --from %d 2>resume.err", last))
	c.eventually(30*time.Second, "the resumed watch's first line", func() (bool, string) {
		select {
		case line, ok := <-second:
			if !ok {
				b, _ := os.ReadFile(filepath.Join(h.Dir, "resume.err"))
				t.Fatalf("the watch resumed on %s with --from %d (its snapshot at %d) ended: %s", h.Name, last, st.Snapshot, b)
			}
			got = append(got, line)
			return true, ""
		default:
			return false, "nothing yet"
		}
	})
	// the writes go on a while with the resumed watch running
	c.eventually(60*time.Second, "40 writes since the restart began", func() (bool, string) {
		select {
		case line, ok := <-second:
			if ok {
				got = append(got, line)
			}
		default:
		}
		return written.Load() >= 40, fmt.Sprint(written.Load())
	})
	close(stop)
	n := <-writes
	c.must(writer, "./lite-raft-client set r/zz-end 1")
	read := func(what string, events <-chan string, into []string) []string {
		deadline := time.After(60 * time.Second)
		for len(into) == 0 || !strings.HasSuffix(into[len(into)-1], " set r/zz-end 1") {
			select {
			case line, ok := <-events:
				if !ok {
					t.Fatalf("%s ended after %d lines", what, len(into))
				}
				into = append(into, line)
			case <-deadline:
				t.Fatalf("%s printed %d lines in 60 s, not the end mark", what, len(into))
			}
		}
		return into
	}
	want := read("the watch on "+writer.Name, ref, nil)
	got = read("the resumed watch on "+h.Name, second, got)
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Fatalf("line %d: the watch on %s, cut off at %d and resumed after the restart, printed %q; the watch on %s %q",
				i, h.Name, last, got[min(i, len(got)-1)], writer.Name, want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("the resumed watch printed %d lines, the one on %s %d", len(got), writer.Name, len(want))
	}
	t.Logf("watch resumed on %s after its agent's restart: %d changes printed once and in order, cut at %d, %s's snapshot at %d before the restart, %d writes during it",
		h.Name, len(got), last, h.Name, st.Snapshot, n)
}

// watchIndex is the index a watch line starts with.
func watchIndex(t *testing.T, line string) uint64 {
	t.Helper()
	idx, _, _ := strings.Cut(line, " ")
	n, err := strconv.ParseUint(idx, 10, 64)
	if err != nil {
		t.Fatalf("a watch printed %q", line)
	}
	return n
}

// startWatch runs a watch on h over ssh and hands out the lines it prints.
func startWatch(ctx context.Context, t *testing.T, h *harness.Host, cmd string) <-chan string {
	t.Helper()
	ssh := h.SSHCommand(ctx, "cd "+harness.RemoteDir+" && "+cmd)
	stdout, err := ssh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ssh.Start(); err != nil {
		t.Fatal(err)
	}
	events := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			events <- sc.Text()
		}
		ssh.Wait() // it ends with ctx
		close(events)
	}()
	return events
}

// watchSees reads a watch's lines until it printed the writer's last change (within 30
// s) and fails unless it printed every change the writer made, in order, at growing
// indexes. A write retried after an unknown outcome may apply twice: the same change
// twice in a row counts once.
func watchSees(t *testing.T, what string, events <-chan string, want []string) []string {
	t.Helper()
	var got []string
	var last uint64
	deadline := time.After(30 * time.Second)
	for len(got) < len(want) || got[len(got)-1] != want[len(want)-1] {
		select {
		case line, ok := <-events:
			if !ok {
				t.Fatalf("%s ended after %d changes (want %d)", what, len(got), len(want))
			}
			idx, rest, _ := strings.Cut(line, " ")
			n, err := strconv.ParseUint(idx, 10, 64)
			if err != nil {
				t.Fatalf("%s printed %q", what, line)
			}
			if n <= last {
				t.Fatalf("%s: index %d after %d: %q", what, n, last, line)
			}
			last = n
			if len(got) > 0 && got[len(got)-1] == rest && !strings.HasPrefix(rest, "deleted") {
				continue
			}
			got = append(got, rest)
		case <-deadline:
			t.Fatalf("after 30 s %s printed %d of %d changes; last %q", what, len(got), len(want), got[max(0, len(got)-1):])
		}
	}
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Fatalf("change %d: %s printed %q, the writer made %q", i, what, got[min(i, len(got)-1)], want[i])
		}
	}
	return got
}
