package failover

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// UseKeeperProcess makes this process's monitors arm their watchdogs with the host's
// keeper process of each device, at KeeperSocket(dir, device), started by spawn (`pkg
// watchdog-keeper DEVICE`, detached) when none answers: monitors are separate processes,
// one per package, and a watchdog device can be open in one process only.
func UseKeeperProcess(dir string, spawn func(device string) error) {
	keepers = &keeperClient{dir: dir, spawn: spawn}
}

// keeperWait bounds how long a monitor waits for a keeper to answer, one it started
// included.
const keeperWait = 10 * time.Second

type keeperClient struct {
	dir   string
	spawn func(device string) error
}

func (c *keeperClient) Arm(path, name string, budget, pace time.Duration) (watchdogLink, int, error) {
	sock := KeeperSocket(c.dir, path)
	deadline := time.Now().Add(keeperWait)
	var spawned time.Time
	for {
		conn, err := net.DialTimeout("unix", sock, time.Second)
		if err == nil {
			l := &keeperConn{conn: conn, r: bufio.NewReader(conn)}
			var got int
			var ans string
			if ans, err = l.ask(fmt.Sprintf("arm %s %d %d", name, budget.Milliseconds(), pace.Milliseconds())); err == nil {
				if why, refused := strings.CutPrefix(ans, "err "); refused {
					conn.Close()
					return nil, 0, errors.New(why)
				}
				if got, err = strconv.Atoi(strings.TrimPrefix(ans, "ok ")); err == nil {
					return l, got, nil
				}
			}
			conn.Close() // a keeper that was ending, or garbled: try again
		}
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("watchdog %s: no keeper answered at %s within %v: %w", path, sock, keeperWait, err)
		}
		if time.Since(spawned) > 2*time.Second {
			if serr := c.spawn(path); serr != nil {
				return nil, 0, fmt.Errorf("watchdog %s: start its keeper: %w", path, serr)
			}
			spawned = time.Now()
		}
		time.Sleep(50 * time.Millisecond) // polling for the keeper to listen, within keeperWait
	}
}

// keeperConn is a monitor's hold on its package's arm with the keeper process.
type keeperConn struct {
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
}

// ask sends one request and reads its answer, bounded: a keeper that does not answer
// is a feed that did not happen.
func (l *keeperConn) ask(req string) (string, error) {
	l.conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(l.conn, "%s\n", req); err != nil {
		return "", err
	}
	line, err := l.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func (l *keeperConn) Feed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ans, err := l.ask("feed")
	if err != nil {
		return fmt.Errorf("watchdog keeper: %w", err)
	}
	if why, refused := strings.CutPrefix(ans, "err "); refused {
		return errors.New(why)
	}
	return nil
}

// Close gives the arm up: disarm, or leave it armed (abandon). A keeper that cannot be
// told sees the connection end, which abandons: the safe side.
func (l *keeperConn) Close(disarm bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	req := "abandon"
	if disarm {
		req = "disarm"
	}
	_, err := l.ask(req)
	l.conn.Close()
	return err
}
