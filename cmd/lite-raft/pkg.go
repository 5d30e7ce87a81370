package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/client"
	"lite-raft/conf"
	"lite-raft/failover"
	"lite-raft/internal/lockfile"
	"lite-raft/kvstore"
	"lite-raft/sshrpc"
)

func pkgCommand() *cli.Command {
	name := func(c *cli.Context, n int) (string, error) {
		if c.NArg() != n {
			return "", usageError(c, fmt.Sprintf("want %d argument(s)", n))
		}
		p := c.Args().First()
		if err := kvstore.ValidateKey(failover.Key(p, "x")); err != nil || strings.Contains(p, "/") {
			return "", usageError(c, fmt.Sprintf("package name %q: letters, digits, dots, dashes", p))
		}
		return p, nil
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
		Usage: "failover packages: init, run, stop, status, halt, move, enable, disable (./pkg)",
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
			{Name: "run", Aliases: []string{"start"}, Usage: "start this host's monitor for the package, in the background", ArgsUsage: "NAME",
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
				Action: func(c *cli.Context) error {
					if c.NArg() > 1 {
						return usageError(c, "status takes at most one NAME")
					}
					return pkgStatus(c, c.Args().First())
				}},
			setter("halt", "halt", "yes", "stop the package cluster-wide, with no failover (pkg run clears it)"),
			setter("enable", "enabled", "yes", "end maintenance"),
			setter("disable", "enabled", "no", "maintenance: monitors keep running, nothing is started or failed over"),
			{Name: "move", Usage: "planned switch-over: the owner stops the package, HOST starts it", ArgsUsage: "NAME HOST",
				Action: func(c *cli.Context) error {
					if c.NArg() != 2 {
						return usageError(c, "move wants NAME HOST")
					}
					p, host := c.Args().Get(0), c.Args().Get(1)
					return withStore(c, func(ctx context.Context, s *failover.Store) error {
						return s.Set(ctx, failover.Key(p, "move"), host)
					})
				}},
			{Name: "fence-stop", Usage: "stop the package on this host, whatever its monitor does (run by a new owner over ssh)", ArgsUsage: "NAME",
				Description: "Kills this host's monitor of NAME (dead, frozen or cut off: a new owner is taking over), runs the\n" +
					"control script's stop, then its status. Exit 0: NAME is down here; 1: it still runs.",
				Action: func(c *cli.Context) error {
					p, err := name(c, 1)
					if err != nil {
						return err
					}
					return pkgFenceStop(c, p)
				}},
			{Name: "supervise", Hidden: true, ArgsUsage: "NAME", Action: func(c *cli.Context) error {
				p, err := name(c, 1)
				if err != nil {
					return err
				}
				return pkgSupervise(c, p)
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
		caller, closeFn = rm, rm.close
	} else {
		conn, err := sshrpc.DialUnix(filepath.Join(dir, "temp", "agent.sock"), sshrpc.ConnOptions{})
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
	s, closeFn, err := pkgStore(c)
	if err != nil {
		return cli.Exit(err, storeExitCode(err, client.CodeNoServer))
	}
	defer closeFn()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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
			{"enabled", "yes"}, {"halt", "no"}, {"move", ""}, {"history", ""}, {"config", cfg.Encode()}} {
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
	if pid, held := lockfile.Holder(lockPath); held {
		return cli.Exit(fmt.Sprintf("the monitor of %s already runs on %s (pid %d)", p, thisHost(), pid), 1)
	}
	// the safety rule is checked against what the cluster holds, and a halt is lifted
	if err := withStore(c, func(ctx context.Context, s *failover.Store) error {
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
		_, err = s.Swap(ctx, failover.Key(p, "halt"), "yes", "no")
		return err
	}); err != nil {
		return err
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
		return cli.Exit(err, storeExitCode(err, client.CodeNoServer))
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
	m := &failover.Monitor{Name: p, Host: thisHost(), Store: s, Script: &failover.Script{Path: path},
		Log: log.New(os.Stdout, "", log.LstdFlags|log.Lmicroseconds)}
	dir, _ := liteRaftDir(c)
	if d, err := sshrpc.NewDialer(sshrpc.DialerOptions{}); err == nil {
		m.Fence = &sshFencer{dialer: d, dir: dir, name: p, timeout: 2 * time.Minute}
	} else {
		m.Log.Printf("%s: no ssh to fence other hosts with (%v): only the control script's fence runs", p, err)
	}
	if err := m.Run(ctx); err != nil {
		m.Log.Printf("%s: monitor ends: %v", p, err)
		if errors.Is(err, failover.ErrUnknown) {
			return cli.Exit(err, client.CodeNoLeader)
		}
		return cli.Exit(err, 1)
	}
	return nil
}

func pkgStatus(c *cli.Context, p string) error {
	return withStore(c, func(ctx context.Context, s *failover.Store) error {
		var names []string
		if p != "" {
			names = []string{p}
		} else {
			l, err := s.List(ctx, "packages")
			if err != nil {
				return err
			}
			names = l
		}
		w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "PACKAGE\tOWNER\tSTATE\tTICK\tTICK AGE\tGENERATION\tSTANDING BY\tENABLED\tHALT\tMOVE")
		for _, n := range names {
			f := map[string]string{}
			for _, k := range []string{"owner", "state", "tick", "generation", "enabled", "halt", "move"} {
				v, err := s.Get(ctx, failover.Key(n, k))
				if err != nil {
					return err
				}
				f[k] = v
			}
			// the stand-bys say when they last saw the tick move: that is its age
			age, standing := "-", []string{}
			hosts, _ := s.List(ctx, failover.Key(n, "standby"))
			for _, h := range hosts {
				v, err := s.Get(ctx, failover.Key(n, "standby/"+h))
				sb, ok := failover.ParseStandby(h, v, time.Now())
				if err != nil || !ok || !sb.Fresh || h == f["owner"] {
					continue
				}
				standing = append(standing, h)
				if a := sb.TickAge(f["tick"], time.Now()); age == "-" || len(a) < len(age) {
					age = a
				}
			}
			if len(standing) == 0 {
				standing = []string{"-"}
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n, orDash(f["owner"]), orDash(f["state"]), f["tick"], age,
				orDash(f["generation"]), strings.Join(standing, ","), orDash(f["enabled"]), orDash(f["halt"]), orDash(f["move"]))
		}
		w.Flush()
		if p != "" {
			h, err := s.Get(ctx, failover.Key(p, "history"))
			if err == nil && h != "" {
				fmt.Fprintf(c.App.Writer, "\nrecent history:\n%s\n", h)
			}
		}
		return nil
	})
}
