package core

import "fmt"

// logEvery is how often a repeating failure is logged, in ms.
const logEvery = 5000

// limiter keeps a failure that repeats (a forward to an unreachable leader, a disk that
// refuses a snapshot) from filling the log: the first occurrence of a kind is logged,
// then at most one line per logEvery with the count of those suppressed in between.
type limiter struct {
	seen map[string]*limit
}

type limit struct {
	last       Time
	suppressed int
}

// warning starts a line of Ready.Logs that tells of a failure: it is syslog's marker for
// the warning severity, which the driver's log sink reads (conf/log_level warn keeps
// these lines and drops the others).
const warning = "<4>"

// warnf logs a failure, rate-limited by key as logf.
func (c *Core) warnf(key, format string, args ...any) { c.logf(key, warning+format, args...) }

// logf logs a line; lines with the same non-empty key are rate-limited together.
func (c *Core) logf(key, format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if key != "" {
		l := c.limiter.seen[key]
		if l == nil {
			if len(c.limiter.seen) > 1000 {
				c.limiter.seen = map[string]*limit{} // bounded, whatever the keys
			}
			l = &limit{last: c.now - logEvery}
			c.limiter.seen[key] = l
		}
		if c.now-l.last < logEvery {
			l.suppressed++
			return
		}
		if l.suppressed > 0 {
			line += fmt.Sprintf(" (and %d more like it in the last %d s)", l.suppressed, (c.now-l.last+999)/1000)
		}
		l.last, l.suppressed = c.now, 0
	}
	c.out.Logs = append(c.out.Logs, line)
}
