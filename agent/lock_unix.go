//go:build unix

package agent

import (
	"os"

	"golang.org/x/sys/unix"
)

// tryLock takes a POSIX record lock on the whole file without waiting; it works on every
// Unix lite-raft is built for (flock does not exist on Solaris and AIX).
func tryLock(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	return unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
}
