package failover

import (
	"context"
	"fmt"
	"time"

	"lite-raft/internal/logsink"
)

// failFastCommands are what on_stop_failure runs, through the Runner (sh -c). `reboot -f`
// and `halt -f` mean the same on systemd (where they skip the service manager, as
// `systemctl reboot -ff` does), sysvinit and busybox: the host goes down at once, without
// stopping services or unmounting, which is the point: the package's stop just failed,
// and an orderly shutdown would run it again and could hang on the same busy mount. No
// `sync` first for the same reason: it can hang on the file system that would not let go.
var failFastCommands = map[string]string{"reboot": "reboot -f", "halt": "halt -f"}

// failFastTimeout bounds the command: one that comes back has failed to take the host
// down, and the monitor goes on as without the setting.
const failFastTimeout = 10 * time.Second

// failFast applies on_stop_failure after a stop that failed (decide.After.Escalate): the
// package may still run here, and no other host starts it until this one is fenced; the
// host taking itself down ends that wait (Serviceguard's fail-fast). With a watchdog, it
// was abandoned armed when the stop failed: that is the fail-fast, and the host resets when
// it runs out, without a command; reboot and halt then both mean that. The caller has
// recorded the failed stop, which notifies.
func (m *Monitor) failFast(ctx context.Context, wd *watchdog) {
	cmd := failFastCommands[m.cfg.OnStopFailure]
	if cmd == "" {
		return
	}
	if wd != nil {
		m.record(ctx, fmt.Sprintf("on_stop_failure=%s: the watchdog, no longer fed, resets this host within %d s",
			m.cfg.OnStopFailure, m.cfg.watchdogTimeout()))
		return
	}
	m.record(ctx, fmt.Sprintf("on_stop_failure=%s: running %q", m.cfg.OnStopFailure, cmd))
	code, out, err := m.Script.Shell(context.Background(), cmd, nil, failFastTimeout)
	if err != nil || code != 0 {
		m.Log.Printf(logsink.Warn+"%s: %s failed (exit %d, %v): %s", m.Name, cmd, code, err, out)
		m.record(ctx, fmt.Sprintf("on_stop_failure=%s: %q failed (exit %d): the host must be fenced", m.cfg.OnStopFailure, cmd, code))
	}
}
