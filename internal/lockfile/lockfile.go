//go:build unix

// Package lockfile is the one-process-per-thing lock of lite-raft: one agent per
// directory (temp/agent.lock), one pkg monitor per package per host
// (temp/pkg-NAME.lock).
//
// It uses POSIX record locks (fcntl), which exist on every Unix lite-raft is built for
// (flock does not on Solaris and AIX), are released by the kernel however the holder
// dies, and let anyone ask which process holds them (F_GETLK), so no pid file has to be
// trusted. One caveat of fcntl locks: a process loses its lock when it closes any file
// descriptor of that file, so a process must not open a lock file it holds a second
// time; Holder is meant for other processes.
package lockfile

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrHeld says another process holds the lock.
var ErrHeld = errors.New("held by another process")

// TryLock takes the lock at path without waiting. The caller keeps the returned file open
// as long as it holds the lock.
func TryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("%s: %w", path, ErrHeld)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// Holder reports the process that holds the lock at path (0, false if nobody does).
func Holder(path string) (pid int, held bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil || lk.Type == unix.F_UNLCK {
		return 0, false
	}
	return int(lk.Pid), true
}
