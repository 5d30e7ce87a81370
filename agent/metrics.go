package agent

import (
	"time"

	"lite-raft/api"
	"lite-raft/raftcore"
)

// driverMetrics are the counters the driver keeps for status (api.Metrics). Every update
// and every read happens on the loop (a status answer is built within a core call the
// loop makes), so they are plain fields: nothing is locked, and nothing allocated, per
// request.
type driverMetrics struct {
	lead            raftcore.NodeID
	leaderChanges   uint64
	proposalsFailed uint64
	fsync, apply    latency
	// snapshotAt is when this member's snapshot was stored (zero: not known)
	snapshotAt time.Time
}

func newDriverMetrics() driverMetrics {
	return driverMetrics{fsync: newLatency(), apply: newLatency()}
}

// leaderIs notes who leads now. A change counts when a new leader is known, not when one
// is lost: an election then counts once, however many rounds it takes.
func (m *driverMetrics) leaderIs(lead raftcore.NodeID) {
	if lead != raftcore.None && lead != m.lead {
		if m.lead != raftcore.None {
			m.leaderChanges++
		}
		m.lead = lead
	}
}

// fill adds the driver's counters to a status answer's metrics.
func (m *driverMetrics) fill(out *api.Metrics) {
	out.LeaderChanges = m.leaderChanges
	out.ProposalsFailed = m.proposalsFailed
	out.Fsync = m.fsync.histogram()
	out.Apply = m.apply.histogram()
	if !m.snapshotAt.IsZero() {
		out.SnapshotUnixMs = m.snapshotAt.UnixMilli()
	}
}

// latencyBounds are api.LatencyBounds as durations, to compare without converting each
// observation.
var latencyBounds = func() []time.Duration {
	d := make([]time.Duration, len(api.LatencyBounds))
	for i, s := range api.LatencyBounds {
		d[i] = time.Duration(s * float64(time.Second))
	}
	return d
}()

// latency counts observations per bucket (not cumulatively: one increment each).
type latency struct {
	counts []uint64 // len(latencyBounds)+1: the last is above every bound
	sum    time.Duration
}

func newLatency() latency { return latency{counts: make([]uint64, len(latencyBounds)+1)} }

func (l *latency) observe(d time.Duration) {
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	l.counts[i]++
	l.sum += d
}

func (l *latency) histogram() api.Histogram {
	return api.Histogram{Bounds: api.LatencyBounds, Counts: append([]uint64(nil), l.counts...), Sum: l.sum.Seconds()}
}
