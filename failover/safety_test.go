package failover

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"lite-raft/api"
	"lite-raft/failover/decide"
	"lite-raft/kvstore"
)

// The safety rule, on fake clocks: monitors run as they do in production, but their
// time moves only when the test says, so each property is checked against exact
// timeouts without waiting real seconds.

// fakeClock is a Clock moved by Advance. Its timers fire in Advance.
type fakeClock struct {
	mu        sync.Mutex
	now       time.Time
	suspended time.Duration
	timers    []*fakeTimer
}

type fakeTimer struct {
	c     *fakeClock
	ch    chan time.Time
	at    time.Time
	armed bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Uptime() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now.Sub(time.Unix(1_700_000_000, 0)) + c.suspended
}

// suspend is a suspend of the host for d: CLOCK_BOOTTIME (Uptime) moves, the monotonic
// clock under the timers does not.
func (c *fakeClock) suspend(d time.Duration) {
	c.mu.Lock()
	c.suspended += d
	c.mu.Unlock()
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1), at: c.now.Add(d), armed: true}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	select {
	case <-t.ch:
	default:
	}
	t.at, t.armed = t.c.now.Add(d), true
}

func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	t.armed = false
	t.c.mu.Unlock()
}

// armed counts the timers someone waits on.
func (c *fakeClock) armed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.armed {
			n++
		}
	}
	return n
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if t.armed && !t.at.After(c.now) {
			t.armed = false
			select {
			case t.ch <- t.at:
			default:
			}
		}
	}
}

// world is a store, a control-script log and monitors, each monitor on a clock of its
// own (to freeze one while the others go on).
type world struct {
	t      *testing.T
	cfg    Config
	kv     *faultyStore
	mu     sync.Mutex
	events []scriptEvent
	up     map[string]bool
	// stopFails: the hosts whose control script's stop fails
	stopFails map[string]bool
	// stopHangs: the hosts whose stop runs past stop_timeout
	stopHangs map[string]bool
	// statusFails: the hosts whose status says down whatever runs
	statusFails map[string]bool
	// together: each start on a host while the package was up on another
	together []string
	clocks   map[string]*fakeClock
	stops    map[string]func()
	done     map[string]chan struct{} // closed when that host's monitor has ended
	logs     lockedBuffer             // what the monitors logged, printed when a test fails
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type scriptEvent struct {
	host, verb string
	at         time.Duration // on the host's clock, since the world began
	seq        int
}

// faultyStore is the key-value state machine, in memory, with faults per host:
// out of reach, or losing every conditional set of one key.
type faultyStore struct {
	mem      memStore
	mu       sync.Mutex
	down     map[string]bool
	failSwap map[string]string // host → key whose conditional sets it always loses
	delay    map[string]time.Duration
	ticks    map[string][]time.Duration
}

// hostStore is the store as one host's monitor reaches it: the state machine in memory,
// with that host's faults.
type hostStore struct {
	s     *faultyStore
	host  string
	clock *fakeClock
	epoch time.Time
}

func (h *hostStore) Do(ctx context.Context, req api.Request) (api.Response, error) {
	h.s.mu.Lock()
	down, fail, delay := h.s.down[h.host], h.s.failSwap[h.host], h.s.delay[h.host]
	h.s.mu.Unlock()
	if delay > 0 {
		// a slow store: the answer comes delay later on the host's clock
		t := h.clock.NewTimer(delay)
		select {
		case <-t.C():
		case <-ctx.Done():
		}
	}
	if down {
		return api.Response{}, errors.New("the store is out of reach")
	}
	if (req.Op == api.OpIfSet || req.Op == api.OpCounterRaise) && req.Key == fail {
		return api.Response{Code: api.CodeCondFalse, Msg: "lost", Value: []byte(strconv.FormatUint(req.Expect, 10))}, nil
	}
	if req.Op == api.OpTxn && fail != "" && !h.s.mem.noCounters && slices.ContainsFunc(req.Txn.Then, func(a api.TxnAction) bool { return a.Key == fail }) {
		return api.Response{Code: api.CodeCondFalse, Msg: "lost", Value: api.EncodeTxnResult(api.TxnResult{Failed: 1})}, nil
	}
	r, err := h.s.mem.Do(ctx, req)
	setsTick := req.Op == api.OpIfSet && strings.HasSuffix(req.Key, "/tick") ||
		req.Op == api.OpTxn && slices.ContainsFunc(req.Txn.Then, func(a api.TxnAction) bool { return strings.HasSuffix(a.Key, "/tick") })
	if err == nil && setsTick && r.Code == 0 {
		h.s.mu.Lock()
		h.s.ticks[h.host] = append(h.s.ticks[h.host], h.clock.Now().Sub(h.epoch))
		h.s.mu.Unlock()
	}
	return r, err
}

func newWorld(t *testing.T) *world { return newWorldWith(t, nil) }

func newWorldWith(t *testing.T, mutate func(*Config)) *world {
	cfg := DefaultConfig()
	cfg.Pace, cfg.Timeout, cfg.StopTimeout, cfg.StartTimeout = time.Second, 10*time.Second, 3*time.Second, 5*time.Second
	cfg.PreferredOwner = "a"
	if mutate != nil {
		mutate(&cfg)
	}
	w := &world{t: t, cfg: cfg, up: map[string]bool{}, stopFails: map[string]bool{}, stopHangs: map[string]bool{}, statusFails: map[string]bool{}, clocks: map[string]*fakeClock{}, stops: map[string]func(){},
		done: map[string]chan struct{}{},
		kv: &faultyStore{mem: memStore{kv: kvstore.New()}, down: map[string]bool{}, failSwap: map[string]string{}, delay: map[string]time.Duration{},
			ticks: map[string][]time.Duration{}}}
	s := NewStoreWith((&hostStore{s: w.kv, host: "setup", clock: newFakeClock()}).Do, time.Second)
	for k, v := range map[string]string{"config": cfg.Encode(), "owner": "a", "tick": "0", "generation": "0",
		"enabled": "yes", "halt": "no", "move": "", "history": "", "notified": "", "notifier": "", "state": "unknown"} {
		s.Set(context.Background(), Key("web", k), v)
	}
	t.Cleanup(func() {
		for _, stop := range w.stops {
			stop()
		}
		if t.Failed() {
			t.Logf("the monitors logged:\n%s", w.logs.String())
		}
	})
	return w
}

// fakeScript is a control script that records its calls on the host's clock. Its stop
// fails (exit 1, the package left up) on the hosts in the world's stopFails.
type fakeScript struct {
	w    *world
	host string
}

func (f *fakeScript) SetEnv([]string) {}

// Shell runs fence_command and notify for real.
func (f *fakeScript) Shell(ctx context.Context, command string, env []string, timeout time.Duration) (int, string, error) {
	return (&Script{}).Shell(ctx, command, env, timeout)
}

func (f *fakeScript) Run(ctx context.Context, verb string, timeout time.Duration) (int, string, error) {
	w := f.w
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.clocks[f.host]
	w.events = append(w.events, scriptEvent{host: f.host, verb: verb, at: c.Now().Sub(time.Unix(1_700_000_000, 0)), seq: len(w.events)})
	switch verb {
	case "start":
		w.up[f.host] = true
		for h, up := range w.up {
			if up && h != f.host {
				w.together = append(w.together, fmt.Sprintf("%s started at %v while it runs on %s", f.host, c.Now().Sub(time.Unix(1_700_000_000, 0)), h))
			}
		}
	case "stop":
		if w.stopFails[f.host] {
			return 1, "umount: /srv: target is busy", nil
		}
		if w.stopHangs[f.host] {
			// past stop_timeout: Script kills the verb's process group and says so
			return -1, "", fmt.Errorf("stop: no answer within %v: killed", timeout)
		}
		w.up[f.host] = false
	case "status":
		if !w.up[f.host] || w.statusFails[f.host] {
			return 1, "", nil
		}
	}
	return 0, "", nil
}

// fakeFencer stops the package on the previous owner directly, as `pkg fence-stop`
// does over ssh, and records that it did.
type fakeFencer struct {
	w      *world
	mu     sync.Mutex // shared by the stand-bys of a test
	fenced []string
	// dead: the hosts whose monitor fence-stop --only-if-dead finds dead or frozen (the
	// others answer FenceAlive, and nothing is done there)
	dead map[string]bool
}

func (f *fakeFencer) tries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.fenced...)
}

func (f *fakeFencer) Prepare(string) {}

func (f *fakeFencer) FenceHost(ctx context.Context, host string, onlyIfDead bool) (decide.FenceResult, error) {
	f.mu.Lock()
	if onlyIfDead && !f.dead[host] {
		f.mu.Unlock()
		return decide.FenceAlive, fmt.Errorf("%s: its monitor runs", host)
	}
	f.fenced = append(f.fenced, host)
	f.mu.Unlock()
	if code, _, _ := (&fakeScript{w: f.w, host: host}).Run(ctx, "stop", time.Second); code != 0 {
		return decide.FenceStillUp, fmt.Errorf("%s: its stop failed", host)
	}
	return decide.FenceStopped, nil
}

func (w *world) start(host string, fence Fencer) {
	w.startWith(host, fence, &fakeScript{w: w, host: host})
}

// startWith starts host's monitor with script as its control script.
func (w *world) startWith(host string, fence Fencer, script Runner) {
	c := newFakeClock()
	w.mu.Lock()
	w.clocks[host] = c
	w.mu.Unlock()
	m := &Monitor{Name: "web", Host: host, Clock: c, Script: script, Fence: fence,
		Store: NewStoreWith((&hostStore{s: w.kv, host: host, clock: c, epoch: c.Now()}).Do, time.Second),
		Log:   log.New(&w.logs, host+" ", 0)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	w.mu.Lock()
	w.done[host] = done
	w.mu.Unlock()
	w.stops[host] = func() { cancel(); <-done }
}

// settle waits until every goroutine of the monitors is blocked on something only the
// test can end: a timer of a fake clock, or a channel. The tests run in a synctest
// bubble, where that is known exactly: no polling, no real-time limit, no count of calls.
func (w *world) settle(...string) { synctest.Wait() }

// run advances the clocks of hosts by total, in steps, each once the monitors settled.
func (w *world) run(total time.Duration, hosts ...string) {
	const step = 50 * time.Millisecond
	for passed := time.Duration(0); passed < total; passed += step {
		w.settle(hosts...)
		for _, h := range hosts {
			w.clocks[h].advance(step)
		}
	}
	w.settle(hosts...)
}

func (w *world) eventsOf(host, verb string) []scriptEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []scriptEvent
	for _, e := range w.events {
		if e.host == host && (verb == "" || e.verb == verb) {
			out = append(out, e)
		}
	}
	return out
}

// An owner that loses the store stops the package by its last successful tick plus
// timeout, beginning no later than stop_timeout before that.
func TestSafetySelfFencing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		w.start("a", nil)
		w.run(3*time.Second, "a")
		if len(w.eventsOf("a", "start")) != 1 {
			t.Fatalf("a did not start the package: %+v", w.events)
		}
		w.kv.mu.Lock()
		w.kv.down["a"] = true
		w.kv.mu.Unlock()
		w.run(2*w.cfg.Timeout, "a")
		w.kv.mu.Lock()
		ticks := w.kv.ticks["a"] // read now: one may have been in flight at the cut
		w.kv.mu.Unlock()
		if len(ticks) == 0 {
			t.Fatal("no tick of a reached the store")
		}
		last := ticks[len(ticks)-1]
		stops := w.eventsOf("a", "stop")
		if len(stops) == 0 {
			t.Fatalf("a never stopped the package after losing the store at %v", last)
		}
		if latest := last + w.cfg.Timeout - w.cfg.StopTimeout; stops[0].at > latest {
			t.Fatalf("a began stopping at %v: after its last tick (%v) + timeout - stop_timeout = %v", stops[0].at, last, latest)
		}
		if len(w.eventsOf("a", "start")) != 1 {
			t.Fatalf("a started again without the store: %+v", w.events)
		}
		t.Logf("ticks %v; stop began at %v (deadline %v)", ticks, stops[0].at, last+w.cfg.Timeout)
	})
}

// A stand-by never starts the package before the owner's deadline (its last tick +
// timeout), waiting timeout + 3 x pace after it last saw the tick move, and never at all
// while the owner's ticks go on.
func TestSafetyStandbyWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		w.start("a", nil)
		w.run(2*time.Second, "a")
		w.start("b", nil)
		w.run(3*w.cfg.Timeout, "a", "b")
		if n := len(w.eventsOf("b", "start")); n != 0 {
			t.Fatalf("b started the package %d times while a's ticks went on", n)
		}
		// a's monitor dies (its clock stops: it does nothing more): b waits it out
		offset := w.clocks["a"].Now().Sub(w.clocks["b"].Now()) // a's clock runs this much ahead
		w.run(w.cfg.Timeout+3*w.cfg.Pace+3*time.Second, "b")
		starts := w.eventsOf("b", "start")
		if len(starts) != 1 {
			t.Fatalf("b did not take over once: %+v", w.events)
		}
		w.kv.mu.Lock()
		ticks := w.kv.ticks["a"]
		w.kv.mu.Unlock()
		deadline := ticks[len(ticks)-1] - offset + w.cfg.Timeout // a's deadline, on b's clock
		if starts[0].at <= deadline {
			t.Fatalf("b started at %v, not after a's deadline %v (last tick + timeout)", starts[0].at, deadline)
		}
		if starts[0].at > deadline+3*w.cfg.Pace+2*time.Second {
			t.Errorf("b started at %v: slow, a's deadline was %v", starts[0].at, deadline)
		}
		t.Logf("a's deadline %v on b's clock; b started at %v", deadline, starts[0].at)
	})
}

// A takeover that cannot raise the generation does not start: with txn the raise is part
// of the takeover's one write, which then loses as a whole; on a cluster with a member
// from before txn (one raise after the race), the monitor gives the package up and says
// why.
func TestSafetyNoGenerationNoStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, older := range []bool{false, true} {
			w := newWorld(t)
			w.kv.mem.noCounters = older
			w.kv.failSwap["b"] = Key("web", "generation")
			w.kv.mem.Do(context.Background(), api.Request{Op: api.OpSet, Key: Key("web", "owner"), Value: []byte("gone")})
			w.start("b", nil)
			w.run(3*w.cfg.Timeout, "b")
			if n := len(w.eventsOf("b", "start")); n != 0 {
				t.Fatalf("older cluster %v: b started %d times without a new generation", older, n)
			}
			s := NewStoreWith((&hostStore{s: w.kv, host: "check", clock: newFakeClock()}).Do, time.Second)
			if h, _ := s.Get(context.Background(), Key("web", "history")); older && !strings.Contains(h, "could not raise the generation") {
				t.Fatalf("history does not say why:\n%s", h)
			}
			w.stops["b"]()
			delete(w.stops, "b")
		}
	})
}

// An owner frozen past the takeover (its clock stands still while the stand-by's goes
// on) that wakes up stops the package and never starts it again; with the built-in
// fencing the stand-by stops it on the frozen host before it starts, so the two never
// run it at once.
func TestSafetyFrozenOwnerWakes(t *testing.T) {
	for _, fenced := range []bool{false, true} {
		t.Run(fmt.Sprintf("fencing=%v", fenced), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld(t)
				w.start("a", nil)
				w.run(2*time.Second, "a")
				var f *fakeFencer
				var fence Fencer
				if fenced {
					f = &fakeFencer{w: w}
					fence = f
				}
				w.start("b", fence)
				w.run(2*time.Second, "a", "b")
				w.run(w.cfg.Timeout+3*w.cfg.Pace+3*time.Second, "b") // a frozen
				if len(w.eventsOf("b", "start")) != 1 {
					t.Fatalf("b did not take over from the frozen a: %+v", w.events)
				}
				before := len(w.eventsOf("a", ""))
				w.clocks["a"].advance(w.cfg.Timeout + 3*w.cfg.Pace + 3*time.Second) // a wakes: its timers fire late
				w.run(3*time.Second, "a", "b")
				after := w.eventsOf("a", "")[before:]
				for _, e := range after {
					if e.verb == "start" {
						t.Fatalf("the woken a started the package: %+v", after)
					}
				}
				if !fenced && (len(after) == 0 || after[0].verb != "stop") {
					t.Fatalf("the woken a did not stop the package first: %+v", after)
				}
				if fenced {
					if tries := f.tries(); len(tries) != 1 || tries[0] != "a" {
						t.Fatalf("b fenced %v, want [a]", tries)
					}
					// in call order: a's stop (by the fence) comes before b's start
					running := map[string]bool{}
					w.mu.Lock()
					for _, e := range w.events {
						switch e.verb {
						case "start":
							for h := range running {
								if h != e.host {
									t.Errorf("%s started while %s ran it: %+v", e.host, h, w.events)
								}
							}
							running[e.host] = true
						case "stop":
							delete(running, e.host)
						}
					}
					w.mu.Unlock()
				}
			})
		})
	}
}

// unreachable is a Fencer for a previous owner that ssh cannot reach.
type unreachable struct{}

func (unreachable) Prepare(string) {}

func (unreachable) FenceHost(context.Context, string, bool) (decide.FenceResult, error) {
	return decide.FenceUnreachable, fmt.Errorf("no route to host")
}

// A previous owner that cannot be reached is fenced by fence_command, and a failed
// fence_command means no start.
func TestSafetyFenceCommand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			cmd    string
			starts int
		}{{"exit 1", 0}, {`[ "$LITE_RAFT_PKG_PREVIOUS_OWNER" = gone ] && [ "$LITE_RAFT_PKG_GENERATION" -gt 0 ]`, 1}} {
			w := newWorldWith(t, func(c *Config) { c.FenceCommand = tc.cmd })
			w.kv.mem.Do(context.Background(), api.Request{Op: api.OpSet, Key: Key("web", "owner"), Value: []byte("gone")})
			w.start("b", unreachable{})
			w.run(w.cfg.Timeout+3*w.cfg.Pace+3*time.Second, "b")
			if n := len(w.eventsOf("b", "start")); n != tc.starts {
				t.Fatalf("fence_command %q: %d starts, want %d\n%s", tc.cmd, n, tc.starts, w.logs.String())
			}
			w.stops["b"]()
			delete(w.stops, "b")
		}
	})
}

// The owner arms its watchdog when it takes over, feeds it after each tick that reached
// the store, and disarms it (the magic close) when it gives the package up cleanly; a
// monitor that dies leaves it armed, and the host resets.
func TestSafetyWatchdog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev := &fakeDevice{}
		useFakeWatchdog(t, dev)
		w := newWorldWith(t, func(c *Config) { c.Watchdog = "/dev/watchdog" })
		w.start("a", nil)
		w.run(5*time.Second, "a")
		if feeds, closed, _ := dev.state(); feeds < 4 || closed {
			t.Fatalf("after 5 paces as owner the watchdog got %d feeds, closed %v: want a feed per tick, armed", feeds, closed)
		}
		w.stops["a"]() // pkg stop: a stops the package and gives it up
		delete(w.stops, "a")
		if _, closed, magic := dev.state(); !closed || !magic {
			t.Fatalf("the watchdog was not disarmed when the package was given up: closed %v, magic %v", closed, magic)
		}
	})
}

// A slow store: answers that take longer than a pace leave the owner in place (its
// ticks still land well within timeout), and answers slower than its deadline make it
// stop in time; the stand-by takes over only after the owner's deadline.
func TestSafetySlowStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		w.start("a", nil)
		w.run(2*time.Second, "a")
		w.start("b", nil)
		w.kv.mu.Lock()
		w.kv.delay["a"] = 3 * w.cfg.Pace / 2
		w.kv.mu.Unlock()
		w.run(3*w.cfg.Timeout, "a", "b")
		if n := len(w.eventsOf("b", "start")); n != 0 || len(w.eventsOf("a", "stop")) != 0 {
			t.Fatalf("answers 1.5 paces late moved the package: %+v\n%s", w.events, w.logs.String())
		}
		w.kv.mu.Lock()
		w.kv.delay["a"] = 2 * w.cfg.Timeout
		w.kv.mu.Unlock()
		offset := w.clocks["a"].Now().Sub(w.clocks["b"].Now())
		w.run(3*w.cfg.Timeout, "a", "b")
		w.kv.mu.Lock()
		ticks := w.kv.ticks["a"]
		w.kv.mu.Unlock()
		last := ticks[len(ticks)-1]
		stops, starts := w.eventsOf("a", "stop"), w.eventsOf("b", "start")
		if len(stops) == 0 || len(starts) != 1 {
			t.Fatalf("with answers later than the deadline: a stopped %d times, b started %d times\n%+v", len(stops), len(starts), w.events)
		}
		if stops[0].at > last+w.cfg.Timeout-w.cfg.StopTimeout {
			t.Fatalf("a began stopping at %v, after its last tick %v + timeout - stop_timeout", stops[0].at, last)
		}
		if deadline := last - offset + w.cfg.Timeout; starts[0].at <= deadline {
			t.Fatalf("b started at %v, not after a's deadline %v", starts[0].at, deadline)
		}
		if stops[0].seq > starts[0].seq {
			t.Fatalf("b started before a stopped: %+v", w.events)
		}
	})
}

// An owner whose monitor is frozen on a host that still answers is taken over early: the
// stand-by, its tick stood for two paces, fences it (fence-stop --only-if-dead finds the
// monitor frozen), and starts within a few paces, long before the owner's deadline, with
// the package stopped there first; the woken owner never starts it again. A monitor
// fence-stop finds running is left alone, and the timeout decides (TestSafetyStandbyWaits
// and the others run with that).
func TestSafetyEarlyTakeoverOfAFrozenOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		w.start("a", nil)
		w.run(2*time.Second, "a")
		f := &fakeFencer{w: w, dead: map[string]bool{"a": true}}
		w.start("b", f)
		w.run(2*time.Second, "a", "b")
		frozen := w.clocks["b"].Now().Sub(time.Unix(1_700_000_000, 0))
		w.run(6*w.cfg.Pace, "b") // a frozen
		starts := w.eventsOf("b", "start")
		if len(starts) != 1 {
			t.Fatalf("b did not take over early from the frozen a: %+v", w.events)
		}
		if d := starts[0].at - frozen; d > 4*w.cfg.Pace+time.Second || d >= w.cfg.Timeout {
			t.Fatalf("b started %v after a froze: want within 2 paces of a stale tick and a fence (pace %v, timeout %v)", d, w.cfg.Pace, w.cfg.Timeout)
		}
		if tries := f.tries(); len(tries) != 1 || tries[0] != "a" {
			t.Fatalf("b fenced %v, want [a]", tries)
		}
		stops := w.eventsOf("a", "stop")
		if len(stops) == 0 || stops[len(stops)-1].seq > starts[0].seq {
			t.Fatalf("a's package not stopped before b started: %+v", w.events)
		}
		before := len(w.eventsOf("a", ""))
		w.clocks["a"].advance(w.cfg.Timeout) // a wakes
		w.run(3*time.Second, "a", "b")
		for _, e := range w.eventsOf("a", "")[before:] {
			if e.verb == "start" {
				t.Fatalf("the woken a started the package: %+v", w.events)
			}
		}
		if len(w.eventsOf("b", "start")) != 1 {
			t.Fatalf("b started again: %+v", w.events)
		}
	})
}
