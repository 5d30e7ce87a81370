package failover

import (
	"errors"
	"strings"
	"sync"
	"testing"
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

// useFakeWatchdog puts dev behind every watchdog path until the test ends. Call it
// before the world is made, so that its monitors have ended when the real opener is put
// back (cleanups run last first).
func useFakeWatchdog(t *testing.T, dev *fakeDevice) {
	openDevice = func(string) (wdDevice, error) {
		dev.mu.Lock()
		defer dev.mu.Unlock()
		dev.opened++
		dev.closed, dev.magic = false, false
		return dev, nil
	}
	t.Cleanup(func() { openDevice = openOSDevice })
}

// A failed stop leaves the watchdog armed: fed no more, closed without the magic
// character, so the host resets unless someone fences it first.
func TestWatchdogArmedAfterFailedStop(t *testing.T) {
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
	feeds, closed, magic := dev.state()
	if !closed || magic {
		t.Fatalf("after a failed stop the watchdog is closed %v, stopped (magic) %v: want closed, still armed", closed, magic)
	}
	if feeds == 0 {
		t.Fatal("the watchdog was never fed")
	}
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
	}
}

func TestCheckWatchdogTimeout(t *testing.T) {
	pace := time.Second
	for _, tc := range []struct {
		want, got int
		ok        bool
	}{{9, 9, true}, {9, 8, true}, {9, 10, false}, {9, 2, false}, {9, 3, true}, {9, 0, false}} {
		if err := checkWatchdogTimeout(tc.want, tc.got, pace); (err == nil) != tc.ok {
			t.Errorf("asked %d, got %d: %v", tc.want, tc.got, err)
		}
	}
}
