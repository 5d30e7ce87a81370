package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"lite-raft/failover"
)

// TestPkgHaltOwnerAbsent: pkg halt records the halt (exit 0) and warns when the owner's
// monitor does not seem to run: its tick still for three paces (watched, or told by a
// stand-by's report); not when the tick moves, nor when nobody owns the package.
func TestPkgHaltOwnerAbsent(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	set := func(k, v string) {
		t.Helper()
		if out, code := runApp(t, "--dir", dir, "client", "set", "packages/web/"+k, v); code != 0 {
			t.Fatalf("set %s: exit %d %s", k, code, out)
		}
	}
	cfg := failover.DefaultConfig()
	// a pace of 0.5 s: three paces leave room for the live ticker below on a loaded machine
	cfg.Pace, cfg.Timeout, cfg.StopTimeout = 500*time.Millisecond, 3*time.Second, time.Second
	set("config", cfg.Encode())
	set("owner", "host4")
	set("state", "running")
	set("tick", "5")
	halt := func() (string, time.Duration) {
		t.Helper()
		set("halt", "no")
		start := time.Now()
		out, code := runApp(t, "--dir", dir, "pkg", "halt", "web")
		if code != 0 {
			t.Fatalf("pkg halt: exit %d %s", code, out)
		}
		if got, _ := runApp(t, "--dir", dir, "client", "get", "packages/web/halt"); strings.TrimSpace(got) != "yes" {
			t.Fatalf("halt not recorded: %q", got)
		}
		return out, time.Since(start)
	}
	const warning = "the owner host4's monitor does not seem to run (tick unchanged for"

	// a dead monitor, no stand-by: the tick is watched for three paces
	if out, took := halt(); !strings.Contains(out, warning) || !strings.Contains(out, "until it is fenced or its monitor returns") {
		t.Fatalf("no warning with the tick still (took %v):\n%s", took, out)
	} else if took < 3*cfg.Pace {
		t.Fatalf("warned after %v, before three paces", took)
	}

	// a stand-by reports the tick has not moved for a minute: warned at once
	now := time.Now().UnixMilli()
	set("standby/host5", fmt.Sprintf("%d 5 %d 500", now, now-60_000))
	if out, _ := halt(); !strings.Contains(out, warning+" 60") {
		t.Fatalf("a stand-by's report of a minute-old tick gave no warning:\n%s", out)
	}
	set("standby/host5", "")

	// a live monitor: the tick moves
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 6; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(cfg.Pace / 5):
			}
			runApp(t, "--dir", dir, "client", "set", "packages/web/tick", strconv.Itoa(n))
		}
	}()
	out, _ := halt()
	close(stop)
	<-done
	if strings.Contains(out, "warning") {
		t.Fatalf("warned with the tick moving:\n%s", out)
	}

	// nobody owns it: nothing to obey
	set("owner", "")
	if out, took := halt(); strings.Contains(out, "warning") || took > 2*time.Second {
		t.Fatalf("no owner: %v\n%s", took, out)
	}
}
