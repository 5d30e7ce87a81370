package lockcore

import "time"

const (
	// DriftPPM bounds how far a host's clock rate may be off, each way: NTP keeps a
	// disciplined clock within a few ppm and the kernel refuses to slew faster than
	// 500 ppm, so 500 ppm is the worst a clock that is still being corrected does. The
	// leader's clock and ours may err in opposite directions: the margin counts it twice.
	DriftPPM = 500
	// Slack is for what the rate bound does not cover: the guard being scheduled late on
	// a loaded host, the SIGKILL taking effect, COMMAND's last write reaching the disk's
	// queue. (With 100 ms, a COMMAND cut off from the cluster made its last write 0.2 s
	// before the next holder's start in e2e TestLock on an idle 2-core machine: too
	// little to spare on a busy one.)
	Slack = 250 * time.Millisecond
)

// Margin is how much earlier than the lease's own end the guard kills COMMAND:
// 2*DriftPPM of the ttl plus Slack. For a 15 s ttl it is 265 ms (15 ms + 250 ms); for a
// 24 h ttl it is 86.65 s (86.4 s + 250 ms).
func Margin(ttl time.Duration) time.Duration {
	// in floating point: ttl*2*DriftPPM would overflow for ttls of months
	return time.Duration(float64(ttl)*2*DriftPPM/1e6) + Slack
}

// KillDeadline is when COMMAND must be dead for a lease of ttl whose last confirmed
// renewal (or, before any renewal, the acquire) was first sent at sent. The leader
// starts the ttl when the request reaches it, which is after sent, and it lets another
// holder in only once it has seen the lease unrenewed for ttl by its own clock; that
// clock may run faster than ours by up to 2*DriftPPM. So by our clock the lock is
// certainly still ours until sent + ttl - Margin(ttl).
func KillDeadline(sent Reading, ttl time.Duration) Reading {
	return sent.Add(ttl - Margin(ttl))
}

// Valid reports whether COMMAND may start at now, given that the acquire that made us
// the holder was first sent at sent: only while at least Margin(ttl) is left before the
// kill deadline. An answer that took almost the whole ttl to arrive would otherwise start
// COMMAND only for the guard to kill it at once, or while a renewal is still in flight.
func Valid(now, sent Reading, ttl time.Duration) bool {
	return now.Add(Margin(ttl)) < KillDeadline(sent, ttl)
}

// Reading is a clock reading in nanoseconds: on a real host the raw monotonic clock the
// guard process shares with the lock process (guard.Now), in the simulation a host's
// drifting clock. Deadlines are Readings, never "N ms from now".
type Reading int64

// Add is r moved by d.
func (r Reading) Add(d time.Duration) Reading { return r + Reading(d) }

// Sub is the time from s to r.
func (r Reading) Sub(s Reading) time.Duration { return time.Duration(r - s) }
