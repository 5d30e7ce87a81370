package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"lite-raft/internal/harness"
)

// Issue 25's cases on real sshd: a control script whose stop fails (exit 1 with the
// service left up, as `umount: target is busy` does) or hangs past stop_timeout, on
// three package hosts. Whatever starts or stops it, the package must never run on two
// hosts at once, and a failed stop leaves it stop-failed on its host until that host is
// fenced (fence-stop there finds it stopped) or an operator confirms it.
//
// With the old release-to-nobody planted back (decide.AfterStop releasing after a failed
// stop), pkg stop and pkg move fail at once: a stand-by started the package while the
// owner whose stop had failed (or hung) still ran it; pkg halt fails finding the package
// released (halted, no owner) instead of stop-failed. Releasing to nobody after a failed
// fence (monitor.notStarted) fails the takeover case: stand-bys take it from nobody over
// and over, each fencing in vain, instead of handing it back stop-failed.

// stopFailSettings: pace 0.3 s, timeout 3 s, stop_timeout 1 s (the rule: stop_timeout +
// pace below timeout), no local restart (a failing status fails the package over at once).
const stopFailSettings = "pace=0.3 timeout=3 stop_timeout=1 start_timeout=5 preferred_owner=host4 restarts=0"

// writeStopFailScript is the test script (writeTestScript) whose stop fails while the
// host's folder holds stop-fails (exit 1, nothing stopped, no stop event) and hangs while
// it holds stop-hangs (past stop_timeout, so the monitor kills it; nothing stopped). Its
// notify appends "HOST EVENT" to the folder's notified.
func writeStopFailScript(t *testing.T, h *harness.Host) {
	t.Helper()
	writeTestScript(t, h, "web", stopFailSettings)
	path := filepath.Join(h.Dir, "control-scripts", "web")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "service_stop()   { ", `service_stop()   { while [ -f /opt/lite-raft/stop-hangs ]; do sleep 0.05; done
	if [ -f /opt/lite-raft/stop-fails ]; then echo "umount: /srv/web: target is busy" >&2; exit 1; fi
	`, 1)
	s = strings.Replace(s, "\nnotify=\"\"", "\nnotify='echo \"$LITE_RAFT_PKG_HOST $LITE_RAFT_PKG_EVENT\" >> /opt/lite-raft/notified'", 1)
	if !strings.Contains(s, "stop-fails") || !strings.Contains(s, "/opt/lite-raft/notified") {
		t.Fatal("the test script changed: writeStopFailScript no longer finds its stop or notify")
	}
	if err := os.WriteFile(path, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
}

// svcWatch polls, on every package host, whether the test service (its `sleep 100000`)
// is alive, and notes every moment it was alive on two hosts at once.
type svcWatch struct {
	hosts []*harness.Host
	mu    sync.Mutex
	alive []string // hosts running it at the last poll
	twice []string // "at UPTIME: HOSTS"
	polls int
	quit  chan struct{}
	done  chan struct{}
}

func watchService(hosts []*harness.Host) *svcWatch {
	w := &svcWatch{hosts: hosts, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			var alive []string
			for _, h := range w.hosts {
				procs, _ := h.Procs()
				for _, p := range procs {
					if p.Cmdline == "sleep 100000" {
						alive = append(alive, h.Name)
						break
					}
				}
			}
			w.mu.Lock()
			w.alive = alive
			w.polls++
			if len(alive) > 1 {
				w.twice = append(w.twice, fmt.Sprintf("at %.2f: %s", upNow(), strings.Join(alive, " ")))
			}
			w.mu.Unlock()
			select {
			case <-w.quit:
				return
			case <-time.After(50 * time.Millisecond): // sampling the services
			}
		}
	}()
	return w
}

func (w *svcWatch) stop() { close(w.quit); <-w.done }

// now is where the service runs, after a poll that began after this call.
func (w *svcWatch) now() []string {
	w.mu.Lock()
	n := w.polls
	w.mu.Unlock()
	for {
		w.mu.Lock()
		if w.polls >= n+2 {
			defer w.mu.Unlock()
			return append([]string(nil), w.alive...)
		}
		w.mu.Unlock()
		time.Sleep(10 * time.Millisecond) // waiting for the next poll (50 ms apart)
	}
}

// twiceSince is how many polls found the service on two hosts, from the n-th on.
func (w *svcWatch) twiceSince(n int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.twice[min(n, len(w.twice)):]...)
}

func (w *svcWatch) twiceCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.twice)
}

// upNow is uptime for goroutines that may not touch t.
func upNow() float64 {
	b, _ := os.ReadFile("/proc/uptime")
	f, _ := strconv.ParseFloat(strings.Fields(string(b) + " 0")[0], 64)
	return f
}

// stopFailRun is one case's view of the shared cluster.
type stopFailRun struct {
	*cluster
	hosts []*harness.Host
	w     *svcWatch
	from  float64        // uptime when the case began
	twice int            // svcWatch.twice when it began
	notes map[string]int // lines in each host's notified when it began
}

func (r *stopFailRun) host(name string) *harness.Host {
	for _, h := range r.hosts {
		if h.Name == name {
			return h
		}
	}
	r.t.Fatalf("no package host %s", name)
	return nil
}

func (r *stopFailRun) mark(h *harness.Host, marker string) {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(h.Dir, marker), nil, 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *stopFailRun) unmark(h *harness.Host, marker string) {
	r.t.Helper()
	if err := os.Remove(filepath.Join(h.Dir, marker)); err != nil && !os.IsNotExist(err) {
		r.t.Fatal(err)
	}
}

// settle begins a case: no markers, a monitor on every package host, the package
// running on exactly one host (per pkg status and per the services alive), every other
// host standing by. It returns the owner.
func (r *stopFailRun) settle() *harness.Host {
	r.t.Helper()
	for _, h := range r.hosts {
		for _, m := range []string{"stop-fails", "stop-hangs", "force-down"} {
			r.unmark(h, m)
		}
		if n, err := h.Signal(`lite-raft .*pkg (monitor|supervise) web`, 0); err != nil || n == 0 {
			r.must(h, "./pkg run web")
		}
	}
	var owner string
	r.eventually(30*time.Second, "web running on one host, the others standing by", func() (bool, string) {
		p, out := r.pkgStatusJSON(r.hosts[0], "web")
		if p.State != "running" || p.Halted || p.Move != "" {
			return false, out
		}
		for _, h := range r.hosts {
			if h.Name != p.Owner && !p.fresh(h.Name) {
				return false, out
			}
		}
		alive := r.w.now()
		owner = p.Owner
		return slices.Equal(alive, []string{owner}), fmt.Sprintf("service alive on %v\n%s", alive, out)
	})
	r.from, r.twice = uptime(r.t), r.w.twiceCount()
	r.notes = map[string]int{}
	for h, lines := range r.notifiedLines() {
		r.notes[h] = len(lines)
	}
	return r.host(owner)
}

// stopFailed waits until the package is stop-failed on h, per pkg status in JSON and in
// text, and returns how long that took.
func (r *stopFailRun) stopFailed(h *harness.Host, within time.Duration) time.Duration {
	r.t.Helper()
	start := time.Now()
	movedOn := func(p pkgJSON) bool { return p.Owner != "" && p.Owner != h.Name && p.State == "running" }
	// (moved on to another host: did it start while h may still run it?)
	checkMovedOn := func(out string) {
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) { // sampling
			r.noOverlap()
		}
		r.t.Fatalf("web moved on from %s before pkg status showed it stop-failed there:\n%s", h.Name, out)
	}
	r.eventually(within, "web stop-failed on "+h.Name, func() (bool, string) {
		p, out := r.pkgStatusJSON(r.hosts[0], "web")
		if movedOn(p) {
			checkMovedOn(out)
		}
		return p.Owner == h.Name && p.State == "stop-failed", out
	})
	d := time.Since(start)
	out := r.must(r.hosts[1], "./pkg status web")
	if !strings.Contains(out, "its stop FAILED on "+h.Name) || !strings.Contains(out, "pkg confirm-stopped web "+h.Name) {
		if p, jout := r.pkgStatusJSON(r.hosts[0], "web"); movedOn(p) {
			checkMovedOn(jout)
		}
		r.t.Fatalf("pkg status does not say where the stop failed and what releases it:\n%s", out)
	}
	return d
}

// notifiedLines is every line the notify commands appended, on all package hosts.
func (r *stopFailRun) notifiedLines() map[string][]string {
	all := map[string][]string{}
	for _, h := range r.hosts {
		b, _ := os.ReadFile(filepath.Join(h.Dir, "notified"))
		if s := strings.TrimSpace(string(b)); s != "" {
			all[h.Name] = strings.Split(s, "\n")
		}
	}
	return all
}

// notified waits for a notification, since the case began, that the stop failed or the
// package is stop-failed, and returns it.
func (r *stopFailRun) notified() string {
	r.t.Helper()
	var got string
	r.eventually(15*time.Second, "a notification that web's stop failed", func() (bool, string) {
		var seen []string
		for h, lines := range r.notifiedLines() {
			for _, l := range lines[min(r.notes[h], len(lines)):] {
				seen = append(seen, l)
				if strings.Contains(l, "stop FAILED") || strings.Contains(l, "stop-failed") {
					got = l
					return true, ""
				}
			}
		}
		return false, strings.Join(seen, "\n")
	})
	return got
}

func (r *stopFailRun) history() string {
	p, _ := r.pkgStatusJSON(r.hosts[0], "web")
	var b strings.Builder
	for _, e := range p.History {
		fmt.Fprintf(&b, "%s %s\n", e.Host, e.Event)
	}
	return b.String()
}

// failedFences counts the stand-bys' fencing attempts on h that found the package still
// up there, in the history since the case began.
func (r *stopFailRun) failedFences(h *harness.Host) int {
	p, _ := r.pkgStatusJSON(r.hosts[0], "web")
	n := 0
	for _, e := range p.History {
		at, err := time.Parse(time.RFC3339Nano, e.Time)
		if err == nil && time.Since(at) < time.Duration((uptime(r.t)-r.from+1)*float64(time.Second)) &&
			strings.HasPrefix(e.Event, "fencing "+h.Name+": still up there") {
			n++
		}
	}
	return n
}

// holds checks for d that the service runs on h alone and that nobody else started it
// since the case began, while pkg status keeps it stop-failed on h; it returns the
// failed fences seen.
func (r *stopFailRun) holds(h *harness.Host, d time.Duration, wantFences int) int {
	r.t.Helper()
	end := time.Now().Add(d)
	for {
		r.noOverlap()
		if alive := r.w.now(); !slices.Equal(alive, []string{h.Name}) {
			r.t.Fatalf("the service should run on %s alone: it runs on %v", h.Name, alive)
		}
		for _, e := range events(r.t, r.hosts) {
			if e.verb == "start" && e.at >= r.from {
				r.t.Fatalf("%s started web at %.2f while it was stop-failed on %s", e.host, e.at, h.Name)
			}
		}
		if p, out := r.pkgStatusJSON(r.hosts[0], "web"); p.Owner != h.Name || p.State != "stop-failed" {
			r.t.Fatalf("web should stay stop-failed on %s:\n%s", h.Name, out)
		}
		if time.Now().After(end) {
			if n := r.failedFences(h); n >= wantFences {
				return n
			}
			if time.Now().After(end.Add(20 * time.Second)) {
				r.t.Fatalf("%d failed fences of %s in the history, want %d or more:\n%s", r.failedFences(h), h.Name, wantFences, r.history())
			}
		}
		time.Sleep(200 * time.Millisecond) // sampling, bounded by d
	}
}

// noOverlap fails if the service ran on two hosts at once since the case began, per the
// polls and per the scripts' event logs.
func (r *stopFailRun) noOverlap() {
	r.t.Helper()
	if tw := r.w.twiceSince(r.twice); len(tw) > 0 {
		r.t.Fatalf("the service ran on two hosts at once: %s\nevents: %v", strings.Join(tw, "; "), events(r.t, r.hosts))
	}
	checkNeverTwice(r.t, events(r.t, r.hosts))
}

// takenOver waits, once the host whose stop failed can be fenced (from at), until
// another host runs the package: its stop first, then the new owner's start, then pkg
// status. It returns the new owner and how long after at it started.
func (r *stopFailRun) takenOver(old *harness.Host, at float64, within time.Duration) (string, float64) {
	r.t.Helper()
	var to string
	var startAt, stopAt float64
	r.eventually(within, "another host starting web after "+old.Name+" was fenced", func() (bool, string) {
		evs := events(r.t, r.hosts)
		for _, e := range evs {
			if e.at >= at && e.verb == "stop" && e.host == old.Name && stopAt == 0 {
				stopAt = e.at
			}
			if e.at >= at && e.verb == "start" && e.host != old.Name {
				to, startAt = e.host, e.at
				return true, ""
			}
		}
		return false, fmt.Sprint(evs)
	})
	if stopAt == 0 || stopAt > startAt {
		r.t.Fatalf("%s started web at %.2f, and %s's stop was not before it (%.2f)\nevents: %v", to, startAt, old.Name, stopAt, events(r.t, r.hosts))
	}
	r.waitOwner(r.hosts[0], "web", to, 10*time.Second)
	r.noOverlap()
	r.eventually(5*time.Second, "the service on "+to+" alone", func() (bool, string) {
		alive := r.w.now()
		return slices.Equal(alive, []string{to}), fmt.Sprint(alive)
	})
	return to, startAt - at
}

// TestPkgStopFails: issue 25's stop-failure cases on one cluster of three raft members and
// three package hosts: pkg stop, pkg move (stop hangs), pkg halt, a takeover whose fencing
// fails, a failing status. Each case ends running on one host, or stop-failed on the
// old owner with a notification; never on two hosts at once.
func TestPkgStopFails(t *testing.T) {
	c, hosts := pkgClusterN(t, 3)
	for _, h := range hosts {
		writeStopFailScript(t, h)
	}
	c.must(hosts[0], "./pkg init web")
	for _, h := range hosts {
		c.must(h, "./pkg run web")
	}
	c.waitOwner(hosts[1], "web", "host4", 20*time.Second)
	w := watchService(hosts)
	defer w.stop()
	var summary []string
	report := func(r *stopFailRun, format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		r.t.Log(line)
		summary = append(summary, line)
	}
	run := func(name string, f func(r *stopFailRun)) {
		t.Run(name, func(t *testing.T) {
			f(&stopFailRun{cluster: &cluster{t: t, Cluster: c.Cluster}, hosts: hosts, w: w})
		})
	}

	// 1. pkg stop on the owner while its stop fails
	run("stop", func(r *stopFailRun) {
		o := r.settle()
		r.mark(o, "stop-fails")
		// pkg stop says the stop failed, and exits 1
		if _, errOut, code := r.lr(o, "./pkg stop web"); code != 1 || !strings.Contains(errOut, "stop FAILED") {
			r.t.Fatalf("pkg stop with a failing stop: exit %d %q, want 1 and the failed stop named", code, errOut)
		}
		took := r.stopFailed(o, 10*time.Second)
		note := r.notified()
		fences := r.holds(o, 4*time.Second, 2)
		held := uptime(r.t) - r.from
		r.unmark(o, "stop-fails")
		freed := uptime(r.t)
		to, after := r.takenOver(o, freed, 64*300*time.Millisecond+10*time.Second)
		report(r, "case 1 pkg stop, stop fails: stop-failed on %s %.2f s after pkg stop (notified %q); %d failed fences, no start for %.1f s; stop-fails removed: %s fenced it and started %.2f s later",
			o.Name, took.Seconds(), note, fences, held, to, after)
	})

	// 2. pkg move while the owner's stop hangs
	run("move", func(r *stopFailRun) {
		o := r.settle()
		target := others(hosts, o)[0]
		r.mark(o, "stop-hangs")
		r.must(o, "./pkg move web "+target.Name)
		took := r.stopFailed(o, 10*time.Second)
		note := r.notified()
		fences := r.holds(o, 4*time.Second, 1)
		held := uptime(r.t) - r.from
		r.unmark(o, "stop-hangs")
		freed := uptime(r.t)
		to, after := r.takenOver(o, freed, 64*300*time.Millisecond+10*time.Second)
		if to != target.Name {
			r.t.Errorf("moved to %s, started on %s", target.Name, to)
		}
		report(r, "case 2 pkg move to %s, stop hangs: stop-failed on %s %.2f s after pkg move (notified %q); %d failed fences, no start for %.1f s; stop-hangs removed: %s fenced it and started %.2f s later",
			target.Name, o.Name, took.Seconds(), note, fences, held, to, after)
	})

	// 3. pkg halt while the stop fails; confirm-stopped after stopping it by hand
	run("halt", func(r *stopFailRun) {
		o := r.settle()
		r.mark(o, "stop-fails")
		r.must(others(hosts, o)[0], "./pkg halt web")
		took := r.stopFailed(o, 10*time.Second)
		note := r.notified()
		r.holds(o, 4*time.Second, 0)
		held := uptime(r.t) - r.from
		// the operator stops the service by hand, says so in the event log, and confirms
		r.must(o, `kill "$(cat /tmp/svc.pid)" && rm -f /tmp/svc.pid && echo "stop $(hostname) $(cut -d' ' -f1 /proc/uptime) by-hand" >> events`)
		r.eventually(5*time.Second, "the service gone after kill", func() (bool, string) {
			alive := r.w.now()
			return len(alive) == 0, fmt.Sprint(alive)
		})
		r.must(r.hosts[0], "./pkg confirm-stopped web "+o.Name)
		confirmed := uptime(r.t)
		r.eventually(5*time.Second, "web released, still halted", func() (bool, string) {
			p, out := r.pkgStatusJSON(r.hosts[0], "web")
			return p.Owner == "" && p.Halted, out
		})
		// halted: nobody starts it
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) { // sampling
			if alive := r.w.now(); len(alive) != 0 {
				r.t.Fatalf("halted and released, web runs on %v", alive)
			}
			if p, out := r.pkgStatusJSON(r.hosts[0], "web"); p.Owner != "" || !p.Halted {
				r.t.Fatalf("halted and released, web has changed:\n%s", out)
			}
		}
		r.unmark(o, "stop-fails")
		ran := uptime(r.t)
		r.must(o, "./pkg run web") // its monitor ended with the failed stop; pkg run lifts the halt
		var to string
		var after float64
		r.eventually(20*time.Second, "web started somewhere after pkg run", func() (bool, string) {
			for _, e := range events(r.t, r.hosts) {
				if e.verb == "start" && e.at >= ran {
					to, after = e.host, e.at-ran
					return true, ""
				}
			}
			return false, ""
		})
		r.waitOwner(r.hosts[0], "web", to, 10*time.Second)
		r.noOverlap()
		report(r, "case 3 pkg halt, stop fails: stop-failed on %s %.2f s after pkg halt (notified %q), no start for %.1f s; killed by hand, confirm-stopped: released, still halted, nobody started it for %.1f s; pkg run on %s: %s started %.2f s later",
			o.Name, took.Seconds(), note, held, ran-confirmed, o.Name, to, after)
	})

	// 5. a takeover whose fencing fails: the owner's monitor and supervisor killed while
	// its stop fails
	run("takeover-fence-fails", func(r *stopFailRun) {
		o := r.settle()
		r.mark(o, "stop-fails")
		for _, pat := range []string{`lite-raft .*pkg supervise web`, `lite-raft .*pkg monitor web`} {
			if n, err := o.Signal(pat, syscall.SIGKILL); err != nil || n != 1 {
				r.t.Fatalf("kill %s on %s: %d %v", pat, o.Name, n, err)
			}
		}
		killed := uptime(r.t)
		r.eventually(20*time.Second, "a stand-by's takeover finding "+o.Name+" still up", func() (bool, string) {
			h := r.history()
			return strings.Contains(h, "gave the package back to "+o.Name), h
		})
		back := uptime(r.t) - killed
		r.stopFailed(o, 5*time.Second)
		note := r.notified()
		fences := r.holds(o, 3*time.Second, 2)
		held := uptime(r.t) - r.from
		r.unmark(o, "stop-fails")
		freed := uptime(r.t)
		to, after := r.takenOver(o, freed, 64*300*time.Millisecond+10*time.Second)
		report(r, "case 5 takeover whose fencing fails (monitor and supervisor killed, stop fails): %s found still up and handed back stop-failed %.2f s after kill -9 (notified %q); %d failed fences, no start for %.1f s; stop-fails removed: %s fenced it and started %.2f s later",
			o.Name, back, note, fences, held, to, after)
	})

	// 4. the owner's status fails and its stop fails
	run("status-and-stop-fail", func(r *stopFailRun) {
		o := r.settle()
		r.mark(o, "stop-fails")
		r.mark(o, "force-down")
		took := r.stopFailed(o, 10*time.Second)
		note := r.notified()
		fences := r.holds(o, 4*time.Second, 1)
		held := uptime(r.t) - r.from
		r.unmark(o, "force-down")
		r.unmark(o, "stop-fails")
		freed := uptime(r.t)
		to, after := r.takenOver(o, freed, 64*300*time.Millisecond+10*time.Second)
		report(r, "case 4 status fails, stop fails: stop-failed on %s %.2f s after force-down (notified %q); %d failed fences, no start for %.1f s; markers removed: %s fenced it and started %.2f s later",
			o.Name, took.Seconds(), note, fences, held, to, after)
	})

	t.Logf("summary:\n%s", strings.Join(summary, "\n"))
}
