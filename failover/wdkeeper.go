package failover

import (
	"fmt"
	"log"
	"sync"
	"time"
)

// Keeper holds one watchdog device for every package armed on it on this host: a device
// such as /dev/watchdog can be open in one process only, and two packages on one host
// share it. It keeps the one rule of a package's watchdog for each of them: the host
// resets if any armed package's monitor stops feeding while it owns the package.
//
// Each package's monitor feeds the keeper (after every heartbeat that reached the store),
// and the keeper feeds the device on each of those feeds, but only while every armed
// package was fed within its window, budget - T, where budget is the package's
// timeout - pace (Config.watchdogTimeout) and T the device's timeout. So once a package's
// feeds stop, the device gets none after window, and the host resets by its last feed +
// window + T = + budget: no later than with a device of its own. A package given up
// cleanly is disarmed (forgotten; the last one closes the device with the magic
// character); one whose stop failed, or whose monitor died, stays armed and unfed, and
// the host resets. See keeperTimeout for T.
type Keeper struct {
	Path  string
	Clock Clock // nil: the system's
	Log   *log.Logger

	mu      sync.Mutex
	epoch   time.Time
	dev     wdDevice
	timeout int // the device's, in seconds, as its driver reported it
	pkgs    map[string]*keptPkg
	arms    uint64 // arms so far: each arm's id
}

type keptPkg struct {
	id           uint64 // which arm: a monitor restarted arms anew, and the old one's link is then ignored
	budget, pace time.Duration
	last         time.Duration // when its monitor last fed (keeper's clock)
	abandoned    bool          // its monitor is gone or its stop failed: never fed again
	stale        bool          // said so in the log
}

func (k *Keeper) now() time.Duration {
	if k.Clock == nil {
		k.Clock = systemClock{}
	}
	if k.epoch.IsZero() {
		k.epoch = k.Clock.Now()
	}
	return k.Clock.Now().Sub(k.epoch)
}

func (k *Keeper) logf(format string, args ...any) {
	if k.Log != nil {
		k.Log.Printf(format, args...)
	}
}

// keeperTimeout is the device timeout T to ask for, in whole seconds, for packages with
// these budgets and paces: the largest that leaves each a window (budget - T) of two
// paces, so that a healthy monitor's feed, one a pace plus the heartbeat's round trip,
// always comes within its window.
func keeperTimeout(pkgs map[string]*keptPkg) int {
	t := -1
	for _, p := range pkgs {
		if s := int((p.budget - 2*p.pace) / time.Second); t < 0 || s < t {
			t = s
		}
	}
	return t
}

// checkShared judges the device timeout the driver reports (got seconds) for a package:
// refused if it leaves the host running past the package's budget, timeout - pace (the
// safety rule: a stand-by may start the package timeout + 3 paces after it saw the last
// tick, and the feed follows that tick by its round trip: the three paces are the margin
// for it and for the driver's one-second granularity), or less than two paces of window
// (healthy feeds would be withheld and the host reset), or if it is two paces or less
// (the device would run out between two feeds of a healthy monitor).
func checkShared(got int, budget, pace time.Duration) error {
	t := time.Duration(got) * time.Second
	switch {
	case t > budget:
		return fmt.Errorf("the driver set its timeout to %d s: above timeout - pace (%v), so the host could still "+
			"run the package when a stand-by starts it (raise timeout, or use another driver)", got, budget)
	case t > budget-2*pace:
		return fmt.Errorf("the driver set its timeout to %d s: less than two paces (%v) below timeout - pace (%v), "+
			"which a shared watchdog needs between feeds (raise timeout)", got, 2*pace, budget)
	case t <= 2*pace:
		return fmt.Errorf("the driver set its timeout to %d s: not above two paces (%v), it would reset a healthy "+
			"host between feeds (raise timeout)", got, 2*pace)
	}
	return nil
}

// Arm arms the watchdog for package name, whose monitor feeds it every pace and whose
// host must reset within budget of its last feed. It opens the device for the first
// package, and sets its timeout for all armed (lowering it for a package with a smaller
// budget), read back from the driver; it returns that timeout, and the arm's id that
// Feed, Disarm and Abandon name. A package already armed (its monitor restarted) is armed
// anew, and the old arm's calls are ignored. Refused, with the device left as it was, if
// the driver's timeout does not fit every armed package.
func (k *Keeper) Arm(name string, budget, pace time.Duration) (int, uint64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	want := map[string]*keptPkg{name: {id: k.arms + 1, budget: budget, pace: pace, last: now}}
	for n, p := range k.pkgs {
		if n != name {
			want[n] = p
		}
	}
	secs := keeperTimeout(want)
	if secs < 1 {
		return 0, 0, fmt.Errorf("watchdog %s: timeout - pace (%v) leaves no whole second above two paces (%v) for the device", k.Path, budget, 2*pace)
	}
	got := k.timeout
	switch {
	case k.dev == nil:
		dev, err := openDevice(k.Path)
		if err != nil {
			return 0, 0, fmt.Errorf("watchdog %s: %w", k.Path, err)
		}
		if got, err = dev.SetTimeout(secs); err == nil {
			err = checkAll(got, want)
		}
		if err != nil {
			dev.Close(true) // nothing was armed: a refusal does not reset the host
			return got, 0, fmt.Errorf("watchdog %s (asked %d s): %w", k.Path, secs, err)
		}
		k.dev = dev
	case secs < k.timeout:
		// Lowering it: setting a timeout also feeds the device (the Linux watchdog core
		// pings it), which is safe only while every armed package is within its window,
		// and only if the driver does not go above the timeout in force.
		if n, stale := k.stale(now); stale {
			return 0, 0, fmt.Errorf("watchdog %s: %s is no longer fed and the host resets soon: not arming %s", k.Path, n, name)
		}
		var err error
		if got, err = k.dev.SetTimeout(secs); err == nil && got > k.timeout {
			err = fmt.Errorf("the driver set its timeout to %d s, above the %d s in force, when asked for %d s", got, k.timeout, secs)
		}
		if err == nil {
			err = checkAll(got, want)
		}
		if err != nil {
			k.dev.SetTimeout(k.timeout) // best effort: back to what fits the others (as safe: nobody was stale)
			return got, 0, fmt.Errorf("watchdog %s (asked %d s): %w", k.Path, secs, err)
		}
	default:
		// the timeout in force fits (it is what the others asked, or less): not touched, as
		// setting it would feed the device whatever the others' feeds say
		if err := checkShared(got, budget, pace); err != nil {
			return got, 0, fmt.Errorf("watchdog %s (%d s in force for other packages): %w", k.Path, got, err)
		}
	}
	k.arms++
	k.timeout, k.pkgs = got, want
	k.logf("watchdog %s: %s armed (device timeout %d s, %d package(s))", k.Path, name, got, len(want))
	if err := k.feedIfFresh(now); err != nil {
		return got, 0, fmt.Errorf("watchdog %s: first feed: %w", k.Path, err)
	}
	return got, k.arms, nil
}

// checkAll is checkShared for every package of pkgs.
func checkAll(got int, pkgs map[string]*keptPkg) error {
	for _, p := range pkgs {
		if err := checkShared(got, p.budget, p.pace); err != nil {
			return err
		}
	}
	return nil
}

// stale names an armed package not fed within its window, if there is one.
func (k *Keeper) stale(now time.Duration) (string, bool) {
	for n, q := range k.pkgs {
		if now-q.last > q.budget-time.Duration(k.timeout)*time.Second {
			if !q.stale {
				q.stale = true
				k.logf("watchdog %s: %s is no longer fed (%v): feeds withheld, the host resets within %d s", k.Path, n, now-q.last, k.timeout)
			}
			return n, true
		}
	}
	return "", false
}

// feedIfFresh feeds the device if every armed package was fed within its window.
func (k *Keeper) feedIfFresh(now time.Duration) error {
	if _, stale := k.stale(now); stale {
		return nil
	}
	return k.dev.Feed()
}

// Feed is package name's monitor saying it still owns its package and runs: the device
// is fed if every armed package was fed within its window.
func (k *Keeper) Feed(name string, id uint64) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.pkgs[name]
	if p == nil || p.id != id || p.abandoned {
		return fmt.Errorf("watchdog %s: %s is not armed", k.Path, name)
	}
	now := k.now()
	p.last, p.stale = now, false
	return k.feedIfFresh(now)
}

// Disarm forgets package name, given up cleanly; the last one closes the device with
// the magic character.
func (k *Keeper) Disarm(name string, id uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if p := k.pkgs[name]; p == nil || p.id != id {
		return // armed anew since: not this arm's to give up
	}
	delete(k.pkgs, name)
	if len(k.pkgs) == 0 && k.dev != nil {
		k.dev.Close(true)
		k.dev, k.timeout = nil, 0
		k.logf("watchdog %s: %s disarmed, the last: device stopped", k.Path, name)
		return
	}
	k.logf("watchdog %s: %s disarmed", k.Path, name)
}

// Abandon leaves package name armed, fed no more: its stop failed, or its monitor went
// away without disarming. The host resets once its window has passed, unless its monitor
// (restarted) arms it again first.
func (k *Keeper) Abandon(name string, id uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if p := k.pkgs[name]; p != nil && p.id == id && !p.abandoned {
		p.abandoned = true
		k.logf("watchdog %s: %s abandoned armed: the host resets within %v unless its monitor arms it again", k.Path, name,
			p.budget-(k.now()-p.last))
	}
}

// Armed says whether any package is armed (abandoned ones included).
func (k *Keeper) Armed() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.pkgs) > 0
}
