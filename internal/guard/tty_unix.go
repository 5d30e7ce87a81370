//go:build !aix

package guard

import "golang.org/x/sys/unix"

// foreground is the process group that has the terminal on standard input, if it is one.
func foreground() (int, bool) {
	pg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return pg, err == nil
}

// setForeground gives the terminal on standard input to process group pgrp.
func setForeground(pgrp int) error { return unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, pgrp) }

// wnohang is wait4's WNOHANG.
const wnohang = unix.WNOHANG

// ownGroup is this process's group.
func ownGroup() int { pg, _ := unix.Getpgid(0); return pg }
