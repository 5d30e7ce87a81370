package failover

import (
	"fmt"
	"os"
	"sync"
)

// watchdog is a Linux watchdog device (or, in tests, a plain file) that the active
// monitor arms when it takes a package over and feeds after every heartbeat that reached
// the store. If the monitor dies or freezes the feeds stop and the kernel resets the
// host, so the package cannot run on there once its deadline passes: the one case the
// ssh fencing cannot reach (a dead monitor on a host nobody can reach). Giving the package
// up cleanly disarms it (the magic close, "V").
type watchdog struct {
	mu sync.Mutex
	f  *os.File
}

func openWatchdog(path string, timeoutSec int) (*watchdog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("watchdog %s: %w", path, err)
	}
	if err := setWatchdogTimeout(f, timeoutSec); err != nil {
		f.Write([]byte("V"))
		f.Close()
		return nil, fmt.Errorf("watchdog %s: set its timeout to %d s: %w", path, timeoutSec, err)
	}
	w := &watchdog{f: f}
	return w, w.feed()
}

func (w *watchdog) feed() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	_, err := w.f.Write([]byte("1"))
	return err
}

// disarm stops the watchdog (magic close): the package is given up cleanly.
func (w *watchdog) disarm() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.Write([]byte("V"))
		w.f.Close()
		w.f = nil
	}
}

// abandon stops feeding the watchdog but leaves it armed (a close without the magic
// character): the package may still run here after a failed stop, and the host resets
// when the watchdog runs out, unless someone fences it first.
func (w *watchdog) abandon() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}
