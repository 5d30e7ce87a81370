package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/agent"
	"lite-raft/conf"
	"lite-raft/internal/gcpace"
	"lite-raft/internal/lockfile"
	"lite-raft/raftcore"
	"lite-raft/sshrpc"
	"lite-raft/statefile"
)

// agentGCPercent is the agent's GOGC unless the environment sets one, and agentGCFloor
// the headroom a small heap gets at least between collections (gcpace).
const (
	agentGCPercent = 25
	agentGCFloor   = 64 << 20
)

func serverCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:  "first-boot",
			Usage: "wipe this host's state and start a new member (or, with --join, one that waits to be added)",
			Description: "Refuses if the server already runs here. Otherwise deletes the term, vote, log and\n" +
				"snapshots, starts from term 0 with the members of conf/cluster_nodes (this host alone\n" +
				"if the file is missing) and starts the server in the background; its log goes to\n" +
				"message-log/lite-raft-server.log. With --join the host starts without members and waits\n" +
				"for a leader to add it (what add-member runs on the new host).",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "join", Usage: "wait to be added by add-member instead of forming a cluster"}},
			Action: func(c *cli.Context) error {
				if c.NArg() > 1 || (c.NArg() == 1 && c.Args().First() != "shell") {
					return usageError(c, "first-boot takes no arguments")
				}
				return firstBoot(c, c.Bool("join"))
			},
		},
		{
			Name:  "start",
			Usage: "start the server in the background, keeping all data",
			Action: func(c *cli.Context) error {
				if c.NArg() > 0 {
					return usageError(c, "start takes no arguments")
				}
				dir, err := liteRaftDir(c)
				if err != nil {
					return cli.Exit(err, 1)
				}
				if _, err := os.Stat(filepath.Join(dir, statefile.StateDir)); err != nil {
					return cli.Exit(fmt.Sprintf("no state in %s: run `./lite-raft first-boot` once first", dir), 1)
				}
				return startDetached(c, dir)
			},
		},
		{
			Name:  "stop",
			Usage: "stop the server and wait until it has exited",
			Flags: []cli.Flag{&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "kill -9 after this long"}},
			Action: func(c *cli.Context) error {
				if c.NArg() > 0 {
					return usageError(c, "stop takes no arguments")
				}
				dir, err := liteRaftDir(c)
				if err != nil {
					return cli.Exit(err, 1)
				}
				return stopAgent(c, dir, c.Duration("timeout"))
			},
		},
		{
			Name:  "agent",
			Usage: "run the server in the foreground (for systemd; see scripts/lite-raft@.service)",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "foreground", Usage: "required: this command does not detach"},
				&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile to `FILE` until the agent stops"},
				&cli.StringFlag{Name: "memprofile", Usage: "write a profile of what was allocated (go tool pprof -sample_index=alloc_space) to `FILE` when the agent stops"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() > 0 || !c.Bool("foreground") {
					return usageError(c, "use `lite-raft agent --foreground` (or `lite-raft start` to detach)")
				}
				dir, err := liteRaftDir(c)
				if err != nil {
					return cli.Exit(err, 1)
				}
				if p := c.String("cpuprofile"); p != "" {
					f, err := os.Create(p)
					if err != nil {
						return cli.Exit(err, 1)
					}
					pprof.StartCPUProfile(f)
					defer func() { pprof.StopCPUProfile(); f.Close() }()
				}
				if p := c.String("memprofile"); p != "" {
					f, err := os.Create(p)
					if err != nil {
						return cli.Exit(err, 1)
					}
					defer func() { pprof.Lookup("allocs").WriteTo(f, 0); f.Close() }()
				}
				ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
				defer stop()
				if os.Getenv("GOGC") == "" {
					// The agent's heap is mostly the state machine, which lives as long as
					// the agent: Go's default lets the heap grow to twice the live data
					// before collecting. A quarter of it, with a memory limit at that goal
					// once the heap stops growing, so that freed memory goes back to the
					// system soon (gcpace), keeps the RSS near 1.45x the data at 519 MB on
					// one host (1.65x with no limit, for 2-3% more writes; 1.40x with GOGC
					// 20, for 12% fewer). The state is mostly values without pointers, so
					// marking stays cheap. A small heap gets a floor of headroom instead;
					// GOMEMLIMIT, when set, replaces the limit.
					go gcpace.Run(ctx, agentGCPercent, agentGCFloor, 100*time.Millisecond, os.Getenv("GOMEMLIMIT") == "")
				}
				lg, closeLog, err := openLog(dir, "lite-raft-server.log", "lite-raft")
				if err != nil {
					return cli.Exit(fmt.Sprintf("agent: %v", err), 1)
				}
				defer closeLog()
				if err := agent.Run(ctx, agent.Options{Dir: dir, Build: Version, Log: lg}); err != nil {
					if errors.Is(err, agent.ErrRunning) {
						return cli.Exit(err, 1)
					}
					return cli.Exit(fmt.Sprintf("agent: %v", err), 1)
				}
				return nil
			},
		},
	}
}

func thisHost() string {
	h, err := conf.ShortHostname()
	if err != nil {
		return "this host"
	}
	return h
}

// running reports whether an agent holds dir's lock, with its pid: the kernel's word,
// valid from the moment an agent starts until it has exited.
func running(dir string) (bool, int) {
	pid, held := lockfile.Holder(agent.LockPath(dir))
	return held, pid
}

func firstBoot(c *cli.Context, join bool) error {
	dir, err := liteRaftDir(c)
	if err != nil {
		return cli.Exit(err, 1)
	}
	if ok, pid := running(dir); ok {
		return cli.Exit(fmt.Sprintf("lite-raft is already running on %s (pid %d): stop it first", thisHost(), pid), 1)
	}
	cfg, err := conf.Load(dir)
	if err != nil {
		return cli.Exit(err, 1)
	}
	var members raftcore.Membership
	if !join {
		me := thisHost()
		nodes := cfg.ClusterNodes
		if len(nodes) == 0 {
			nodes = []string{me}
		}
		found := false
		for _, n := range nodes {
			members.Voters = append(members.Voters, raftcore.NodeID(n))
			found = found || n == me
		}
		if !found {
			return cli.Exit(fmt.Sprintf("this host (%s) is not in conf/cluster_nodes (%s): "+
				"add it there, or use `first-boot --join` on a host that add-member will add", me, strings.Join(nodes, " ")), 1)
		}
	}
	if err := statefile.Bootstrap(dir, members); err != nil {
		return cli.Exit(fmt.Sprintf("first-boot: %v", err), 1)
	}
	return startDetached(c, dir)
}

// startDetached starts `lite-raft agent --foreground` in a new session with its output in
// the log, and returns once it answers on its socket (or says why it could not start).
func startDetached(c *cli.Context, dir string) error {
	if ok, pid := running(dir); ok {
		return cli.Exit(fmt.Sprintf("lite-raft is already running on %s (pid %d)", thisHost(), pid), 1)
	}
	if err := os.MkdirAll(filepath.Join(dir, "message-log"), 0o700); err != nil {
		return cli.Exit(err, 1)
	}
	logPath := filepath.Join(dir, "message-log", "lite-raft-server.log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return cli.Exit(err, 1)
	}
	defer logf.Close()
	self, err := os.Executable()
	if err != nil {
		return cli.Exit(err, 1)
	}
	cmd := exec.Command(self, "--dir", dir, "agent", "--foreground")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return cli.Exit(fmt.Sprintf("start the agent: %v", err), 1)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return cli.Exit(fmt.Sprintf("the agent exited at once (%v); the end of %s says:\n%s", err, logPath, tail(logPath, 10)), 1)
		default:
		}
		if conn, err := sshrpc.DialUnix(filepath.Join(dir, "temp", "agent.sock"), sshrpc.ConnOptions{}); err == nil {
			conn.Close()
			fmt.Fprintf(c.App.Writer, "lite-raft started on %s (pid %d), log in %s\n", thisHost(), cmd.Process.Pid, logPath)
			return nil
		}
		time.Sleep(20 * time.Millisecond) // polling the socket with a deadline
	}
	return cli.Exit(fmt.Sprintf("the agent (pid %d) did not answer within 15 s; see %s", cmd.Process.Pid, logPath), 1)
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func stopAgent(c *cli.Context, dir string, timeout time.Duration) error {
	ok, pid := running(dir)
	if !ok || pid <= 0 {
		fmt.Fprintf(c.App.Writer, "lite-raft is not running on %s\n", thisHost())
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return cli.Exit(fmt.Sprintf("stop pid %d: %v", pid, err), 1)
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			fmt.Fprintf(c.App.Writer, "lite-raft stopped on %s\n", thisHost())
			return nil
		}
		time.Sleep(20 * time.Millisecond) // polling for the exit with a deadline
	}
	syscall.Kill(pid, syscall.SIGKILL)
	fmt.Fprintf(c.App.Writer, "lite-raft did not stop within %v on %s: killed (pid %d)\n", timeout, thisHost(), pid)
	return nil
}
