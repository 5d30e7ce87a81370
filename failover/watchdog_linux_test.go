package failover

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A path that is not a watchdog device opens, but answers no watchdog ioctl: refused, by
// the device layer and by the monitor, which then does not start the package.
func TestWatchdogNotADevice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "watchdog")
		os.WriteFile(file, nil, 0o600)
		for _, path := range []string{file, "/dev/null"} {
			if _, err := openOSDevice(path); !errors.Is(err, errNotWatchdog) {
				t.Errorf("%s: %v, want %v", path, err, errNotWatchdog)
			}
		}
		w := newWorldWith(t, func(c *Config) { c.Watchdog = file })
		w.start("a", nil)
		w.run(3*time.Second, "a")
		if n := len(w.eventsOf("a", "start")); n != 0 {
			t.Fatalf("started %d times with a plain file for a watchdog", n)
		}
		if h := w.get("history"); !strings.Contains(h, "not a watchdog device") {
			t.Fatalf("the history does not say why:\n%s", h)
		}
	})
}
