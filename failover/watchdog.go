package failover

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"lite-raft/internal/logsink"
)

// wdDevice is an open watchdog device: the OS's (watchdog_linux.go), or a fake in tests.
type wdDevice interface {
	// SetTimeout asks the driver for secs and returns the timeout it then reports
	// (WDIOC_GETTIMEOUT): a driver may round or clamp what it was asked.
	SetTimeout(secs int) (int, error)
	// Feed restarts its countdown.
	Feed() error
	// Close closes it: with magic, the watchdog is stopped first (the magic close, "V");
	// without, it stays armed and the host resets when it runs out.
	Close(magic bool) error
}

// openDevice opens a watchdog device. A variable only so that tests can put a fake
// device behind it; the monitor never changes it.
var openDevice = openOSDevice

// watchdogLink is a monitor's hold on its package's watchdog, through the host's Keeper.
type watchdogLink interface {
	Feed() error
	// Close ends the hold: disarm when the package was given up cleanly; otherwise the
	// package stays armed, fed no more, and the host resets.
	Close(disarm bool) error
}

// keeperArmer arms a package's watchdog with the keeper of its device, returning the
// device's timeout in force.
type keeperArmer interface {
	Arm(path, name string, budget, pace time.Duration) (watchdogLink, int, error)
}

// keepers is where this process's monitors arm their watchdogs: a Keeper in this process
// (tests, and a monitor run on its own), or the host's keeper process (UseKeeperProcess,
// which `pkg monitor` calls), so that packages of separate monitors share one device.
var keepers keeperArmer = localKeepers()

// watchdog is the watchdog that the active monitor arms when it takes a package over and
// feeds after every heartbeat that reached the store. If the monitor dies or freezes the
// feeds stop and the host resets, so the package cannot run on there once its deadline
// passes: the one case the ssh fencing cannot reach (a dead monitor on a host nobody can
// reach). Giving the package up cleanly disarms it; a failed stop abandons it armed.
type watchdog struct {
	mu   sync.Mutex
	link watchdogLink // nil once disarmed or abandoned
}

// openWatchdog arms the watchdog at path for package name, with the host's keeper, which
// sets the device's timeout, reads it back from the driver and refuses one that does not
// fit the safety rule (checkShared). It returns the device's timeout in force.
func openWatchdog(path, name string, budget, pace time.Duration) (*watchdog, int, error) {
	link, got, err := keepers.Arm(path, name, budget, pace)
	if err != nil {
		return nil, got, err
	}
	return &watchdog{link: link}, got, nil
}

func (w *watchdog) feed() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.link == nil {
		return nil
	}
	return w.link.Feed()
}

// disarm: the package is given up cleanly.
func (w *watchdog) disarm() { w.close(true) }

// abandon stops feeding the watchdog but leaves it armed: the package may still run here
// after a failed stop, and the host resets when the watchdog runs out, unless someone
// fences it first.
func (w *watchdog) abandon() { w.close(false) }

func (w *watchdog) close(disarm bool) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.link != nil {
		w.link.Close(disarm)
		w.link = nil
	}
}

// errNotWatchdog: the path opened, but the driver behind it answers no watchdog ioctl.
var errNotWatchdog = errors.New("not a watchdog device (it answers no watchdog ioctl)")

// armWatchdog arms the package's watchdog, if it has one, as the owner takes it over.
// A device that cannot be had (missing, not a watchdog, or a driver whose timeout breaks
// the rule) is recorded with why; the caller then does not start the package.
func (m *Monitor) armWatchdog(ctx context.Context) (*watchdog, error) {
	if m.cfg.Watchdog == "" {
		return nil, nil
	}
	budget := time.Duration(m.cfg.watchdogTimeout()) * time.Second
	wd, got, err := openWatchdog(m.cfg.Watchdog, m.Name, budget, m.cfg.Pace)
	if err != nil {
		m.Log.Printf(logsink.Warn+"%s: %v; not starting", m.Name, err)
		m.record(ctx, fmt.Sprintf("watchdog unavailable (%v): not started", err))
		return nil, err
	}
	m.Log.Printf("%s: watchdog %s armed (device timeout %d s; the host resets within %v of the last feed)", m.Name, m.cfg.Watchdog, got, budget)
	return wd, nil
}
