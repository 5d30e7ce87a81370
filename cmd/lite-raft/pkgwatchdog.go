package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/failover"
	"lite-raft/internal/lockfile"
)

// The watchdog keeper: a device such as /dev/watchdog can be open in one process only,
// and each package has a monitor process of its own, so one process per device per host
// holds it for all of them (failover.Keeper): `pkg watchdog-keeper DEVICE`, started by the
// first monitor that arms a package on DEVICE, detached from it, reached at
// temp/watchdog_dev_watchdog.sock and logging to message-log/watchdog-keeper.log. It stays
// while the host runs (idle, the device closed, when nothing is armed), so that arming
// never races with a keeper on its way out. SIGTERM or SIGINT end it once no package is
// armed; while one is, it waits for them to be given up: ending would leave the device
// armed and unfed, and the host would reset. A keeper that dies (SIGKILL, a crash) closes
// the device without the magic character: the host resets, as it would with a monitor
// holding its own device; its monitors' feeds fail (logged) until then.

// keeperSpawner starts the keeper of a device for the monitors of dir.
func keeperSpawner(dir string) func(device string) error {
	return func(device string) error {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this binary: %w", err)
		}
		logDir := filepath.Join(dir, "message-log")
		os.MkdirAll(logDir, 0o755)
		lf, err := os.OpenFile(filepath.Join(logDir, "watchdog-keeper.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("its log: %w", err)
		}
		defer lf.Close()
		cmd := exec.Command(self, "--dir", dir, "pkg", "watchdog-keeper", device)
		cmd.Stdout, cmd.Stderr, cmd.Dir = lf, lf, dir
		// a session of its own: a signal to the monitor's group (a terminal's ^C) does not reach it
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("%s pkg watchdog-keeper %s: %w", self, device, err)
		}
		go cmd.Wait() // reaped if it ends while this monitor runs (a second keeper finding the first)
		return nil
	}
}

func pkgWatchdogKeeper(c *cli.Context, device string) error {
	// first, so that a signal from here on ends it in order
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	dir, err := liteRaftDir(c)
	if err != nil {
		return cli.Exit(err, 1)
	}
	temp := filepath.Join(dir, "temp")
	if err := os.MkdirAll(temp, 0o700); err != nil {
		return cli.Exit(fmt.Errorf("watchdog keeper: %w", err), 1)
	}
	sock := failover.KeeperSocket(temp, device)
	lock, err := lockfile.TryLock(sock + ".lock")
	if err != nil {
		return cli.Exit(fmt.Sprintf("another watchdog keeper of %s runs on %s (%v)", device, thisHost(), err), 1)
	}
	defer lock.Close()
	os.Remove(sock) // left by a keeper that died: we hold the lock, it is not in use
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return cli.Exit(fmt.Errorf("watchdog keeper of %s: %w", device, err), 1)
	}
	os.Chmod(sock, 0o600)
	k := &failover.Keeper{Path: device, Log: log.New(c.App.Writer, "watchdog-keeper ", log.LstdFlags|log.Lmicroseconds)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
			return
		}
		for k.Armed() {
			k.Log.Printf("asked to end: waiting for the packages armed on %s to be given up", device)
			select {
			case <-time.After(5 * time.Second): // polling the keeper until nothing is armed
			case <-ctx.Done():
				return
			}
		}
		cancel()
	}()
	k.Log.Printf("keeping %s for the packages of %s (socket %s)", device, thisHost(), sock)
	if err := failover.ServeKeeper(ctx, ln, k); err != nil {
		return cli.Exit(err, 1)
	}
	return nil
}
