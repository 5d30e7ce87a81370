package guard

import _ "unsafe" // for go:linkname

// nanotime is the runtime's reading of CLOCK_MONOTONIC (through libc on AIX, where
// x/sys has no clock_gettime): the same clock in every process of the host.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// Now reads the clock: CLOCK_MONOTONIC, as the runtime reads it.
func Now() Reading { return Reading(nanotime()) }
