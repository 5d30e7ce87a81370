package guard

import "golang.org/x/sys/unix"

// CLOCK_BOOTTIME counts the time the host spends suspended: a lease runs out on the
// leader's clock whether or not this host was asleep.
const clockID = unix.CLOCK_BOOTTIME
