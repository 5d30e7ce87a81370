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
