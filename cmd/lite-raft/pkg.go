package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/conf"
	"lite-raft/failover"
	"lite-raft/failover/decide"
	"lite-raft/internal/lockfile"
	"lite-raft/sshrpc"
)

// checkPkgName refuses a package name that cannot name a folder of packages/.
func checkPkgName(c *cli.Context, p string) error {
	if err := api.ValidateKey(failover.Key(p, "x")); err != nil || strings.Contains(p, "/") {
		return usageError(c, fmt.Sprintf("package name %q: letters, digits, dots, dashes", p))
	}
	return nil
}

// checkHost refuses a host name that cannot name a key under packages/NAME/ (a
// stand-by's report), or one that is empty or "*" (pkg cleanup's every host).
func checkHost(c *cli.Context, h string) error {
	if err := api.ValidateKey(failover.Key("x", "standby/"+h)); err != nil || h == "" || h == "*" || strings.ContainsAny(h, "/ \t\n") {
		return usageError(c, fmt.Sprintf("host name %q: letters, digits, dots, dashes", h))
	}
	return nil
}

func pkgCommand() *cli.Command {
	name := func(c *cli.Context, n int) (string, error) {
		if c.NArg() != n {
			return "", usageError(c, fmt.Sprintf("want %d argument(s)", n))
		}
		p := c.Args().First()
		return p, checkPkgName(c, p)
	}
	setter := func(verb, field, value, what string) *cli.Command {
		return &cli.Command{Name: verb, Usage: what, ArgsUsage: "NAME", Action: func(c *cli.Context) error {
			p, err := name(c, 1)
			if err != nil {
				return err
			}
			return withStore(c, func(ctx context.Context, s *failover.Store) error {
				return s.Set(ctx, failover.Key(p, field), value)
			})
		}}
	}
	return &cli.Command{
		Name:  "pkg",
		Usage: "failover packages: init, run, stop, status, halt, resume, move, evacuate, cleanup, enable, disable, confirm-stopped (./pkg)",
		Subcommands: []*cli.Command{
			{Name: "init", Usage: "store a package's settings (from control-scripts/NAME) in the cluster", ArgsUsage: "NAME",
				Description: "Refuses a package that is already in the cluster (it names its owner and state): use --update\n" +
					"after editing the script, which changes the settings only, keeping owner, tick, generation,\n" +
					"halt, maintenance and history.",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "update", Usage: "change the settings of an existing package, nothing else"}},
				Action: func(c *cli.Context) error {
					p, err := name(c, 1)
					if err != nil {
						return err
					}
					return pkgInit(c, p)
				}},
			{Name: "run", Aliases: []string{"start"}, Usage: "start this host's monitor for the package, in the background, and lift a halt", ArgsUsage: "NAME",
				Description: "Lifts a halt (pkg halt) first, recorded in the history; then starts this host's monitor\n" +
					"under a supervisor. A monitor already running here: exit 0 if a halt was lifted, else 1.",
				Action: func(c *cli.Context) error {
					p, err := name(c, 1)
					if err != nil {
						return err
					}
					return pkgRun(c, p)
				}},
			{Name: "stop", Usage: "stop this host's monitor (an active one stops the package first) and wait", ArgsUsage: "NAME",
				Action: func(c *cli.Context) error {
					p, err := name(c, 1)
					if err != nil {
						return err
					}
					return pkgStop(c, p)
				}},
			{Name: "status", Usage: "owner, state, tick and history of a package, or a table of all", ArgsUsage: "[NAME]",
				Description: "--json: one JSON object for NAME (with its history), an array of all packages without.",
				Flags:       []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: func(c *cli.Context) error {
					if c.NArg() > 1 {
						return usageError(c, "status takes at most one NAME")
					}
					return pkgStatus(c, c.Args().First(), c.Bool("json"))
				}},
			{Name: "halt", Usage: "stop the package cluster-wide, with no failover (pkg resume or pkg run lifts it)", ArgsUsage: "NAME",
				Description: "The owner's monitor stops the package. If that monitor does not seem to run (the tick has\n" +
					"not moved for three paces), a warning says so on standard error; the halt is recorded all the\n" +
					"same (exit 0), and is obeyed when the monitor returns.",
				Action: func(c *cli.Context) error {
					p, err := name(c, 1)
					if err != nil {
						return err
					}
					return pkgHalt(c, p)
				}},
			{Name: "resume", Usage: "lift a halt (pkg halt): the running monitors take the package up again", ArgsUsage: "NAME",
				Description: "Lifts the halt wherever the monitors run, and starts no monitor (pkg run NAME on a host both\n" +
					"lifts it and starts that host's monitor if it is not running). Recorded in the history.\n" +
					"A package that is not halted: nothing to do, exit 0.",
				Action: func(c *cli.Context) error {
					p, err := name(c, 1)
					if err != nil {
						return err
					}
					return pkgResume(c, p)
				}},
			pkgEvacuateCommand(), pkgUnevacuateCommand(), pkgCleanupCommand(),
			{Name: "check", Usage: "validate control-scripts/NAME's settings as pkg init reads them (exit 0 or 1)", ArgsUsage: "NAME",
				Description: "Asks the script for each setting (echo VAR), as pkg init does, and checks them and the safety\n" +
					"rule (stop_timeout + pace below timeout). It stores nothing and asks the cluster nothing.",
				Action: func(c *cli.Context) error {
					p, err := name(c, 1)
					if err != nil {
						return err
					}
					path, err := scriptPath(c, p)
					if err != nil {
						return cli.Exit(err, 1)
					}
					cfg, err := (&failover.Script{Path: path}).ReadConfig()
					if err != nil {
						return cli.Exit(fmt.Sprintf("%s: %v", p, err), 1)
					}
					fmt.Fprintf(c.App.Writer, "%s: settings valid: pace %v, timeout %v, stop_timeout %v, restarts %d, fall %d\n",
						p, cfg.Pace, cfg.Timeout, cfg.StopTimeout, cfg.Restarts, max(cfg.Fall, 1))
					return nil
				}},
			setter("enable", "enabled", "yes", "end maintenance"),
			setter("disable", "enabled", "no", "maintenance: monitors keep running, nothing is started or failed over"),
			{Name: "move", Usage: "planned switch-over: the owner stops the package, HOST starts it", ArgsUsage: "NAME HOST",
				Description: "Refused (exit 1) unless a monitor of NAME stands by on HOST (a fresh report in\n" +
					"packages/NAME/standby/HOST; --wait waits for one), and while NAME is halted or in maintenance.\n" +
					"A HOST that already runs NAME: nothing to do, exit 0. The move is asked, not done, when it returns:\n" +
					"--until-running D waits for the package to run on HOST (exit 0), to fail there or go elsewhere\n" +
					"(exit 1), or D (exit 2: not known yet; pkg status tells). A target whose monitor stops\n" +
					"reporting lets the move lapse after the owner's wait: the other stand-bys act again.",
				Flags: []cli.Flag{&cli.DurationFlag{Name: "wait", Usage: "wait up to this long (e.g. 20s) for HOST's monitor to stand by"},
					&cli.DurationFlag{Name: "until-running", Usage: "then wait up to this long for the package to run on HOST: exit 0 running there, " +
						"1 failed there (or the move lapsed, or another host took it), 2 still unknown"}},
				Action: func(c *cli.Context) error {
					if c.NArg() != 2 {
						return usageError(c, "move wants NAME HOST")
					}
					p, err := name(c, 2)
					if err != nil {
						return err
					}
					host := c.Args().Get(1)
					if err := checkHost(c, host); err != nil {
						return err
					}
					if err := pkgMove(c, p, host, c.Duration("wait")); err != nil || c.Duration("until-running") <= 0 {
						return err
					}
					return pkgUntilRunning(c, p, host, c.Duration("until-running"))
				}},
			{Name: "confirm-stopped", Usage: "after checking by hand: the package no longer runs on HOST, whose stop failed", ArgsUsage: "NAME HOST",
				Description: "A package whose stop failed on HOST stays there (state stop-failed) and no other host starts\n" +
					"it until HOST is fenced: fence-stop there finds it stopped, or fence_command succeeds. When\n" +
					"neither can (HOST is off, or its stop needs a hand), check that NAME no longer runs there, then\n" +
					"say so with confirm-stopped: the package is released and a stand-by starts it. Exit 1 if NAME\n" +
					"is not stop-failed on HOST.",
				Action: func(c *cli.Context) error {
					if c.NArg() != 2 {
						return usageError(c, "confirm-stopped wants NAME HOST")
					}
					p, err := name(c, 2)
					if err != nil {
						return err
					}
					return pkgConfirmStopped(c, p, c.Args().Get(1))
				}},
			{Name: "fence-stop", Usage: "stop the package on this host, whatever its monitor does (run by a new owner over ssh)", ArgsUsage: "NAME",
				Description: "Kills this host's monitor of NAME (dead, frozen or cut off: a new owner is taking over), runs the\n" +
					"control script's stop, then its status. Exit 0: the stop succeeded and status says down; 1: NAME may still run\n" +
					"here (its stop failed, or status says up). --only-if-dead (a stand-by that saw the tick stand for two\n" +
					"paces): only if the monitor is dead or frozen (stopped) and no supervisor is restarting it; exit 3, nothing\n" +
					"done, if it runs.",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "only-if-dead", Usage: "leave a running monitor alone (exit 3)"}},
				Action: func(c *cli.Context) error {
					p, err := name(c, 1)
					if err != nil {
						return err
					}
					return pkgFenceStop(c, p, c.Bool("only-if-dead"))
				}},
			{Name: "supervise", Hidden: true, ArgsUsage: "NAME", Action: func(c *cli.Context) error {
				p, err := name(c, 1)
				if err != nil {
					return err
				}
				return pkgSupervise(c, p)
			}},
			{Name: "watchdog-keeper", Hidden: true, ArgsUsage: "DEVICE", Action: func(c *cli.Context) error {
				if c.NArg() != 1 || !strings.HasPrefix(c.Args().First(), "/") {
					return usageError(c, "watchdog-keeper wants a device path")
				}
				return pkgWatchdogKeeper(c, c.Args().First())
			}},
			{Name: "monitor", Hidden: true, ArgsUsage: "NAME", Action: func(c *cli.Context) error {
				p, err := name(c, 1)
				if err != nil {
					return err
				}
				return pkgMonitor(c, p)
			}},
		},
	}
}

// pkgStore opens the store: over ssh when conf/remote_hosts names the cluster (a package
// host outside it), else through this host's agent.
func pkgStore(c *cli.Context) (*failover.Store, func(), error) {
	dir, err := liteRaftDir(c)
	if err != nil {
		return nil, nil, err
	}
	var caller client.Caller
	closeFn := func() {}
	if _, err := os.Stat(conf.Path(dir, "remote_hosts")); err == nil {
		rc, err := conf.LoadRemote(dir)
		if err != nil {
			return nil, nil, err
		}
		d, err := sshrpc.NewDialer(sshrpc.DialerOptions{User: rc.User})
		if err != nil {
			return nil, nil, err
		}
		rm := newRemoteCaller(dir, rc, d)
		caller, closeFn = rm, func() { rm.Close() }
	} else {
		conn, err := dialAgent(dir, sshrpc.ConnOptions{})
		if err != nil {
			return nil, nil, &client.Error{Outcome: client.NotSent, Failure: client.FailNoServer, Host: thisHost(),
				Err: fmt.Errorf("no conf/remote_hosts, and the local agent: %w", err)}
		}
		caller, closeFn = conn, func() { conn.Close() }
	}
	return failover.NewStore(client.New(caller), 10*time.Second), closeFn, nil
}

// withStore runs f on the store. A request of f that got no answer exits with the code of
// the table (client.ExitCodeOf: 2, 11, 12, or 1 for a read), any other failure 1.
func withStore(c *cli.Context, f func(context.Context, *failover.Store) error) error {
	return withStoreWithin(c, 30*time.Second, f)
}

// withStoreWithin is withStore with f bounded by limit.
func withStoreWithin(c *cli.Context, limit time.Duration, f func(context.Context, *failover.Store) error) error {
	s, closeFn, err := pkgStore(c)
	if err != nil {
		return cli.Exit(err, storeExitCode(err, api.CodeNoServer))
	}
	defer closeFn()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if err := f(ctx, s); err != nil {
		return cli.Exit(err, storeExitCode(err, 1))
	}
	return nil
}

// storeExitCode is the table's code for an error carrying a request without an answer,
// otherwise code.
func storeExitCode(err error, code int) int {
	var ce *client.Error
	if errors.As(err, &ce) {
		return client.ExitCodeOf(err)
	}
	return code
}

func scriptPath(c *cli.Context, p string) (string, error) {
	dir, err := liteRaftDir(c)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "control-scripts", p)
	if fi, err := os.Stat(path); err != nil || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("no executable control script %s (copy control-scripts/template and edit it)", path)
	}
	return path, nil
}

func pkgInit(c *cli.Context, p string) error {
	path, err := scriptPath(c, p)
	if err != nil {
		return cli.Exit(err, 1)
	}
	cfg, err := (&failover.Script{Path: path}).ReadConfig()
	if err != nil {
		return cli.Exit(fmt.Sprintf("pkg init %s: %v", p, err), 1)
	}
	return withStore(c, func(ctx context.Context, s *failover.Store) error {
		old, err := s.Get(ctx, failover.Key(p, "config"))
		if err != nil {
			return err
		}
		w := c.App.Writer
		if old != "" && !c.Bool("update") {
			owner, _ := s.Get(ctx, failover.Key(p, "owner"))
			state, _ := s.Get(ctx, failover.Key(p, "state"))
			return fmt.Errorf("package %s is already in the cluster (owner %s, state %s): `pkg init --update %s` changes its settings and nothing else",
				p, orDash(owner), orDash(state), p)
		}
		if c.Bool("update") {
			if old == "" {
				return fmt.Errorf("package %s is not in the cluster: run `pkg init %s` first", p, p)
			}
			// one conditional set: a concurrent update makes this one fail, not mix
			won, err := s.Swap(ctx, failover.Key(p, "config"), old, cfg.Encode())
			if err != nil {
				return err
			}
			if !won && old != cfg.Encode() {
				return fmt.Errorf("package %s: its settings changed meanwhile; run it again", p)
			}
			if err := s.Set(ctx, failover.Key(p, "timeout"), strconv.Itoa(int(cfg.Timeout.Seconds()))); err != nil {
				return err
			}
			fmt.Fprintf(w, "package %s updated: pace %v, timeout %v, preferred owner %s (monitors read settings when they start: restart them with pkg stop and pkg run)\n",
				p, cfg.Pace, cfg.Timeout, orDash(cfg.PreferredOwner))
			return nil
		}
		// the settings go last: a monitor never sees settings without the rest
		for _, kv := range [][2]string{{"timeout", strconv.Itoa(int(cfg.Timeout.Seconds()))},
			{"owner", cfg.PreferredOwner}, {"state", "unknown"}, {"tick", "0"}, {"generation", "0"},
			{"enabled", "yes"}, {"halt", "no"}, {"move", ""}, {"history", ""}, {"notified", ""}, {"notifier", ""}, {"config", cfg.Encode()}} {
			if err := s.Set(ctx, failover.Key(p, kv[0]), kv[1]); err != nil {
				return err
			}
		}
		fmt.Fprintf(w, "package %s stored: pace %v, timeout %v, preferred owner %s\n", p, cfg.Pace, cfg.Timeout, orDash(cfg.PreferredOwner))
		return nil
	})
}

// pkgFiles names a package's monitor lock and log on this host.
func pkgFiles(c *cli.Context, p string) (dir, lockPath, logFile string, err error) {
	dir, err = liteRaftDir(c)
	if err != nil {
		return
	}
	return dir, filepath.Join(dir, "temp", "pkg-"+p+".lock"), filepath.Join(dir, "message-log", "pkg-"+p+".log"), nil
}

func pkgRun(c *cli.Context, p string) error {
	if _, err := scriptPath(c, p); err != nil {
		return cli.Exit(err, 1)
	}
	dir, lockPath, logFile, err := pkgFiles(c, p)
	if err != nil {
		return cli.Exit(err, 1)
	}
	// the safety rule is checked against what the cluster holds, and a halt is lifted,
	// whether this host's monitor runs or not (the halted monitors run on: they only
	// wait for the halt to go)
	lifted, err := liftHalt(c, p, "pkg run")
	if err != nil {
		return err
	}
	if pid, held := lockfile.Holder(lockPath); held {
		if lifted {
			fmt.Fprintf(c.App.Writer, "halt of %s lifted; its monitor already runs on %s (pid %d)\n", p, thisHost(), pid)
			return nil
		}
		return cli.Exit(fmt.Sprintf("the monitor of %s already runs on %s (pid %d)", p, thisHost(), pid), 1)
	}
	if lifted {
		fmt.Fprintf(c.App.Writer, "halt of %s lifted\n", p)
	}
	os.MkdirAll(filepath.Join(dir, "temp"), 0o700)
	os.MkdirAll(filepath.Join(dir, "message-log"), 0o700)
	lf, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return cli.Exit(err, 1)
	}
	defer lf.Close()
	self, _ := os.Executable()
	// the supervisor runs the monitor and restarts it if it dies
	cmd := exec.Command(self, "--dir", dir, "pkg", "supervise", p)
	cmd.Stdout, cmd.Stderr, cmd.Dir = lf, lf, dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return cli.Exit(err, 1)
	}
	// return once the monitor holds its lock (so a pkg stop right after finds it), or say
	// why it ended
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, held := lockfile.Holder(lockPath); held {
			break // the supervisor's monitor (none ran when we started)
		}
		select {
		case err := <-exited:
			return cli.Exit(fmt.Sprintf("the monitor of %s ended at once (%v); the end of %s says:\n%s", p, err, logFile, tail(logFile, 10)), 1)
		default:
		}
		if time.Now().After(deadline) {
			return cli.Exit(fmt.Sprintf("the monitor of %s (pid %d) did not start within 30 s; see %s", p, cmd.Process.Pid, logFile), 1)
		}
		time.Sleep(10 * time.Millisecond) // polling the lock with a deadline
	}
	fmt.Fprintf(c.App.Writer, "monitor of %s started on %s (pid %d), log in %s\n", p, thisHost(), cmd.Process.Pid, logFile)
	return nil
}

// liftHalt checks that p is in the store with settings this build reads, and lifts its
// halt if it has one, recording that in its history as done by verb on this host. It
// reports whether there was a halt to lift.
func liftHalt(c *cli.Context, p, verb string) (lifted bool, err error) {
	err = withStore(c, func(ctx context.Context, s *failover.Store) error {
		raw, err := s.Get(ctx, failover.Key(p, "config"))
		if err != nil {
			return err
		}
		if raw == "" {
			return fmt.Errorf("package %s is not in the store: run `pkg init %s` first", p, p)
		}
		if _, err := failover.DecodeConfig(raw); err != nil {
			return err
		}
		if lifted, err = s.Swap(ctx, failover.Key(p, "halt"), "yes", "no"); err != nil || !lifted {
			return err
		}
		failover.Record(ctx, s, p, thisHost(), time.Now(), "halt lifted ("+verb+")")
		return nil
	})
	return lifted, err
}

// pkgResume lifts p's halt, wherever its monitors run, and starts none.
func pkgResume(c *cli.Context, p string) error {
	lifted, err := liftHalt(c, p, "pkg resume")
	if err != nil {
		return err
	}
	if lifted {
		fmt.Fprintf(c.App.Writer, "halt of %s lifted: its monitors take it up again\n", p)
	} else {
		fmt.Fprintf(c.App.Writer, "%s is not halted: nothing to lift\n", p)
	}
	return nil
}

func pkgStop(c *cli.Context, p string) error {
	_, lockPath, _, err := pkgFiles(c, p)
	if err != nil {
		return cli.Exit(err, 1)
	}
	pid, held := lockfile.Holder(lockPath)
	if !held {
		fmt.Fprintf(c.App.Writer, "no monitor of %s runs on %s\n", p, thisHost())
		return nil
	}
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Minute)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			return cli.Exit(fmt.Sprintf("the monitor of %s (pid %d) did not exit", p, pid), 1)
		}
		time.Sleep(20 * time.Millisecond) // polling for the exit with a deadline
	}
	// a stop that failed leaves the package here: say so, with an exit code a script sees
	var owner, state string
	withStoreWithin(c, 10*time.Second, func(ctx context.Context, s *failover.Store) error {
		owner, _ = s.Get(ctx, failover.Key(p, "owner"))
		state, _ = s.Get(ctx, failover.Key(p, "state"))
		return nil
	})
	if owner == thisHost() && decide.State(state) == decide.StopFailed {
		return cli.Exit(fmt.Sprintf("monitor of %s stopped on %s, but the package's stop FAILED: it may still run here, "+
			"and no other host starts it until this one is fenced or `pkg confirm-stopped %s %s`", p, thisHost(), p, thisHost()), 1)
	}
	fmt.Fprintf(c.App.Writer, "monitor of %s stopped on %s\n", p, thisHost())
	return nil
}

func pkgMonitor(c *cli.Context, p string) error {
	path, err := scriptPath(c, p)
	if err != nil {
		return cli.Exit(err, 1)
	}
	s, closeFn, err := pkgStore(c)
	if err != nil {
		return cli.Exit(err, storeExitCode(err, api.CodeNoServer))
	}
	defer closeFn()
	// one monitor per package per host, whatever raced to start it
	_, lockPath, _, err := pkgFiles(c, p)
	if err != nil {
		return cli.Exit(err, 1)
	}
	lock, err := lockfile.TryLock(lockPath)
	if err != nil {
		return cli.Exit(fmt.Sprintf("another monitor of %s runs on %s (%v)", p, thisHost(), err), 1)
	}
	defer lock.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	dir, _ := liteRaftDir(c)
	lg, closeLog, err := monitorLog(dir, p)
	if err != nil {
		return cli.Exit(err, 1)
	}
	defer closeLog()
	m := &failover.Monitor{Name: p, Host: thisHost(), Store: s, Script: &failover.Script{Path: path}, Log: lg}
	// the watchdog, if any, through the host's keeper: packages on one host share it
	failover.UseKeeperProcess(filepath.Join(dir, "temp"), keeperSpawner(dir))
	if d, err := sshrpc.NewDialer(sshrpc.DialerOptions{}); err == nil {
		m.Fence = &sshFencer{dialer: d, dir: dir, name: p, timeout: 2 * time.Minute}
	} else {
		m.Log.Printf("%s: no ssh to fence other hosts with (%v): only the control script's fence runs", p, err)
	}
	if err := m.Run(ctx); err != nil {
		m.Log.Printf("%s: monitor ends: %v", p, err)
		if errors.Is(err, failover.ErrUnknown) {
			return cli.Exit(err, api.CodeNoLeader)
		}
		return cli.Exit(err, 1)
	}
	return nil
}

// pkgInfo is one package as `pkg status` shows it (text or --json) and `pkg move` checks
// it: gathered once by collectPkg.
type pkgInfo struct {
	Name  string `json:"name"`
	Owner string `json:"owner"` // "" when nobody runs it
	State string `json:"state"`
	// null when the key is missing (a package never initialised)
	Tick       *int64 `json:"tick"`
	Generation *int64 `json:"generation"`
	// the youngest tick age a fresh stand-by can vouch for; null without one
	TickAge      *float64 `json:"tick_age_seconds"`
	TickAgeExact bool     `json:"tick_age_exact"`
	Enabled      bool     `json:"enabled"`   // false in maintenance (pkg disable)
	Halted       bool     `json:"halted"`    // pkg halt
	Move         string   `json:"move"`      // the host of a pending pkg move, ""
	Evacuated    []string `json:"evacuated"` // hosts that take it no more (pkg evacuate)
	// who held it before the owner and how that ended ("HOST stopped", "HOST taken-over",
	// "HOST stop-failed", "HOST fenced", "HOST confirmed"), "" if nobody did
	Previous string       `json:"previous"`
	Standbys []pkgStandby `json:"standbys"`
	// only for one package, as in the text
	History *[]pkgEvent `json:"history,omitempty"`
}

// pkgStandby is one stand-by's report (packages/NAME/standby/HOST); the owner's own, left
// from before it took over, is not one.
type pkgStandby struct {
	Host  string `json:"host"`
	Fresh bool   `json:"fresh"` // it reported within three of its intervals: its monitor runs
	// how old the tick is as this stand-by saw it: exact if the tick has not moved since
	// its report, else an upper bound (the report's age); null when the report is stale
	TickAge      *float64 `json:"tick_age_seconds"`
	TickAgeExact bool     `json:"tick_age_exact"`

	reportAge time.Duration
}

// pkgEvent is one line of packages/NAME/history: "2006-01-02T15:04:05.000Z host what".
// A line in another form is all in Event.
type pkgEvent struct {
	Time  string `json:"time"`
	Host  string `json:"host"`
	Event string `json:"event"`
}

func (e pkgEvent) String() string {
	if e.Time == "" {
		return e.Event
	}
	return e.Time + " " + e.Host + " " + e.Event
}

func parseHistory(h string) []pkgEvent {
	events := []pkgEvent{}
	for _, line := range strings.Split(h, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) == 3 && f[1] != "" {
			if _, err := time.Parse("2006-01-02T15:04:05.000Z", f[0]); err == nil {
				events = append(events, pkgEvent{Time: f[0], Host: f[1], Event: f[2]})
				continue
			}
		}
		events = append(events, pkgEvent{Event: line})
	}
	return events
}

// standingBy names the hosts whose monitor stands by, ready to take the package over.
func (p pkgInfo) standingBy() []string {
	var hosts []string
	for _, sb := range p.Standbys {
		if sb.Fresh {
			hosts = append(hosts, sb.Host)
		}
	}
	return hosts
}

func seconds(d time.Duration) *float64 {
	s := d.Round(100 * time.Millisecond).Seconds()
	return &s
}

func formatAge(age *float64, exact bool) string {
	if age == nil {
		return "-"
	}
	s := time.Duration(*age * float64(time.Second)).Round(100 * time.Millisecond).String()
	if !exact {
		s = "<" + s
	}
	return s
}

// collectPkg reads package p from the store.
func collectPkg(ctx context.Context, s *failover.Store, p string, withHistory bool) (pkgInfo, error) {
	f := map[string]string{}
	for _, k := range []string{"owner", "state", "tick", "generation", "enabled", "halt", "move", "previous", "evacuated"} {
		get := func() (string, error) { return s.Get(ctx, failover.Key(p, k)) }
		if k == "generation" {
			get = func() (string, error) { return failover.Generation(ctx, s, p) }
		}
		v, err := get()
		if err != nil {
			return pkgInfo{}, err
		}
		f[k] = v
	}
	number := func(v string) *int64 {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil
		}
		return &n
	}
	info := pkgInfo{Name: p, Owner: f["owner"], State: f["state"], Tick: number(f["tick"]),
		Generation: number(f["generation"]), Enabled: f["enabled"] != "no", Halted: f["halt"] == "yes",
		Move: f["move"], Previous: f["previous"], Evacuated: strings.Fields(f["evacuated"]), Standbys: []pkgStandby{}}
	// the stand-bys say when they last saw the tick move: that is its age
	hosts, err := s.List(ctx, failover.Key(p, "standby"))
	if err != nil {
		return pkgInfo{}, err
	}
	var best time.Duration
	for _, h := range hosts {
		if h == info.Owner {
			continue
		}
		v, err := s.Get(ctx, failover.Key(p, "standby/"+h))
		if err != nil {
			return pkgInfo{}, err
		}
		now := time.Now()
		sb, ok := failover.ParseStandby(h, v, now)
		if !ok {
			continue
		}
		e := pkgStandby{Host: h, Fresh: sb.Fresh, reportAge: now.Sub(sb.ReportedAt)}
		if sb.Fresh {
			age := now.Sub(sb.TickSeen)
			if e.TickAgeExact = f["tick"] == sb.Tick; !e.TickAgeExact {
				age = now.Sub(sb.ReportedAt)
			}
			e.TickAge = seconds(age)
			if info.TickAge == nil || age < best || (age == best && e.TickAgeExact) {
				best, info.TickAge, info.TickAgeExact = age, e.TickAge, e.TickAgeExact
			}
		}
		info.Standbys = append(info.Standbys, e)
	}
	if withHistory {
		h, err := s.Get(ctx, failover.Key(p, "history"))
		if err != nil {
			return pkgInfo{}, err
		}
		events := parseHistory(h)
		info.History = &events
	}
	return info, nil
}

func pkgStatus(c *cli.Context, p string, asJSON bool) error {
	return withStore(c, func(ctx context.Context, s *failover.Store) error {
		names := []string{p}
		if p == "" {
			l, err := s.List(ctx, "packages")
			if err != nil {
				return err
			}
			names = l
		}
		infos := []pkgInfo{}
		for _, n := range names {
			info, err := collectPkg(ctx, s, n, p != "")
			if err != nil {
				return err
			}
			infos = append(infos, info)
		}
		if asJSON {
			return printPkgJSON(c.App.Writer, infos, p != "")
		}
		printPkgText(c.App.Writer, infos)
		return nil
	})
}

// printPkgJSON writes one package as an object, all of them as an array.
func printPkgJSON(w io.Writer, infos []pkgInfo, one bool) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if one {
		return enc.Encode(infos[0])
	}
	return enc.Encode(infos)
}

// printPkgText writes the table, and the history of a package that has it.
func printPkgText(out io.Writer, infos []pkgInfo) {
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	num := func(n *int64) string {
		if n == nil {
			return "-"
		}
		return strconv.FormatInt(*n, 10)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PACKAGE\tOWNER\tSTATE\tTICK\tTICK AGE\tGENERATION\tSTANDING BY\tENABLED\tHALT\tMOVE")
	for _, p := range infos {
		standing := strings.Join(p.standingBy(), ",")
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, orDash(p.Owner), orDash(p.State), num(p.Tick),
			formatAge(p.TickAge, p.TickAgeExact), num(p.Generation), orDash(standing), yesNo(p.Enabled), yesNo(p.Halted), orDash(p.Move))
	}
	w.Flush()
	for _, p := range infos {
		if decide.State(p.State) == decide.StopFailed && p.Owner != "" {
			fmt.Fprintf(out, "\n%s: its stop FAILED on %s, where it may still run. No other host starts it until %s is\n"+
				"fenced (fence-stop there finds it stopped, or fence_command succeeds), or, after checking by hand,\n"+
				"`pkg confirm-stopped %s %s`.\n", p.Name, p.Owner, p.Owner, p.Name, p.Owner)
		}
		if len(p.Evacuated) > 0 {
			fmt.Fprintf(out, "\n%s: evacuated (pkg evacuate; it runs on none of them until pkg unevacuate): %s\n", p.Name, strings.Join(p.Evacuated, " "))
		}
		if p.Previous != "" && p.History != nil {
			fmt.Fprintf(out, "\nprevious owner: %s\n", p.Previous)
		}
		if p.History != nil && len(*p.History) > 0 {
			fmt.Fprintf(out, "\nrecent history:\n")
			for _, e := range *p.History {
				fmt.Fprintln(out, e)
			}
		}
	}
}

// pkgMove asks the owner of p to hand it over to host (it stops the package, host starts
// it), once host's monitor stands by: waiting up to wait for it. Refused (exit 1) for a
// halted package, one in maintenance, a host the settings do not allow, or one where no
// monitor stands by, since the owner would stop the package and nobody would start it.
// A host that already runs it: nothing to do, exit 0.
func pkgMove(c *cli.Context, p, host string, wait time.Duration) error {
	return withStoreWithin(c, wait+30*time.Second, func(ctx context.Context, s *failover.Store) error {
		raw, err := s.Get(ctx, failover.Key(p, "config"))
		if err != nil {
			return err
		}
		if raw == "" {
			return fmt.Errorf("package %s is not in the store: run `pkg init %s` first", p, p)
		}
		cfg, err := failover.DecodeConfig(raw)
		if err != nil {
			return fmt.Errorf("package %s: %w", p, err)
		}
		if ok, _ := cfg.Allowed(host); !ok {
			return fmt.Errorf("package %s may not run on %s: allowed_hosts is %s", p, host, strings.Join(cfg.AllowedHosts, ","))
		}
		deadline := time.Now().Add(wait)
		for {
			info, err := collectPkg(ctx, s, p, false)
			if err != nil {
				return err
			}
			switch {
			case info.Halted:
				return fmt.Errorf("package %s is halted (pkg halt): `pkg resume %s` lifts the halt; move it after", p, p)
			case !info.Enabled:
				return fmt.Errorf("package %s is in maintenance (pkg disable): `pkg enable %s` first", p, p)
			case info.Owner == host && (info.Move == "" || info.Move == host):
				fmt.Fprintf(c.App.Writer, "package %s already runs on %s: nothing to move\n", p, host)
				return nil
			case info.Owner == host:
				return fmt.Errorf("package %s runs on %s but is being moved to %s: run pkg move again once that is done", p, host, info.Move)
			}
			if slices.Contains(info.Evacuated, host) {
				return fmt.Errorf("%s is evacuated (pkg evacuate): `pkg unevacuate %s` first", host, host)
			}
			standing := info.standingBy()
			if slices.Contains(standing, host) {
				if err := s.Set(ctx, failover.Key(p, "move"), host); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "package %s moves from %s to %s: `pkg status %s` shows when it runs there\n", p, orNobody(info.Owner), host, p)
				return nil
			}
			if time.Now().After(deadline) {
				why := "has no report in packages/" + p + "/standby"
				for _, sb := range info.Standbys {
					if sb.Host == host {
						why = fmt.Sprintf("last reported %v ago", sb.reportAge.Round(100*time.Millisecond))
					}
				}
				if wait > 0 {
					why = fmt.Sprintf("%s (waited %v)", why, wait)
				}
				return fmt.Errorf("no monitor of %s stands by on %s (it %s): start one there with `pkg run %s`, or give --wait; standing by: %s",
					p, host, why, p, orNobody(strings.Join(standing, ",")))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(min(250*time.Millisecond, time.Until(deadline)+time.Millisecond)): // polling with a deadline
			}
		}
	})
}

// pkgUntilRunning waits, after a move to host was asked, until p runs there (exit 0),
// failed there or ended up elsewhere (exit 1: its start failed, the move lapsed, another
// host took it), or d passed (exit 2, as a write whose outcome is not known yet).
func pkgUntilRunning(c *cli.Context, p, host string, d time.Duration) error {
	start := time.Now()
	var last pkgInfo
	var failed string
	err := withStoreWithin(c, d+10*time.Second, func(ctx context.Context, s *failover.Store) error {
		for deadline := start.Add(d); time.Now().Before(deadline); {
			info, err := collectPkg(ctx, s, p, false)
			if err == nil {
				last = info
				switch {
				case info.Owner == host && info.State == string(decide.Running):
					return nil
				case info.Owner == host && (info.State == string(decide.Failed) || info.State == string(decide.StopFailed)):
					failed = fmt.Sprintf("package %s is %s on %s", p, info.State, host)
					return nil
				case info.Owner != host && info.Move != host:
					failed = fmt.Sprintf("the move of %s to %s is over, and %s owns it (state %s)", p, host, orNobody(info.Owner), info.State)
					return nil
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(min(250*time.Millisecond, time.Until(deadline)+time.Millisecond)): // polling with a deadline
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case failed != "":
		return cli.Exit(failed+": see `pkg status "+p+"`", api.CodeFailed)
	case last.Owner == host && last.State == string(decide.Running):
		fmt.Fprintf(c.App.Writer, "package %s runs on %s (%.1f s)\n", p, host, time.Since(start).Seconds())
		return nil
	}
	return cli.Exit(fmt.Sprintf("package %s not running on %s after %v (owner %s, state %s, moving to %s): it may still get there; see `pkg status %s`",
		p, host, d, orNobody(last.Owner), orDash(last.State), orNobody(last.Move), p), api.CodeTimeout)
}

// pkgConfirmStopped releases a package left stop-failed on host, on an operator's word
// that it no longer runs there: host is recorded as the previous owner, confirmed
// stopped, so the next owner does not fence it.
func pkgConfirmStopped(c *cli.Context, p, host string) error {
	return withStore(c, func(ctx context.Context, s *failover.Store) error {
		owner, err := s.Get(ctx, failover.Key(p, "owner"))
		if err != nil {
			return err
		}
		state, err := s.Get(ctx, failover.Key(p, "state"))
		if err != nil {
			return err
		}
		if owner != host || decide.State(state) != decide.StopFailed {
			return fmt.Errorf("package %s is not stop-failed on %s (owner %s, state %s): nothing to confirm", p, host, orNobody(owner), state)
		}
		if err := s.Set(ctx, failover.Key(p, "previous"), decide.Previous{Host: host, Ending: decide.Confirmed}.String()); err != nil {
			return err
		}
		if err := s.Set(ctx, failover.Key(p, "state"), string(decide.Halted)); err != nil {
			return err
		}
		won, err := s.Swap(ctx, failover.Key(p, "owner"), host, "")
		if err != nil {
			return err
		}
		if !won {
			return fmt.Errorf("package %s changed hands meanwhile: see pkg status %s", p, p)
		}
		who := "unknown"
		if u, err := user.Current(); err == nil {
			who = u.Username
		}
		failover.Record(ctx, s, p, thisHost(), time.Now(), fmt.Sprintf("%s confirmed that %s no longer runs it (pkg confirm-stopped): released", who, host))
		fmt.Fprintf(c.App.Writer, "package %s released from %s: a stand-by starts it (pkg status %s)\n", p, host, p)
		return nil
	})
}

func orNobody(s string) string {
	if s == "" {
		return "nobody"
	}
	return s
}
