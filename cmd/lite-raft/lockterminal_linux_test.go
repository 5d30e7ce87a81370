package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLockOnTerminal: a lock run from an interactive shell (its terminal the controlling
// one, its process group in the foreground) gives the terminal to COMMAND's group, so
// that ^C typed there reaches COMMAND (and what COMMAND started) and not only `lock`:
// COMMAND's group is the terminal's foreground group, ^C ends it, and lock exits 130
// having released the lock.
func TestLockOnTerminal(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	ptmx, tty := openPty(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	statFile := filepath.Join(dir, "stat")
	// COMMAND writes its /proc stat (field 5: its process group, 8: the terminal's
	// foreground group), then waits for ^C
	lock := exec.Command(exe, "--dir", dir, "client", "lock", "tty", "--ttl", "3s", "--",
		"sh", "-c", "cat /proc/$$/stat >"+statFile+".tmp; mv "+statFile+".tmp "+statFile+"; sleep 600")
	lock.Env = append(os.Environ(), "LITE_RAFT_TEST_AS_MAIN=1")
	lock.Stdin, lock.Stdout, lock.Stderr = tty, tty, tty
	// a session of its own with the terminal as its controlling one, in the foreground,
	// as a shell runs a command
	lock.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := lock.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	t.Cleanup(func() { lock.Process.Kill() })
	go io.Copy(io.Discard, ptmx) // what is written to the terminal
	var stat []string
	for deadline := time.Now().Add(10 * time.Second); stat == nil; {
		if b, err := os.ReadFile(statFile); err == nil {
			// the command name, field 2, is in parentheses and has no spaces here
			stat = strings.Fields(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatal("COMMAND did not start")
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	if len(stat) < 8 || stat[4] != stat[7] || stat[4] == strconv.Itoa(lock.Process.Pid) {
		t.Fatalf("COMMAND's process group %s, the terminal's foreground group %s, lock's pid %d: want COMMAND's own group in the foreground",
			stat[4], stat[7], lock.Process.Pid)
	}
	if _, err := ptmx.Write([]byte{3}); err != nil { // ^C
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- lock.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("lock still runs 10 s after ^C")
	}
	if code := lock.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("lock exited %d after ^C, want 130 (COMMAND ended by SIGINT)", code)
	}
	if out, code := runApp(t, "--dir", dir, "client", "locks", "tty"); code != 9 {
		t.Fatalf("locks tty after lock ended: exit %d %q, want 9 (released)", code, out)
	}
}

// openPty opens a pseudo-terminal pair: the master, and the terminal for the child.
func openPty(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock the terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("name the terminal: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ptmx, tty
}
