package main

import (
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
	"lite-raft/client/lockcore"
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

// lockVerb runs `lock`: it parses the command line and hands the rest to
// client.HoldLock, which carries out lockcore's decisions (the same core the whole-system
// simulation runs) with a guard process for COMMAND.
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
	most := ttl/3 - lockcore.Margin(ttl)
	switch {
	case grace < 0:
		grace = min(10*time.Second, ttl/10, most)
	case grace > most:
		return usage(fmt.Sprintf("--grace %v with --ttl %v: at most %v (a third of the ttl less the margin of %v)", grace, ttl, most.Round(time.Millisecond), lockcore.Margin(ttl)))
	}

	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	exe, err := os.Executable()
	if err != nil {
		return clientExit(api.CodeFailed, "lock %s: find this program to run the guard: %v", name, err)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	g := &guardCommand{exe: exe, name: name, argv: argv, grace: grace}
	out := client.HoldLock(client.LockOptions{
		Config: lockcore.Config{Name: name, Holder: fmt.Sprintf("%s@%s pid %d", who, thisHost(), os.Getpid()), TTL: ttl, Wait: wait, Hold: o.hold},
		Do:     doer(o, dial), Now: guard.Now, Logf: warnf}, g, sigs)
	switch {
	case out.Err == nil && out.Code == 0:
		return nil
	case out.Err == nil:
		return cli.Exit("", out.Code)
	case out.Code != 0:
		return clientExit(out.Code, "%v", out.Err)
	}
	return lockExit(out.Err)
}

// guardCommand runs COMMAND under a guard process (internal/guard), which kills its
// whole process group at the deadline, or at once if this process dies.
type guardCommand struct {
	exe, name string
	argv      []string
	grace     time.Duration
	g         *guard.Guard
	exited    chan client.CommandExit
}

func (c *guardCommand) Start(generation uint64, deadline lockcore.Reading) error {
	g, err := guard.Start(guard.Options{GuardPath: c.exe, GuardArgs: []string{"lite-raft", "lock-guard"}, Argv: c.argv,
		Env:   append(os.Environ(), "LITE_RAFT_LOCK_NAME="+c.name, "LITE_RAFT_LOCK_GENERATION="+strconv.FormatUint(generation, 10)),
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Deadline: deadline, Grace: c.grace})
	if err != nil {
		return fmt.Errorf("lock %s: run %s: %w", c.name, c.argv[0], err)
	}
	c.g, c.exited = g, make(chan client.CommandExit, 1)
	go func() {
		code, err := g.Wait()
		if err != nil {
			err = fmt.Errorf("lock %s: %s: %w", c.name, c.argv[0], err)
		}
		c.exited <- client.CommandExit{Code: code, Err: err}
	}()
	return nil
}

func (c *guardCommand) Extend(deadline lockcore.Reading) error { return c.g.Extend(deadline) }

func (c *guardCommand) Stop() {
	fmt.Fprintf(os.Stderr, "lite-raft-client: lock %s lost: stopping %s\n", c.name, c.argv[0])
	c.g.Stop()
}

func (c *guardCommand) Signal(sig syscall.Signal) { c.g.Signal(sig) }

func (c *guardCommand) Exited() <-chan client.CommandExit { return c.exited }
