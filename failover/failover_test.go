package failover

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/kvstore"
)

func TestConfigRules(t *testing.T) {
	c := DefaultConfig()
	if err := c.Check(); err != nil {
		t.Fatalf("defaults break the safety rule: %v", err)
	}
	for _, bad := range []string{"stop_timeout=60", "pace=0.01", "timeout=abc", "stop_timeout=nan", "pace=NaN", "timeout=inf", "restarts=-1", "failback=sometimes", "nonsense=1"} {
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
	// noCounters: a member from before counters refuses them (14)
	noCounters bool
}

// Do answers one request as the state machine would (no wire, no client, no Raft).
func (m *memStore) Do(_ context.Context, req api.Request) (api.Response, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var resp api.Response
	switch {
	case m.noCounters && (req.Op == api.OpCounter || req.Op == api.OpCounterRaise):
		resp = api.Response{Code: api.CodeUpgrade, Msg: "member h9 understands requests up to version 3"}
	case req.Op == api.OpGet:
		v, ok := m.kv.Get(req.Key)
		if !ok {
			resp.Code = api.CodeNotFound
		}
		resp.Value = v
	case req.Op == api.OpList:
		names, ok := m.kv.List(req.Key)
		if !ok {
			resp.Code = api.CodeNoDir
		}
		resp.Names = names
	case m.noCounters && (req.Op == api.OpListValues || req.Op == api.OpTxn):
		resp = api.Response{Code: api.CodeUpgrade, Msg: "member h9 understands requests up to version 3"}
	case req.Op == api.OpCounter:
		resp.Value = []byte(strconv.FormatUint(m.kv.Counter(req.Key), 10))
	case req.Op == api.OpListValues:
		d, ok, err := m.kv.ReadDir(req.Key, api.MaxDirAnswer)
		switch {
		case err != nil:
			resp.Code, resp.Msg = api.CodeFailed, err.Error()
		case !ok:
			resp.Code = api.CodeNoDir
		default:
			d.Index = m.index
			resp.JSON, _ = api.EncodeDirEntries(d)
		}
	default:
		op := map[api.Op]kvstore.Op{api.OpSet: kvstore.OpSet, api.OpIfSet: kvstore.OpIfSet, api.OpUnset: kvstore.OpUnset,
			api.OpCounterRaise: kvstore.OpCounterRaise, api.OpTxn: kvstore.OpTxn}[req.Op]
		m.index++
		r := m.kv.Apply(m.index, kvstore.Command{Op: op, ClientID: req.ClientID, Seq: req.Seq, Key: req.Key,
			Value: req.Value, Cond: req.Cond, CondValue: req.CondValue, Expect: req.Expect, Txn: req.Txn})
		resp.Code, resp.Msg, resp.Value = r.Code, r.Msg, r.Value
	}
	return resp, nil
}

// rig is an in-process store, a control script that logs its starts and stops, and
// monitors started on demand.
type rig struct {
	t      *testing.T
	dir    string
	events string
	store  *Store
	mem    *memStore
	runs   map[string]func() error // host → stop its monitor, returning Run's error
}

func newRig(t *testing.T, mutate func(*Config)) *rig {
	dir := t.TempDir()
	r := &rig{t: t, dir: dir, events: filepath.Join(dir, "events"), runs: map[string]func() error{}}
	r.mem = &memStore{kv: kvstore.New()}
	r.store = NewStoreWith(r.mem.Do, time.Second)
	cfg := DefaultConfig()
	cfg.Pace, cfg.Timeout, cfg.StopTimeout, cfg.PreferredOwner = 50*time.Millisecond, time.Second, 200*time.Millisecond, "a"
	if mutate != nil {
		mutate(&cfg)
	}
	for k, v := range map[string]string{"config": cfg.Encode(), "owner": cfg.PreferredOwner, "tick": "0", "generation": "0",
		"enabled": "yes", "halt": "no", "move": "", "history": "", "notified": "", "notifier": "", "state": "unknown"} {
		r.store.Set(context.Background(), Key("web", k), v)
	}
	return r
}

// script writes host's control script: the package runs on host while its marker file
// exists (one per host: a stand-by's status must not see the owner's copy), and each
// start and stop is logged with the owner and generation it was given.
func (r *rig) script(host string) string {
	path := filepath.Join(r.dir, "pkg-"+host)
	os.WriteFile(path, []byte(fmt.Sprintf(`#!/bin/sh
run=%s/running.%s
case "$1" in
start) touch "$run"; echo "$1 $LITE_RAFT_PKG_OWNER $LITE_RAFT_PKG_GENERATION" >> %s ;;
stop) rm -f "$run"; echo "$1 $LITE_RAFT_PKG_OWNER $LITE_RAFT_PKG_GENERATION" >> %s ;;
status) [ -f "$run" ] || exit 1 ;;
esac
exit 0
`, r.dir, host, r.events, r.events)), 0o755)
	return path
}

func (r *rig) run(host string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	m := &Monitor{Name: "web", Host: host, Store: r.store, Script: &Script{Path: r.script(host)}, Log: log.New(io.Discard, "", 0)}
	go func() { done <- m.Run(ctx) }()
	r.runs[host] = func() error { cancel(); return <-done }
}

func (r *rig) stop(host string) error { return r.runs[host]() }

func (r *rig) get(field string) string {
	v, _ := r.store.Get(context.Background(), Key("web", field))
	return v
}

func (r *rig) waitRunning(host string) {
	r.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); r.get("owner") != host || r.get("state") != "running"; {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s to run the package (owner %q, state %q)", host, r.get("owner"), r.get("state"))
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

func (r *rig) eventLines() []string {
	b, _ := os.ReadFile(r.events)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestTwoMonitors: the preferred host runs the package, a clean stop there hands it to
// the stand-by, and the event log never shows both running it.
func TestTwoMonitors(t *testing.T) {
	r := newRig(t, nil)
	r.run("a")
	r.run("b")
	r.waitRunning("a")
	if err := r.stop("a"); err != nil {
		t.Fatalf("monitor a: %v", err)
	}
	r.waitRunning("b")
	r.stop("b")
	// generations are the store counter's: above each other, from the log's index
	got := r.eventLines()
	var ga, gb int
	if len(got) != 4 || fmt.Sprint(got) != fmt.Sprintf("[start a %[1]d stop a %[1]d start b %[2]d stop b %[2]d]", atoiOf(got[0]), atoiOf(got[2])) {
		t.Fatalf("events %v, want start and stop on a, then on b", got)
	}
	ga, gb = atoiOf(got[0]), atoiOf(got[2])
	if ga < 1 || gb <= ga {
		t.Fatalf("events %v: generations %d then %d, want growing", got, ga, gb)
	}
	if h := r.get("history"); !strings.Contains(h, fmt.Sprintf("b takes over from nobody (generation %d)", gb)) {
		t.Fatalf("history:\n%s", h)
	}
}

// TestAllowedHostsAndFailback: a host outside allowed_hosts never runs the package; with
// failback the preferred owner takes it back when its monitor returns.
func TestAllowedHostsAndFailback(t *testing.T) {
	r := newRig(t, func(c *Config) { c.AllowedHosts = []string{"a", "b"}; c.Failback = true })
	r.run("c") // not allowed
	r.run("a")
	r.waitRunning("a")
	r.run("b")
	if err := r.stop("a"); err != nil {
		t.Fatal(err)
	}
	r.waitRunning("b")
	r.run("a") // back: failback asks for it, b hands it over
	r.waitRunning("a")
	r.stop("a")
	r.stop("b")
	r.stop("c")
	for _, e := range r.eventLines() {
		if strings.Contains(e, " c ") {
			t.Fatalf("host c, outside allowed_hosts, ran the package: %v", r.eventLines())
		}
	}
	if h := r.get("history"); !strings.Contains(h, "asks for the package back (failback)") || !strings.Contains(h, "handing over to a (pkg move)") {
		t.Fatalf("history:\n%s", h)
	}
}

// TestReadConfig: settings come from `SCRIPT echo VAR` (standard output only); a setting
// the script does not know keeps its default; unsafe timing is refused with the rule.
func TestReadConfig(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "pkg")
	write := func(body string) {
		os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = echo ] || exit 10\ncase \"$2\" in\n"+body+"\n*) echo unknown >&2; exit 1 ;;\nesac\n"), 0o755)
	}
	write("pace) echo 0.5 ;;\ntimeout) echo 40; echo noise >&2 ;;\npreferred_owner) echo host4 ;;\nallowed_hosts) echo 'host4 host5' ;;")
	c, err := (&Script{Path: script}).ReadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.Pace != 500*time.Millisecond || c.Timeout != 40*time.Second || c.PreferredOwner != "host4" ||
		strings.Join(c.AllowedHosts, ",") != "host4,host5" || c.StopTimeout != DefaultConfig().StopTimeout {
		t.Fatalf("config %+v", c)
	}
	write("timeout) echo 60 ;;\nstop_timeout) echo 60 ;;")
	if _, err := (&Script{Path: script}).ReadConfig(); err == nil || !strings.Contains(err.Error(), "must be below timeout") {
		t.Fatalf("the original's defaults (timeout 60, stop_timeout 60) accepted: %v", err)
	}
}

// TestNotify: every transition in the history is notified once, in order, numbered from
// 1, whichever monitor (owner or stand-by) claims it, across a handover, and the last
// monitor's own last transitions (stopped, released) before it ends.
func TestNotify(t *testing.T) {
	var notes string
	r := newRig(t, func(c *Config) {
		notes = filepath.Join(t.TempDir(), "notes")
		c.Notify = `echo "$LITE_RAFT_PKG_EVENT_NUMBER $LITE_RAFT_PKG_TIME $LITE_RAFT_PKG_HOST $LITE_RAFT_PKG_EVENT" >> ` + notes
	})
	r.run("a")
	r.run("b")
	r.waitRunning("a")
	if err := r.stop("a"); err != nil {
		t.Fatal(err)
	}
	r.waitRunning("b")
	r.stop("b") // the last monitor: what it recorded while ending is notified before it ends
	hist := strings.TrimSpace(r.get("history"))
	lines := strings.Split(hist, "\n")
	if len(lines) < 8 {
		t.Fatalf("too few transitions to prove anything: %q", hist)
	}
	var want []string
	for i, l := range lines {
		want = append(want, fmt.Sprintf("%d %s", i+1, l))
	}
	b, _ := os.ReadFile(notes)
	if got := strings.TrimSpace(string(b)); got != strings.Join(want, "\n") {
		t.Fatalf("notified:\n%s\nhistory, numbered:\n%s", got, strings.Join(want, "\n"))
	}
	if n, last := parseNotified(r.get("notified")); n != uint64(len(lines)) || last != lines[len(lines)-1] {
		t.Fatalf("notified says %d %q; the history has %d lines", n, last, len(lines))
	}
}

// TestNotifyClaimByOrder: a claim for an event already notified is free at once; one for
// the next event, held by another, only once it has stood unchanged for notifyStale on
// this monitor's clock (never by comparing the claim's host clock).
func TestNotifyClaimByOrder(t *testing.T) {
	clk := newFakeClock()
	m := &Monitor{Name: "web", Host: "b", Clock: clk, Log: log.New(io.Discard, "", 0)}
	if !m.claimable("", 4) || !m.claimable("4 a", 4) || !m.claimable("3 a", 4) {
		t.Fatal("an empty claim, or one for an event already notified, was not free")
	}
	if !m.claimable("5 b", 4) {
		t.Fatal("this host's own claim (an attempt whose release failed) was not free")
	}
	if m.claimable("5 a", 4) {
		t.Fatal("a claim for the next event, just seen, was taken")
	}
	clk.advance(notifyStale - time.Millisecond)
	if m.claimable("5 a", 4) {
		t.Fatal("a claim for the next event taken before notifyStale")
	}
	if m.claimable("5 c", 4) {
		t.Fatal("a new claim taken at once")
	}
	clk.advance(notifyStale)
	if !m.claimable("5 c", 4) {
		t.Fatal("a claim unchanged for notifyStale was not taken")
	}
	if n, line := parseNotified("2026-12-07T01:02:03.000Z h state running"); n != 0 || line != "2026-12-07T01:02:03.000Z h state running" {
		t.Fatalf("an older build's notified: %d %q", n, line)
	}
}

// atoiOf is the number that ends an event line ("start a 14"), 0 if none.
func atoiOf(line string) int {
	n, _ := strconv.Atoi(line[strings.LastIndex(line, " ")+1:])
	return n
}

// TestGenerationIsAStoreCounter: a plain set of the package's generation key does not
// move the fencing token (a counter no set reaches); on a cluster with a member from
// before counters the token is that key, raised by a conditional set, as before.
func TestGenerationIsAStoreCounter(t *testing.T) {
	for _, old := range []bool{false, true} {
		r := newRig(t, nil)
		r.mem.noCounters = old
		r.store.Set(context.Background(), Key("web", "generation"), "1000000")
		r.run("a")
		r.waitRunning("a")
		r.stop("a")
		got := r.eventLines()
		g := atoiOf(got[0])
		if old != (g == 1000001) || g < 1 {
			t.Fatalf("before counters %v: events %v", old, got)
		}
		if gen, _ := Generation(context.Background(), r.store, "web"); gen != strconv.Itoa(g) {
			t.Fatalf("before counters %v: Generation says %q, the start got %d", old, gen, g)
		}
	}
}
