package decide

import (
	"strings"
	"time"
)

// Verdict is what an owner does about one status check.
type Verdict uint8

const (
	Healthy Verdict = iota // nothing
	Suspect                // failed, fewer than Fall times in a row: look again next pace
	Restart                // restart the package here (stop, start)
	GiveUp                 // stop it, record failed, release it, and take it no more
)

func (v Verdict) String() string {
	switch v {
	case Healthy:
		return "healthy"
	case Suspect:
		return "suspect"
	case Restart:
		return "restart"
	case GiveUp:
		return "give up"
	}
	return "verdict?"
}

// Health is an owner's memory of its status checks. One slow check under load (DNS,
// NFS) is no reason to act: only Fall failures in a row are, as keepalived counts them,
// and failures are forgotten only after Rise good checks in a row. The restarts it
// used are forgotten FailureTimeout after the last failure (Pacemaker's
// failure-timeout), so that a service that crashes once a month is restarted each
// time rather than failed over in month three.
type Health struct {
	bad, good int
	used      int
	lastFail  time.Duration
}

// Observe judges one status check (ok: 0 or 2, degraded) at now.
func (h *Health) Observe(r Rules, ok bool, now time.Duration) Verdict {
	if r.FailureTimeout > 0 && h.used > 0 && now-h.lastFail >= r.FailureTimeout {
		h.used = 0
	}
	if ok {
		h.good++
		if h.good >= max(r.Rise, 1) {
			h.bad = 0
		}
		return Healthy
	}
	h.good, h.lastFail = 0, now
	h.bad++
	if h.bad < max(r.Fall, 1) {
		return Suspect
	}
	h.bad = 0
	if h.used < r.Restarts {
		h.used++
		return Restart
	}
	return GiveUp
}

// Used is how many restarts it has used (and not forgotten).
func (h *Health) Used() int { return h.used }

// Reset forgets every failure and restart (pkg cleanup).
func (h *Health) Reset() { *h = Health{} }

// CleanupFor reports whether a packages/NAME/cleanup value ("MS HOST", HOST * for
// every host) names host.
func CleanupFor(v, host string) bool {
	f := strings.Fields(v)
	return len(f) == 2 && (f[1] == host || f[1] == "*")
}
