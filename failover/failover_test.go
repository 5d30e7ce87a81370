package failover

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lite-raft/client"
	"lite-raft/kvstore"
	"lite-raft/sshrpc"
)

func TestConfigRules(t *testing.T) {
	c := DefaultConfig()
	if err := c.Check(); err != nil {
		t.Fatalf("defaults break the safety rule: %v", err)
	}
	for _, bad := range []string{"stop_timeout=60", "pace=0.01", "timeout=abc", "restarts=-1", "failback=sometimes", "nonsense=1"} {
		if _, err := DecodeConfig(c.Encode() + bad + "\n"); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	if _, err := DecodeConfig(c.Encode() + "stop_timeout=57\n"); err == nil || !strings.Contains(err.Error(), "must be below timeout") {
		t.Fatalf("stop_timeout + pace = timeout accepted: %v", err)
	}
	c.Set("allowed_hosts", "b, a c")
	c.Set("pace", "0.25")
	c.Failback = true
	d, err := DecodeConfig(c.Encode())
	if err != nil || d.Encode() != c.Encode() {
		t.Fatalf("round trip: %v\n%s\n%s", err, c.Encode(), d.Encode())
	}
	if ok, rank := d.Allowed("a"); !ok || rank != 1 {
		t.Fatalf("a: %v %d", ok, rank)
	}
	if ok, _ := d.Allowed("z"); ok {
		t.Fatal("a host outside allowed_hosts is allowed")
	}
}

// memStore is the key-value state machine behind a Caller, in process: what the agent
// would answer, without Raft.
type memStore struct {
	mu    sync.Mutex
	kv    *kvstore.Store
	index uint64
}

func (m *memStore) Call(ctx context.Context, typ uint8, payload []byte) (sshrpc.Frame, error) {
	req, err := client.DecodeRequest(payload)
	if err != nil {
		return sshrpc.Frame{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var resp client.Response
	switch req.Op {
	case client.OpGet:
		v, ok := m.kv.Get(req.Key)
		if !ok {
			resp.Code = client.CodeNotFound
		}
		resp.Value = v
	case client.OpList:
		names, ok := m.kv.List(req.Key)
		if !ok {
			resp.Code = client.CodeNoDir
		}
		resp.Names = names
	default:
		op := map[client.Op]kvstore.Op{client.OpSet: kvstore.OpSet, client.OpIfSet: kvstore.OpIfSet, client.OpUnset: kvstore.OpUnset}[req.Op]
		m.index++
		r := m.kv.Apply(m.index, kvstore.Command{Op: op, ClientID: req.ClientID, Seq: req.Seq, Key: req.Key,
			Value: req.Value, Cond: req.Cond, CondValue: req.CondValue})
		resp.Code, resp.Msg = r.Code, r.Msg
	}
	return sshrpc.Frame{Payload: resp.Encode()}, nil
}

// TestTwoMonitors: the preferred host runs the package, a clean stop there hands it to
// the stand-by, and the event log never shows both running it.
func TestTwoMonitors(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	script := filepath.Join(dir, "pkg")
	os.WriteFile(script, []byte(fmt.Sprintf(`#!/bin/sh
run=%s/running.$LITE_RAFT_PKG_OWNER
case "$1" in
start) touch "$run"; echo "$1 $LITE_RAFT_PKG_OWNER $LITE_RAFT_PKG_GENERATION" >> %s ;;
stop) rm -f "$run"; echo "$1 $LITE_RAFT_PKG_OWNER $LITE_RAFT_PKG_GENERATION" >> %s ;;
status) [ -f "$run" ] || exit 1 ;;
esac
exit 0
`, dir, events, events)), 0o755)
	ms := &memStore{kv: kvstore.New()}
	store := NewStore(client.New(ms), time.Second)
	cfg := DefaultConfig()
	cfg.Pace, cfg.Timeout, cfg.StopTimeout, cfg.PreferredOwner = 50*time.Millisecond, time.Second, 200*time.Millisecond, "a"
	ctx := context.Background()
	for k, v := range map[string]string{"config": cfg.Encode(), "owner": "a", "tick": "0", "generation": "0",
		"enabled": "yes", "halt": "no", "move": "", "history": "", "state": "unknown"} {
		store.Set(ctx, Key("web", k), v)
	}
	run := func(host string) (context.CancelFunc, chan error) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		m := &Monitor{Name: "web", Host: host, Store: store, Script: &Script{Path: script}, Log: log.New(io.Discard, "", 0)}
		go func() { done <- m.Run(ctx) }()
		return cancel, done
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	is := func(field, want string) func() bool {
		return func() bool { v, _ := store.Get(ctx, Key("web", field)); return v == want }
	}
	stopA, doneA := run("a")
	stopB, doneB := run("b")
	waitFor("a running", func() bool { return is("owner", "a")() && is("state", "running")() })
	stopA()
	if err := <-doneA; err != nil {
		t.Fatalf("monitor a: %v", err)
	}
	waitFor("b running", func() bool { return is("owner", "b")() && is("state", "running")() })
	stopB()
	<-doneB
	b, _ := os.ReadFile(events)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	want := []string{"start a 1", "stop a 1", "start b 2", "stop b 2"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("events:\n%s\nwant %v", b, want)
	}
	if h, _ := store.Get(ctx, Key("web", "history")); !strings.Contains(h, "b takes over from nobody (generation 2)") {
		t.Fatalf("history:\n%s", h)
	}
}
