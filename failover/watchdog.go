package failover

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
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

// watchdog is the watchdog device that the active monitor arms when it takes a package
// over and feeds after every heartbeat that reached the store. If the monitor dies or
// freezes the feeds stop and the kernel resets the host, so the package cannot run on
// there once its deadline passes: the one case the ssh fencing cannot reach (a dead
// monitor on a host nobody can reach). Giving the package up cleanly disarms it (the
// magic close); a failed stop abandons it armed.
type watchdog struct {
	mu  sync.Mutex
	dev wdDevice // nil once disarmed or abandoned
}

// openWatchdog opens the device at path, asks for want seconds (Config.watchdogTimeout:
// the most the safety rule allows) and checks what the driver took (checkWatchdogTimeout);
// it returns the timeout in force. A device refused is closed with the magic character, so
// that a refusal does not reset the host.
func openWatchdog(path string, want int, pace time.Duration) (*watchdog, int, error) {
	dev, err := openDevice(path)
	if err != nil {
		return nil, 0, fmt.Errorf("watchdog %s: %w", path, err)
	}
	got, err := dev.SetTimeout(want)
	if err == nil {
		err = checkWatchdogTimeout(want, got, pace)
	}
	if err != nil {
		dev.Close(true)
		return nil, got, fmt.Errorf("watchdog %s: %w", path, err)
	}
	w := &watchdog{dev: dev}
	if err := w.feed(); err != nil {
		w.disarm()
		return nil, got, fmt.Errorf("watchdog %s: first feed: %w", path, err)
	}
	return w, got, nil
}

// checkWatchdogTimeout judges the timeout the driver reports (got) against the one asked
// (want, timeout - pace in whole seconds). The watchdog is the backstop for an owner whose
// monitor died or froze: the host must have reset before a stand-by may start the
// package. A stand-by starts it timeout + 3 paces after it first saw the last tick; the
// owner fed the watchdog after that tick came back, so a watchdog running out within
// timeout - pace of the feed resets the host in time, the three paces of margin covering
// the tick's round trip and the driver's one-second granularity. A driver that rounds or
// clamps upward (many have a minimum, or count in steps) would let the host run on past
// that point: refused. One that took less is safe, but one at or below two paces would
// reset a healthy host between two feeds: refused too.
func checkWatchdogTimeout(want, got int, pace time.Duration) error {
	switch {
	case got > want:
		return fmt.Errorf("the driver set its timeout to %d s when asked for %d s: above timeout - pace, "+
			"so the host could still run the package when a stand-by starts it (raise timeout, or use another driver)", got, want)
	case time.Duration(got)*time.Second <= 2*pace:
		return fmt.Errorf("the driver set its timeout to %d s when asked for %d s: not above two paces (%v), "+
			"it would reset a healthy host between feeds", got, want, 2*pace)
	}
	return nil
}

func (w *watchdog) feed() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dev == nil {
		return nil
	}
	return w.dev.Feed()
}

// disarm stops the watchdog (magic close): the package is given up cleanly.
func (w *watchdog) disarm() { w.close(true) }

// abandon stops feeding the watchdog but leaves it armed (a close without the magic
// character): the package may still run here after a failed stop, and the host resets
// when the watchdog runs out, unless someone fences it first.
func (w *watchdog) abandon() { w.close(false) }

func (w *watchdog) close(magic bool) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dev != nil {
		w.dev.Close(magic)
		w.dev = nil
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
	wd, got, err := openWatchdog(m.cfg.Watchdog, m.cfg.watchdogTimeout(), m.cfg.Pace)
	if err != nil {
		m.Log.Printf("%s: %v; not starting", m.Name, err)
		m.record(ctx, fmt.Sprintf("watchdog unavailable (%v): not started", err))
		return nil, err
	}
	m.Log.Printf("%s: watchdog %s armed (%d s, asked %d s)", m.Name, m.cfg.Watchdog, got, m.cfg.watchdogTimeout())
	return wd, nil
}
