package sshrpc

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// checkSameUser refuses a unix socket peer of another user (SO_PEERCRED).
func checkSameUser(uc *net.UnixConn) error {
	rc, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("who is at the other end: %w", cerr)
	}
	if int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("a process of uid %d, not this user's (%d)", cred.Uid, os.Getuid())
	}
	return nil
}
