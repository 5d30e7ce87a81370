package benchreport

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 200; i++ {
		lat = append(lat, time.Duration(i))
	}
	if p50, p99, p100 := Percentile(lat, 50), Percentile(lat, 99), Percentile(lat, 100); p50 != 100 || p99 != 198 || p100 != 200 {
		t.Errorf("p50 %d, p99 %d, p100 %d; want 100, 198, 200", p50, p99, p100)
	}
	if p := Percentile(lat[:1], 99); p != 1 {
		t.Errorf("p99 of one = %d", p)
	}
}

func TestStats(t *testing.T) {
	lat := []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond, 1500 * time.Microsecond}
	s := Stats(lat, 1, 2*time.Second)
	if s.Ops != 4 || s.Errors != 1 || s.OpsPerS != 2 || s.P50Ms != 1.5 || s.P99Ms != 3 || s.MaxMs != 3 || !s.Has {
		t.Errorf("%+v", s)
	}
	if s := Stats(nil, 0, time.Second); s.Has || s.Ops != 0 {
		t.Errorf("no latencies: %+v", s)
	}
}

// Values of clients sharing a run never repeat, and keep their size.
func TestValuesDistinct(t *testing.T) {
	const clients = 7
	seen := map[string]bool{}
	for c := 0; c < clients; c++ {
		v := NewValues(16, c, clients)
		for k := 0; k < 1000; k++ {
			b := v.Next()
			if len(b) != 16 || seen[string(b)] {
				t.Fatalf("client %d, value %d: %q (len %d) repeats or has the wrong size", c, k, b, len(b))
			}
			seen[string(b)] = true
		}
	}
}

func TestGap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type write struct {
		start, end int
		ok         bool
	}
	for _, c := range []struct {
		name      string
		writes    []write
		gap       time.Duration
		noFailure bool
	}{
		{"writes fail, then one after the failure succeeds", []write{
			{-5, 2, true}, // ended after the kill but started before: not the recovery
			{2, 102, false}, {102, 202, false}, {202, 350, true}}, 350 * time.Millisecond, false},
		{"a success that overlaps the first failure does not count", []write{
			{-50, 40, false}, {30, 60, true}, {60, 90, true}}, 90 * time.Millisecond, false},
		{"no failure for Quiet: the first success after the kill", []write{
			{-1, 300, true}, {300, 400, true}, {400, 5100, true}}, 400 * time.Millisecond, true},
	} {
		g := Gap{T0: t0}
		var gap time.Duration
		done := false
		for _, w := range c.writes {
			if gap, done = g.Add(at(w.start), at(w.end), w.ok); done {
				break
			}
		}
		if !done || gap != c.gap || g.NoFailure != c.noFailure {
			t.Errorf("%s: gap %v (known %v, no failure %v), want %v (no failure %v)", c.name, gap, done, g.NoFailure, c.gap, c.noFailure)
		}
	}
}
