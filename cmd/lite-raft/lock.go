package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"lite-raft/api"
	"lite-raft/client"

	"github.com/urfave/cli/v2"
)

const lockUsage = `usage: lite-raft-client lock NAME [--ttl 15s] [--wait DURATION] -- COMMAND [ARGS...]

Waits for the cluster-wide lock NAME (first come, first served), runs COMMAND while it
holds it, renewing its lease every ttl/3, releases it when COMMAND ends and exits with
COMMAND's exit code (128+N if a signal N ended it). If this host or this command dies,
the lock frees itself within the ttl. COMMAND gets LITE_RAFT_LOCK_NAME and
LITE_RAFT_LOCK_GENERATION, a fencing number that grows with every new holder: pass it
to what COMMAND changes, so a holder that lost the lock unknowingly can be refused.

  --ttl D     the lease: how long the lock outlives a holder that stopped renewing (1s-24h)
  --wait D    give up after D without the lock: exit 15 (default: wait for ever)

Exit 16 if the lock is lost (the lease could not be renewed within its ttl): COMMAND, if
it was running, is sent SIGTERM (SIGKILL 10 s later). Other failures before COMMAND ran
exit with the client's codes (11, 12, 14, 2, ...).`

// lockVerb runs `lock`. One goroutine makes every request (the remote caller is not
// for concurrent use): it waits for the lock in polls no longer than a third of the
// ttl, renewing the lease in between, then renews while COMMAND runs.
func lockVerb(c *cli.Context, o clientOpts, dial dialFunc, args []string) error {
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
		fmt.Fprintln(c.App.Writer, lockUsage)
		return nil
	}
	usage := func(msg string) error {
		fmt.Fprintf(c.App.ErrWriter, "lite-raft-client: lock: %s\n\n%s\n", msg, lockUsage)
		return cli.Exit("", api.CodeUsage)
	}
	if len(args) == 0 {
		return usage("missing NAME")
	}
	name, args := args[0], args[1:]
	if err := api.ValidateKey(name); err != nil {
		return usage(err.Error())
	}
	ttl, wait := 15*time.Second, time.Duration(0)
	for len(args) > 0 && args[0] != "--" {
		opt, v, ok := strings.Cut(args[0], "=")
		if !ok {
			if len(args) < 2 {
				return usage(opt + " needs a value")
			}
			v, args = args[1], args[1:]
		}
		var err error
		switch opt {
		case "--ttl":
			ttl, err = parseTTL(v)
		case "--wait":
			if wait, err = time.ParseDuration(v); err == nil && wait <= 0 {
				err = fmt.Errorf("--wait %v: want a positive duration", wait)
			}
		default:
			err = fmt.Errorf("unknown option %s", opt)
		}
		if err != nil {
			return usage(err.Error())
		}
		args = args[1:]
	}
	if len(args) < 2 {
		return usage("want -- COMMAND [ARGS...]")
	}
	argv := args[1:]

	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	// a signal while waiting gives the place up (or the lock, if it came just as the lock
	// was granted): its exit is 128+N
	ctx, cancel := context.WithCancel(context.Background())
	waited := make(chan os.Signal, 1) // the signal that ended the wait, if one did
	go func() {
		defer close(waited)
		select {
		case s := <-sigs:
			waited <- s
			cancel()
		case <-ctx.Done():
		}
	}()
	l, err := client.AcquireLock(ctx, client.LockOptions{Name: name, Holder: fmt.Sprintf("%s@%s pid %d", who, thisHost(), os.Getpid()),
		TTL: ttl, Wait: wait, Hold: o.hold, Do: doer(o, dial), Logf: warnf})
	cancel()
	if s := <-waited; s != nil {
		if err == nil {
			l.Lease.Release("lock")
		}
		return clientExit(128+int(s.(syscall.Signal)), "lock %s: %v while waiting; gave up the place", name, s)
	}
	if err != nil {
		return lockExit(err)
	}
	return runLocked(name, l, argv, sigs)
}

// runLocked runs COMMAND while renewing the lease, then releases it.
func runLocked(name string, l *client.Lock, argv []string, sigs chan os.Signal) error {
	k := l.Lease
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "LITE_RAFT_LOCK_NAME="+name,
		"LITE_RAFT_LOCK_GENERATION="+strconv.FormatUint(l.Place.Generation, 10))
	if err := cmd.Start(); err != nil {
		k.Release("lock")
		return clientExit(127, "lock %s: run %s: %v", name, argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var lostErr error
	var killAt <-chan time.Time
	for {
		var renew <-chan time.Time
		if lostErr == nil {
			renew = time.After(time.Until(k.Next()))
		}
		select {
		case err := <-done:
			if lostErr != nil {
				return lostErr
			}
			k.Release("lock")
			return exitOf(err)
		case s := <-sigs:
			cmd.Process.Signal(s) // the command decides; its end ends us
		case <-killAt:
			cmd.Process.Kill()
		case <-renew:
			if err := k.Renew(); err != nil {
				// another holder may be let in at any moment: stop COMMAND now
				lostErr = lockExit(err)
				fmt.Fprintf(os.Stderr, "lite-raft-client: lock %s lost: stopping %s\n", name, argv[0])
				cmd.Process.Signal(syscall.SIGTERM)
				killAt = time.After(10 * time.Second)
			}
		}
	}
}

// exitOf is COMMAND's exit as ours: its code, or 128+N for signal N.
func exitOf(err error) error {
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return cli.Exit("", 128+int(st.Signal()))
		}
		return cli.Exit("", ee.ExitCode())
	}
	return cli.Exit(err.Error(), 1)
}
