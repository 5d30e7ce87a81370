// Package failover is the pkg module: it keeps a "package" (floating addresses, disks,
// programs, all driven by one control script) running on exactly one host at a time and
// starts it on a stand-by host when the active one fails.
//
// # State in the store
//
// A package NAME lives under packages/NAME/ in the replicated store:
//
//	owner       the host that runs it, or keeps it after a failed stop; "" when nobody does
//	tick        a counter the owner raises every pace: its heartbeat
//	generation  a store counter (not a key: no set reaches it) raised by every new owner:
//	            the fencing token handed to the control script; past any earlier one, also
//	            after a restore
//	state       unknown, starting, running, failing, halting, halted, failed, stop-failed
//	previous    "HOST ENDING": who held it before the owner and how that ended (stopped,
//	            taken-over, stop-failed, fenced, confirmed); a start fences HOST unless it
//	            stopped cleanly, was fenced, or an operator confirmed it (confirm-stopped)
//	config      pace, timeout, start/stop timeouts, preferred owner, allowed hosts,
//	            local restarts, failback, fence_command, watchdog, notify, on_stop_failure
//	            ("key=value" lines)
//	enabled     "no" while in maintenance: monitors watch, nothing starts or fails over
//	halt        "yes" after `pkg halt`: stopped cluster-wide, nobody takes over
//	move        a host name after `pkg move`: the owner stops, that host starts
//	history     the last transitions, one line each: time, host, event
//	notifier    "HOST UNIXMILLI" while a monitor runs the notify command; notified the
//	            last history line it was run for
//	standby/H   stand-by H's report: when it reported, the tick it saw and since when
//
// Every change is a conditional write, evaluated when the entry is applied, so two
// monitors racing for a package cannot both win.
//
// # Decisions
//
// What a monitor does is decided in package decide, from one read of these keys and its
// clock: a stand-by's takeover and whom it fences first, an owner's pace, the
// self-fencing deadline, what a fence result allows, what a stop leaves behind. This
// package is the driver: it reads, runs the scripts and the fencing, and writes.
//
// A stop that fails (exit non-zero, or past stop_timeout) never lets the package go: it
// stays owned by its host as stop-failed, recorded and notified, with the watchdog (if
// any) left armed, and no other host starts it until that host is fenced: a stand-by
// runs fence-stop there (retried with a backoff doubling from a pace to 64 paces), and
// takes over only once that finds the package stopped, or fence_command succeeds; or an
// operator, having checked by hand, runs `pkg confirm-stopped NAME HOST`. With
// on_stop_failure=reboot or halt the host does not wait: its monitor runs `reboot -f` or
// `halt -f` through the Runner (with a watchdog, it only stops feeding it), see failfast.go.
//
// # The watchdog
//
// A package with a watchdog is armed, fed after every heartbeat that reached the store,
// and disarmed when given up cleanly, through the host's Keeper of that device (a device
// opens in one process only; the monitors of a host's packages are separate processes,
// so `pkg watchdog-keeper DEVICE` holds it for them, wdkeeper.go and wdserve.go). The
// keeper feeds the device only while every armed package was fed within its window: the
// host resets if any package's monitor stops feeding while it owns its package, within
// timeout - pace of that monitor's last feed. The device's timeout is read back from the
// driver, and one that does not fit is refused (checkShared), as is a path that is no
// watchdog device: the package is then not started.
//
// # The safety rule
//
// The active monitor raises tick every pace. It notes, on its monotonic clock, when it
// sent each request; its fencing deadline is the send time of its last successful tick
// plus timeout. If it cannot raise tick before that deadline it stops the package itself,
// beginning early enough (stop_timeout before the deadline) to be done by then. A stand-by
// notes, on its own monotonic clock, when it first saw the current tick value, which is
// after that value was committed and so after the active sent it. It may take over only
// timeout + 3*pace after that moment: strictly after the active's deadline, with three
// paces of margin for clock rates. Settings where stop_timeout + pace is not below
// timeout are refused, since the active could not be stopped in time.
//
// The winner raises the generation counter (a takeover that cannot raise it does not
// start: a token is never reissued), then fences the previous owner itself, unless it
// stopped cleanly: over ssh it runs `pkg fence-stop NAME` there, which kills that host's
// monitor (dead, frozen or cut off, whatever it is doing), runs the script's stop, then
// its status. A host that answers and still reports the package up, or a session that
// broke once fence-stop was sent (unknown), blocks the start: the package goes back to
// that host as stop-failed. Only a host that could not be connected to at all is left
// to the timing rule (or to fence_command, if set), and only if its stop is not known to
// have failed. A stand-by keeps an ssh connection to the owner open and checked, so that
// a takeover knows at once whether the owner answers; a stale one is dialled again before
// the host is called unreachable. Then the script's own fence, then start. An active that
// sees another owner, or loses a tick race, stops at once; one woken after a freeze looks
// at its deadline before it asks the store anything. A monitor that starts stops a copy
// of the package it finds running while another host owns it.
//
// The monitor's time is a Clock and its scripts (fence_command and notify included) a
// Runner, so the rules are tested on fake clocks (safety_test.go, stopfail_test.go):
// self-fencing before the last tick + timeout, a stand-by only after the owner's
// deadline, no start without a new generation, a frozen owner that wakes stopping without
// starting, and with three monitors a stop that fails under pkg stop, pkg move and a
// failing status, and a takeover whose fencing fails: never two hosts at once.
//
// # Control scripts
//
// Scripts written for the original run unchanged: `SCRIPT start` (0 = started), `stop`,
// `status` (0 up, 1 down, 2 degraded; 3, LSB's "not running", also down), `fence`, and
// `echo VAR` for settings. They also get LITE_RAFT_PKG_NAME, LITE_RAFT_PKG_GENERATION,
// LITE_RAFT_PKG_OWNER and LITE_RAFT_PKG_PREVIOUS_OWNER in their environment. Calls for one
// package never overlap: one goroutine per package makes them.
package failover
