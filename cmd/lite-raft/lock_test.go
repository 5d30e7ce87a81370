package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"lite-raft/api"
)

// set --ttl through a real agent: get --json shows the lease and the time left, the key
// goes when it runs out, lease keep of a missing key exits 9.
func TestSetTTL(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	if out, code := runApp(t, "--dir", dir, "client", "set", "--ttl", "1s", "t", "v"); code != 0 {
		t.Fatalf("set --ttl 1s: exit %d %s", code, out)
	}
	out, code := runApp(t, "--dir", dir, "client", "--json", "get", "t")
	var g struct {
		Value string `json:"value"`
		Lease uint64 `json:"lease"`
		TTLMs *int64 `json:"ttl_ms"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &g) != nil || g.Value != "v" || g.Lease == 0 || g.TTLMs == nil || *g.TTLMs > 1000 {
		t.Fatalf("get --json of a key with a ttl: exit %d %q", code, out)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, code := runApp(t, "--dir", dir, "client", "get", "t"); code == 9 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("key with a 1 s ttl still there after 5 s")
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	if out, code := runApp(t, "--dir", dir, "client", "lease", "keep", "t"); code != 9 {
		t.Fatalf("lease keep of a gone key: exit %d %s, want 9", code, out)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"set", "--ttl", "10ms", "t", "v"}, "want 1s to 24h"},
		{[]string{"set", "--ttl", "x", "t", "v"}, "want a duration"},
		{[]string{"set", "--keep-alive", "t", "v"}, "needs --ttl"},
		{[]string{"lock", "job"}, "want -- COMMAND"},
		{[]string{"lock", "job", "--wait", "-1s", "--", "true"}, "positive"},
		{[]string{"lease", "renew", "t"}, "want keep KEY"},
	} {
		if out, code := runApp(t, append([]string{"--dir", dir, "client"}, tc.args...)...); code != 10 || !strings.Contains(out, tc.msg) {
			t.Errorf("client %q: exit %d %q, want 10 and %q", tc.args, code, out, tc.msg)
		}
	}
}

// lock runs COMMAND with the fencing number and exits with its code; a second lock on
// the same name waits for the first (never both at once), and --wait gives up with 15.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	log := filepath.Join(dir, "events")
	script := `echo "start $LITE_RAFT_LOCK_GENERATION" >>` + log + `; sleep 1; echo end >>` + log + `; exit 3`
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, codes[i] = runApp(t, "--dir", dir, "client", "lock", "job", "--ttl", "3s", "--", "sh", "-c", script)
		}()
		// the second asks once the first holds it, and the third once the second waits
		waitLocks(t, dir, i)
	}
	// one lock for a script: the holder's generation and lease; a lock nobody holds is 9
	var one api.LockStatus
	if out, code := runApp(t, "--dir", dir, "client", "--json", "locks", "job"); code != 0 || json.Unmarshal([]byte(out), &one) != nil ||
		one.Name != "job" || one.Generation == 0 || one.Lease == 0 || len(one.Waiting) != 1 {
		t.Fatalf("locks --json job while the first holds it: exit %d %q, want a generation, a lease and one waiting", code, out)
	}
	if out, code := runApp(t, "--dir", dir, "client", "locks", "other"); code != 9 || !strings.Contains(out, "lock other is not held") {
		t.Fatalf("locks other: exit %d %q, want 9", code, out)
	}
	// a third gives up waiting
	start := time.Now()
	if out, code := runApp(t, "--dir", dir, "client", "lock", "job", "--wait", "300ms", "--", "true"); code != 15 {
		t.Fatalf("lock --wait 300ms while held: exit %d %s, want 15", code, out)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("lock --wait 300ms took %v", d)
	}
	wg.Wait()
	for i, c := range codes {
		if c != 3 {
			t.Errorf("lock %d: exit %d, want the command's 3", i, c)
		}
	}
	b, _ := os.ReadFile(log)
	// generations come from the log's index (issue 24): the first's as locks showed it,
	// the second's above it
	got := strings.Fields(string(b))
	g1 := strconv.FormatUint(one.Generation, 10)
	if len(got) != 6 || strings.Join(got[:3], " ") != "start "+g1+" end" || got[3] != "start" || got[5] != "end" {
		t.Fatalf("events: %q, want two runs one after the other, the first at generation %s", b, g1)
	}
	if g2, err := strconv.ParseUint(got[4], 10, 64); err != nil || g2 <= one.Generation {
		t.Fatalf("events: %q, want the second run at a generation above %s", b, g1)
	}
	if out, code := runApp(t, "--dir", dir, "client", "--json", "locks"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("locks after every holder ended: exit %d %q, want []", code, out)
	}
}

// waitLocks polls `locks` until lock job is held with n waiting.
func waitLocks(t *testing.T, dir string, n int) {
	t.Helper()
	var out string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var locks []struct {
			Name    string   `json:"name"`
			Waiting []string `json:"waiting"`
		}
		var code int
		out, code = runApp(t, "--dir", dir, "client", "--json", "locks")
		if code == 0 && json.Unmarshal([]byte(out), &locks) == nil && len(locks) == 1 && len(locks[0].Waiting) == n {
			return
		}
	}
	t.Fatalf("lock job not held with %d waiting within 5 s: locks says %q", n, out)
}

// TestFencedWrites: COMMAND writes with --fence NAME=$LITE_RAFT_LOCK_GENERATION while it
// holds the lock; the same generation's writes are refused with 18 once the lock passed
// on, and a later holder's go through.
func TestFencedWrites(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	client := func(args ...string) (string, int) {
		return runApp(t, append([]string{"--dir", dir, "client"}, args...)...)
	}
	bin := asMain(t)
	script := bin + ` --dir ` + dir + ` client set --fence job=$LITE_RAFT_LOCK_GENERATION n $LITE_RAFT_LOCK_GENERATION && ` +
		bin + ` --dir ` + dir + ` client if --fence job=$LITE_RAFT_LOCK_GENERATION n = $LITE_RAFT_LOCK_GENERATION set done$LITE_RAFT_LOCK_GENERATION`
	var gens []string // as each holder wrote it: generations come from the log's index
	var last uint64
	for i := 1; i <= 2; i++ {
		if out, code := client("lock", "job", "--ttl", "3s", "--", "sh", "-c", script); code != 0 {
			t.Fatalf("lock %d: exit %d %s", i, code, out)
		}
		out, code := client("get", "n")
		g, done := strings.CutPrefix(strings.TrimSpace(out), "done")
		n, err := strconv.ParseUint(g, 10, 64)
		if code != 0 || !done || err != nil || (i == 2 && n <= last) {
			t.Fatalf("n after holder %d: exit %d %q (the first's generation %d)", i, code, out, last)
		}
		gens, last = append(gens, g), n
	}
	for _, args := range [][]string{{"set", "--fence", "job=" + gens[0], "n", "stale"}, {"unset", "--fence=job=" + gens[1], "n"},
		{"create", "--fence", "other=1", "m", "v"}, {"if", "--fence", "job=" + gens[1], "n", "=", "done" + gens[1], "unset"}} {
		if out, code := client(args...); code != api.CodeFenced || !strings.Contains(out, "fenced") {
			t.Errorf("client %q after every holder ended: exit %d %q, want 18", args, code, out)
		}
	}
	if out, code := client("get", "n"); code != 0 || strings.TrimSpace(out) != "done"+gens[1] {
		t.Fatalf("n after the refused writes: exit %d %q, want done%s", code, out, gens[1])
	}
	if out, code := client("get", "--fence", "job=1", "n"); code != api.CodeUsage {
		t.Fatalf("get --fence: exit %d %q, want 10", code, out)
	}
}

// TestLockCommandNeverOutlivesLock: COMMAND (a pipeline: its work in grandchildren) dies
// with the lock process, whether that is killed (kill -9: at once, within the grace)
// or frozen (SIGSTOP: by the end of the lease, before the waiter can be let in); a
// SIGTERM to the lock process goes to COMMAND's whole group, and lock exits with
// COMMAND's 143. Each is done once the lock renewed its lease, so that the deadlines its
// renewals moved are what is tested.
func TestLockCommandNeverOutlivesLock(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"killed", "frozen", "terminated"} {
		pidFile := filepath.Join(dir, how+".pid")
		lock := exec.Command(exe, "--dir", dir, "client", "lock", how, "--ttl", "3s", "--",
			"sh", "-c", "echo $$ >"+pidFile+"; sleep 600 | cat")
		lock.Env = append(os.Environ(), "LITE_RAFT_TEST_AS_MAIN=1")
		if err := lock.Start(); err != nil {
			t.Fatal(err)
		}
		var group int
		t.Cleanup(func() {
			// a failed test leaves nothing running
			lock.Process.Kill()
			if group > 0 {
				syscall.Kill(-group, syscall.SIGKILL)
			}
		})
		deadline := time.Now().Add(10 * time.Second)
		for group == 0 {
			b, _ := os.ReadFile(pidFile)
			group, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			if time.Now().After(deadline) {
				t.Fatalf("%s: COMMAND did not start", how)
			}
			time.Sleep(10 * time.Millisecond) // polling with a deadline
		}
		// renewed: the leader's time left for the lease went up
		prev := int64(1 << 62)
		for renewed := false; !renewed; {
			var l api.LockStatus
			out, code := runApp(t, "--dir", dir, "client", "--json", "locks", how)
			if code != 0 || json.Unmarshal([]byte(out), &l) != nil {
				t.Fatalf("%s: locks: exit %d %q", how, code, out)
			}
			renewed, prev = l.TTLMs > prev+100, l.TTLMs
			if time.Now().After(deadline) {
				t.Fatalf("%s: the lease was not renewed", how)
			}
			time.Sleep(20 * time.Millisecond) // polling with a deadline
		}
		start := time.Now()
		sig := map[string]syscall.Signal{"killed": syscall.SIGKILL, "frozen": syscall.SIGSTOP, "terminated": syscall.SIGTERM}[how]
		if err := lock.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		// every process of COMMAND's group gone: kill(-group, 0) fails with ESRCH
		for syscall.Kill(-group, 0) == nil {
			if time.Since(start) > 4*time.Second {
				t.Fatalf("%s lock: COMMAND's group %d still runs %v later", how, group, time.Since(start))
			}
			time.Sleep(10 * time.Millisecond) // polling with a deadline
		}
		took := time.Since(start)
		switch {
		case how == "killed" && took > 1500*time.Millisecond:
			t.Errorf("killed lock: COMMAND's group lived on %v (grace 300 ms)", took)
		case how == "frozen" && took > 3*time.Second:
			t.Errorf("frozen lock: COMMAND's group lived on %v, past the 3 s ttl", took)
		case how == "terminated" && took > time.Second:
			t.Errorf("lock sent SIGTERM: COMMAND's group lived on %v", took)
		}
		if how == "terminated" {
			lock.Wait()
			if code := lock.ProcessState.ExitCode(); code != 143 {
				t.Errorf("lock sent SIGTERM: exit %d, want COMMAND's 143", code)
			}
		}
		t.Logf("%s lock: COMMAND's group gone %v later", how, took.Round(time.Millisecond))
		lock.Process.Kill()
		lock.Wait()
		group = 0
	}
}
