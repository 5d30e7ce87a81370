package decide

import (
	"testing"
	"time"
)

// TestHealth: fall failures in a row before acting, rise good checks before failures
// are forgotten, restarts before giving up, and restarts forgotten failure_timeout after
// the last failure. Each row is a run of checks (+ good, - failed, a pace apart) and the
// verdicts they get.
func TestHealth(t *testing.T) {
	S, R, G, H := Suspect, Restart, GiveUp, Healthy
	for _, tc := range []struct {
		name   string
		r      Rules
		checks string
		want   []Verdict
	}{
		{"fall 1, no restarts: the first failure gives up", Rules{}, "+-", []Verdict{H, G}},
		{"fall 1, one restart", Rules{Restarts: 1}, "--", []Verdict{R, G}},
		{"fall 3 survives two", Rules{Fall: 3}, "--+--+---", []Verdict{S, S, H, S, S, H, S, S, G}},
		{"fall 3, rise 2: one good check between does not forget", Rules{Fall: 3, Rise: 2}, "--+-", []Verdict{S, S, H, G}},
		{"fall 3, rise 2: two good checks do", Rules{Fall: 3, Rise: 2}, "--++--", []Verdict{S, S, H, H, S, S}},
		{"fall 2, a restart, then counting again", Rules{Fall: 2, Restarts: 1}, "------", []Verdict{S, R, S, G, S, G}},
		{"restarts never decay without failure_timeout", Rules{Restarts: 1}, "-+++++-", []Verdict{R, H, H, H, H, H, G}},
	} {
		var h Health
		now := time.Duration(0)
		for i, c := range tc.checks {
			now += time.Second
			if got := h.Observe(tc.r, c == '+', now); got != tc.want[i] {
				t.Errorf("%s: check %d (%c): %s, want %s", tc.name, i+1, c, got, tc.want[i])
				break
			}
		}
	}
	// failure_timeout: a restart used a month ago is forgotten; one used an hour ago is not
	r := Rules{Restarts: 1, FailureTimeout: 24 * time.Hour}
	var h Health
	if v := h.Observe(r, false, 0); v != Restart {
		t.Fatalf("first failure: %s", v)
	}
	if v := h.Observe(r, false, time.Hour); v != GiveUp {
		t.Fatalf("a failure an hour later, the restart not forgotten: %s, want give up", v)
	}
	h = Health{}
	h.Observe(r, false, 0)
	h.Observe(r, true, time.Hour)
	if v := h.Observe(r, false, 30*24*time.Hour); v != Restart || h.Used() != 1 {
		t.Fatalf("a failure a month later: %s (used %d), want a restart again", v, h.Used())
	}
	h.Reset()
	if h.Used() != 0 {
		t.Fatal("Reset kept the restarts used")
	}
}

// TestGaveUpStandsByAgain: a host that gave the package up takes it no more, even free,
// until a pkg cleanup naming it (or every host) or failure_timeout; a cleanup of another
// host, or one it saw before giving up, does not count.
func TestGaveUpStandsByAgain(t *testing.T) {
	free := View{Tick: "9", State: Failed, Enabled: true, Cleanup: "100 b"}
	var w Watch
	w.GiveUp(0, "100 b") // the cleanup it saw before: not a new one
	step := func(v View, now time.Duration, want Action) {
		t.Helper()
		if d := Standby(rules, "b", v, &w, now, ""); d.Action != want {
			t.Fatalf("at %v, cleanup %q: %s (%s), want %s", now, v.Cleanup, d.Action, d.Reason, want)
		}
	}
	step(free, time.Hour, Wait)
	other := free
	other.Cleanup = "200 c"
	step(other, time.Hour, Wait)
	mine := free
	mine.Cleanup = "300 *"
	step(mine, time.Hour, StandByAgain)
	step(mine, time.Hour+time.Second, TakeOver)
	// failure_timeout
	r := rules
	r.FailureTimeout = time.Minute
	w = Watch{}
	w.GiveUp(0, free.Cleanup)
	if d := Standby(r, "b", free, &w, 59*time.Second, ""); d.Action != Wait {
		t.Fatalf("before failure_timeout: %s", d.Action)
	}
	if d := Standby(r, "b", free, &w, time.Minute, ""); d.Action != StandByAgain || d.Reason != FailureExpired {
		t.Fatalf("at failure_timeout: %s (%s)", d.Action, d.Reason)
	}
}
