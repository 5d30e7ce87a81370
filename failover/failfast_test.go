package failover

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// shellLog is a control script that records the commands it is given to run with sh -c
// (fence_command, notify, on_stop_failure) instead of running them.
type shellLog struct {
	fakeScript
	mu       sync.Mutex
	commands []string
}

func (s *shellLog) Shell(ctx context.Context, command string, env []string, timeout time.Duration) (int, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commands = append(s.commands, command)
	return 0, "", nil
}

func (s *shellLog) ran() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// startLogged is world.start with a script whose shell commands are recorded.
func (w *world) startLogged(host string) *shellLog {
	sh := &shellLog{fakeScript: fakeScript{w: w, host: host}}
	w.startWith(host, nil, sh)
	return sh
}

// on_stop_failure: a failed stop runs the fail-fast command once, through the Runner; a
// clean stop runs nothing, and neither does a failed one without the setting; with a
// watchdog, the fail-fast is the watchdog left armed, and no command runs.
func TestOnStopFailure(t *testing.T) {
	for _, tc := range []struct {
		name      string
		setting   string
		watchdog  bool
		stopFails bool
		want      []string
	}{
		{"reboot, stop fails", "reboot", false, true, []string{"reboot -f"}},
		{"halt, stop fails", "halt", false, true, []string{"halt -f"}},
		{"reboot, clean stop", "reboot", false, false, nil},
		{"unset, stop fails", "", false, true, nil},
		{"reboot with a watchdog, stop fails", "reboot", true, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dev := &fakeDevice{}
				if tc.watchdog {
					useFakeWatchdog(t, dev)
				}
				w := newWorldWith(t, func(c *Config) {
					c.OnStopFailure = tc.setting
					if tc.watchdog {
						c.Watchdog = "/dev/watchdog"
					}
				})
				sh := w.startLogged("a")
				w.run(3*time.Second, "a")
				w.mu.Lock()
				w.stopFails["a"] = tc.stopFails
				w.mu.Unlock()
				w.stops["a"]() // pkg stop
				delete(w.stops, "a")
				if got := sh.ran(); strings.Join(got, "|") != strings.Join(tc.want, "|") {
					t.Fatalf("ran %q, want %q\n%s", got, tc.want, w.logs.String())
				}
				h := w.get("history")
				if tc.setting != "" && tc.stopFails && !strings.Contains(h, "on_stop_failure="+tc.setting) {
					t.Fatalf("the history does not tell of the fail-fast:\n%s", h)
				}
				if _, _, magic := dev.state(); tc.watchdog && magic {
					t.Fatal("the watchdog was stopped (magic close): want it abandoned armed")
				}
			})
		})
	}
}

func TestOnStopFailureSetting(t *testing.T) {
	c := DefaultConfig()
	for _, bad := range []string{"poweroff", "yes", "reboot -f"} {
		if err := c.Set("on_stop_failure", bad); err == nil || !strings.Contains(err.Error(), "want none, reboot or halt") {
			t.Errorf("on_stop_failure=%s: %v", bad, err)
		}
	}
	for v, want := range map[string]string{"reboot": "reboot", "halt": "halt", "none": ""} {
		c := DefaultConfig()
		if err := c.Set("on_stop_failure", v); err != nil || c.OnStopFailure != want {
			t.Fatalf("on_stop_failure=%s: %q, %v", v, c.OnStopFailure, err)
		}
		d, err := DecodeConfig(c.Encode())
		if err != nil || d.OnStopFailure != want || d.Encode() != c.Encode() {
			t.Fatalf("round trip of %s: %v %q\n%s", v, err, d.OnStopFailure, c.Encode())
		}
	}
}
