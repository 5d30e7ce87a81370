package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"lite-raft/internal/harness"
)

// TestPkgOperatorVerbs (issue 27), on three package hosts: pkg move --until-running
// exits 0 once the package runs on a live target, 1 when the target's start fails (the
// package goes on elsewhere), and 1 when the target's monitor freezes after the move
// was asked: the move lapses after the owner's wait, the history says so, and another
// stand-by takes the package. Never two owners. Then pkg evacuate and unevacuate
// (pkgEvacuate), on the same hosts.
func TestPkgOperatorVerbs(t *testing.T) {
	c, hosts := pkgClusterN(t, 3)
	h4, _ := c.runWeb(hosts)
	h6 := hosts[2]
	c.must(h6, "./pkg run web")
	pkgCheck(c, h4)

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
	// a host whose start failed gives up, its monitor staying: cleanup lets it stand by
	c.must(h4, "./pkg cleanup web host6")

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
	pkgEvacuate(c, hosts)
	pkgFallAndFailureTimeout(c, hosts)
	pkgLastGiveUpNotified(c, hosts)
	pkgFastTakeover(c, hosts)
}

// pkgFastTakeover: with two stand-bys, the owner's monitor and supervisor killed -9, then
// the next owner's monitor frozen: each time a stand-by fences the old owner (which still
// answers ssh) and starts the package within 2 s, the old package stopped first.
func pkgFastTakeover(c *cluster, hosts []*harness.Host) {
	t := c.t
	owner := func() *harness.Host {
		p, _ := c.pkgStatusJSON(hosts[0], "web")
		for _, h := range hosts {
			if h.Name == p.Owner {
				return h
			}
		}
		t.Fatalf("web's owner %q is no package host", p.Owner)
		return nil
	}
	newOwner := func(old *harness.Host) *harness.Host {
		var to *harness.Host
		c.eventually(10*time.Second, "a new owner running web", func() (bool, string) {
			p, out := c.pkgStatusJSON(hosts[0], "web")
			if p.Owner != "" && p.Owner != old.Name && p.State == "running" {
				to = owner()
				return true, ""
			}
			return false, out
		})
		return to
	}
	first := owner()
	for _, pat := range []string{`lite-raft .*pkg supervise web`, `lite-raft .*pkg monitor web`} {
		if n, err := first.Signal(pat, 9); err != nil || n != 1 {
			t.Fatalf("kill %s on %s: %d %v", pat, first.Name, n, err)
		}
	}
	killed := uptime(t)
	second := newOwner(first)
	c.checkTakeover(hosts, nil, first.Name, second.Name, killed, 2)
	c.must(first, "./pkg run web")
	if n, err := second.Signal(`lite-raft .*pkg monitor web`, syscall.SIGSTOP); err != nil || n != 1 {
		t.Fatalf("freeze %s's monitor: %d %v", second.Name, n, err)
	}
	frozen := uptime(t)
	third := newOwner(second)
	second.Signal(`lite-raft .*pkg monitor web`, syscall.SIGCONT)
	c.checkTakeover(hosts, nil, second.Name, third.Name, frozen, 2)
	checkNeverTwice(t, events(t, hosts))
}

// pkgLastGiveUpNotified: the service fails on every host; each gives the package up in
// turn, and the last give-up (the package down everywhere) is notified, once, like every
// transition before it: the notify commands' lines, on all hosts, number the history
// 1, 2, 3 ... with no gap and no repeat.
func pkgLastGiveUpNotified(c *cluster, hosts []*harness.Host) {
	t := c.t
	for _, h := range hosts {
		writeTestScript(t, h, "web", "pace=0.3 timeout=3 stop_timeout=1 start_timeout=5 preferred_owner=host4 restarts=0")
		path := filepath.Join(h.Dir, "control-scripts", "web")
		b, _ := os.ReadFile(path)
		s := strings.Replace(string(b), "\nnotify=\"\"", "\nnotify='echo \"$LITE_RAFT_PKG_EVENT_NUMBER $LITE_RAFT_PKG_HOST $LITE_RAFT_PKG_EVENT\" >> /opt/lite-raft/notified'", 1)
		if s == string(b) {
			t.Fatal("the test script has no notify line to set")
		}
		os.WriteFile(path, []byte(s), 0o755)
	}
	c.must(hosts[0], "./pkg init --update web")
	for _, h := range hosts {
		c.must(h, "touch force-down")
	}
	var last string
	c.eventually(60*time.Second, "every host gave web up", func() (bool, string) {
		out := c.must(hosts[0], "./pkg status web")
		gaveUp := 0
		for _, h := range hosts {
			if strings.Contains(out, h.Name+" gave up here") {
				gaveUp++
			}
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		last = lines[len(lines)-1]
		return gaveUp == len(hosts) && strings.Contains(last, "gave up here"), out
	})
	// the history line "TIME HOST EVENT" of the last give-up, as notify gets it
	f := strings.SplitN(last, " ", 3)
	want := f[1] + " " + f[2]
	var all []string
	c.eventually(20*time.Second, "the last give-up notified", func() (bool, string) {
		all = nil
		for _, h := range hosts {
			b, _ := os.ReadFile(filepath.Join(h.Dir, "notified"))
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if l != "" {
					all = append(all, l)
				}
			}
		}
		for _, l := range all {
			if _, rest, _ := strings.Cut(l, " "); rest == want {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d lines notified", len(all))
	})
	seen := map[int]string{}
	top, times := 0, 0
	for _, l := range all {
		num, rest, _ := strings.Cut(l, " ")
		n, err := strconv.Atoi(num)
		if err != nil {
			t.Fatalf("notified %q: no event number", l)
		}
		if prev, dup := seen[n]; dup {
			t.Fatalf("event %d notified twice: %q and %q", n, prev, l)
		}
		seen[n] = l
		top = max(top, n)
		if rest == want {
			times++
		}
	}
	if len(seen) != top || times != 1 {
		t.Fatalf("%d events notified, numbered up to %d; the last give-up %q %d times", len(seen), top, want, times)
	}
	t.Logf("the last give-up (%s) notified once, as event %d of %d", want, top, len(seen))
	for _, h := range hosts {
		c.must(h, "rm -f force-down")
	}
	c.must(hosts[1], "./pkg cleanup web")
	c.eventually(20*time.Second, "web running again after pkg cleanup", func() (bool, string) {
		p, out := c.pkgStatusJSON(hosts[1], "web")
		return p.Owner != "" && p.State == "running", out
	})
	checkNeverTwice(t, events(t, hosts))
}

// pkgFallAndFailureTimeout: with fall=3, restarts=1 and failure_timeout=3 on host4, the
// owner: two failed status runs in a row do nothing; three restart it; three more after
// failure_timeout restart it again (the restart forgotten); three more at once fail it
// over.
func pkgFallAndFailureTimeout(c *cluster, hosts []*harness.Host) {
	t := c.t
	h4 := hosts[0]
	writeTestScript(t, h4, "web", "pace=0.3 timeout=3 stop_timeout=1 start_timeout=5 preferred_owner=host4 restarts=1 failback=auto fall=3 failure_timeout=3")
	logged := strings.Count(readFile(t, filepath.Join(h4.Dir, "message-log", "pkg-web.log")), "web: new settings in force")
	c.must(h4, "./pkg init --update web")
	c.waitOwner(h4, "web", "host4", 10*time.Second)
	c.eventually(10*time.Second, "host4's monitor using fall=3", func() (bool, string) {
		return strings.Count(readFile(t, filepath.Join(h4.Dir, "message-log", "pkg-web.log")), "web: new settings in force") > logged, ""
	})
	const restartLine = "host4 status 1: local restart 1 of 1"
	restarts := func() int {
		return strings.Count(c.must(h4, "./pkg status web"), restartLine)
	}
	// the wait for a restart says what the history held when it gave up; its bound is
	// slack for a loaded machine (the full e2e run once took more than 5 s), not a
	// figure under test
	restarted := func(n int) func() (bool, string) {
		return func() (bool, string) {
			out := c.must(h4, "./pkg status web")
			return strings.Count(out, restartLine) == n, out
		}
	}
	before := restarts()
	failStatus := func(n int) {
		if err := os.WriteFile(filepath.Join(h4.Dir, "fail-status"), []byte(fmt.Sprint(n)), 0o644); err != nil {
			t.Fatal(err)
		}
		c.eventually(10*time.Second, fmt.Sprintf("%d failed status runs on host4", n), func() (bool, string) {
			b, _ := os.ReadFile(filepath.Join(h4.Dir, "fail-status"))
			return strings.TrimSpace(string(b)) == "0", string(b)
		})
	}
	failStatus(2)
	time.Sleep(time.Second) // three paces for anything to follow that should not
	if n := restarts(); n != before {
		t.Fatalf("two failed status runs with fall=3: %d restarts (before %d)", n, before)
	}
	c.waitOwner(h4, "web", "host4", time.Second)
	failStatus(3)
	c.eventually(15*time.Second, "a restart after three failed status runs", restarted(before+1))
	c.waitOwner(h4, "web", "host4", 5*time.Second)
	time.Sleep(3500 * time.Millisecond) // failure_timeout (3 s) without a failure: the time is what is tested
	failStatus(3)
	c.eventually(15*time.Second, "a restart again after failure_timeout", restarted(before+2))
	c.waitOwner(h4, "web", "host4", 5*time.Second)
	failStatus(3) // at once: the restart is not forgotten, so it fails over
	c.eventually(15*time.Second, "web failed over from host4", func() (bool, string) {
		p, out := c.pkgStatusJSON(h4, "web")
		return p.Owner != "" && p.Owner != "host4" && p.State == "running", out
	})
	if n := restarts(); n != before+2 {
		t.Fatalf("%d restarts, want %d", n, before+2)
	}
	checkNeverTwice(t, events(t, hosts))
}

// pkgEvacuate: with host4 the preferred owner and failback=auto, pkg evacuate host4
// hands the package over and host4 starts it no more, failback and pkg move included,
// until pkg unevacuate host4, after which failback brings it back.
func pkgEvacuate(c *cluster, hosts []*harness.Host) {
	t := c.t
	h4, h5 := hosts[0], hosts[1]
	writeTestScript(t, h4, "web", "pace=0.3 timeout=3 stop_timeout=1 start_timeout=5 preferred_owner=host4 restarts=1 failback=auto")
	c.must(h4, "./pkg init --update web")
	c.waitOwner(h5, "web", "host4", 20*time.Second) // failback
	out := c.must(h5, "./pkg evacuate --wait 20s host4")
	if !strings.Contains(out, "web: handed over from host4") || !strings.Contains(out, "host4 owns no package") {
		t.Fatalf("pkg evacuate host4 said:\n%s", out)
	}
	from := uptime(t)
	c.eventually(20*time.Second, "web running on host5 or host6", func() (bool, string) {
		p, out := c.pkgStatusJSON(h5, "web")
		return (p.Owner == "host5" || p.Owner == "host6") && p.State == "running" && slices.Equal(p.Evacuated, []string{"host4"}), out
	})
	if o, e, code := c.lr(h5, "./pkg move web host4"); code != 1 || !strings.Contains(e, "host4 is evacuated") {
		t.Fatalf("pkg move to an evacuated host: exit %d, want 1\n%s%s", code, o, e)
	}
	// failback=auto and its preferred owner standing by: it would ask within a pace or two
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		if p, out := c.pkgStatusJSON(h5, "web"); p.Owner == "host4" || p.Move == "host4" {
			t.Fatalf("host4, evacuated, owns or is asked the package:\n%s", out)
		}
		time.Sleep(300 * time.Millisecond) // sampling what must not happen, over a set time
	}
	status := c.must(h5, "./pkg status web")
	if !strings.Contains(status, "evacuated (pkg evacuate; it runs on none of them until pkg unevacuate): host4") ||
		!strings.Contains(status, "host4 evacuated (pkg evacuate)") {
		t.Fatalf("pkg status does not show host4 evacuated:\n%s", status)
	}
	c.must(h5, "./pkg unevacuate host4")
	until := uptime(t)
	c.waitOwner(h5, "web", "host4", 20*time.Second) // failback again
	for _, e := range events(t, hosts) {
		if e.host == "host4" && e.verb == "start" && e.at > from && e.at < until {
			t.Fatalf("host4 started web at %.2f, evacuated from %.2f to %.2f", e.at, from, until)
		}
	}
	if p, out := c.pkgStatusJSON(h5, "web"); len(p.Evacuated) != 0 {
		t.Fatalf("after pkg unevacuate:\n%s", out)
	}
	checkNeverTwice(t, events(t, hosts))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// pkgCheck: check --pkg web (through lite-raft-remote, as a package host runs it) exits
// 0 running with a stand-by, 1 in maintenance, 2 halted, with performance data.
func pkgCheck(c *cluster, h *harness.Host) {
	t := c.t
	check := func(want int, has string) {
		t.Helper()
		c.eventually(10*time.Second, fmt.Sprintf("check --pkg web exiting %d", want), func() (bool, string) {
			o, e, code := c.lr(h, "./lite-raft-remote check --pkg web")
			return code == want && strings.Contains(o, has) && strings.Contains(o, "| generation="), fmt.Sprintf("exit %d %s%s", code, o, e)
		})
	}
	check(0, "LITE-RAFT PKG OK - web running on host4, standing by: ")
	c.must(h, "./pkg disable web")
	check(1, "LITE-RAFT PKG WARNING - web in maintenance")
	c.must(h, "./pkg enable web")
	c.must(h, "./pkg halt web")
	check(2, "LITE-RAFT PKG CRITICAL - web is halted")
	c.must(h, "./pkg resume web")
	check(0, "LITE-RAFT PKG OK - web running on ")
	// a halt lifted by pkg run where the monitor runs on
	c.must(h, "./pkg halt web")
	check(2, "LITE-RAFT PKG CRITICAL - web is halted")
	c.expect(h, "./pkg run web | sed 's/ (pid [0-9]*)//'", 0, "halt of web lifted; its monitor already runs on "+h.Name)
	check(0, "LITE-RAFT PKG OK - web running on ")
	o, _, _ := c.lr(h, "./lite-raft-remote check --pkg web --json")
	if !strings.Contains(o, `"state":"OK"`) || !strings.Contains(o, `"package":"web"`) {
		t.Fatalf("check --pkg --json: %s", o)
	}
	// back where the next parts expect it (after the halt, any host may have taken it)
	c.must(h, "./pkg move --wait 10s --until-running 20s web host4")
}
