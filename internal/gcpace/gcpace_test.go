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
