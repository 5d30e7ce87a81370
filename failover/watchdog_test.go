package failover

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeDevice is a watchdog device in memory: it counts feeds, and knows whether it was
// closed and how. clamp is the driver's rounding (nil: it takes what it is asked).
type fakeDevice struct {
	mu      sync.Mutex
	clamp   func(int) int
	timeout int
	feeds   int
	opened  int
	closed  bool
	magic   bool // closed with the magic character: stopped
	// with a clock, it knows when it was last fed, so when it would reset the host
	clock    Clock
	lastFeed time.Time
}

// resetBy says whether the host would have been reset by now: armed (open, or closed
// without the magic character) and not fed for longer than its timeout.
func (d *fakeDevice) resetBy(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opened > 0 && !d.magic && now.Sub(d.lastFeed) > time.Duration(d.timeout)*time.Second
}

func (d *fakeDevice) SetTimeout(secs int) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.timeout = secs
	if d.clamp != nil {
		d.timeout = d.clamp(secs)
	}
	return d.timeout, nil
}

func (d *fakeDevice) Feed() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("closed")
	}
	d.feeds++
	if d.clock != nil {
		d.lastFeed = d.clock.Now()
	}
	return nil
}

func (d *fakeDevice) Close(magic bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed, d.magic = true, magic
	return nil
}

func (d *fakeDevice) state() (feeds int, closed, magic bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.feeds, d.closed, d.magic
}

// useFakeWatchdog puts dev behind every watchdog path, with keepers of this test's own,
// until the test ends. Call it before the world is made, so that its monitors have ended
// when the real opener is put back (cleanups run last first).
func useFakeWatchdog(t *testing.T, dev *fakeDevice) {
	keepers = localKeepers()
	openDevice = func(string) (wdDevice, error) {
		dev.mu.Lock()
		defer dev.mu.Unlock()
		dev.opened++
		dev.closed, dev.magic = false, false
		return dev, nil
	}
	t.Cleanup(func() { openDevice, keepers = openOSDevice, localKeepers() })
}

// A failed stop leaves the watchdog armed: fed no more, never stopped with the magic
// character, so the host resets unless someone fences it first.
func TestWatchdogArmedAfterFailedStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev := &fakeDevice{}
		useFakeWatchdog(t, dev)
		w := newWorldWith(t, func(c *Config) { c.Watchdog = "/dev/watchdog" })
		w.start("a", nil)
		w.run(3*time.Second, "a")
		w.mu.Lock()
		w.stopFails["a"] = true
		w.mu.Unlock()
		w.stops["a"]() // pkg stop: the stop fails
		delete(w.stops, "a")
		feeds, _, magic := dev.state()
		if magic {
			t.Fatal("after a failed stop the watchdog was stopped (magic close): want it armed")
		}
		if feeds == 0 {
			t.Fatal("the watchdog was never fed")
		}
		if !keepers.(*localArmer).keeper("/dev/watchdog").Armed() {
			t.Fatal("the keeper forgot the package after its failed stop")
		}
	})
}

// The timeout in force is what the driver reports: one rounded up past timeout - pace
// is refused (the package is not started, and the history says why); one rounded down
// is used.
func TestWatchdogReadBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		clamp  func(int) int
		starts int
	}{
		{"minimum 30 s", func(int) int { return 30 }, 0},
		{"rounded down to even", func(s int) int { return s &^ 1 }, 1},
		{"one second", func(int) int { return 1 }, 0}, // at most two paces: resets a healthy host
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dev := &fakeDevice{clamp: tc.clamp}
				useFakeWatchdog(t, dev)
				w := newWorldWith(t, func(c *Config) { c.Watchdog = "/dev/watchdog" })
				w.start("a", nil)
				w.run(3*time.Second, "a")
				if n := len(w.eventsOf("a", "start")); n != tc.starts {
					t.Fatalf("%d starts, want %d\n%s", n, tc.starts, w.logs.String())
				}
				_, closed, magic := dev.state()
				if tc.starts == 0 {
					if h := w.get("history"); !strings.Contains(h, "watchdog unavailable") || !strings.Contains(h, "the driver set its timeout") {
						t.Fatalf("the history does not say why:\n%s", h)
					}
					if !closed || !magic {
						t.Fatalf("a refused watchdog is left armed (closed %v, magic %v): the host would reset", closed, magic)
					}
				} else if closed {
					t.Fatal("the watchdog in use was closed")
				}
			})
		})
	}
}

// checkShared: a device timeout above timeout - pace is refused (the safety rule), and
// so is one that leaves less than two paces of window, or is two paces or less.
func TestCheckShared(t *testing.T) {
	budget, pace := 9*time.Second, time.Second
	for got, ok := range map[int]bool{10: false, 9: false, 8: false, 7: true, 3: true, 2: false, 0: false} {
		if err := checkShared(got, budget, pace); (err == nil) != ok {
			t.Errorf("got %d s: %v", got, err)
		}
	}
}

// pkg init refuses a watchdog the keeper could not arm: timeout - pace too close to four
// paces.
func TestWatchdogConfigRoom(t *testing.T) {
	for _, tc := range []struct {
		pace, timeout, stop float64
		ok                  bool
	}{{1, 10, 3, true}, {4, 60, 30, true}, {0.3, 3, 1, true}, {0.5, 4, 1, true}, {1, 5, 1, false}, {2, 10, 3, false}} {
		c := DefaultConfig()
		c.Watchdog = "/dev/watchdog"
		c.Pace = time.Duration(tc.pace * float64(time.Second))
		c.Timeout = time.Duration(tc.timeout * float64(time.Second))
		c.StopTimeout = time.Duration(tc.stop * float64(time.Second))
		if err := c.Check(); (err == nil) != tc.ok {
			t.Errorf("pace %v timeout %v: %v", tc.pace, tc.timeout, err)
		}
	}
}

// A tick whose answer took longer than a pace feeds no watchdog: the watchdog counts from
// the feed, the deadline from the send, so feeding on a late answer would let the host
// run past its deadline. Planted (fed whatever the answer's age): the feeds went on.
func TestWatchdogNotFedByLateTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev := &fakeDevice{}
		useFakeWatchdog(t, dev)
		w := newWorldWith(t, func(c *Config) { c.Watchdog = "/dev/watchdog" })
		w.start("a", nil)
		w.run(3*time.Second, "a")
		before, _, _ := dev.state()
		if before == 0 {
			t.Fatal("the watchdog was never fed")
		}
		w.kv.mu.Lock()
		w.kv.delay["a"] = 3 * w.cfg.Pace / 2 // every answer 1.5 paces late, well within timeout
		w.kv.mu.Unlock()
		w.run(w.cfg.Pace/2, "a") // an answer sent before the delay lands
		before, _, _ = dev.state()
		w.run(6*time.Second, "a")
		if after, _, _ := dev.state(); after > before {
			t.Fatalf("answers 1.5 paces late fed the watchdog %d times", after-before)
		}
	})
}
