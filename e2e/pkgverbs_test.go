package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPkgMoveUntilRunning (issue 27), on three package hosts: pkg move --until-running
// exits 0 once the package runs on a live target, 1 when the target's start fails (the
// package goes on elsewhere), and 1 when the target's monitor freezes after the move
// was asked: the move lapses after the owner's wait, the history says so, and another
// stand-by takes the package. Never two owners.
func TestPkgMoveUntilRunning(t *testing.T) {
	c, hosts := pkgClusterN(t, 3)
	h4, h5 := c.runWeb(hosts)
	h6 := hosts[2]
	c.must(h6, "./pkg run web")

	start := time.Now()
	out := c.must(h4, "./pkg move --until-running 20s web host5")
	if !strings.Contains(out, "package web runs on host5") {
		t.Fatalf("pkg move --until-running to a live target said:\n%s", out)
	}
	t.Logf("move to a live target: exit 0 after %v", time.Since(start).Round(10*time.Millisecond))
	c.waitOwner(h4, "web", "host5", time.Second)

	// the target's start fails: 1, and the package runs on elsewhere
	if err := os.WriteFile(filepath.Join(h6.Dir, "fail-start"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.eventually(15*time.Second, "host6 standing by", func() (bool, string) {
		p, out := c.pkgStatusJSON(h4, "web")
		return p.fresh("host6"), out
	})
	o, e, code := c.lr(h4, "./pkg move --until-running 20s web host6")
	if code != 1 {
		t.Fatalf("pkg move --until-running to a host whose start fails: exit %d, want 1\n%s%s", code, o, e)
	}
	t.Logf("move to a failing target: exit 1: %s", strings.TrimSpace(e))
	c.eventually(20*time.Second, "web running on host4 or host5 after host6's start failed", func() (bool, string) {
		p, out := c.pkgStatusJSON(h4, "web")
		return (p.Owner == "host4" || p.Owner == "host5") && p.State == "running", out
	})
	os.Remove(filepath.Join(h6.Dir, "fail-start"))
	// a host whose start failed gives up: its monitor ends, and starts again by hand
	c.must(h6, "./pkg run web")

	// the target freezes once the move is asked: the move lapses
	c.eventually(15*time.Second, "host6 standing by again", func() (bool, string) {
		p, out := c.pkgStatusJSON(h4, "web")
		return p.fresh("host6") && p.Owner != "host6", out
	})
	if n, err := h6.Signal(`lite-raft .*pkg (monitor|supervise) web`, syscall.SIGSTOP); err != nil || n != 2 {
		t.Fatalf("freeze host6's monitor and supervisor: %d %v", n, err)
	}
	frozen := time.Now()
	o, e, code = c.lr(h4, "./pkg move --until-running 30s web host6")
	lapsed := time.Since(frozen)
	h6.Signal(`lite-raft .*pkg (monitor|supervise) web`, syscall.SIGCONT)
	if code != 1 || !strings.Contains(e, "the move of web to host6 is over") {
		t.Fatalf("pkg move --until-running to a target frozen: exit %d, want 1 (the move over)\n%s%s", code, o, e)
	}
	c.eventually(20*time.Second, "web running on host4 or host5 after the move lapsed", func() (bool, string) {
		p, out := c.pkgStatusJSON(h4, "web")
		return (p.Owner == "host4" || p.Owner == "host5") && p.State == "running" && p.Move == "", out
	})
	hist := c.must(h4, "./pkg status web")
	if !strings.Contains(hist, "the move to host6 lapsed: its monitor has not reported for") {
		t.Fatalf("the history does not tell the lapsed move:\n%s", hist)
	}
	t.Logf("move to a target frozen: exit 1 %v after the freeze: %s", lapsed.Round(10*time.Millisecond), strings.TrimSpace(e))
	checkNeverTwice(t, events(t, hosts))
	_ = h5
}
