package failover

import (
	"bufio"
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The host's keeper process serves a Keeper on a unix socket, one connection per armed
// package, in lines:
//
//	arm NAME BUDGET_MS PACE_MS   → ok DEVICE_TIMEOUT_S | err WHY (then closed)
//	feed                         → ok | err WHY
//	disarm                       → ok (then closed): given up cleanly
//	abandon                      → ok (then closed): left armed, fed no more
//
// A connection that ends without disarm (its monitor died) abandons its package: the
// host resets unless that package's monitor, restarted, arms it again in time.

// KeeperSocket is the socket of the keeper of device under dir (the lite-raft dir's
// temp/): watchdog_dev_watchdog.sock for /dev/watchdog; a long path is named by its hash,
// as a unix socket's path is limited to about a hundred bytes.
func KeeperSocket(dir, device string) string {
	name := strings.ReplaceAll(device, "/", "_")
	if len(name) > 32 {
		h := fnv.New64a()
		h.Write([]byte(device))
		name = fmt.Sprintf("-%016x", h.Sum64())
	}
	return filepath.Join(dir, "watchdog"+name+".sock")
}

// ServeKeeper serves k on ln until ctx ends.
func ServeKeeper(ctx context.Context, ln net.Listener, k *Keeper) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watchdog keeper: accept: %w", err)
		}
		go serveKeeperConn(conn, k)
	}
}

func serveKeeperConn(conn net.Conn, k *Keeper) {
	defer conn.Close()
	var name string
	var id uint64
	ended := false
	defer func() {
		if id != 0 && !ended {
			k.Abandon(name, id) // its monitor went away without giving the package up
		}
	}()
	reply := func(format string, args ...any) bool {
		_, err := fmt.Fprintf(conn, format+"\n", args...)
		return err == nil
	}
	oneLine := func(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }
	lines := bufio.NewScanner(conn)
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		switch {
		case len(f) == 4 && f[0] == "arm" && id == 0:
			budget, err1 := strconv.ParseInt(f[2], 10, 64)
			pace, err2 := strconv.ParseInt(f[3], 10, 64)
			if err1 != nil || err2 != nil || budget <= 0 || pace <= 0 {
				reply("err arm %s: want BUDGET_MS PACE_MS, positive", f[1])
				return
			}
			got, armID, err := k.Arm(f[1], time.Duration(budget)*time.Millisecond, time.Duration(pace)*time.Millisecond)
			if err != nil {
				reply("err %s", oneLine(err))
				return
			}
			name, id = f[1], armID
			if !reply("ok %d", got) {
				return // the deferred abandon: nobody feeds it
			}
		case len(f) == 1 && f[0] == "feed" && id != 0:
			if err := k.Feed(name, id); err != nil {
				reply("err %s", oneLine(err))
				continue
			}
			reply("ok")
		case len(f) == 1 && (f[0] == "disarm" || f[0] == "abandon") && id != 0:
			if f[0] == "disarm" {
				k.Disarm(name, id)
			} else {
				k.Abandon(name, id)
			}
			ended = true
			reply("ok")
			return
		default:
			reply("err unknown request %q", lines.Text())
			return
		}
	}
}
