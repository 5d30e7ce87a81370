package decide

import (
	"fmt"
	"strings"
	"time"
)

// State is a package's state, as packages/NAME/state holds it.
type State string

const (
	Unknown    State = "unknown"
	Starting   State = "starting"
	Running    State = "running"
	Failing    State = "failing"
	Halting    State = "halting"
	Halted     State = "halted"
	Failed     State = "failed"
	StopFailed State = "stop-failed" // its stop failed or hung: it may still run on the owner
)

// Ending is how a previous owner's time with the package ended, as recorded with its
// name when the package changed hands (packages/NAME/previous: "HOST ENDING").
type Ending string

const (
	// Stopped: its own stop succeeded before it let the package go. Nothing to fence.
	Stopped Ending = "stopped"
	// TakenOver: another host took the package after its heartbeat stopped. Its monitor,
	// if alive, stopped the package by the self-fencing deadline, but its stop may have
	// failed out of reach of the store: fence it.
	TakenOver Ending = "taken-over"
	// StopFailedEnding: its stop failed; fence it.
	StopFailedEnding Ending = "stop-failed"
	// Fenced: a later owner fenced it (fence-stop there, or fence_command).
	Fenced Ending = "fenced"
	// Confirmed: an operator confirmed it stopped (pkg confirm-stopped).
	Confirmed Ending = "confirmed"
)

// Previous is who held the package before its owner, and how that ended.
type Previous struct {
	Host   string
	Ending Ending
}

// Clean reports whether nothing of previous needs fencing.
func (p Previous) Clean() bool {
	switch p.Ending {
	case Stopped, Fenced, Confirmed:
		return true
	}
	return p.Host == ""
}

// String is the value of packages/NAME/previous.
func (p Previous) String() string {
	if p.Host == "" {
		return ""
	}
	return p.Host + " " + string(p.Ending)
}

// ParsePrevious reads packages/NAME/previous. A host with no ending (or one this build
// does not know) is not clean: it is fenced.
func ParsePrevious(v string) Previous {
	var p Previous
	var e string
	if n, _ := fmt.Sscan(v, &p.Host, &e); n == 2 {
		p.Ending = Ending(e)
	}
	return p
}

// View is one read of packages/NAME/: everything a decision needs of the store, read
// at one moment.
type View struct {
	Owner    string
	Tick     string
	State    State
	Enabled  bool // false: maintenance (enabled=no)
	Halt     bool
	Move     string
	Previous Previous
	// OwnerWait is how long the owner's own settings say a stand-by must wait after its
	// last tick (its timeout + 3*pace), published with its heartbeat (0: not published).
	OwnerWait time.Duration
	// MoveReport is the move target's stand-by report (packages/NAME/standby/HOST) as
	// read with the view, "" if none or no move; it changes each time the target reports.
	MoveReport string
	// Evacuated lists the hosts pkg evacuate took the package from (space-separated, as
	// packages/NAME/evacuated holds them): none of them runs it until pkg unevacuate.
	Evacuated string
	// Cleanup is the last pkg cleanup ("MS HOST", HOST * for every host; "" none).
	Cleanup string
}

// IsEvacuated reports whether host is one of the view's evacuated hosts.
func (v View) IsEvacuated(host string) bool {
	for _, h := range strings.Fields(v.Evacuated) {
		if h == host {
			return true
		}
	}
	return false
}

// Rules are the settings a decision uses, this monitor's own.
type Rules struct {
	Pace, Timeout, StopTimeout time.Duration
	Allowed                    bool // this host may run the package
	Rank                       int  // its place in allowed_hosts: it waits Rank paces for a free package
	Preferred, Failback        bool // it is the preferred owner, and takes the package back
	// ReportEvery is how often a stand-by reports (packages/NAME/standby/HOST).
	ReportEvery time.Duration
	// EarlyFence: this host can fence over ssh, so an owner whose tick has stood for
	// two paces may be fenced (if its monitor is dead or frozen) and taken over before
	// its timeout.
	EarlyFence bool
	// Health's settings (fall, rise, restarts, failure_timeout): see Health.
	Fall, Rise, Restarts int
	FailureTimeout       time.Duration
}

// MoveLapse is how long a move's target may go without a new stand-by report before the
// move lapses: the owner's wait, and never less than two of its reports and a pace (one
// report late is no death).
func (r Rules) MoveLapse(v View) time.Duration {
	return max(r.Wait(v), 2*r.ReportEvery+r.Pace)
}

// Wait is how long after a stand-by last saw the tick move it may take the package
// over: the owner's fencing deadline (Timeout after its last tick) with three paces of
// margin for the clocks, and never less than what the owner's own settings require.
func (r Rules) Wait(v View) time.Duration { return max(r.Timeout+3*r.Pace, v.OwnerWait) }

// SelfFenceAt is when an active owner whose last confirmed tick was sent at lastOK
// must begin stopping the package: early enough for a stop of StopTimeout to end, with
// a pace to spare, before lastOK + Timeout, which is earlier than any stand-by starts.
func (r Rules) SelfFenceAt(lastOK time.Duration) time.Duration {
	return lastOK + r.Timeout - r.StopTimeout - r.Pace
}
