package guard

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// canPeek: waitid(WNOWAIT) tells the leader ended without reaping it.
const canPeek = true

// becomeSubreaper makes the orphans among COMMAND's descendants the guard's children
// rather than init's, so that even one that left COMMAND's group (setsid) is found and
// stopped.
func becomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	return nil
}

// leaderEnded reports whether COMMAND exited, leaving it a zombie: its pid, its group's
// id, stays ours until reapLeader.
func leaderEnded(s *supervisor) bool {
	var info unix.Siginfo // Signo stays 0 if no child is found
	err := unix.Waitid(unix.P_PID, s.leader, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	if err == unix.ECHILD {
		return true // not ours any more: cannot happen, but do not wait for ever
	}
	return err == nil && info.Signo == int32(unix.SIGCHLD)
}

// reapLeader reaps COMMAND and returns its exit code.
func reapLeader(s *supervisor) int {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(s.leader, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "guard: reaping COMMAND: %v\n", err)
			return exitGuard
		}
		return exitCode(ws)
	}
}

// children lists the guard's children but the leader, from /proc: with the subreaper,
// every descendant of COMMAND still alive is one of them or a descendant of one. A
// process that ends while the list is read is simply not in it (or seen next time).
func children(leader int) []child {
	d, err := os.Open("/proc")
	if err != nil {
		fmt.Fprintf(os.Stderr, "guard: listing processes: %v\n", err)
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	self := os.Getpid()
	var cs []child
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == leader {
			continue
		}
		b, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold anything, even ") "
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 {
			continue
		}
		ppid, err1 := strconv.Atoi(f[1])
		pgrp, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || ppid != self {
			continue
		}
		cs = append(cs, child{pid: pid, pgrp: pgrp, zombie: f[0] == "Z"})
	}
	return cs
}
