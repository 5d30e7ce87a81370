package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"lite-raft/failover"
)

// TestPkgWatchdogKeeper: the keeper verb serves its socket under temp/, refuses to arm a
// path that is no watchdog device (as the monitors are told), and ends on SIGTERM while
// nothing is armed. (One keeper per device is its lock file's, an fcntl lock, which does
// not exclude a second holder in the same process: not tested here.)
func TestPkgWatchdogKeeper(t *testing.T) {
	dir := t.TempDir()
	device := filepath.Join(dir, "not-a-watchdog")
	os.WriteFile(device, nil, 0o600)
	type result struct {
		out  string
		code int
	}
	ended := make(chan result, 1)
	go func() {
		out, code := runApp(t, "--dir", dir, "pkg", "watchdog-keeper", device)
		ended <- result{out, code}
	}()
	sock := failover.KeeperSocket(filepath.Join(dir, "temp"), device)
	var conn net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; {
		var err error
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no keeper at %s: %v", sock, err)
		}
		time.Sleep(10 * time.Millisecond) // polling for the keeper to listen, with a deadline
	}
	defer conn.Close()
	fmt.Fprintf(conn, "arm web 9000 1000\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	ans, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(ans, "err ") || !strings.Contains(ans, "not a watchdog device") {
		t.Fatalf("arming a plain file: %q, %v", ans, err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM) // caught by the keeper's handler: nothing armed, it ends
	select {
	case r := <-ended:
		if r.code != 0 {
			t.Fatalf("keeper ended with exit %d: %s", r.code, r.out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the keeper did not end on SIGTERM")
	}
}
