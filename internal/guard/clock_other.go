//go:build !linux && !aix

package guard

import "golang.org/x/sys/unix"

// Without CLOCK_BOOTTIME the monotonic clock is the only one shared by processes that
// never jumps; it may stop while the host is suspended (doc.go: a suspended host is what
// fencing is for).
const clockID = unix.CLOCK_MONOTONIC
