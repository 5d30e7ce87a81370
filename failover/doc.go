// Package failover is the pkg module: it keeps a "package" (floating addresses, disks,
// programs, all driven by one control script) running on exactly one host at a time and
// starts it on a stand-by host when the active one fails.
//
// # State in the store
//
// A package NAME lives under packages/NAME/ in the replicated store:
//
//	owner       the host that runs it, "" when nobody does
//	tick        a counter the owner raises every pace: its heartbeat
//	generation  raised by every new owner: the fencing token handed to the control script
//	state       unknown, starting, running, failing, halting, halted, failed
//	config      pace, timeout, start/stop timeouts, preferred owner, allowed hosts,
//	            local restarts, failback (one "key=value" per line)
//	enabled     "no" while in maintenance: monitors watch, nothing starts or fails over
//	halt        "yes" after `pkg halt`: stopped cluster-wide, nobody takes over
//	move        a host name after `pkg move`: the owner stops, that host starts
//	history/N   the last transitions: host, event, time
//
// Every change is a conditional set (`if KEY = OLD set NEW`), evaluated when the entry is
// applied, so two monitors racing for a package cannot both win.
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
// The winner raises generation, runs the control script's fence (which may, for example,
// stop the package on the previous owner over ssh, for the case where that host's monitor
// was killed and cannot stop it itself), then start. An active that sees another owner,
// or loses a tick race, stops at once.
//
// # Control scripts
//
// Scripts written for the original run unchanged: `SCRIPT start` (0 = started), `stop`,
// `status` (0 up, 1 down, 2 degraded; 3, LSB's "not running", also down), `fence`, and
// `echo VAR` for settings. They also get LITE_RAFT_PKG_NAME, LITE_RAFT_PKG_GENERATION,
// LITE_RAFT_PKG_OWNER and LITE_RAFT_PKG_PREVIOUS_OWNER in their environment. Calls for one
// package never overlap: one goroutine per package makes them.
package failover
