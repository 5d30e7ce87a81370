package guard

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options says how to run the guard and what it runs.
type Options struct {
	// GuardPath is the binary to run as the guard and GuardArgs its argv up to the
	// guard's own arguments, argv[0] included (lite-raft: os.Executable() and
	// {"lite-raft", "lock-guard"}). The binary must pass the rest of its arguments to
	// Serve and exit with what Serve returns.
	GuardPath string
	GuardArgs []string

	// Argv is COMMAND; Env its environment (nil: ours). The guard runs with Env too, so
	// COMMAND is looked up in Env's PATH.
	Argv []string
	Env  []string
	// COMMAND's standard files; nil is /dev/null.
	Stdin, Stdout, Stderr *os.File

	// Deadline is when COMMAND must be dead (KillDeadline); Extend moves it.
	Deadline Reading
	// Grace is how long before the deadline COMMAND gets SIGTERM, and how long after a
	// Stop (or our end) it gets before SIGKILL.
	Grace time.Duration
}

// Guard is the parent's side of a running guard. Its methods may be called from several
// goroutines, but Wait only once.
type Guard struct {
	cmd    *exec.Cmd
	stFile *os.File      // our end of the status pipe
	status *bufio.Reader // stFile's lines: "exit CODE" at the end
	name   string        // COMMAND's argv[0], for errors

	mu    sync.Mutex // one message at a time on ctl
	ctl   *os.File   // our end of the control pipe: its end of file is our end
	ended bool       // Wait has closed ctl: COMMAND's end is reported
}

// Start starts the guard, which starts COMMAND; it returns once COMMAND runs, or with
// why it could not start.
func Start(opts Options) (*Guard, error) {
	if len(opts.Argv) == 0 || len(opts.GuardArgs) == 0 {
		return nil, errors.New("guard: no command to run")
	}
	if opts.Grace < 0 {
		return nil, fmt.Errorf("guard: grace %v: want zero or more", opts.Grace)
	}
	// Both pipes are made close-on-exec (os.Pipe): only the guard's ends cross exec, as
	// its files 3 and 4, and the guard marks them close-on-exec before it starts COMMAND.
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("guard: control pipe: %w", err)
	}
	stR, stW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return nil, fmt.Errorf("guard: status pipe: %w", err)
	}
	args := append(opts.GuardArgs[1:len(opts.GuardArgs):len(opts.GuardArgs)],
		"-deadline", strconv.FormatInt(int64(opts.Deadline), 10),
		"-grace", opts.Grace.String(), "--")
	cmd := exec.Command(opts.GuardPath, append(args, opts.Argv...)...)
	cmd.Args[0] = opts.GuardArgs[0]
	cmd.Env = opts.Env
	// a nil *os.File in an io.Reader field would not read as nil: copy only the set ones
	if opts.Stdin != nil {
		cmd.Stdin = opts.Stdin
	}
	if opts.Stdout != nil {
		cmd.Stdout = opts.Stdout
	}
	if opts.Stderr != nil {
		cmd.Stderr = opts.Stderr
	}
	cmd.ExtraFiles = []*os.File{ctlR, stW}
	err = cmd.Start()
	ctlR.Close()
	stW.Close()
	if err != nil {
		ctlW.Close()
		stR.Close()
		return nil, fmt.Errorf("guard: start %s: %w", opts.GuardPath, err)
	}
	g := &Guard{cmd: cmd, stFile: stR, status: bufio.NewReader(stR), name: opts.Argv[0], ctl: ctlW}
	line, _ := g.status.ReadString('\n')
	if _, ok := strings.CutPrefix(line, "started "); ok {
		return g, nil
	}
	ctlW.Close()
	stR.Close()
	werr := cmd.Wait()
	if msg, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "error "); ok {
		return nil, fmt.Errorf("run %s: %s", opts.Argv[0], msg)
	}
	return nil, fmt.Errorf("guard: ended before starting %s (%v)", opts.Argv[0], werr)
}

// send writes one control message.
func (g *Guard) send(msg string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended {
		// COMMAND has ended and its end is on its way to the caller (a renewal's answer
		// can come first): there is nothing left to extend, signal or stop
		return nil
	}
	if _, err := g.ctl.WriteString(msg + "\n"); err != nil {
		return fmt.Errorf("guard of %s: %w", g.name, err)
	}
	return nil
}

// Extend moves the kill deadline. The guard takes any deadline it is sent, earlier or
// later: the parent alone knows what the leader confirmed, so it is the authority. Call
// it only after a confirmed renewal, with KillDeadline of that renewal's first send. A
// SIGTERM already sent (the old deadline was within Grace) is not taken back; a later
// deadline only puts off the SIGKILL.
func (g *Guard) Extend(deadline Reading) error {
	return g.send("deadline " + strconv.FormatInt(int64(deadline), 10))
}

// Signal has the guard send sig to COMMAND's process group (the lock forwards SIGINT,
// SIGHUP and SIGTERM this way): what COMMAND does with it is up to COMMAND.
func (g *Guard) Signal(sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("guard of %s: cannot forward %v", g.name, sig)
	}
	return g.send("signal " + strconv.Itoa(int(s)))
}

// Stop has the guard stop COMMAND now: SIGTERM to its group, SIGKILL Grace later (never
// later than the deadline). For a lost lock.
func (g *Guard) Stop() error { return g.send("stop") }

// Wait waits for the guard to end and returns COMMAND's exit code as the guard reports
// it: its code, or 128+N if signal N ended it. An error means the guard did not report
// one (it was killed, say); COMMAND's group may then outlive it.
func (g *Guard) Wait() (int, error) {
	code, rerr := -1, error(nil)
	line, err := g.status.ReadString('\n')
	if s, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "exit "); ok && err == nil {
		code, err = strconv.Atoi(s)
	}
	if err != nil || code < 0 {
		rerr = fmt.Errorf("guard of %s: no exit status reported (%q, %v)", g.name, line, err)
	}
	werr := g.cmd.Wait()
	g.stFile.Close()
	g.mu.Lock()
	g.ctl.Close()
	g.ended = true
	g.mu.Unlock()
	if rerr != nil {
		return -1, fmt.Errorf("%w; the guard: %v", rerr, werr)
	}
	return code, nil
}
