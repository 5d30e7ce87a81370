//go:build linux

package guard

import (
	"bufio"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary plays three more parts, chosen by $GUARD_TEST_ROLE: the guard (what
// lite-raft lock-guard is), a parent (the lock process, to be killed or frozen) and a
// descendant of COMMAND that leaves its session (setsid).
func TestMain(m *testing.M) {
	switch os.Getenv("GUARD_TEST_ROLE") {
	case "guard":
		os.Exit(Serve(os.Args[1:]))
	case "parent":
		os.Exit(runParent())
	case "setsid":
		runSetsid()
	}
	os.Exit(m.Run())
}

// runParent starts a guard running sh -c $GUARD_TEST_SCRIPT with the deadline and grace
// of its environment, says "running" on stdout and waits for it.
func runParent() int {
	deadline, _ := strconv.ParseInt(os.Getenv("GUARD_TEST_DEADLINE"), 10, 64)
	grace, _ := time.ParseDuration(os.Getenv("GUARD_TEST_GRACE"))
	g, err := Start(options(os.Getenv("GUARD_TEST_SCRIPT"), Reading(deadline), grace))
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 2
	}
	os.Stdout.WriteString("running\n")
	code, err := g.Wait()
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 2
	}
	return code
}

// runSetsid leaves COMMAND's session and group, writes its pid to $GUARD_TEST_PIDFILE
// and stays until killed, SIGTERM or not.
func runSetsid() {
	signal.Ignore(syscall.SIGTERM)
	if _, err := syscall.Setsid(); err != nil {
		os.Exit(3)
	}
	os.WriteFile(os.Getenv("GUARD_TEST_PIDFILE"), []byte(strconv.Itoa(os.Getpid())), 0o600)
	time.Sleep(time.Hour) // a stand-in for work; the guard is to end it
	os.Exit(4)
}

// options runs sh -c script under a guard that is this test binary.
func options(script string, deadline Reading, grace time.Duration) Options {
	self, _ := os.Executable()
	return Options{
		GuardPath: self, GuardArgs: []string{"guard.test"},
		Argv:     []string{"sh", "-c", script},
		Env:      append(os.Environ(), "GUARD_TEST_ROLE=guard"),
		Stderr:   os.Stderr,
		Deadline: deadline, Grace: grace,
	}
}

// startParent runs a parent process (runParent) and returns once COMMAND runs. The
// parent is killed at the end of the test: the guard then stops what is left.
func startParent(t *testing.T, script string, deadline Reading, grace time.Duration) *exec.Cmd {
	t.Helper()
	self, _ := os.Executable()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), "GUARD_TEST_ROLE=parent", "GUARD_TEST_SCRIPT="+script,
		"GUARD_TEST_DEADLINE="+strconv.FormatInt(int64(deadline), 10), "GUARD_TEST_GRACE="+grace.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "running\n" {
		t.Fatalf("parent: %q, want running", line)
	}
	return cmd
}

// waitGuard is g.Wait, failing the test if the guard has not ended within 5 s.
func waitGuard(t *testing.T, g *Guard) (int, error) {
	t.Helper()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := g.Wait()
		done <- result{code, err}
	}()
	select {
	case r := <-done:
		return r.code, r.err
	case <-time.After(5 * time.Second):
		t.Fatal("the guard has not ended 5 s on")
		return 0, nil
	}
}

// pidIn waits for a pid to be written to path.
func pidIn(t *testing.T, path string) int {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		b, _ := os.ReadFile(path)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return pid
		}
	}
	t.Fatalf("no pid in %s", path)
	return 0
}

// procs lists the live (not zombie) processes that pred picks by pid and process group.
func procs(pred func(pid, pgrp int) bool) []int {
	names, _ := filepath.Glob("/proc/[0-9]*/stat")
	var pids []int
	for _, name := range names {
		b, err := os.ReadFile(name)
		i := strings.LastIndexByte(string(b), ')')
		if err != nil || i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		pid, _ := strconv.Atoi(strings.Split(name, "/")[2])
		pgrp, _ := strconv.Atoi(f[2])
		if f[0] != "Z" && pred(pid, pgrp) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func alive(pid int) bool {
	return len(procs(func(p, _ int) bool { return p == pid })) > 0
}

// group lists the live members of process group pgid.
func group(pgid int) []int { return procs(func(_, g int) bool { return g == pgid }) }

// goneBy polls until nothing of pgid's group nor any of pids lives, and reports whether
// that happened before end.
func goneBy(end time.Time, pgid int, pids ...int) bool {
	for {
		left := len(group(pgid))
		for _, p := range pids {
			if alive(p) {
				left++
			}
		}
		if left == 0 {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wall is the time.Time of a clock reading, for polling with the time package.
func wall(r Reading) time.Time { return time.Now().Add(r.Sub(Now())) }

// aliveUntil polls that pid lives (and file does not exist) until end.
func aliveUntil(t *testing.T, end time.Time, pid int, file string) {
	t.Helper()
	for ; time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		_, err := os.Stat(file)
		if !alive(pid) || err == nil {
			t.Fatalf("COMMAND stopped %v before it was due", time.Until(end))
		}
	}
}

// The lock process is killed (kill -9): COMMAND's whole group goes within Grace, not
// just COMMAND.
func TestParentKilled(t *testing.T) {
	t.Parallel()
	d := t.TempDir()
	grace := 700 * time.Millisecond
	parent := startParent(t, "echo $$ > "+d+"/pid; sleep 600 | cat", Now().Add(time.Minute), grace)
	pgid := pidIn(t, d+"/pid")
	for end := time.Now().Add(5 * time.Second); len(group(pgid)) < 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the group of %d is %v, want sh, sleep and cat", pgid, group(pgid))
		}
	}
	parent.Process.Kill()
	if killed := time.Now(); !goneBy(killed.Add(grace+time.Second), pgid) {
		t.Fatalf("%v after the parent's kill -9, COMMAND's group still has %v", time.Since(killed), group(pgid))
	}
}

// The lock process is frozen (SIGSTOP), so it extends nothing: COMMAND gets SIGTERM at
// deadline-Grace, not earlier, and one that ignores SIGTERM is killed at the deadline.
func TestParentStopped(t *testing.T) {
	t.Parallel()
	const grace = 700 * time.Millisecond
	for name, script := range map[string]string{
		"terminates": "trap 'echo > $D/term; exit 1' TERM; echo $$ > $D/pid; sleep 600 & wait",
		"ignores":    "trap '' TERM; echo $$ > $D/pid; sleep 600",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := t.TempDir()
			deadline := Now().Add(1500 * time.Millisecond)
			parent := startParent(t, "D="+d+"; "+script, deadline, grace)
			pgid := pidIn(t, d+"/pid")
			if err := parent.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			due := deadline.Add(-grace)
			if name == "ignores" {
				due = deadline
			}
			aliveUntil(t, wall(due.Add(-50*time.Millisecond)), pgid, d+"/term")
			if !goneBy(wall(deadline.Add(500*time.Millisecond)), pgid) {
				t.Fatalf("COMMAND's group %v lives %v after the deadline", group(pgid), Now().Sub(deadline))
			}
		})
	}
}

// Extend moves the deadline: COMMAND outlives the first one; Stop then ends it.
func TestExtendAndStop(t *testing.T) {
	t.Parallel()
	d := t.TempDir()
	first := Now().Add(800 * time.Millisecond)
	g, err := Start(options("echo $$ > "+d+"/pid; exec sleep 600", first, 300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Extend(Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	pid := pidIn(t, d+"/pid")
	aliveUntil(t, wall(first.Add(300*time.Millisecond)), pid, d+"/none")
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	if code, err := waitGuard(t, g); code != 128+15 || err != nil {
		t.Fatalf("Wait after Stop: %d, %v; want %d (SIGTERM)", code, err, 128+15)
	}
}

// Signal reaches COMMAND's whole group, and COMMAND decides what to do with it.
func TestSignal(t *testing.T) {
	t.Parallel()
	d := t.TempDir()
	g, err := Start(options("trap 'exit 7' TERM; echo $$ > "+d+"/pid; sleep 600 & wait", Now().Add(time.Minute), time.Second))
	if err != nil {
		t.Fatal(err)
	}
	pgid := pidIn(t, d+"/pid")
	if err := g.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := waitGuard(t, g); code != 7 || err != nil {
		t.Fatalf("Wait: %d, %v; want COMMAND's trap's 7", code, err)
	}
	if left := group(pgid); len(left) > 0 {
		t.Fatalf("COMMAND's group %v outlived the guard", left)
	}
}

// COMMAND's exit is the guard's report: its code, or 128+N for signal N.
func TestExitStatus(t *testing.T) {
	t.Parallel()
	for script, want := range map[string]int{"exit 0": 0, "exit 3": 3, "kill -9 $$": 128 + 9, "kill -INT $$": 128 + 2} {
		g, err := Start(options(script, Now().Add(time.Minute), time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if code, err := waitGuard(t, g); code != want || err != nil {
			t.Errorf("sh -c %q: %d, %v; want %d", script, code, err, want)
		}
		// a renewal's answer can come after COMMAND ended: nothing to do, no error
		// (lite-raft-remote's lock printed "write |1: file already closed")
		if err := g.Extend(Now().Add(time.Minute)); err != nil {
			t.Errorf("Extend after COMMAND ended: %v", err)
		}
		if err := g.Stop(); err != nil {
			t.Errorf("Stop after COMMAND ended: %v", err)
		}
	}
}

// A descendant that leaves COMMAND's group and session (setsid) and ignores SIGTERM is
// still killed, even when COMMAND ended by itself: the guard is its subreaper.
func TestSetsidDescendant(t *testing.T) {
	t.Parallel()
	d := t.TempDir()
	self, _ := os.Executable()
	script := "GUARD_TEST_ROLE=setsid GUARD_TEST_PIDFILE=" + d + "/spid " + self + " & " +
		"while [ ! -s " + d + "/spid ]; do sleep 0.01; done; exit 3"
	start := time.Now()
	g, err := Start(options(script, Now().Add(time.Minute), 300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	code, err := waitGuard(t, g)
	if code != 3 || err != nil {
		t.Fatalf("Wait: %d, %v; want COMMAND's 3", code, err)
	}
	spid := pidIn(t, d+"/spid")
	if alive(spid) {
		t.Fatalf("the descendant %d that called setsid outlived the guard (%v)", spid, time.Since(start))
	}
}

// Start says why COMMAND could not run.
func TestStartErrors(t *testing.T) {
	t.Parallel()
	o := options("", Now().Add(time.Minute), time.Second)
	o.Argv = []string{"no-such-command-here"}
	if _, err := Start(o); err == nil || !strings.Contains(err.Error(), "no-such-command-here") {
		t.Errorf("a missing COMMAND: %v", err)
	}
	o = options("exit 0", Now().Add(500*time.Millisecond), time.Second)
	if _, err := Start(o); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("a deadline within the grace: %v", err)
	}
}

// COMMAND holds neither of the guard's pipes: the lock's end of file must come when the
// lock process dies, not when COMMAND does.
func TestNoLeakedPipes(t *testing.T) {
	t.Parallel()
	g, err := Start(options("for fd in 3 4; do [ -e /proc/$$/fd/$fd ] && exit 9; done; exit 0", Now().Add(time.Minute), time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if code, err := waitGuard(t, g); code != 0 || err != nil {
		t.Fatalf("Wait: %d, %v; 9 means COMMAND holds file 3 or 4", code, err)
	}
}

// The lock process is killed and the place its standard error went to is gone with it
// (an ssh session, closed when its command dies): the guard, whose stderr that is too,
// still stops COMMAND's group (a write there must not end it with SIGPIPE).
func TestParentKilledWithItsStderr(t *testing.T) {
	t.Parallel()
	d := t.TempDir()
	self, _ := os.Executable()
	parent := exec.Command(self)
	parent.Env = append(os.Environ(), "GUARD_TEST_ROLE=parent", "GUARD_TEST_SCRIPT=echo $$ > "+d+"/pid; sleep 600 | cat",
		"GUARD_TEST_DEADLINE="+strconv.FormatInt(int64(Now().Add(time.Minute)), 10), "GUARD_TEST_GRACE=300ms")
	stderr, err := parent.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		parent.Process.Kill()
		parent.Wait()
	})
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "running\n" {
		t.Fatalf("parent: %q, want running", line)
	}
	pgid := pidIn(t, d+"/pid")
	parent.Process.Kill()
	stderr.Close()
	if killed := time.Now(); !goneBy(killed.Add(1300*time.Millisecond), pgid) {
		t.Fatalf("%v after the parent's kill -9 (its stderr closed), COMMAND's group still has %v", time.Since(killed), group(pgid))
	}
}
