package sshrpc

import (
	"testing"
	"time"
)

// A TCP connect on an agent's link waits half the election timeout on a LAN, a few round
// trips on a link measured long, and twice as long after each timeout, so that a link
// whose SYN-ACK takes longer than half the election timeout still connects; never past
// ConnectTimeout.
func TestConnectWait(t *testing.T) {
	const s, ms = time.Second, time.Millisecond
	for _, tc := range []struct {
		liveness, rtt time.Duration
		timeouts      int
		want          time.Duration
	}{
		{1 * s, 0, 0, 500 * ms},
		{1 * s, 300 * ms, 0, 1200 * ms},
		{1 * s, 0, 1, 1 * s},
		{1 * s, 0, 3, 4 * s},
		{1 * s, 0, 16, 10 * s},
		{100 * ms, 0, 0, 200 * ms},
		{1 * s, 5 * s, 0, 10 * s},
	} {
		if got := connectWait(tc.liveness, tc.rtt, tc.timeouts, 10*s); got != tc.want {
			t.Errorf("liveness %v, round trip %v, %d timeouts: wait %v, want %v", tc.liveness, tc.rtt, tc.timeouts, got, tc.want)
		}
	}
}
