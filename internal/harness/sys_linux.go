//go:build linux

package harness

import (
	"errors"
	"os"
	"syscall"
)

const supported = true

// tryLock takes an exclusive flock on f without waiting; it reports false if another open
// file description holds it.
func tryLock(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return false, err
}

func unlock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }

// daemonAttr is used for the processes that must die with the test process: a host's init
// process and its sshd.
func daemonAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
}

// fileID returns the device and inode of the file at path (following symlinks, so for
// /proc/PID/ns/net it identifies the namespace).
func fileID(path string) (uint64, uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, 0, err
	}
	return uint64(st.Dev), uint64(st.Ino), nil
}

func kill(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
