package gcpace

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// maxPercent bounds the percent Run sets: with a live heap of a few MB, the floor alone
// would ask for tens of thousands.
const maxPercent = 5000

// Percent is the GC percent for a live heap of live bytes: base, or more so that the
// heap may grow by at least floor bytes before the next collection (at most maxPercent).
func Percent(live, floor uint64, base int) int {
	if live == 0 {
		return maxPercent
	}
	p := int(min(floor*100/live+1, maxPercent))
	return max(base, p)
}

// Run sets the GC percent from the live heap every interval, until ctx ends, then gives
// base back. It changes the percent only when it moves by more than a tenth, so that a
// steady heap costs one metrics read a second.
func Run(ctx context.Context, base int, floor uint64, every time.Duration) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	debug.SetGCPercent(base)
	set := base
	t := time.NewTicker(every)
	defer t.Stop()
	defer debug.SetGCPercent(base)
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if p := Percent(sample[0].Value.Uint64(), floor, base); moved(set, p) {
				debug.SetGCPercent(p)
				set = p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// moved reports whether percent p is more than a tenth away from set.
func moved(set, p int) bool { return p*10 > set*11 || p*11 < set*10 }
