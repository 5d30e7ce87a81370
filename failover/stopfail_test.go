package failover

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"lite-raft/api"
	"lite-raft/failover/decide"
)

// The cases every HA suite is built around: the control script's own stop fails (exit 1,
// the package left up) or hangs. Three monitors, fake clocks; the package must never run
// on two hosts, and a failed stop leaves it stop-failed on its host until that host is
// fenced. Each of these tests fails with the old release-to-nobody planted back
// (decide.AfterStop releasing after a failed stop): a stand-by then started the package
// beside the owner whose stop had failed.

// stopFailWorld is a: owner with a stop that fails, b and c standing by with a fencer
// that runs the stop on the host it fences (which fails too while a's stop fails).
func stopFailWorld(t *testing.T) (*world, *fakeFencer) {
	w := newWorld(t)
	w.start("a", nil)
	w.run(2*time.Second, "a")
	f := &fakeFencer{w: w}
	w.start("b", f)
	w.start("c", f)
	w.run(2*time.Second, "a", "b", "c")
	w.mu.Lock()
	w.stopFails["a"] = true
	w.mu.Unlock()
	return w, f
}

func (w *world) get(field string) string {
	resp, _ := w.kv.mem.Do(context.Background(), api.Request{Op: api.OpGet, Key: Key("web", field)})
	return string(resp.Value)
}

func (w *world) noneTogether() {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.together) > 0 {
		w.t.Fatalf("the package ran on two hosts: %v\n%s", w.together, w.logs.String())
	}
}

// TestStopFailsOnPkgStop: pkg stop on the owner whose stop fails leaves the package
// there, stop-failed; the stand-bys try to fence it (backing off) and start nothing
// while its stop fails; once a stop there succeeds, one of them starts it.
func TestStopFailsOnPkgStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, f := stopFailWorld(t)
		w.stops["a"]() // pkg stop on a: its stop fails
		delete(w.stops, "a")
		w.run(3*(w.cfg.Timeout+3*w.cfg.Pace), "b", "c")
		w.noneTogether()
		if owner, state := w.get("owner"), w.get("state"); owner != "a" || state != string(decide.StopFailed) {
			t.Fatalf("after a's stop failed: owner %q state %q, want a stop-failed\n%s", owner, state, w.logs.String())
		}
		if n := len(w.eventsOf("b", "start")) + len(w.eventsOf("c", "start")); n != 0 {
			t.Fatalf("%d starts elsewhere while a's stop fails", n)
		}
		tries := len(f.tries())
		if tries == 0 || tries > 2*12 {
			t.Fatalf("%d fence attempts on a in %v: want some, backing off", tries, 3*(w.cfg.Timeout+3*w.cfg.Pace))
		}
		if h := w.get("history"); !strings.Contains(h, "stop FAILED") {
			t.Fatalf("history does not tell of the failed stop:\n%s", h)
		}
		w.mu.Lock()
		w.stopFails["a"] = false // someone freed the mount: a stop there now succeeds
		w.mu.Unlock()
		w.run(80*w.cfg.Pace, "b", "c")
		w.noneTogether()
		if n := len(w.eventsOf("b", "start")) + len(w.eventsOf("c", "start")); n != 1 {
			t.Fatalf("%d starts once a could be fenced, want 1\n%s", n, w.logs.String())
		}
	})
}

// TestStopFailsOnMove: pkg move while the owner's stop fails, or hangs past
// stop_timeout: the target does not start it.
func TestStopFailsOnMove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, hangs := range []bool{false, true} {
			w, _ := stopFailWorld(t)
			if hangs {
				w.mu.Lock()
				w.stopFails["a"], w.stopHangs["a"] = false, true
				w.mu.Unlock()
			}
			w.kv.mem.Do(context.Background(), api.Request{Op: api.OpSet, Key: Key("web", "move"), Value: []byte("b")})
			w.run(3*(w.cfg.Timeout+3*w.cfg.Pace), "a", "b", "c")
			w.noneTogether()
			if owner, state := w.get("owner"), w.get("state"); owner != "a" || state != string(decide.StopFailed) {
				t.Fatalf("stop hangs %v: after a's stop failed on a move: owner %q state %q, want a stop-failed\n%s", hangs, owner, state, w.logs.String())
			}
			for _, h := range []string{"a", "b", "c"} {
				if stop := w.stops[h]; stop != nil {
					stop()
					delete(w.stops, h)
				}
			}
		}
	})
}

// TestStatusAndStopFail: the owner's status fails and so does its stop: nobody else
// starts it.
func TestStatusAndStopFail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, _ := stopFailWorld(t)
		w.mu.Lock()
		w.statusFails["a"] = true // status says down, though it runs; a's stop still fails
		w.mu.Unlock()
		w.run(3*(w.cfg.Timeout+3*w.cfg.Pace), "a", "b", "c")
		if owner, state := w.get("owner"), w.get("state"); owner != "a" || state != string(decide.StopFailed) {
			t.Fatalf("owner %q state %q, want a stop-failed\n%s", owner, state, w.logs.String())
		}
		if n := len(w.eventsOf("b", "start")) + len(w.eventsOf("c", "start")); n != 0 {
			t.Fatalf("%d starts elsewhere after a's status and stop failed\n%s", n, w.logs.String())
		}
		w.noneTogether()
	})
}

// TestTakeoverWhoseFencingFails: a frozen owner (its monitor stopped, the package up)
// that fencing finds still up: no stand-by starts it, not the one that tried and not a
// third (the failed takeover leaves a recorded as to fence, not nobody).
func TestTakeoverWhoseFencingFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, f := stopFailWorld(t)
		// a frozen: its clock no longer moves (w.run moves b's and c's only)
		w.run(4*(w.cfg.Timeout+3*w.cfg.Pace), "b", "c")
		w.noneTogether()
		if len(f.tries()) == 0 {
			t.Fatal("nobody tried to fence the frozen a")
		}
		if n := len(w.eventsOf("b", "start")) + len(w.eventsOf("c", "start")); n != 0 {
			t.Fatalf("%d starts while a, still running it, could not be fenced\n%s", n, w.logs.String())
		}
		if p := decide.ParsePrevious(w.get("previous")); p.Host != "a" || p.Clean() {
			t.Fatalf("previous %q: want a, not clean", w.get("previous"))
		}
	})
}

// TestSafetySuspendedOwner: an owner whose host was suspended past its deadline (its
// timers, on the monotonic clock, do not count the suspend) stops the package at its
// first wake-up, still cut off from the store, since its deadline counts on
// CLOCK_BOOTTIME: the stand-by took over meanwhile by the timing rule. Planted, the
// deadline on the monotonic clock (Uptime as Now): the woken owner ran the package on
// beside the new one for most of another timeout.
func TestSafetySuspendedOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		w.start("a", nil)
		w.run(2*time.Second, "a")
		w.start("b", unreachable{})
		w.run(2*time.Second, "a", "b")
		w.kv.mu.Lock()
		w.kv.down["a"] = true // suspended, then cut off: a's host reaches nothing
		w.kv.mu.Unlock()
		gap := w.cfg.Timeout + 3*w.cfg.Pace + 5*time.Second
		w.clocks["a"].suspend(gap)
		w.run(gap, "b") // only b's time moves
		if len(w.eventsOf("b", "start")) != 1 {
			t.Fatalf("b did not take over from the suspended a\n%s", w.logs.String())
		}
		w.run(2*w.cfg.Pace, "a", "b") // a wakes
		if len(w.eventsOf("a", "stop")) == 0 {
			t.Fatalf("a, woken from a suspend past its deadline, did not stop the package within 2 paces\n%s", w.logs.String())
		}
	})
}

// TestSafetyLiveSettings: pkg init --update lengthening timeout (and stop_timeout)
// while the monitors run: the owner publishes the longer wait with its ticks before its
// own deadline moves, and a stand-by waits for it: after the owner is cut off, the
// stand-by starts only past its deadline under the new settings. Planted, a stand-by
// that ignores the owner's published wait and keeps its own first settings: it started
// under the old wait, while the owner, on the new settings, could still be stopping.
func TestSafetyLiveSettings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		w.start("a", nil)
		w.run(2*time.Second, "a")
		w.start("b", unreachable{})
		w.run(2*time.Second, "a", "b")
		longer := w.cfg
		longer.Timeout, longer.StopTimeout = 30*time.Second, 20*time.Second
		w.kv.mem.Do(context.Background(), api.Request{Op: api.OpSet, Key: Key("web", "config"), Value: []byte(longer.Encode())})
		w.run(3*w.cfg.Pace, "a", "b")
		if got, want := w.get("wait"), strconv.FormatInt((longer.Timeout+3*longer.Pace).Milliseconds(), 10); got != want {
			t.Fatalf("the owner publishes a wait of %q ms with its ticks, want %s\n%s", got, want, w.logs.String())
		}
		w.kv.mu.Lock()
		w.kv.down["a"] = true
		ticks := w.kv.ticks["a"]
		w.kv.mu.Unlock()
		last := ticks[len(ticks)-1]
		offset := w.clocks["a"].Now().Sub(w.clocks["b"].Now())
		w.run(longer.Timeout+3*longer.Pace+5*time.Second, "a", "b")
		starts := w.eventsOf("b", "start")
		if len(starts) != 1 {
			t.Fatalf("b started %d times\n%s", len(starts), w.logs.String())
		}
		if deadline := last - offset + longer.Timeout; starts[0].at <= deadline {
			t.Fatalf("b started at %v, before a's deadline under the new settings %v\n%s", starts[0].at, deadline, w.logs.String())
		}
	})
}

// TestStopFailsWithAnOlderHost: while a package host still runs a monitor from before
// stop-failed (a rolling upgrade: its report has no level), a failed stop gives the
// package up as older builds do, but names the host as stop-failed in previous, so a
// newer stand-by still fences it before starting (and does not start while it fails: it
// gives it back to a, stop-failed).
func TestStopFailsWithAnOlderHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, f := stopFailWorld(t)
		w.kv.mem.Do(context.Background(), api.Request{Op: api.OpSet, Key: Key("web", "standby/old"), Value: []byte("1 1 1 2000")})
		w.stops["a"]() // pkg stop on a: its stop fails
		delete(w.stops, "a")
		w.run(2*(w.cfg.Timeout+3*w.cfg.Pace), "b", "c")
		w.noneTogether()
		if h := w.get("history"); !strings.Contains(h, "a released (previous: a stop-failed)") {
			t.Fatalf("with an older host, a did not give the package up naming itself stop-failed:\n%s", h)
		}
		if len(f.tries()) == 0 || len(w.eventsOf("b", "start"))+len(w.eventsOf("c", "start")) != 0 {
			t.Fatalf("fenced %v, starts b %d c %d: want fencing tried and no start", f.tries(), len(w.eventsOf("b", "start")), len(w.eventsOf("c", "start")))
		}
	})
}
