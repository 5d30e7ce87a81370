package decide

import "time"

// Step is what the active owner does this pace.
type Step uint8

const (
	Keep        Step = iota + 1 // nothing: the heartbeat goes on (maintenance, or no word from the store)
	CheckStatus                 // run the script's status
	Stop                        // stop the package now (Why says why, and what follows)
)

func (s Step) String() string {
	switch s {
	case Keep:
		return "keep"
	case CheckStatus:
		return "check status"
	case Stop:
		return "stop"
	}
	return "step?"
}

// Why an active owner stops.
type Why uint8

const (
	_ Why = iota
	// SelfFence: no tick confirmed in time; stop before anyone may take over. Comes
	// from the deadline alone, before any store call.
	SelfFence
	// OtherOwner: the store names another owner (or nobody): stop at once, release
	// nothing.
	OtherOwner
	// Halt: pkg halt: stop, record halted, release.
	Halt
	// Moved: pkg move to another host: stop, release to it.
	Moved
	// Down: status failed beyond the local restarts: stop, record failed, release.
	Down
	// Asked: pkg stop on this host: stop, release, end the monitor.
	Asked
	// Evacuated: pkg evacuate of this host: stop, release, stand by (taking nothing).
	Evacuated
)

func (w Why) String() string {
	switch w {
	case SelfFence:
		return "no heartbeat reached the store in time: fencing myself"
	case OtherOwner:
		return "the store names another owner"
	case Halt:
		return "halted cluster-wide (pkg halt)"
	case Moved:
		return "handed over (pkg move)"
	case Down:
		return "status failed"
	case Asked:
		return "stopped by pkg stop"
	case Evacuated:
		return "this host is evacuated (pkg evacuate)"
	}
	return "why?"
}

// ActiveStep decides an active owner's pace. lastOK is the send time of its last tick
// the store confirmed; v is this pace's read of the store, nil if it gave none. The
// deadline is looked at first: after a freeze or a suspend (the clock counts both) the
// owner stops before it asks the store anything.
func ActiveStep(r Rules, host string, v *View, lastOK, now time.Duration) (Step, Why) {
	if now >= r.SelfFenceAt(lastOK) {
		return Stop, SelfFence
	}
	switch {
	case v == nil:
		return Keep, 0 // the deadline decides
	case v.Owner != host:
		return Stop, OtherOwner
	case v.Halt:
		return Stop, Halt
	case v.Move != "" && v.Move != host:
		return Stop, Moved
	case !v.Enabled:
		return Keep, 0 // maintenance: heartbeat only
	case v.IsEvacuated(host):
		return Stop, Evacuated // (after maintenance: nobody would start it elsewhere)
	}
	return CheckStatus, 0
}

// After is what follows a stop.
type After struct {
	State    State    // to record ("" nothing: the state is not ours to write now)
	Release  bool     // give ownership up, recording Previous
	Previous Previous // who held it and how that ended
	// Pending is how the stop ended when the store could not be told (a self-fence): the
	// monitor says so as a stand-by once the store answers (Standby's selfFenced).
	Pending Ending
	// Escalate: the stop failed; on_stop_failure (reboot, halt), if set, applies.
	Escalate bool
	Exit     bool // the monitor ends
	// GiveUp: this host takes the package no more (Watch.GiveUp), its monitor staying
	GiveUp bool
}

// AfterStop says what an owner does once its stop for why ended, stopped reporting
// whether the stop succeeded (exit 0 within stop_timeout). A failed stop never releases:
// the package stays with this host as stop-failed until someone fences it.
func AfterStop(host string, why Why, stopped bool) After {
	clean := Previous{Host: host, Ending: Stopped}
	if !stopped {
		switch why {
		case SelfFence:
			return After{Pending: StopFailedEnding, Escalate: true}
		case OtherOwner:
			// the new owner fences this host before it starts (it is its previous owner,
			// not stopped cleanly): it finds the package still up here and does not start
			return After{Escalate: true}
		}
		return After{State: StopFailed, Escalate: true, Exit: true}
	}
	switch why {
	case SelfFence:
		return After{Pending: Stopped}
	case Halt, Moved, Evacuated:
		return After{State: Halted, Release: true, Previous: clean}
	case Down:
		return After{State: Failed, Release: true, Previous: clean, GiveUp: true}
	case Asked:
		return After{State: Halted, Release: true, Previous: clean, Exit: true}
	}
	return After{} // OtherOwner: nothing of the package is ours any more
}
