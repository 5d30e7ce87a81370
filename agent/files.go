package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"lite-raft/internal/lockfile"
	"lite-raft/raftcore"
)

// statusFiles keeps temp/server_role, temp/current_leader and temp/commit_index, one
// line each, for scripts. Role and leader are rewritten when they change; the commit
// index at most ten times a second.
type statusFiles struct {
	dir         string
	role, lead  string
	commit      uint64
	commitWrote time.Time
}

func (s *statusFiles) put(name, value string) {
	p := filepath.Join(s.dir, name)
	tmp := p + ".next"
	if os.WriteFile(tmp, []byte(value+"\n"), 0o644) == nil {
		os.Rename(tmp, p)
	}
}

func (s *statusFiles) write(n *raftcore.Node, force bool) {
	if role := n.Role().String(); force || role != s.role {
		s.role = role
		s.put("server_role", role)
	}
	if lead := string(n.Lead()); force || lead != s.lead {
		s.lead = lead
		s.put("current_leader", lead)
	}
	if c := n.Commit(); c != s.commit && (force || time.Since(s.commitWrote) > 100*time.Millisecond) {
		s.commit, s.commitWrote = c, time.Now()
		s.put("commit_index", strconv.FormatUint(c, 10))
	}
}

func (s *statusFiles) remove() {
	for _, n := range []string{"server_role", "current_leader", "commit_index"} {
		os.Remove(filepath.Join(s.dir, n))
	}
}

// LockPath is the lock an agent holds on its directory for as long as it runs.
func LockPath(dir string) string { return filepath.Join(dir, "temp", "agent.lock") }

// lockDir takes temp/agent.lock, so that two agents never share one directory, and
// writes temp/agent.pid for scripts. The lock is released by the kernel when the process
// dies, whatever the pid file says.
func lockDir(dir string) (*os.File, error) {
	f, err := lockfile.TryLock(LockPath(dir))
	if errors.Is(err, lockfile.ErrHeld) {
		pid, _ := lockfile.Holder(LockPath(dir))
		return nil, fmt.Errorf("%w: an agent is already running in %s (pid %d)", ErrRunning, dir, pid)
	}
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "temp", "agent.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ErrRunning says another agent holds the directory.
var ErrRunning = errors.New("already running")
