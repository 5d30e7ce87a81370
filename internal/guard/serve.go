package guard

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// recheck bounds how long the guard sleeps without reading the clock again. Go's timers
// run on a clock that may stop while the host is suspended; after a resume the guard
// notices a deadline that passed meanwhile within recheck.
const recheck = time.Second

// Exit codes of the guard's own failures, before COMMAND ran (a shell's conventions).
const (
	exitGuard    = 125 // misused or could not set up
	exitNoExec   = 126 // COMMAND found but could not be run
	exitNotFound = 127 // COMMAND not found
)

// Serve is the guard process: args are what Start put after GuardArgs, files 3 and 4 the
// control and status pipes. It returns the process's exit code: COMMAND's.
func Serve(args []string) int {
	fs := flag.NewFlagSet("lock-guard", flag.ContinueOnError)
	deadline := fs.Int64("deadline", 0, "kill time, a clock `reading` in ns")
	grace := fs.Duration("grace", 0, "SIGTERM this long before SIGKILL")
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "guard: usage: -deadline NS -grace D -- COMMAND [ARGS...] (run by lite-raft-client lock, not by hand)")
		return exitGuard
	}
	for _, fd := range []int{3, 4} {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
			fmt.Fprintf(os.Stderr, "guard: file %d is not the lock's pipe: run by lite-raft-client lock, not by hand\n", fd)
			return exitGuard
		}
		unix.CloseOnExec(fd) // COMMAND must not hold the lock's pipes
	}
	argv := fs.Args()
	s := &supervisor{
		name:     argv[0],
		scan:     true,
		deadline: Reading(*deadline), grace: *grace,
		status:    os.NewFile(4, "guard status"),
		signalled: map[int]syscall.Signal{},
	}
	defer s.status.Close()
	if now := Now(); now >= s.deadline.Add(-s.grace) {
		s.report("error the lock's deadline is %v away, within the grace of %v: not starting", s.deadline.Sub(now), s.grace)
		return exitGuard
	}
	if err := becomeSubreaper(); err != nil {
		fmt.Fprintf(os.Stderr, "guard: %v: a descendant of %s that calls setsid will outlive it\n", err, argv[0])
	}
	// The guard's stderr is often the lock's (an ssh session's channel), gone with the lock
	// process: a Go program that writes to a closed stderr dies of SIGPIPE unless it takes
	// the signal, and the guard would die before it stopped COMMAND. Taken, the write
	// fails instead; COMMAND still gets SIGPIPE as usual (exec resets a caught signal).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	// Before COMMAND starts, so that no SIGCHLD is missed.
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	// The guard's own SIGINT, SIGHUP and SIGTERM (the lock's whole process group
	// signalled) are caught and dropped: the lock forwards what it means COMMAND to get,
	// and the guard must outlive COMMAND. Caught, not ignored: COMMAND would inherit an
	// ignored signal. One the guard was started ignoring (nohup) stays ignored in both.
	own := make(chan os.Signal, 1)
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM} {
		if !signal.Ignored(sig) {
			signal.Notify(own, sig)
		}
	}

	path, err := exec.LookPath(argv[0])
	if err != nil {
		s.report("error %v", err)
		return exitNotFound
	}
	// COMMAND's group gets the terminal if we have it: a shell gave it to the lock's group
	// (ours), and COMMAND must be able to read it and get its ^C.
	tty := -1
	if pg, ok := foreground(); ok && pg == ownGroup() {
		tty = pg
	}
	s.leader, err = syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true, Foreground: tty >= 0, Ctty: 0},
	})
	if err != nil {
		s.report("error %s: %v", path, err)
		return exitNoExec
	}
	s.report("started %d", s.leader)

	ctl := make(chan string)
	go readControl(os.NewFile(3, "guard control"), ctl)
	timer := time.NewTimer(0)
	for !s.check() {
		timer.Reset(min(s.next().Sub(Now()), recheck)) // since Go 1.23 no stale tick survives a Reset
		select {
		case msg, ok := <-ctl:
			if !ok {
				ctl = nil
				s.stop("the lock process is gone")
			} else {
				s.control(msg)
			}
		case <-chld:
			s.scan = true
		case <-own:
		case <-timer.C:
		}
	}
	if tty >= 0 {
		giveBack(s.leader, tty)
	}
	code := reapLeader(s)
	s.report("exit %d", code)
	return code
}

// readControl sends the control pipe's lines to ctl and closes ctl at its end of file:
// the lock process closed it or died (kill -9 included).
func readControl(f *os.File, ctl chan<- string) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ctl <- sc.Text()
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintf(os.Stderr, "guard: reading the lock's pipe: %v\n", err)
	}
	close(ctl)
}

// giveBack hands the terminal back to the lock's group, unless someone (the shell, once
// the lock process died) took it from COMMAND's group meanwhile. The guard is in the
// background now, so it must ignore SIGTTOU for the change to be let through; COMMAND is
// gone, so nothing inherits the ignored signal.
func giveBack(leader, pgrp int) {
	if pg, ok := foreground(); !ok || pg != leader {
		return
	}
	signal.Ignore(syscall.SIGTTOU)
	if err := setForeground(pgrp); err != nil {
		fmt.Fprintf(os.Stderr, "guard: giving the terminal back: %v\n", err)
	}
}

// supervisor is the guard's state: the deadline and how far the stopping of COMMAND has
// gone. Only the guard's main goroutine uses it, and it alone reaps, so a child's pid
// stays ours (not reusable) from the moment the child is listed until it is reaped.
type supervisor struct {
	name     string // COMMAND's argv[0], for messages
	leader   int    // COMMAND's pid and process group id
	deadline Reading
	grace    time.Duration
	status   *os.File // the status pipe: reports to the lock process

	stopping bool    // COMMAND is being stopped: Stop, the lock's end, or COMMAND's end
	stopFrom Reading // when the stopping began

	termSent, killSent bool
	scan               bool                   // a SIGCHLD came: sweep even while COMMAND runs
	ended              bool                   // the leader exited (not yet reaped on Linux)
	code               int                    // its exit code, where it was reaped early
	signalled          map[int]syscall.Signal // inherited children, the last signal each got
}

// report writes a line to the lock process; it may be gone, which changes nothing.
func (s *supervisor) report(format string, a ...any) {
	fmt.Fprintf(s.status, format+"\n", a...)
}

func (s *supervisor) termAt() Reading {
	t := s.deadline.Add(-s.grace)
	if s.stopping && s.stopFrom < t {
		t = s.stopFrom
	}
	return t
}

func (s *supervisor) killAt() Reading {
	t := s.deadline
	if s.stopping && s.stopFrom.Add(s.grace) < t {
		t = s.stopFrom.Add(s.grace)
	}
	return t
}

// next is when the guard next has something to do: the next signal due.
func (s *supervisor) next() Reading {
	if !s.termSent {
		return s.termAt()
	}
	if !s.killSent {
		return s.killAt()
	}
	return Now().Add(recheck)
}

// stop begins stopping COMMAND now; why is said on stderr unless COMMAND ended itself.
func (s *supervisor) stop(why string) {
	if s.stopping {
		return
	}
	if why != "" {
		fmt.Fprintf(os.Stderr, "guard: %s: stopping %s (SIGTERM, SIGKILL after %v)\n", why, s.name, s.grace)
	}
	s.stopping, s.stopFrom = true, Now()
}

// control acts on one message from the lock process. A message it cannot read means
// the two ends disagree: the guard then stops COMMAND rather than guess.
func (s *supervisor) control(msg string) {
	verb, arg, _ := strings.Cut(msg, " ")
	n, err := strconv.ParseInt(arg, 10, 64)
	switch {
	case verb == "deadline" && err == nil:
		s.deadline = Reading(n)
	case verb == "signal" && err == nil && n > 0 && n < 65:
		unix.Kill(-s.leader, syscall.Signal(n))
	case verb == "stop" && arg == "":
		s.stop("the lock is lost")
	default:
		s.stop(fmt.Sprintf("unreadable message %q from the lock process", msg))
	}
}

// check does what is due and reports whether COMMAND's group is gone. The leader is
// reaped last: until then its pid is its group's id and cannot be reused, so signals to
// the group cannot reach a stranger.
func (s *supervisor) check() bool {
	if !s.ended && (canPeek || !s.termSent || s.killSent) {
		// without a peek, reaping the leader gives its group id away: in a stop, not
		// before the group had its SIGKILL
		s.ended = leaderEnded(s)
		if s.ended && !canPeek {
			return true
		}
		if s.ended {
			s.stop("") // what COMMAND left behind goes too: the lock is released next
		}
	}
	now := Now()
	if !s.termSent && now >= s.termAt() {
		if !s.stopping {
			fmt.Fprintf(os.Stderr, "guard: the lock's deadline is %v away: SIGTERM to %s\n", s.deadline.Sub(now), s.name)
		}
		s.termSent = true
		unix.Kill(-s.leader, unix.SIGTERM)
		unix.Kill(-s.leader, unix.SIGCONT) // a stopped process acts on SIGTERM only once continued
	}
	if !s.killSent && now >= s.killAt() {
		s.killSent = true
		unix.Kill(-s.leader, unix.SIGKILL) // the leader is not reaped yet: still our group
	}
	// While COMMAND runs only a SIGCHLD (an inherited child ended) calls for reading
	// /proc; once it is being stopped, every turn does, to pass the signal on.
	if !s.scan && !s.stopping {
		return false
	}
	s.scan = false
	return s.sweep() == 0 && s.ended
}

// sweep reaps the inherited children that ended and passes the stop's current signal to
// those that live; it returns how many live. (None on systems without a subreaper.)
func (s *supervisor) sweep() int {
	sig := syscall.Signal(0)
	switch {
	case s.killSent:
		sig = syscall.SIGKILL
	case s.termSent:
		sig = syscall.SIGTERM
	}
	live := 0
	for _, c := range children(s.leader) {
		if c.zombie {
			var ws syscall.WaitStatus
			syscall.Wait4(c.pid, &ws, wnohang, nil)
			delete(s.signalled, c.pid)
			continue
		}
		live++
		if sig == 0 || s.signalled[c.pid] == sig {
			continue
		}
		s.signalled[c.pid] = sig
		target := c.pid
		if c.pgrp == c.pid {
			target = -c.pid // a group of its own (setsid): all of it
		}
		unix.Kill(target, sig)
		if sig == syscall.SIGTERM {
			unix.Kill(target, syscall.SIGCONT)
		}
	}
	return live
}

// child is a child process of the guard other than COMMAND.
type child struct {
	pid, pgrp int
	zombie    bool
}

// exitCode is a wait status as a shell reports it: the code, or 128+N for signal N.
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
