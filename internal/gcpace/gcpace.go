package gcpace

import (
	"context"
	"math"
	"math/bits"
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

// Limit is the soft memory limit for a live heap of live bytes collected at percent
// (with at least floor bytes of headroom: the percent is capped, and a heap not yet
// collected has 0 live), with other bytes the runtime holds beside the heap (stacks, its
// own metadata): the heap goal and the other bytes, so that many goroutines' stacks never
// make the collector run without end.
func Limit(live, other, floor uint64, percent int) int64 {
	grow := live/100*uint64(percent) + live%100*uint64(percent)/100
	goal := add(live, max(grow, floor))
	return int64(min(add(goal, other), math.MaxInt64))
}

// add is a+b, or the largest uint64 if that overflows.
func add(a, b uint64) uint64 {
	if s, carry := bits.Add64(a, b, 0); carry == 0 {
		return s
	}
	return math.MaxUint64
}

// samples Run reads: the live heap, and what the runtime holds in all and in its heap.
var sampleNames = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
}

// Run sets the GC percent from the live heap every interval, until ctx ends, then gives
// base back. It changes the percent only when it moves by more than a tenth, so that a
// steady heap costs one metrics read an interval.
//
// With limit, it also sets a soft memory limit at the heap goal (Limit). The limit is
// what makes the runtime give freed memory back to the system soon: without one, it
// keeps up to a tenth above the goal (with GOGC 25 and a 600 MB state, 75 MB the agent
// no longer uses). Against the same runtime memory, the limit also starts collections a
// little before the percent would: the free memory the runtime still holds counts
// against it. While the live heap grows (Growing: a restart replaying its log, a new
// member loading its snapshot, a fill), there is no limit: memory given back at once
// is faulted in again at once, and a restart's replay took a fifth longer with one.
func Run(ctx context.Context, base int, floor uint64, every time.Duration, limit bool) {
	samples := make([]metrics.Sample, len(sampleNames))
	for i, n := range sampleNames {
		samples[i].Name = n
	}
	v := make([]uint64, len(samples))
	debug.SetGCPercent(base)
	set, setLimit := base, int64(math.MaxInt64)
	t := time.NewTicker(every)
	defer t.Stop()
	defer debug.SetGCPercent(base)
	if limit {
		defer debug.SetMemoryLimit(math.MaxInt64)
	}
	// the live heap a growthWindow ago, and since
	past := make([]uint64, max(int(growthWindow/every), 1))
	for n := 0; ; n++ {
		metrics.Read(samples)
		if uint64Of(samples, v) {
			if p := Percent(v[0], floor, base); moved(set, p) {
				debug.SetGCPercent(p)
				set = p
			}
			then := past[n%len(past)]
			past[n%len(past)] = v[0]
			if limit {
				other := v[1] - min(v[1], v[2]+v[3]+v[4]+v[5])
				l := int64(math.MaxInt64)
				if n >= len(past) && !Growing(then, v[0]) {
					l = Limit(v[0], other, floor, set)
				}
				if limitMoved(setLimit, l) {
					debug.SetMemoryLimit(l)
					setLimit = l
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// growthWindow is how far back Run looks to tell a growing live heap.
const growthWindow = 2 * time.Second

// Growing reports whether a live heap of now bytes grew by more than a sixteenth (or by
// more than nothing from nothing) since it was then bytes, a growthWindow ago.
func Growing(then, now uint64) bool { return now > then+then/16 }

// uint64Of puts the samples' values in v, or reports false if the runtime lacks one.
func uint64Of(samples []metrics.Sample, v []uint64) bool {
	for i, s := range samples {
		if s.Value.Kind() != metrics.KindUint64 {
			return false
		}
		v[i] = s.Value.Uint64()
	}
	return true
}

// moved reports whether percent p is more than a tenth away from set.
func moved(set, p int) bool { return p*10 > set*11 || p*11 < set*10 }

// limitMoved reports whether limit l is more than a 64th away from set: close enough to
// follow a growing heap, far enough that a steady one is not set again each interval
// (setting it stops the world briefly).
func limitMoved(set, l int64) bool {
	d := set - l
	if d < 0 {
		d = -d
	}
	return d > l/64
}
