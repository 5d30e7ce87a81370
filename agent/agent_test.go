package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/conf"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
	"lite-raft/sshrpc"
	"lite-raft/statefile"
)

// startSolo runs a one-member agent in-process (no ssh needed) and returns a way to
// talk to it and to stop it.
func startSolo(t *testing.T, dir string) (func(api.Request) api.Response, func()) {
	t.Helper()
	return startSoloLogging(t, dir, io.Discard)
}

// startSoloLogging is startSolo with the agent's log written to logs.
func startSoloLogging(t *testing.T, dir string, logs io.Writer) (func(api.Request) api.Response, func()) {
	t.Helper()
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Dir: dir, ID: "solo", Log: log.New(logs, "", 0), Ready: ready})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not start within 10 s")
	}
	conn, err := sshrpc.DialUnix(filepath.Join(dir, "temp", "agent.sock"), sshrpc.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cl := client.New(conn)
	do := func(r api.Request) api.Response {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cl.Do(ctx, r)
		if err != nil {
			t.Errorf("%s %s: %v", r.Op, r.Key, err)
		}
		return resp
	}
	stop := func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent ended with %v", err)
		}
	}
	return do, stop
}

func soloDir(t *testing.T) string {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "conf"), 0o755)
	os.WriteFile(filepath.Join(dir, "conf", "election_timeout"), []byte("0.1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "conf", "snapshot_period"), []byte("50\n"), 0o644)
	if err := statefile.Bootstrap(dir, raftcore.Membership{Voters: []raftcore.NodeID{"solo"}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSoloAgentConcurrentClients runs many clients at once against one agent (run with
// -race: the loop, the socket handlers and the replies cross goroutines), then restarts
// the agent and reads everything back.
func TestSoloAgentConcurrentClients(t *testing.T) {
	dir := soloDir(t)
	do, stop := startSolo(t, dir)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				k := fmt.Sprintf("c%d/k%d", g, i)
				if r := do(api.Request{Op: api.OpSet, Key: k, Value: []byte(k)}); r.Code != 0 {
					t.Errorf("set %s: %d %s", k, r.Code, r.Msg)
				}
				if r := do(api.Request{Op: api.OpGet, Key: k}); r.Code != 0 || string(r.Value) != k {
					t.Errorf("get %s: %d %q", k, r.Code, r.Value)
				}
			}
		}()
	}
	// a counter raised by conditional sets from every client: each step applies once
	do(api.Request{Op: api.OpSet, Key: "counter", Value: []byte("0")})
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 200; n++ {
				cur := do(api.Request{Op: api.OpGet, Key: "counter"})
				var v int
				fmt.Sscan(string(cur.Value), &v)
				if v >= 40 {
					return
				}
				do(api.Request{Op: api.OpIfSet, Key: "counter", Cond: "=", CondValue: cur.Value, Value: []byte(fmt.Sprint(v + 1))})
			}
		}()
	}
	wg.Wait()
	if r := do(api.Request{Op: api.OpGet, Key: "counter"}); string(r.Value) != "40" {
		t.Fatalf("counter = %q, want 40", r.Value)
	}
	stop()

	do, stop = startSolo(t, dir)
	defer stop()
	for g := 0; g < 16; g++ {
		for i := 0; i < 20; i++ {
			k := fmt.Sprintf("c%d/k%d", g, i)
			if r := do(api.Request{Op: api.OpGet, Key: k}); r.Code != 0 || string(r.Value) != k {
				t.Fatalf("after restart, get %s: %d %q", k, r.Code, r.Value)
			}
		}
	}
	if r := do(api.Request{Op: api.OpList, Key: "c3"}); r.Code != 0 || len(r.Names) != 20 {
		t.Fatalf("list c3 after restart: %d %v", r.Code, r.Names)
	}
	if r := do(api.Request{Op: api.OpSet, Key: "../x", Value: []byte("v")}); r.Code != api.CodeUsage {
		t.Fatalf("bad key: code %d", r.Code)
	}
	// a second agent on the same directory is refused by the lock
	if err := Run(context.Background(), Options{Dir: dir, ID: "solo", Log: log.New(io.Discard, "", 0)}); err == nil {
		t.Fatal("a second agent started on the same directory")
	}
}

// TestWatchWakesOnChange: a watch answers as soon as the key changes, not at its deadline.
func TestWatchWakesOnChange(t *testing.T) {
	dir := soloDir(t)
	do, stop := startSolo(t, dir)
	defer stop()
	do(api.Request{Op: api.OpSet, Key: "w", Value: []byte("a")})
	if r := do(api.Request{Op: api.OpWatch, Key: "w", CondValue: []byte("old"), TimeoutMs: 30000}); string(r.Value) != "a" {
		t.Fatalf("watch of a value that already changed: %q", r.Value)
	}
	conn, err := sshrpc.DialUnix(filepath.Join(dir, "temp", "agent.sock"), sshrpc.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := make(chan api.Response, 1)
	go func() {
		// a 60 s watch: unless the set wakes it, it cannot answer within the 10 s below
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		r, _ := client.New(conn).Do(ctx, api.Request{Op: api.OpWatch, Key: "w", CondValue: []byte("a"), TimeoutMs: 60000})
		got <- r
	}()
	// the set may land before or after the watch registers; either way it must answer "b"
	do(api.Request{Op: api.OpSet, Key: "w", Value: []byte("b")})
	select {
	case r := <-got:
		if r.Code != 0 || string(r.Value) != "b" {
			t.Fatalf("watch answered %d %q, want b", r.Code, r.Value)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch was not woken by the change")
	}
}

// TestRefusesOpenStateFolders: state/ or temp/ that group or others may enter is refused
// at start, with the fix in the message.
func TestRefusesOpenStateFolders(t *testing.T) {
	for _, d := range []string{"state", "temp"} {
		dir := soloDir(t)
		os.MkdirAll(filepath.Join(dir, d), 0o700)
		os.Chmod(filepath.Join(dir, d), 0o755)
		err := Run(context.Background(), Options{Dir: dir, ID: "solo", Log: log.New(io.Discard, "", 0)})
		if err == nil || !strings.Contains(err.Error(), "chmod 700") {
			t.Fatalf("%s/ with mode 0755: %v", d, err)
		}
	}
}

// TestProgressHints: temp/commit_index follows the commit index while the agent runs
// (written away from the loop), and state/commit holds the last applied index once the
// agent stopped, so that a restart applies from there.
func TestProgressHints(t *testing.T) {
	dir := soloDir(t)
	do, stop := startSolo(t, dir)
	for i := 0; i < 30; i++ {
		if r := do(api.Request{Op: api.OpSet, Key: fmt.Sprintf("h/%d", i), Value: []byte("v")}); r.Code != 0 {
			t.Fatalf("set: %+v", r)
		}
	}
	var st api.Status
	if err := jsonStatus(do, &st); err != nil {
		t.Fatal(err)
	}
	read := func(p ...string) string {
		b, _ := os.ReadFile(filepath.Join(append([]string{dir}, p...)...))
		return strings.TrimSpace(string(b))
	}
	want := fmt.Sprint(st.Commit)
	deadline := time.Now().Add(5 * time.Second)
	for read("temp", "commit_index") != want {
		if time.Now().After(deadline) {
			t.Fatalf("temp/commit_index says %q, the commit index is %s", read("temp", "commit_index"), want)
		}
		time.Sleep(10 * time.Millisecond) // polling a file with a deadline
	}
	stop()
	if got := read(statefile.StateDir, "commit"); got != fmt.Sprint(st.Applied) {
		t.Fatalf("state/commit after stop: %q, want the applied index %d", got, st.Applied)
	}
}

func jsonStatus(do func(api.Request) api.Response, st *api.Status) error {
	r := do(api.Request{Op: api.OpStatus})
	if r.Code != 0 {
		return fmt.Errorf("status: exit %d %s", r.Code, r.Msg)
	}
	return json.Unmarshal(r.JSON, st)
}

// initTestAgent makes an agent on store as Run makes one (its folder with temp/ and
// conf/), on tr and clock, its loop not started.
func initTestAgent(t *testing.T, id raftcore.NodeID, cfg conf.Config, store *MemStorage, tr Transport, clock Clock, logs io.Writer) *Agent {
	t.Helper()
	a := newAgent(t.TempDir(), id, log.New(logs, "", log.Lmicroseconds))
	os.MkdirAll(filepath.Join(a.dir, "temp"), 0o700)
	os.MkdirAll(filepath.Join(a.dir, "conf"), 0o755)
	a.cfg = cfg
	if err := a.init(store, store.State(), tr, clock); err != nil {
		t.Fatal(err)
	}
	return a
}

// stepClock is a clock whose every reading is step later than the one before.
type stepClock struct {
	systemClock
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

// A restarted member applies the log after its snapshot in batches (16 MiB a Ready): with
// events waiting (the leader's messages), processReady stops after readyBudget instead of
// applying up to eight batches first, and leaves the rest for the next turn of the loop.
// Without waiting events it goes on. (In the scale workload the restarted member, with
// 400,000 entries to apply, heard its leader 2.3 s after it started.)
func TestApplyBacklogLetsEventsIn(t *testing.T) {
	const n = 40 // 1 MiB each: three batches
	start := func() *Agent {
		store := NewMemStorage("solo")
		var ents []raftcore.Entry
		for i := uint64(1); i <= n; i++ {
			cmd := kvstore.Command{Op: kvstore.OpSet, Key: fmt.Sprintf("big/%d", i), Value: bytes.Repeat([]byte{'v'}, api.MaxValueLen)}
			ents = append(ents, raftcore.Entry{Index: i, Term: 1, Data: cmd.Encode()})
		}
		hs := raftcore.HardState{Term: 1, Vote: "solo"}
		if err := store.Save(&hs, nil, nil, ents); err != nil {
			t.Fatal(err)
		}
		store.SaveCommit(n)
		clock := &stepClock{now: time.Unix(1e9, 0), step: readyBudget}
		a := initTestAgent(t, "solo", conf.Config{ElectionTimeout: time.Second, SnapshotPeriod: 1000}, store,
			NewMemNetwork().Transport("solo"), clock, io.Discard)
		a.start = clock.Now()
		a.hints = newHintWriter(func(c uint64) { a.store.SaveCommit(c) }, &a.status, time.Hour) // as run sets it
		return a
	}
	a := start()
	a.post(event{version: &api.Version{ID: "other"}}) // an event waiting, as a leader's append would
	if err := a.processReady(); err != nil {
		t.Fatal(err)
	}
	if got := a.core.Applied(); got == 0 || got >= n || !a.core.HasReady() {
		t.Fatalf("with an event waiting: applied %d of %d (more to do: %v), want one batch and the rest left", got, n, a.core.HasReady())
	}
	b := start()
	if err := b.processReady(); err != nil {
		t.Fatal(err)
	}
	if got := b.core.Applied(); got != n {
		t.Fatalf("with no event waiting: applied %d, want all %d", got, n)
	}
}
