package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"lite-raft/failover"
	"lite-raft/failover/decide"
	"lite-raft/internal/lockfile"
	"lite-raft/internal/sshcmd"
	"lite-raft/sshrpc"
)

// pkgFenceStop is `pkg fence-stop NAME`, which a new owner runs over ssh on the previous
// one before it starts the package: it makes sure the package does not run here,
// whatever this host's monitor is doing. The monitor may be dead (its script's service
// running on), frozen (SIGSTOP, a stalled VM) or cut off from the cluster: it is killed
// (SIGKILL works on a frozen process too; a supervisor restarts it as a stand-by), then
// the script's stop runs, then its status. Exit 0: the stop succeeded and status says
// down; 1: it may still run (the stop failed, or status says up or cannot tell), and
// the new owner must not start it.
func pkgFenceStop(c *cli.Context, p string, onlyIfDead bool) error {
	path, err := scriptPath(c, p)
	if err != nil {
		return cli.Exit(err, 1)
	}
	_, lockPath, logFile, err := pkgFiles(c, p)
	if err != nil {
		return cli.Exit(err, 1)
	}
	lg := log.New(os.Stderr, "", 0)
	if lf, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
		defer lf.Close()
		lg = log.New(lf, "", log.LstdFlags|log.Lmicroseconds)
	}
	if onlyIfDead {
		if why, alive := monitorAlive(lockPath); alive {
			return cli.Exit(fmt.Sprintf("%s: %s on %s: not fenced", p, why, thisHost()), fenceAliveExit)
		}
	}
	if pid, held := lockfile.Holder(lockPath); held {
		lg.Printf("%s: fence-stop: killing this host's monitor (pid %d): another host takes the package over", p, pid)
		syscall.Kill(pid, syscall.SIGKILL)
		for deadline := time.Now().Add(10 * time.Second); ; {
			if _, held := lockfile.Holder(lockPath); !held {
				break
			}
			if time.Now().After(deadline) {
				return cli.Exit(fmt.Sprintf("%s: the monitor (pid %d) on %s did not die", p, pid, thisHost()), 1)
			}
			time.Sleep(10 * time.Millisecond) // polling for the kernel to release the lock
		}
	}
	script := &failover.Script{Path: path, Env: []string{"LITE_RAFT_PKG_NAME=" + p, "LITE_RAFT_PKG_OWNER=" + thisHost()}}
	cfg, err := script.ReadConfig()
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", p, err), 1)
	}
	// two stand-bys may fence this host at once: one stop at a time (the second runs its
	// own after the first, and sees what it left)
	for deadline := time.Now().Add(cfg.StopTimeout + cfg.StartTimeout + 10*time.Second); ; {
		f, err := lockfile.TryLock(lockPath + ".fence")
		if err == nil {
			defer f.Close()
			break
		}
		if time.Now().After(deadline) {
			return cli.Exit(fmt.Sprintf("%s: another fence-stop on %s did not end: %v", p, thisHost(), err), 1)
		}
		time.Sleep(20 * time.Millisecond) // polling for the other fence-stop's end, with a deadline
	}
	if code, out, err := script.Run(context.Background(), "stop", cfg.StopTimeout); err != nil || code != 0 {
		// a status that says down after a failed stop proves nothing (a status that
		// failed is how many stops begin): the package may run on here
		lg.Printf("%s: fence-stop: stop: exit %d %v: %s", p, code, err, out)
		return cli.Exit(fmt.Sprintf("%s: its stop failed on %s (exit %d %v): %s", p, thisHost(), code, err, out), 1)
	}
	code, out, err := script.Run(context.Background(), "status", cfg.StartTimeout)
	if err != nil || (code != 1 && code != 3) {
		lg.Printf("%s: fence-stop: still up after stop (status %d, %v): %s", p, code, err, out)
		return cli.Exit(fmt.Sprintf("%s still runs on %s after stop (status %d %v): %s", p, thisHost(), code, err, out), 1)
	}
	lg.Printf("%s: fence-stop: stopped here", p)
	fmt.Fprintf(c.App.Writer, "%s is stopped on %s\n", p, thisHost())
	return nil
}

// fenceAliveExit is fence-stop --only-if-dead's exit when the monitor runs: nothing done.
const fenceAliveExit = 3

// monitorAlive says whether the monitor whose lock is lockPath runs, or its supervisor
// is there to restart it; a process stopped (SIGSTOP, state T) counts as dead: it can
// neither tick nor stop the package. A process in any other state is taken as alive,
// an uninterruptible wait (D) included: its owner's timeout decides then.
func monitorAlive(lockPath string) (string, bool) {
	if pid, held := lockfile.Holder(lockPath); held {
		if st := procState(pid); st != 'T' && st != 't' && st != 'Z' {
			return fmt.Sprintf("its monitor runs (pid %d, state %c)", pid, st), true
		}
		return "", false
	}
	if pid, held := lockfile.Holder(supervisorLock(lockPath)); held {
		if st := procState(pid); st != 'T' && st != 't' && st != 'Z' {
			return fmt.Sprintf("its monitor is being restarted by its supervisor (pid %d)", pid), true
		}
	}
	return "", false
}

// supervisorLock is the lock a package's supervisor holds, beside its monitor's.
func supervisorLock(monitorLock string) string {
	return strings.TrimSuffix(monitorLock, ".lock") + ".supervisor.lock"
}

// procState is the state letter of process pid (R, S, D, T, Z ...), 0 if unknown.
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// "pid (comm) S ...": comm may hold spaces and parentheses; the state follows the last ')'
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// sshFencer runs `pkg fence-stop NAME` on a host over ssh, from the same directory path
// (the pkg folder sits at one path on every package host). While this host stands by it
// keeps an ssh connection to the owner open, checked every half second, so that a
// takeover fences at once over it, or knows at once that the owner cannot be reached (a
// powered-off host costs no connect timeout on the takeover's path).
type sshFencer struct {
	dialer  *sshrpc.Dialer
	dir     string
	name    string
	timeout time.Duration

	mu     sync.Mutex
	host   string      // the host prepared for
	client *ssh.Client // its connection, while it answers
	alive  time.Time   // when it last answered
	quit   chan struct{}
}

// fenceKeepAlive is how often the prepared connection is checked; one that has not
// answered for fenceStale is taken as gone.
const (
	fenceKeepAlive = 500 * time.Millisecond
	fenceStale     = 1500 * time.Millisecond
	fenceRedial    = 500 * time.Millisecond // a stale prepared connection's last chance
)

func (f *sshFencer) Prepare(host string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.host == host {
		return
	}
	if f.quit != nil {
		close(f.quit)
		f.quit = nil
	}
	if f.client != nil {
		f.client.Close()
		f.client = nil
	}
	f.host = host
	if host == "" {
		return
	}
	f.quit = make(chan struct{})
	go f.keep(host, f.quit)
}

// keep holds a connection to host until quit: dialled again when it breaks.
func (f *sshFencer) keep(host string, quit chan struct{}) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := f.dialer.Dial(ctx, host)
		cancel()
		if err == nil {
			f.mu.Lock()
			if f.host != host {
				f.mu.Unlock()
				c.Close()
				return
			}
			f.client, f.alive = c, time.Now()
			f.mu.Unlock()
			for f.answers(c, quit) {
				f.mu.Lock()
				f.alive = time.Now()
				f.mu.Unlock()
			}
			c.Close()
			f.mu.Lock()
			if f.client == c {
				f.client = nil
			}
			f.mu.Unlock()
		}
		select {
		case <-quit:
			return
		case <-time.After(time.Second):
		}
	}
}

// answers waits a keep-alive interval, then reports whether c answers a keep-alive in
// time (false at quit).
func (f *sshFencer) answers(c *ssh.Client, quit chan struct{}) bool {
	select {
	case <-quit:
		return false
	case <-time.After(fenceKeepAlive):
	}
	ok := make(chan bool, 1)
	go func() {
		_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		ok <- err == nil
	}()
	select {
	case r := <-ok:
		return r
	case <-time.After(fenceStale):
		return false
	case <-quit:
		return false
	}
}

// FenceHost runs fence-stop on host. Unreachable means only that no connection could be
// made: a prepared connection that stopped answering is dialled again first, since a
// stale keepalive is not proof that the host is down. Once fence-stop is sent, a broken
// session or no answer is unknown: it may have stopped the package, or not.
func (f *sshFencer) FenceHost(ctx context.Context, host string, onlyIfDead bool) (decide.FenceResult, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	f.mu.Lock()
	prepared, c, alive := f.host == host, f.client, f.alive
	f.mu.Unlock()
	if !prepared || c == nil || time.Since(alive) > fenceStale {
		// not watched (the owner changed just now): dial, bounded. Its connection went
		// quiet: dial once more, for half a second (it has been silent for fenceStale
		// already; the timing rule covers a host that cannot be reached, so this only
		// adds a chance to fence it outright, and must not hold the takeover long: a
		// LAN's ssh handshake takes milliseconds)
		limit := 5 * time.Second
		if prepared {
			limit = fenceRedial
		}
		dctx, dcancel := context.WithTimeout(ctx, limit)
		nc, err := f.dialer.Dial(dctx, host)
		dcancel()
		if err != nil {
			return decide.FenceUnreachable, fmt.Errorf("%s: %w", host, err)
		}
		defer nc.Close()
		c = nc
	}
	// a session that cannot be opened means nothing ran there
	type opened struct {
		s   *ssh.Session
		err error
	}
	got := make(chan opened, 1)
	go func() {
		s, err := c.NewSession()
		got <- opened{s, err}
	}()
	var s *ssh.Session
	select {
	case o := <-got:
		if o.err != nil {
			return decide.FenceUnreachable, fmt.Errorf("%s: open session: %w", host, o.err)
		}
		s = o.s
	case <-time.After(fenceStale):
		return decide.FenceUnreachable, fmt.Errorf("%s: no session within %v", host, fenceStale)
	}
	defer s.Close()
	var out bytes.Buffer
	s.Stdout, s.Stderr = &out, &out
	args := []string{"pkg", "fence-stop", f.name}
	if onlyIfDead {
		args = []string{"pkg", "fence-stop", "--only-if-dead", f.name}
	}
	cmd := sshcmd.Command(f.dir, args...)
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		return decide.FenceUnknown, fmt.Errorf("%s: fence-stop sent, no answer within %v", host, f.timeout)
	}
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return decide.FenceStopped, nil
	case errors.As(err, &ee) && ee.ExitStatus() == fenceAliveExit:
		return decide.FenceAlive, fmt.Errorf("%s: %s", host, strings.TrimSpace(out.String()))
	case errors.As(err, &ee):
		return decide.FenceStillUp, fmt.Errorf("%s: %s", host, strings.TrimSpace(out.String()))
	}
	return decide.FenceUnknown, fmt.Errorf("%s: fence-stop sent, then %v", host, err)
}

// pkgSupervise is what `pkg run` leaves running: it runs this host's monitor of the
// package and starts it again when it dies by a signal (kill -9, a crash, a fence-stop
// from a new owner) or fails to reach the cluster (exit 2 and above), after a backoff
// that doubles from 1 s to 30 s and resets after a minute of running. A monitor that
// ends on purpose (pkg stop: exit 0; gave up or misconfigured: exit 1) is not restarted,
// and neither is it when the supervisor itself is told to stop (it passes the signal on).
func pkgSupervise(c *cli.Context, p string) error {
	dir, err := liteRaftDir(c)
	if err != nil {
		return cli.Exit(err, 1)
	}
	self, err := os.Executable()
	if err != nil {
		return cli.Exit(err, 1)
	}
	lg := log.New(os.Stdout, "", log.LstdFlags|log.Lmicroseconds)
	// held while it lives: fence-stop --only-if-dead leaves a host alone whose
	// supervisor is restarting its monitor
	_, lockPath, _, err := pkgFiles(c, p)
	if err != nil {
		return cli.Exit(err, 1)
	}
	lk, err := lockfile.TryLock(supervisorLock(lockPath))
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: a supervisor of its monitor already runs on %s: %v", p, thisHost(), err), 1)
	}
	defer lk.Close()
	stopping := make(chan os.Signal, 1)
	signal.Notify(stopping, syscall.SIGTERM, syscall.SIGINT)
	signal.Ignore(syscall.SIGHUP) // logrotate signalling every lite-raft process
	backoff := time.Second
	for {
		cmd := exec.Command(self, "--dir", dir, "pkg", "monitor", p)
		cmd.Stdout, cmd.Stderr, cmd.Dir = os.Stdout, os.Stderr, dir
		started := time.Now()
		if err := cmd.Start(); err != nil {
			return cli.Exit(fmt.Sprintf("%s: start the monitor: %v", p, err), 1)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var werr error
		select {
		case sig := <-stopping:
			cmd.Process.Signal(sig)
			<-exited
			return nil
		case werr = <-exited:
		}
		code, sig := cmd.ProcessState.ExitCode(), ""
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			sig = ws.Signal().String()
		}
		if sig == "" && code <= 1 {
			lg.Printf("%s: the monitor ended (exit %d): not restarting it", p, code)
			return cli.Exit("", code)
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		what := fmt.Sprintf("exit %d", code)
		if sig != "" {
			what = "killed by " + sig
		}
		lg.Printf("%s: the monitor died (%s, %v): restarting it in %v", p, what, werr, backoff)
		select {
		case <-stopping:
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}
