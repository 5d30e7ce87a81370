//go:build linux

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"lite-raft/internal/harness"
	"lite-raft/internal/lazyfs"
)

// lazyHost is a harness host whose lite-raft directory is a lazyfs mount served by the
// test process: what the host's processes do not fsync, a power cut takes.
type lazyHost struct {
	*harness.Host
	fs  *lazyfs.FS
	mnt *lazyfs.Mount
	// logs holds the agent's log as it stood before each cut: the cut takes its unsynced
	// lines (the agent never fsyncs its log, rightly), and a failure needs them
	logs strings.Builder
}

// lazyCluster is a cluster whose every host runs on lazyfs.
type lazyCluster struct {
	*cluster
	hosts []*lazyHost
}

// newLazyCluster is newCluster with every host's directory on a lazyfs of its own. The
// mount is made on Host.Dir itself while the host is powered off: a host's mount
// namespace is built at boot and bind-mounts Host.Dir non-recursively, so it sees only a
// mount that is there, on that very directory, when it boots (lazyfs's
// TestMountNamespaces).
func newLazyCluster(t *testing.T, n, members int, electionTimeout string, snapshotPeriod int) *lazyCluster {
	t.Helper()
	if err := lazyfs.Available(); err != nil {
		if inCI() {
			t.Fatalf("%v (CI is set, so this fails instead of skipping)", err)
		}
		t.Skipf("%v (skipping; with CI=true this would fail)", err)
	}
	lc := &lazyCluster{cluster: newCluster(t, n, members, electionTimeout, snapshotPeriod)}
	// Registered after newCluster's cleanups, so it runs before them: every process using
	// a mount dies (power off) before the mount goes, and the logs are read while it is up.
	t.Cleanup(func() {
		lc.powerOffAll()
		for _, h := range lc.hosts {
			if t.Failed() {
				t.Logf("--- %s: the agent's log, cut by cut, then as it stands (end)\n%s", h.Name, tail(h.logs.String()+h.agentLog(), 60))
			}
			if err := h.mnt.Unmount(); err != nil {
				t.Errorf("unmount %s: %v", h.Dir, err)
			}
		}
	})
	for _, h := range lc.Hosts {
		if err := h.PowerOff(); err != nil {
			t.Fatal(err)
		}
		// the binary and conf/ the template and newCluster wrote come in as durable: they
		// are the machine's installation, not what the test is about
		fs := lazyfs.New()
		if err := fs.Import(h.Dir); err != nil {
			t.Fatal(err)
		}
		m, err := fs.Mount(h.Dir)
		if err != nil {
			t.Fatal(err)
		}
		lc.hosts = append(lc.hosts, &lazyHost{Host: h, fs: fs, mnt: m})
		if err := h.PowerOn(); err != nil {
			t.Fatal(err)
		}
	}
	return lc
}

func inCI() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv("CI")))
	return v == "true" || v == "1"
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// agentLog reads the agent's log through the mount (the test process may read the
// mount it serves; it must only not exec from it).
func (h *lazyHost) agentLog() string {
	b, _ := os.ReadFile(filepath.Join(h.Dir, "message-log", "lite-raft-server.log"))
	return string(b)
}

// parallel runs f on every host at once and returns the first error.
func parallel(hosts []*lazyHost, f func(h *lazyHost) error) error {
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(h)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (lc *lazyCluster) powerOffAll() error {
	return parallel(lc.hosts, func(h *lazyHost) error { return h.PowerOff() })
}

// powerCut cuts every host's power at once: all hosts off (links down first, then every
// process killed, in parallel: a power failure has no order), then every file system
// forgets what was not fsynced. atCut, if set, runs in between: it sees the files as
// they were when the power went. It returns the sum of what the cuts dropped.
func (lc *lazyCluster) powerCut(cycle int, atCut func()) lazyfs.CutStats {
	lc.t.Helper()
	if err := lc.powerOffAll(); err != nil {
		lc.t.Fatal(err)
	}
	if atCut != nil {
		atCut()
	}
	var sum lazyfs.CutStats
	for _, h := range lc.hosts {
		fmt.Fprintf(&h.logs, "=== cycle %d: the log before the cut (its unsynced end is lost)\n%s", cycle, tail(h.agentLog(), 40))
		addCutStats(&sum, h.fs.PowerCut())
	}
	return sum
}

func addCutStats(sum *lazyfs.CutStats, cs lazyfs.CutStats) {
	sum.BytesDropped += cs.BytesDropped
	sum.FilesReverted += cs.FilesReverted
	sum.FilesLost += cs.FilesLost
	sum.EntriesUndone += cs.EntriesUndone
	sum.StaleHandles += cs.StaleHandles
}

// powerOn boots every host again (in parallel).
func (lc *lazyCluster) powerOn() {
	lc.t.Helper()
	if err := parallel(lc.hosts, func(h *lazyHost) error { return h.PowerOn() }); err != nil {
		lc.t.Fatal(err)
	}
}

// start runs ./lite-raft start on every host given, at once, and fails the test with the
// host's answer and log if one refuses. lazyfs never damages what was fsynced, so a
// refusal is a bug of lite-raft's: a file it trusts at start that it had not made
// durable, or damage it reports that a cut cannot have made.
func (lc *lazyCluster) start(hosts []*lazyHost) {
	lc.t.Helper()
	if refused := lc.tryStart(hosts); len(refused) > 0 {
		lc.t.FailNow()
	}
}

// tryStart is start that goes on: it marks the test failed for each host that refuses
// (logging why) and returns them, so that a caller can still count what was lost with
// the agents that did start.
func (lc *lazyCluster) tryStart(hosts []*lazyHost) (refused []*lazyHost) {
	lc.t.Helper()
	errs := make([]error, len(hosts))
	parallel(hosts, func(h *lazyHost) error {
		i := slices.Index(hosts, h)
		out, errOut, code, err := h.Run("cd " + harness.RemoteDir + " && ./lite-raft start")
		switch {
		case err != nil:
			errs[i] = err
		case code != 0:
			errs[i] = fmt.Errorf("%s: ./lite-raft start: exit %d\n%s%s", h.Name, code, out, errOut)
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			lc.t.Errorf("an agent refused to start after a power cut (lazyfs keeps all that was fsynced: lite-raft trusted what it had not made durable): %v", err)
			refused = append(refused, hosts[i])
		}
	}
	return refused
}

func (lc *lazyCluster) lazyHostOf(h *harness.Host) *lazyHost {
	for _, lh := range lc.hosts {
		if lh.Host == h {
			return lh
		}
	}
	panic("not a host of the cluster: " + h.Name)
}

// writeLog is one client's writes: the exit code of each, by sequence number, as its
// loop on the host reported them.
type writeLog struct {
	prefix string
	mu     sync.Mutex
	codes  map[int]int
	last   int // the highest sequence number started
	cancel context.CancelFunc
	done   chan struct{}
}

// startWrites runs, on h, a loop of `lite-raft-client set PREFIX.i vi` for i = from+1,
// from+2, ... until it is stopped or its host loses power, and records the exit code of
// each as it comes. With size > 0 the value is "vi", a newline and size zero bytes (read
// from standard input); with keys > 0 the writes go to PREFIX/(i mod keys) in turn,
// versions of a few keys, instead of a key each. A write whose code never came (in
// flight at a cut) is neither acknowledged nor refused.
func startWrites(c *cluster, h *harness.Host, prefix string, size, keys, from int) *writeLog {
	ctx, cancel := context.WithCancel(context.Background())
	key := prefix + ".$i"
	if keys > 0 {
		key = fmt.Sprintf("%s/$((i %% %d))", prefix, keys)
	}
	set := fmt.Sprintf("./lite-raft-client --timeout 5 set %s v$i", key)
	if size > 0 {
		set = fmt.Sprintf("{ echo v$i; head -c %d /dev/zero; } | ./lite-raft-client --timeout 5 set %s -", size, key)
	}
	script := fmt.Sprintf("cd %s && i=%d; while :; do i=$((i+1)); echo start $i; %s >/dev/null 2>&1; echo $i $?; done",
		harness.RemoteDir, from, set)
	cmd := h.SSHCommand(ctx, script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	w := &writeLog{prefix: prefix, codes: map[int]int{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				continue
			}
			if f[0] == "start" {
				i, _ := strconv.Atoi(f[1])
				w.mu.Lock()
				w.last = max(w.last, i)
				w.mu.Unlock()
				continue
			}
			i, err1 := strconv.Atoi(f[0])
			code, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil {
				w.mu.Lock()
				w.codes[i] = code
				w.mu.Unlock()
			}
		}
		cmd.Wait()
	}()
	return w
}

// stop ends the loop (its ssh session) and waits until its output is read.
func (w *writeLog) stop() {
	w.cancel()
	<-w.done
}

// acked returns the sequence numbers that exited 0, and those that exited with a code
// that promises the write was not applied (README, exit codes).
func (w *writeLog) acked() (ok []int, notApplied []int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, code := range w.codes {
		switch code {
		case 0:
			ok = append(ok, i)
		case 1, 3, 4, 10, 11, 12:
			notApplied = append(notApplied, i)
		}
	}
	slices.Sort(ok)
	slices.Sort(notApplied)
	return ok, notApplied
}

func (w *writeLog) code(i int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.codes[i]
}

// ackedCount is how many writes exited 0 so far.
func (w *writeLog) ackedCount() int {
	ok, _ := w.acked()
	return len(ok)
}

// waitAcked waits until the loop has k acknowledged writes.
func (w *writeLog) waitAcked(c *cluster, k int, within time.Duration) {
	c.t.Helper()
	c.eventually(within, fmt.Sprintf("%d writes to %s acknowledged", k, w.prefix), func() (bool, string) {
		n := w.ackedCount()
		return n >= k, fmt.Sprintf("%d acknowledged", n)
	})
}

// listNames returns the names under dir, read linearizably on h.
func (c *cluster) listNames(h *harness.Host, dir string) map[string]bool {
	c.t.Helper()
	out, errOut, code := c.lr(h, "./lite-raft-client --json list "+dir)
	names := map[string]bool{}
	switch code {
	case 0:
		var list []string
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			c.t.Fatalf("list %s: %v: %q", dir, err, out)
		}
		for _, n := range list {
			names[n] = true
		}
	case 8: // no such folder: none of it is there
	default:
		c.t.Fatalf("%s: list %s: exit %d %s", h.Name, dir, code, errOut)
	}
	return names
}

// checkWrites reads the small writes of ws back from h, one linearizable list of the
// folder they share, and returns the acknowledged ones that are missing; a write there
// that a code said was not applied fails the test.
func (c *cluster) checkWrites(h *harness.Host, dir string, ws []*writeLog) (acked int, lost []string) {
	c.t.Helper()
	names := c.listNames(h, dir)
	for _, w := range ws {
		name := strings.TrimPrefix(w.prefix, dir+"/")
		ok, notApplied := w.acked()
		acked += len(ok)
		for _, i := range ok {
			if !names[fmt.Sprintf("%s.%d", name, i)] {
				lost = append(lost, fmt.Sprintf("%s.%d", w.prefix, i))
			}
		}
		for _, i := range notApplied {
			if names[fmt.Sprintf("%s.%d", name, i)] {
				c.t.Fatalf("%s.%d is there, though its write exited %d, which says it was not applied", w.prefix, i, w.code(i))
			}
		}
	}
	return acked, lost
}
