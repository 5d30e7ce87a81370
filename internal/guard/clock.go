package guard

import "lite-raft/client/lockcore"

// Reading is a raw reading of the system clock in nanoseconds: CLOCK_BOOTTIME where the
// system has it (Linux: it goes on counting while the host is suspended), else
// CLOCK_MONOTONIC. Unlike the monotonic part of a time.Time, it means the same in every
// process on the host, so the lock process can hand the guard a deadline as a Reading
// and the guard, started later, keeps the same instant. A deadline never crosses between
// processes as "N ms from now": the time the message spends in between would be lost.
type Reading = lockcore.Reading
