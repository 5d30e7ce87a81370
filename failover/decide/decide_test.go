package decide

import (
	"testing"
	"time"
)

var rules = Rules{Pace: time.Second, Timeout: 10 * time.Second, StopTimeout: 5 * time.Second, Allowed: true}

// TestStandby walks a stand-by's decisions: one row per rule, each from a fresh Watch
// that saw the same tick and owner at 0.
func TestStandby(t *testing.T) {
	live := View{Owner: "a", Tick: "7", State: Running, Enabled: true}
	with := func(f func(*View)) View { v := live; f(&v); return v }
	for _, tc := range []struct {
		name   string
		r      Rules
		v      View
		now    time.Duration
		self   Ending
		want   Decision
		before func(*Watch)
	}{
		{name: "owner alive", v: live, now: 13 * time.Second, want: Decision{Reason: OwnerAlive}},
		{name: "owner timed out", v: live, now: 13*time.Second + 1, want: Decision{Action: TakeOver, Reason: OwnerTimedOut, Fence: "a"}},
		{name: "owner's settings ask for longer", v: with(func(v *View) { v.OwnerWait = 30 * time.Second }), now: 20 * time.Second,
			want: Decision{Reason: OwnerAlive}},
		{name: "halted", v: with(func(v *View) { v.Halt = true }), now: time.Hour, want: Decision{Reason: HaltedAll}},
		{name: "maintenance", v: with(func(v *View) { v.Enabled = false }), now: time.Hour, want: Decision{Reason: Maintenance}},
		{name: "not allowed", r: Rules{Pace: time.Second, Timeout: 10 * time.Second}, v: live, now: time.Hour, want: Decision{Reason: NotAllowed}},
		{name: "moving elsewhere", v: with(func(v *View) { v.Move = "c" }), now: time.Hour, want: Decision{Reason: MovingElsewhere}},
		{name: "free, clean", v: with(func(v *View) { v.Owner, v.Previous = "", Previous{"a", Stopped} }), want: Decision{Action: TakeOver, Reason: Free}},
		{name: "free, taken over before", v: with(func(v *View) { v.Owner, v.Previous = "", Previous{"a", TakenOver} }),
			want: Decision{Action: TakeOver, Reason: Free, Fence: "a"}},
		{name: "free, stop failed before", v: with(func(v *View) { v.Owner, v.Previous = "", Previous{"a", StopFailedEnding} }),
			want: Decision{Action: TakeOver, Reason: Free, Fence: "a", FenceOnly: true}},
		{name: "free, a previous owner with no ending", v: with(func(v *View) { v.Owner, v.Previous = "", ParsePrevious("a") }),
			want: Decision{Action: TakeOver, Reason: Free, Fence: "a"}},
		{name: "free, ranked second", r: Rules{Pace: time.Second, Timeout: 10 * time.Second, Allowed: true, Rank: 2},
			v: with(func(v *View) { v.Owner = "" }), now: 1500 * time.Millisecond, want: Decision{Reason: RankWait}},
		{name: "adopt, previous unclean", v: with(func(v *View) { v.Owner, v.Previous = "b", Previous{"a", TakenOver} }),
			want: Decision{Action: TakeOver, Reason: Adopt, Fence: "a"}},
		{name: "adopt, previous itself", v: with(func(v *View) { v.Owner, v.Previous = "b", Previous{"b", StopFailedEnding} }),
			want: Decision{Action: TakeOver, Reason: Adopt}},
		{name: "stop failed: fence at once", v: with(func(v *View) { v.State = StopFailed }),
			want: Decision{Action: TakeOver, Reason: OwnerStopFailed, Fence: "a", FenceOnly: true}},
		{name: "stop failed, no failback over it", r: Rules{Pace: time.Second, Timeout: 10 * time.Second, Allowed: true, Preferred: true, Failback: true},
			v: with(func(v *View) { v.State = StopFailed }), want: Decision{Action: TakeOver, Reason: OwnerStopFailed, Fence: "a", FenceOnly: true}},
		{name: "stop failed, backing off", v: with(func(v *View) { v.State = StopFailed }), now: 3 * time.Second,
			before: func(w *Watch) { w.NextFenceAt = 4 * time.Second }, want: Decision{Reason: FenceBackoff}},
		{name: "failback", r: Rules{Pace: time.Second, Timeout: 10 * time.Second, Allowed: true, Preferred: true, Failback: true},
			v: live, want: Decision{Action: AskBack, Reason: FailbackWanted}},
		{name: "self-fenced, stopped", v: with(func(v *View) { v.Owner = "b" }), self: Stopped, want: Decision{Action: Release, Reason: SelfFencedEarlier}},
		{name: "self-fenced, stop failed", v: with(func(v *View) { v.Owner = "b" }), self: StopFailedEnding,
			want: Decision{Action: MarkStopFailed, Reason: SelfFencedEarlier}},
		{name: "self-fenced, taken over meanwhile", v: live, self: StopFailedEnding, want: Decision{Reason: OwnerAlive}},
		{name: "tick stood two paces, early fence", r: Rules{Pace: time.Second, Timeout: 10 * time.Second, Allowed: true, EarlyFence: true},
			v: live, now: 2*time.Second + 1, want: Decision{Action: TakeOver, Reason: OwnerStale, Fence: "a", FenceOnly: true, Early: true}},
		{name: "tick stood two paces, no fencing over ssh", v: live, now: 2*time.Second + 1, want: Decision{Reason: OwnerAlive}},
		{name: "tick stood exactly two paces", r: Rules{Pace: time.Second, Timeout: 10 * time.Second, Allowed: true, EarlyFence: true},
			v: live, now: 2 * time.Second, want: Decision{Reason: OwnerAlive}},
		{name: "early fence, ranked second: a pace more", r: Rules{Pace: time.Second, Timeout: 10 * time.Second, Allowed: true, EarlyFence: true, Rank: 1},
			v: live, now: 2*time.Second + 1, want: Decision{Reason: OwnerAlive}},
		{name: "early fence backing off", r: Rules{Pace: time.Second, Timeout: 10 * time.Second, Allowed: true, EarlyFence: true},
			v: live, now: 3 * time.Second, before: func(w *Watch) { w.NextFenceAt = 4 * time.Second }, want: Decision{Reason: OwnerAlive}},
		{name: "evacuated, free", v: with(func(v *View) { v.Owner, v.Evacuated = "", "b" }), now: time.Hour, want: Decision{Reason: HostEvacuated}},
		{name: "evacuated, moved here", v: with(func(v *View) { v.Owner, v.Move, v.Evacuated = "", "b", "c b" }), now: time.Hour,
			want: Decision{Reason: HostEvacuated}},
		{name: "evacuated, owner timed out", v: with(func(v *View) { v.Evacuated = "b" }), now: time.Hour, want: Decision{Reason: HostEvacuated}},
		{name: "evacuated preferred owner, no failback", r: Rules{Pace: time.Second, Timeout: 10 * time.Second, Allowed: true, Preferred: true, Failback: true},
			v: with(func(v *View) { v.Evacuated = "b" }), want: Decision{Reason: HostEvacuated}},
		{name: "evacuated itself, owning it: not adopted", v: with(func(v *View) { v.Owner, v.Evacuated = "b", "b" }), want: Decision{Reason: HostEvacuated}},
	} {
		r := tc.r
		if r.Pace == 0 {
			r = rules
		}
		w := Watch{Tick: live.Tick, Owner: tc.v.Owner}
		if tc.before != nil {
			tc.before(&w)
		}
		if got := Standby(r, "b", tc.v, &w, tc.now, tc.self); got != tc.want {
			t.Errorf("%s: %+v (%s), want %+v (%s)", tc.name, got, got.Reason, tc.want, tc.want.Reason)
		}
	}
}

// TestStandbyCountsFromTheLastChange: the countdown restarts when the tick or the
// owner moves, and halts and maintenance hold it.
func TestStandbyCountsFromTheLastChange(t *testing.T) {
	v := View{Owner: "a", Tick: "1", State: Running, Enabled: true}
	var w Watch
	Standby(rules, "b", v, &w, 0, "")
	v.Tick = "2"
	Standby(rules, "b", v, &w, 5*time.Second, "")
	if d := Standby(rules, "b", v, &w, 18*time.Second, ""); d.Action != Wait {
		t.Fatalf("13 s after the tick moved: %+v, want a wait (the countdown restarted at 5 s)", d)
	}
	if d := Standby(rules, "b", v, &w, 18*time.Second+1, ""); d.Action != TakeOver {
		t.Fatalf("13 s + 1 ns after the tick moved: %+v, want a takeover", d)
	}
	v.Halt = true
	Standby(rules, "b", v, &w, 30*time.Second, "")
	v.Halt = false
	if d := Standby(rules, "b", v, &w, 40*time.Second, ""); d.Action != Wait {
		t.Fatalf("10 s after a halt was lifted: %+v, want a wait", d)
	}
}

// TestFenceBackoff: retries of a fence on a stop-failed host double from a pace up to 64
// paces, and start again at a pace for a new owner.
func TestFenceBackoff(t *testing.T) {
	v := View{Owner: "a", Tick: "1", State: StopFailed, Enabled: true}
	w := Watch{Tick: "1", Owner: "a"}
	now := time.Duration(0)
	var gaps []time.Duration
	for i := 0; i < 9; i++ {
		d := Standby(rules, "b", v, &w, now, "")
		if d.Action != TakeOver || !d.FenceOnly {
			t.Fatalf("try %d: %+v", i, d)
		}
		FenceFailed(rules, &w, now)
		gaps = append(gaps, w.NextFenceAt-now)
		if d := Standby(rules, "b", v, &w, w.NextFenceAt-1, ""); d.Reason != FenceBackoff {
			t.Fatalf("try %d: %+v before the backoff ended", i, d)
		}
		now = w.NextFenceAt
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 64, 64}
	for i := range want {
		if gaps[i] != want[i]*time.Second {
			t.Fatalf("backoffs %v, want %v s", gaps, want)
		}
	}
	v.Owner = "c"
	Standby(rules, "b", v, &w, now, "")
	if w.FenceTries != 0 {
		t.Fatal("a new owner keeps the old owner's backoff")
	}
}

func TestAfterFence(t *testing.T) {
	for _, tc := range []struct {
		res            FenceResult
		fenceOnly, cmd bool
		want           Next
	}{
		{FenceStopped, true, false, Start},
		{FenceUnreachable, false, false, Start}, // the timing rule covers it
		{FenceUnreachable, false, true, RunFenceCommand},
		{FenceUnreachable, true, false, DoNotStart}, // a failed stop is covered by no timing
		{FenceUnreachable, true, true, RunFenceCommand},
		{FenceUnknown, false, true, DoNotStart},
		{FenceStillUp, false, true, DoNotStart},
	} {
		if got := AfterFence(tc.res, tc.fenceOnly, tc.cmd); got != tc.want {
			t.Errorf("AfterFence(%s, fenceOnly %v, fence_command %v) = %d, want %d", tc.res, tc.fenceOnly, tc.cmd, got, tc.want)
		}
	}
}

func TestActiveStep(t *testing.T) {
	ok := View{Owner: "b", Tick: "3", State: Running, Enabled: true}
	with := func(f func(*View)) *View { v := ok; f(&v); return &v }
	fenceAt := rules.SelfFenceAt(0) // 10 - 5 - 1 = 4 s
	if fenceAt != 4*time.Second {
		t.Fatalf("SelfFenceAt(0) = %v, want timeout - stop_timeout - pace = 4s", fenceAt)
	}
	for _, tc := range []struct {
		name string
		v    *View
		now  time.Duration
		step Step
		why  Why
	}{
		{"all well", &ok, time.Second, CheckStatus, 0},
		{"deadline first, whatever the store says", &ok, fenceAt, Stop, SelfFence},
		{"no word from the store", nil, time.Second, Keep, 0},
		{"no word, deadline", nil, fenceAt, Stop, SelfFence},
		{"another owner", with(func(v *View) { v.Owner = "a" }), time.Second, Stop, OtherOwner},
		{"released under it", with(func(v *View) { v.Owner = "" }), time.Second, Stop, OtherOwner},
		{"halt", with(func(v *View) { v.Halt = true }), time.Second, Stop, Halt},
		{"move away", with(func(v *View) { v.Move = "a" }), time.Second, Stop, Moved},
		{"move here", with(func(v *View) { v.Move = "b" }), time.Second, CheckStatus, 0},
		{"maintenance", with(func(v *View) { v.Enabled = false }), time.Second, Keep, 0},
		{"evacuated", with(func(v *View) { v.Evacuated = "a b" }), time.Second, Stop, Evacuated},
		{"another host evacuated", with(func(v *View) { v.Evacuated = "a bb" }), time.Second, CheckStatus, 0},
		{"evacuated in maintenance", with(func(v *View) { v.Evacuated, v.Enabled = "b", false }), time.Second, Keep, 0},
	} {
		if step, why := ActiveStep(rules, "b", tc.v, 0, tc.now); step != tc.step || why != tc.why {
			t.Errorf("%s: %s (%s), want %s (%s)", tc.name, step, why, tc.step, tc.why)
		}
	}
}

// TestFailedStopNeverReleases: whatever stopped the package, a stop that failed leaves it
// with this host (no release to nobody, which told the next owner there was no one to
// fence), and a clean one that releases records this host as stopped.
func TestFailedStopNeverReleases(t *testing.T) {
	for why := SelfFence; why <= Asked; why++ {
		if a := AfterStop("b", why, false); a.Release || !a.Escalate {
			t.Errorf("failed stop (%s): %+v: released, or not escalated", why, a)
		}
		a := AfterStop("b", why, true)
		if a.Release && a.Previous != (Previous{"b", Stopped}) {
			t.Errorf("clean stop (%s): released recording %+v", why, a.Previous)
		}
		if a.Escalate {
			t.Errorf("clean stop (%s): escalated", why)
		}
	}
	if a := AfterStop("b", Halt, false); a.State != StopFailed {
		t.Errorf("failed stop on halt: state %q, want stop-failed", a.State)
	}
}

func TestPreviousRoundTrip(t *testing.T) {
	for _, p := range []Previous{{"a", Stopped}, {"host-2.example", StopFailedEnding}, {}} {
		if got := ParsePrevious(p.String()); got != p {
			t.Errorf("%+v -> %q -> %+v", p, p.String(), got)
		}
	}
	if p := ParsePrevious("a"); p.Clean() {
		t.Error("a previous owner with no ending is taken as clean")
	}
}

// TestStandbyKeepsTheLongestWait: settings shortened while the owner runs (pkg init
// --update) do not cut the wait short: the longest wait since the owner changed holds,
// until another owner takes over.
func TestStandbyKeepsTheLongestWait(t *testing.T) {
	v := View{Owner: "a", Tick: "1", State: Running, Enabled: true}
	var w Watch
	long := rules                                                                                        // waits 13 s
	short := Rules{Pace: time.Second, Timeout: 4 * time.Second, StopTimeout: time.Second, Allowed: true} // 7 s
	Standby(long, "b", v, &w, 0, "")
	if d := Standby(short, "b", v, &w, 10*time.Second, ""); d.Action != Wait {
		t.Fatalf("10 s after the tick with settings shortened to a 7 s wait: %+v, want the 13 s wait kept", d)
	}
	v.Owner, v.Tick = "c", "9"
	Standby(short, "b", v, &w, 20*time.Second, "")
	if d := Standby(short, "b", v, &w, 27*time.Second+1, ""); d.Action != TakeOver {
		t.Fatalf("7 s after a new owner's tick, with 7 s settings: %+v, want a takeover", d)
	}
}

// TestMoveLapsesWhenItsTargetIsSilent: a move holds the other stand-bys back while its
// target reports; once its report stands still for the owner's wait (and never less
// than two reports and a pace) the move lapses.
func TestMoveLapsesWhenItsTargetIsSilent(t *testing.T) {
	v := View{Owner: "", Tick: "7", State: Halted, Enabled: true, Move: "c", MoveReport: "r1"}
	var w Watch
	step := func(now time.Duration, report string, want Action) {
		t.Helper()
		v.MoveReport = report
		if d := Standby(rules, "b", v, &w, now, ""); d.Action != want {
			t.Fatalf("at %v with report %q: %v (%s), want %v", now, report, d.Action, d.Reason, want)
		}
	}
	step(0, "r1", Wait)
	step(10*time.Second, "r2", Wait) // it reported: counted from here
	step(23*time.Second, "r2", Wait) // the wait: 10 s + 3 paces
	step(23*time.Second+1, "r2", LapseMove)
	// reports far apart: two of them and a pace
	slow := rules
	slow.ReportEvery = 20 * time.Second
	w = Watch{}
	if d := Standby(slow, "b", v, &w, 0, ""); d.Action != Wait {
		t.Fatalf("first look: %v", d.Action)
	}
	if d := Standby(slow, "b", v, &w, 41*time.Second, ""); d.Action != Wait {
		t.Fatalf("41 s with reports every 20 s: %v", d.Action)
	}
	if d := Standby(slow, "b", v, &w, 41*time.Second+1, ""); d.Action != LapseMove {
		t.Fatalf("past two reports and a pace: %v", d.Action)
	}
	// the target itself never lapses its own move
	w = Watch{}
	Standby(rules, "c", v, &w, 0, "")
	if d := Standby(rules, "c", v, &w, time.Hour, ""); d.Action == LapseMove {
		t.Fatalf("the target lapsed its own move")
	}
}
