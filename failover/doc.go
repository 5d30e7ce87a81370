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
// The winner raises generation by a conditional set (a takeover that cannot raise it
// does not start: a token is never reissued), then fences the previous owner itself:
// over ssh it runs `pkg fence-stop NAME` there, which kills that host's monitor (dead,
// frozen or cut off, whatever it is doing), runs the script's stop, then its status; a
// host that answers and still reports the package up blocks the start. A stand-by keeps
// an ssh connection to the owner open and checked, so that a takeover knows at once
// whether the owner can be reached; one that cannot has stopped the package itself by the
// rule above. Then the script's own fence, then start. An active that sees another
// owner, or loses a tick race, stops at once. A monitor that starts stops a copy of the
// package it finds running while another host owns it, and one woken after a gap calls no
// script until the store confirms it still owns the package.
//
// The monitor's time is a Clock and its script a Runner, so the rule is tested on fake
// clocks (safety_test.go): self-fencing before the last tick + timeout, a stand-by only
// after the owner's deadline, no start without a new generation, a frozen owner that
// wakes stopping without starting.
//
// # Control scripts
//
// Scripts written for the original run unchanged: `SCRIPT start` (0 = started), `stop`,
// `status` (0 up, 1 down, 2 degraded; 3, LSB's "not running", also down), `fence`, and
// `echo VAR` for settings. They also get LITE_RAFT_PKG_NAME, LITE_RAFT_PKG_GENERATION,
// LITE_RAFT_PKG_OWNER and LITE_RAFT_PKG_PREVIOUS_OWNER in their environment. Calls for one
// package never overlap: one goroutine per package makes them.
package failover
