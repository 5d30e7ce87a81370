package failover

import (
	"context"
	"time"

	"lite-raft/internal/guard"
)

// Clock is the monitor's time: the system's, or a fake one that tests move by hand, so
// that the safety rule is checked without waiting real seconds.
type Clock interface {
	// Now is the wall time, for the history and the reports.
	Now() time.Time
	// Uptime is the time since an origin of its own on a clock that goes on counting
	// while the host is suspended (CLOCK_BOOTTIME where the system has one): what the
	// deadlines count. Go's monotonic clock stops during a suspend, so an owner woken from
	// one would think its deadline still ahead while a stand-by has already taken over.
	Uptime() time.Duration
	// NewTimer returns a timer that fires once, d from now, until Reset or Stop.
	NewTimer(d time.Duration) Timer
}

// Timer is a Clock's one-shot timer.
type Timer interface {
	C() <-chan time.Time
	// Reset arms it to fire d from now (a fire not yet received is dropped).
	Reset(d time.Duration)
	Stop()
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Uptime() time.Duration { return time.Duration(guard.Now()) }

func (systemClock) NewTimer(d time.Duration) Timer { return &systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t *systemTimer) C() <-chan time.Time { return t.t.C }

func (t *systemTimer) Reset(d time.Duration) { t.t.Reset(d) } // Go 1.23+: no stale fire after Reset

func (t *systemTimer) Stop() { t.t.Stop() }

// Runner runs a package's control script verbs: *Script, or a fake in tests.
type Runner interface {
	Run(ctx context.Context, verb string, timeout time.Duration) (code int, out string, err error)
	// SetEnv sets the LITE_RAFT_PKG_* variables of the calls that follow.
	SetEnv(env []string)
	// Shell runs a setting's command (fence_command, notify) with sh -c and env.
	Shell(ctx context.Context, command string, env []string, timeout time.Duration) (code int, out string, err error)
}
