package guard

import "errors"

// foreground: on AIX, x/sys's TIOCGPGRP does not fit its ioctl's request argument, so the
// guard leaves the terminal where it is: COMMAND runs in the background of the lock's
// terminal there, and reads from it stop it (SIGTTIN).
func foreground() (int, bool) { return 0, false }

func setForeground(int) error { return errors.New("no terminal hand-off on AIX") }

// wnohang is wait4's WNOHANG (syscall lacks it on AIX).
const wnohang = 0x1

// ownGroup is not needed where the terminal stays put.
func ownGroup() int { return -1 }
