package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"lite-raft/internal/lockfile"
	"lite-raft/raftcore"
)

// statusFiles keeps temp/server_role, temp/current_leader and temp/commit_index, one
// line each, for scripts. Role and leader are rewritten when they change, by the loop;
// the commit index by the hint writer, at most ten times a second.
type statusFiles struct {
	dir        string
	role, lead string
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
}

// hintWriter writes, away from the loop, the two files that only hint at progress:
// state/commit (where a restart may start applying) and temp/commit_index (for scripts).
// Each is a write and a rename; done in the loop at ten a second they cost a tenth of
// single-client throughput (see the commit that moved them). The loop posts the latest
// values and never waits; the writer keeps only the newest and writes at most every
// interval.
type hintWriter struct {
	save     func(commit uint64) // state/commit
	files    *statusFiles        // temp/commit_index
	interval time.Duration

	mu             sync.Mutex
	commit, status uint64 // newest values posted
	wake           chan struct{}
	quit, done     chan struct{}
}

func newHintWriter(save func(uint64), status *statusFiles, interval time.Duration) *hintWriter {
	h := &hintWriter{save: save, files: status, interval: interval,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go h.run()
	return h
}

// post records commit (durable and applied) and status (the commit index to show).
func (h *hintWriter) post(commit, status uint64) {
	h.mu.Lock()
	h.commit, h.status = commit, status
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *hintWriter) run() {
	defer close(h.done)
	var wroteCommit, wroteStatus uint64
	for {
		select {
		case <-h.wake:
		case <-h.quit:
			return
		}
		h.mu.Lock()
		commit, status := h.commit, h.status
		h.mu.Unlock()
		if commit != wroteCommit {
			h.save(commit)
			wroteCommit = commit
		}
		if status != wroteStatus {
			h.files.put("commit_index", strconv.FormatUint(status, 10))
			wroteStatus = status
		}
		// at most one round per interval: later posts wait for the next
		t := time.NewTimer(h.interval)
		select {
		case <-t.C:
		case <-h.quit:
			t.Stop()
			return
		}
	}
}

// stop ends the writer; the caller then writes the final values itself.
func (h *hintWriter) stop() {
	close(h.quit)
	<-h.done
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
