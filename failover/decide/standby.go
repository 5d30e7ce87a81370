package decide

import "time"

// Watch is what a stand-by remembers between paces: when it last saw the tick or the
// owner change (on a clock that counts suspend), and its fencing attempts on a host whose
// stop failed.
type Watch struct {
	Tick, Owner string
	Since       time.Duration
	// Wait is the longest wait any settings asked for since the owner last changed
	// (this host's, as they changed, and the owner's published one): settings shortened
	// by pkg init --update while the owner runs on the old ones never cut the wait short.
	Wait time.Duration

	FenceTries  int
	NextFenceAt time.Duration

	// MoveTo and MoveReport are the move target and its stand-by report as last seen,
	// MoveSince when either changed: a target whose report stands still for a wait lets
	// the move lapse.
	MoveTo, MoveReport string
	MoveSince          time.Duration

	// GaveUp: this host gave the package up (its start or its status failed beyond its
	// restarts, or its fence did) at GaveUpAt, with Cleanup the last pkg cleanup seen:
	// it takes the package no more until a new cleanup names it or FailureTimeout
	// passes.
	GaveUp   bool
	GaveUpAt time.Duration
	Cleanup  string
}

// GiveUp records that this host gave the package up at now, cleanup the last
// packages/NAME/cleanup it read.
func (w *Watch) GiveUp(now time.Duration, cleanup string) {
	w.GaveUp, w.GaveUpAt, w.Cleanup = true, now, cleanup
}

// Action is what a monitor does now.
type Action uint8

const (
	Wait           Action = iota // nothing this pace
	TakeOver                     // race for the package (one conditional write), then fence, then start
	AskBack                      // failback: ask the owner to move the package here
	Release                      // give up ownership kept after self-fencing: its stop succeeded
	MarkStopFailed               // record stop-failed, kept after self-fencing: its stop failed
	LapseMove                    // clear a move whose target has stopped reporting
	StandByAgain                 // a host that gave the package up may take it again
)

func (a Action) String() string {
	switch a {
	case Wait:
		return "wait"
	case TakeOver:
		return "take over"
	case AskBack:
		return "ask back"
	case Release:
		return "release"
	case MarkStopFailed:
		return "mark stop-failed"
	case LapseMove:
		return "lapse the move"
	case StandByAgain:
		return "stand by again"
	}
	return "action?"
}

// Reason says why: for the logs, the history and the tests. Nothing matches its text.
type Reason uint8

const (
	_ Reason = iota
	OwnerAlive
	HaltedAll
	Maintenance
	NotAllowed
	MovingElsewhere
	RankWait
	OwnerTimedOut
	Free
	Adopt
	OwnerStopFailed
	FenceBackoff
	FailbackWanted
	SelfFencedEarlier
	MoveTargetSilent
	HostEvacuated
	GaveUpHere
	CleanedUp
	FailureExpired
	OwnerStale
)

var reasonText = map[Reason]string{
	OwnerAlive:        "the owner's heartbeat is recent",
	HaltedAll:         "halted cluster-wide",
	Maintenance:       "in maintenance",
	NotAllowed:        "this host is not in allowed_hosts",
	MovingElsewhere:   "moving to another host",
	RankWait:          "hosts listed first get the first chance",
	OwnerTimedOut:     "the owner's heartbeat stopped past its fencing deadline",
	Free:              "nobody owns it",
	Adopt:             "this host owns it already",
	OwnerStopFailed:   "its owner's stop failed: fence it, then take over",
	FenceBackoff:      "fencing the host whose stop failed is retried later",
	FailbackWanted:    "this is the preferred owner",
	SelfFencedEarlier: "this host fenced itself while owner, out of reach of the store",
	MoveTargetSilent:  "the move's target has not reported for the owner's wait",
	HostEvacuated:     "this host is evacuated (pkg evacuate)",
	GaveUpHere:        "this host gave the package up (pkg cleanup, or failure_timeout, lets it stand by again)",
	CleanedUp:         "pkg cleanup",
	FailureExpired:    "failure_timeout passed since it gave up",
	OwnerStale:        "the owner's tick has stood for two paces: fencing it, if its monitor is dead or frozen",
}

func (r Reason) String() string {
	if s, ok := reasonText[r]; ok {
		return s
	}
	return "reason?"
}

// Decision is a stand-by's decision for this pace.
type Decision struct {
	Action Action
	Reason Reason
	// With TakeOver: the host to fence before starting ("" none), and whether only a
	// successful fence allows the start (a host whose stop failed: no timing rule
	// covers it).
	Fence     string
	FenceOnly bool
	// Early: a takeover before the owner's timeout, allowed only by a fence over ssh
	// that found its monitor dead or frozen and the package stopped (FenceStopped);
	// nothing else (not fence_command: the owner may be merely slow) allows it.
	Early bool
}

// Standby decides a stand-by's pace from one read of the store, at now (monotonic, and
// counting suspend). It updates w. selfFenced is how this host's stop ended when it
// fenced itself as owner out of reach of the store, "" if it did not (AfterStop's
// Pending): once the store answers, a clean stop is released, a failed one recorded.
func Standby(r Rules, host string, v View, w *Watch, now time.Duration, selfFenced Ending) Decision {
	if selfFenced != "" && v.Owner == host {
		if selfFenced == Stopped {
			return Decision{Action: Release, Reason: SelfFencedEarlier}
		}
		return Decision{Action: MarkStopFailed, Reason: SelfFencedEarlier}
	}
	if w.GaveUp {
		switch {
		case v.Cleanup != w.Cleanup && CleanupFor(v.Cleanup, host):
			w.GaveUp = false
			return Decision{Action: StandByAgain, Reason: CleanedUp}
		case r.FailureTimeout > 0 && now-w.GaveUpAt >= r.FailureTimeout:
			w.GaveUp = false
			return Decision{Action: StandByAgain, Reason: FailureExpired}
		}
		w.Cleanup = v.Cleanup // one for another host is not for us, nor is it later
		w.Tick, w.Owner, w.Since = v.Tick, v.Owner, now
		return Decision{Reason: GaveUpHere}
	}
	if v.Tick != w.Tick || v.Owner != w.Owner {
		w.FenceTries, w.NextFenceAt = 0, 0 // a moving tick answers early fencing too
		if v.Owner != w.Owner {
			w.Wait = 0
		}
		w.Tick, w.Owner, w.Since = v.Tick, v.Owner, now
	}
	w.Wait = max(w.Wait, r.Wait(v))
	if v.Move != w.MoveTo || v.MoveReport != w.MoveReport {
		w.MoveTo, w.MoveReport, w.MoveSince = v.Move, v.MoveReport, now
	}
	switch {
	case v.Halt:
		w.Since = now // no countdown while halted
		return Decision{Reason: HaltedAll}
	case !v.Enabled:
		w.Since = now
		return Decision{Reason: Maintenance}
	case !r.Allowed:
		return Decision{Reason: NotAllowed}
	case v.IsEvacuated(host):
		// not even its own package (an owner whose monitor restarted): the others wait
		// out its tick and fence it as for any silent owner
		return Decision{Reason: HostEvacuated}
	case v.Move != "" && v.Move != host && now-w.MoveSince > r.MoveLapse(v):
		// its monitor died or froze after the move was asked: every other stand-by
		// would wait for it forever
		return Decision{Action: LapseMove, Reason: MoveTargetSilent}
	case v.Move != "" && v.Move != host:
		return Decision{Reason: MovingElsewhere}
	}
	rank := r.Rank
	if v.Move == host {
		rank = 0
	}
	if r.Preferred && r.Failback && v.Owner != "" && v.Owner != host && v.Move == "" && v.State != StopFailed {
		return Decision{Action: AskBack, Reason: FailbackWanted}
	}
	switch {
	case v.Owner == host:
		// ours from before this monitor started (a restart, or a takeover whose write
		// came back unknown): whoever held it before must still be fenced
		return Decision{Action: TakeOver, Reason: Adopt, Fence: fenceOf(v.Previous, host)}
	case v.State == StopFailed && v.Owner != "":
		// no timing rule covers a host whose stop failed: only a fence does
		if now-w.Since < time.Duration(rank)*r.Pace {
			return Decision{Reason: RankWait}
		}
		if now < w.NextFenceAt {
			return Decision{Reason: FenceBackoff}
		}
		return Decision{Action: TakeOver, Reason: OwnerStopFailed, Fence: v.Owner, FenceOnly: true}
	case v.Owner == "":
		if now-w.Since < time.Duration(rank)*r.Pace {
			return Decision{Reason: RankWait}
		}
		return Decision{Action: TakeOver, Reason: Free, Fence: fenceOf(v.Previous, host),
			FenceOnly: v.Previous.Ending == StopFailedEnding}
	case now-w.Since <= w.Wait:
		// a monitor killed or frozen on a host that still answers need not cost a whole
		// timeout: fence it, if its monitor is dead or frozen, and take over at once
		// (ranked stand-bys a pace apart, so that they rarely fence it together)
		if r.EarlyFence && now-w.Since > time.Duration(2+rank)*r.Pace && now >= w.NextFenceAt {
			return Decision{Action: TakeOver, Reason: OwnerStale, Fence: v.Owner, FenceOnly: true, Early: true}
		}
		return Decision{Reason: OwnerAlive}
	}
	return Decision{Action: TakeOver, Reason: OwnerTimedOut, Fence: v.Owner}
}

// fenceOf is the host to fence given who held the package before ("" none).
func fenceOf(p Previous, host string) string {
	if p.Clean() || p.Host == host {
		return ""
	}
	return p.Host
}

// FenceFailed is told that fencing a host whose stop failed did not succeed: the next
// try waits twice as long as the last, from a pace up to 64 paces (a power switch is not
// hammered every pace).
func FenceFailed(r Rules, w *Watch, now time.Duration) {
	w.FenceTries++
	w.NextFenceAt = now + r.Pace<<min(w.FenceTries-1, 6)
}
