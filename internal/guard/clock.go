package guard

import (
	"time"

	"golang.org/x/sys/unix"
)

// Reading is a raw reading of the system clock in nanoseconds: CLOCK_BOOTTIME where the
// system has it (Linux: it goes on counting while the host is suspended), else
// CLOCK_MONOTONIC. Unlike the monotonic part of a time.Time, it means the same in every
// process on the host, so the lock process can hand the guard a deadline as a Reading
// and the guard, started later, keeps the same instant. A deadline never crosses between
// processes as "N ms from now": the time the message spends in between would be lost.
type Reading int64

// Now reads the clock. Neither clock can fail on a system that has it; should the call
// fail anyway, Now returns 0, a reading in the past, so a deadline computed from it has
// already passed and nothing runs on it.
func Now() Reading {
	var ts unix.Timespec
	if err := unix.ClockGettime(clockID, &ts); err != nil {
		return 0
	}
	return Reading(ts.Nano())
}

// Add is r moved by d.
func (r Reading) Add(d time.Duration) Reading { return r + Reading(d) }

// Sub is the time from s to r.
func (r Reading) Sub(s Reading) time.Duration { return time.Duration(r - s) }
