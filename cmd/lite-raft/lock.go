package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/internal/guard"

	"github.com/urfave/cli/v2"
)

const lockUsage = `usage: lite-raft-client lock NAME [--ttl 15s] [--wait DURATION] [--grace D] -- COMMAND [ARGS...]

Waits for the cluster-wide lock NAME (first come, first served), runs COMMAND while it
holds it, renewing its lease every ttl/3, releases it when COMMAND ends and exits with
COMMAND's exit code (128+N if a signal N ended it). If this host or this command dies,
the lock frees itself within the ttl. COMMAND gets LITE_RAFT_LOCK_NAME and
LITE_RAFT_LOCK_GENERATION, a fencing number that grows with every new holder: pass it
to what COMMAND changes (set --fence NAME=GENERATION ... in lite-raft itself), so that a
holder that lost the lock unknowingly is refused.

COMMAND never outlives the lock. It runs in a process group of its own under a guard
process, which kills the whole group (SIGTERM, then SIGKILL) before anyone else can be
given the lock: at the end of the lease as this host can be sure of it, that is the send
of the last renewal the leader confirmed plus the ttl, less a margin for the two hosts'
clocks (1000 ppm of the ttl plus 250 ms: 265 ms for a 15 s ttl, 86.65 s for 24 h). The
guard does so whatever happens to this command: killed (kill -9), frozen (SIGSTOP),
or cut off from the cluster. SIGINT, SIGHUP and SIGTERM sent to this command go to
COMMAND's group. What no process can do is act while its whole host is frozen or
suspended: that is what the fencing number is for.

  --ttl D     the lease: how long the lock outlives a holder that stopped renewing (1s-24h)
  --wait D    give up after D without the lock: exit 15 (default: wait for ever)
  --grace D   how long before the kill COMMAND gets SIGTERM (default: a tenth of the ttl,
              at most 10 s); at most a third of the ttl less the margin, so that a renewal
              missed in a leader change does not stop COMMAND

Exit 16 if the lock is lost (the lease could not be renewed within its ttl): COMMAND, if
it was running, is sent SIGTERM, and SIGKILL the grace later, never after the end of the
lease. Other failures before COMMAND ran exit with the client's codes (11, 12, 14, 2, ...).`

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
	ttl, wait, grace := 15*time.Second, time.Duration(0), time.Duration(-1)
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
		case "--grace":
			if grace, err = time.ParseDuration(v); err == nil && grace < 0 {
				err = fmt.Errorf("--grace %v: want zero or more", grace)
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
	// after a confirmed renewal, the next is due a third of the ttl later: SIGTERM must
	// come a whole renewal interval after that, or one missed renewal stops COMMAND
	most := ttl/3 - guard.Margin(ttl)
	switch {
	case grace < 0:
		grace = min(10*time.Second, ttl/10, most)
	case grace > most:
		return usage(fmt.Sprintf("--grace %v with --ttl %v: at most %v (a third of the ttl less the margin of %v)", grace, ttl, most.Round(time.Millisecond), guard.Margin(ttl)))
	}

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
	return runLocked(name, l, grace, argv, sigs)
}

// runLocked runs COMMAND under a guard process while renewing the lease, then releases
// it. The guard holds the kill deadline, the end of the lease as this client can be sure
// of it (guard.KillDeadline, from the send of the last confirmed renewal), and kills
// COMMAND's whole process group at it, or at once if this process dies; it is told of
// each later deadline only once a renewal is confirmed.
func runLocked(name string, l *client.Lock, grace time.Duration, argv []string, sigs chan os.Signal) error {
	k := l.Lease
	// the send of the last confirmed renewal (or the acquire's first send), as a reading
	// of the clock the guard keeps
	confirmed := func() guard.Reading { return guard.Now().Add(-time.Since(k.ValidUntil().Add(-k.TTL))) }
	if !guard.Valid(guard.Now(), confirmed(), k.TTL) {
		// a slow answer: the lease may be too close to its end to start COMMAND
		if err := k.Renew(); err != nil {
			return lockExit(err)
		}
		if !guard.Valid(guard.Now(), confirmed(), k.TTL) {
			k.Release("lock")
			return clientExit(api.CodeLockLost, "lock %s: the lease was not surely ours for long enough to start %s (no renewal confirmed in time); gave it up", name, argv[0])
		}
	}
	exe, err := os.Executable()
	if err != nil {
		k.Release("lock")
		return clientExit(api.CodeFailed, "lock %s: find this program to run the guard: %v", name, err)
	}
	g, err := guard.Start(guard.Options{GuardPath: exe, GuardArgs: []string{"lite-raft", "lock-guard"}, Argv: argv,
		Env:   append(os.Environ(), "LITE_RAFT_LOCK_NAME="+name, "LITE_RAFT_LOCK_GENERATION="+strconv.FormatUint(l.Place.Generation, 10)),
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Deadline: guard.KillDeadline(confirmed(), k.TTL), Grace: grace})
	if err != nil {
		k.Release("lock")
		return clientExit(127, "lock %s: run %s: %v", name, argv[0], err)
	}
	type exit struct {
		code int
		err  error
	}
	done := make(chan exit, 1)
	go func() {
		code, err := g.Wait()
		done <- exit{code, err}
	}()
	var lostErr error
	for {
		var renew <-chan time.Time
		if lostErr == nil {
			renew = time.After(time.Until(k.Next()))
		}
		select {
		case e := <-done:
			if lostErr != nil {
				return lostErr
			}
			k.Release("lock")
			if e.err != nil {
				return clientExit(api.CodeFailed, "lock %s: %s: %v", name, argv[0], e.err)
			}
			if e.code != 0 {
				return cli.Exit("", e.code)
			}
			return nil
		case s := <-sigs:
			g.Signal(s) // COMMAND's group decides; its end ends us
		case <-renew:
			if err := k.Renew(); err != nil {
				// another holder may be let in at any moment: stop COMMAND now
				lostErr = lockExit(err)
				fmt.Fprintf(os.Stderr, "lite-raft-client: lock %s lost: stopping %s\n", name, argv[0])
				g.Stop()
				continue
			}
			if err := g.Extend(guard.KillDeadline(confirmed(), k.TTL)); err != nil {
				// the guard is gone (it stopped COMMAND, or was killed): its end tells
				fmt.Fprintf(os.Stderr, "lite-raft-client: lock %s: the guard of %s: %v\n", name, argv[0], err)
			}
		}
	}
}
