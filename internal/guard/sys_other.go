//go:build !linux

package guard

import "syscall"

// canPeek: without waitid(WNOWAIT) learning that the leader ended means reaping it.
const canPeek = false

// becomeSubreaper: there is no subreaper here; orphans go to init (doc.go).
func becomeSubreaper() error { return nil }

// leaderEnded reaps COMMAND if it ended and keeps its exit code.
func leaderEnded(s *supervisor) bool {
	var ws syscall.WaitStatus
	pid, err := syscall.Wait4(s.leader, &ws, wnohang, nil)
	if pid == s.leader {
		s.code = exitCode(ws)
		return true
	}
	if err == syscall.ECHILD {
		s.code = exitGuard // reaped by no one else: cannot happen, but do not wait for ever
		return true
	}
	return false
}

// reapLeader returns the exit code leaderEnded kept.
func reapLeader(s *supervisor) int { return s.code }

// children: without a subreaper no orphan becomes the guard's child; COMMAND is its only one.
func children(int) []child { return nil }
