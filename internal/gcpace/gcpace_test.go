package gcpace

import "testing"

// The percent gives a small heap at least the floor of headroom, a large one the base.
func TestPercent(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, maxPercent},
		{1 * mb, maxPercent},        // 64 MiB over 1 MiB: 6401, capped
		{20 * mb, 321},              // 64/20: the heap may grow by 64 MiB
		{128 * mb, 51},              // 64/128 is 50, +1 for the rounding down
		{1024 * mb, 50},             // large: the base
		{1<<40 + 1, 50},             // and no overflow
		{64 * mb * 100 / 50, 51},    // where the floor meets the base
		{64*mb*100/50 + 100*mb, 50}, // past it
	} {
		if got := Percent(tc.live, 64*mb, 50); got != tc.want {
			t.Errorf("live %d MiB: percent %d, want %d", tc.live/mb, got, tc.want)
		}
	}
}

// A percent is changed only when it moves by more than a tenth.
func TestMoved(t *testing.T) {
	for _, tc := range []struct {
		set, p int
		want   bool
	}{{100, 100, false}, {100, 110, false}, {100, 111, true}, {100, 91, false}, {100, 90, true}, {50, 321, true}, {321, 50, true}} {
		if got := moved(tc.set, tc.p); got != tc.want {
			t.Errorf("moved(%d, %d) = %v, want %v", tc.set, tc.p, got, tc.want)
		}
	}
}

// The limit is the heap goal and the memory beside the heap; a heap not yet
// collected or a tiny one gets the floor, and nothing overflows.
func TestLimit(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		live, other uint64
		percent     int
		want        float64
	}{
		{600 * mb, 20 * mb, 25, (750 + 20) * mb},
		{600 * mb, 0, 25, 750 * mb},
		{0, 10 * mb, maxPercent, (64 + 10) * mb}, // nothing live yet: the floor
		{1 * mb, 0, maxPercent, 65 * mb},         // capped percent: the floor
		{20 * mb, 0, 321, 20 * 4.21 * mb},        // the floor's own percent
		{1 << 62, 1 << 62, 25, 1<<63 - 1},        // no overflow
		{1<<64 - 1, 0, 25, 1<<63 - 1},            // nor here
	} {
		got := Limit(tc.live, tc.other, 64*mb, tc.percent)
		if d := float64(got) - tc.want; d > 1<<10 || d < -(1<<10) {
			t.Errorf("live %d other %d percent %d: limit %d, want %.0f", tc.live, tc.other, tc.percent, got, tc.want)
		}
	}
}

// A limit is set again only when it moves by more than a 64th.
func TestLimitMoved(t *testing.T) {
	for _, tc := range []struct {
		set, l int64
		want   bool
	}{{6400, 6400, false}, {6400, 6500, false}, {6400, 6510, true}, {6500, 6400, false}, {6510, 6400, true}, {1<<63 - 1, 6400, true}} {
		if got := limitMoved(tc.set, tc.l); got != tc.want {
			t.Errorf("limitMoved(%d, %d) = %v, want %v", tc.set, tc.l, got, tc.want)
		}
	}
}

// A heap that grew by more than a sixteenth in the window is growing; a steady one, or
// one that shrank, is not.
func TestGrowing(t *testing.T) {
	for _, tc := range []struct {
		then, now uint64
		want      bool
	}{{0, 0, false}, {0, 1, true}, {1600, 1700, false}, {1600, 1701, true}, {1600, 100, false}, {1 << 63, 1<<63 + 1<<60, true}} {
		if got := Growing(tc.then, tc.now); got != tc.want {
			t.Errorf("Growing(%d, %d) = %v, want %v", tc.then, tc.now, got, tc.want)
		}
	}
}
