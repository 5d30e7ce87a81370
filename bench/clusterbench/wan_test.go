package main

import (
	"strings"
	"testing"
)

// TestParseSoak reads what `go test -v -run TestSoakWAN` prints: the loads' t.Logf lines
// and the summary line.
func TestParseSoak(t *testing.T) {
	out := `=== RUN   TestSoakWAN
    soakwan_test.go:64: load on host1: 120345 ops, 401 ops/s, p50 110.2 ms, p99 230.9 ms, answers map[0:120345]
    soakwan_test.go:64: load on host2: 60123 ops, 200 ops/s, p50 215.0 ms, p99 330.1 ms, answers map[0:60120 11:3]
soakwan: rtt=100ms duration=5m0s leader_changes=2
    soakwan_test.go:77: 2 leader changes (summed over the members' counters) in 5m0s at 100ms between the hosts, under load
--- FAIL: TestSoakWAN (312.40s)
FAIL`
	var s wanSoak
	parseSoak(&s, out)
	if !s.Finished || s.LeaderChanges != 2 || s.Ops != 180468 || len(s.Loads) != 2 {
		t.Fatalf("parsed %+v", s)
	}
	if !strings.HasPrefix(s.Loads[1], "load on host2: 60123 ops") {
		t.Errorf("the second load: %q", s.Loads[1])
	}
	why := failLines(out)
	if !strings.Contains(why, "2 leader changes") || strings.Contains(why, "load on") || !strings.Contains(why, "--- FAIL") {
		t.Errorf("failLines: %q", why)
	}

	var none wanSoak
	parseSoak(&none, "ok  \tlite-raft/e2e\t0.01s [no tests to run]")
	if none.Finished || none.Ops != 0 {
		t.Errorf("no soak output parsed as %+v", none)
	}
}

// TestWANTargets judges the catch-up and the soak as the report prints them.
func TestWANTargets(t *testing.T) {
	r := &wanReport{
		Remote:      &wanRemote{LiteP50Ms: 205},
		CatchUpLite: &wanCatchUp{OK: true, SnapshotBytes: 150 << 20, Seconds: 5, MiBPerS: 30, SnapshotMiBPerS: 35},
		Soak:        &wanSoak{Finished: true, Passed: true, Duration: "5m0s", Ops: 10},
	}
	got := map[string]string{}
	for _, tg := range r.targets() {
		got[tg.What[:strings.Index(tg.What, ":")]] = tg.State
	}
	want := map[string]string{
		"lite-raft-remote get at 100 ms RTT": targetMet,
		"catch-up by snapshot at 100 ms RTT": targetNotMet,
		"WAN soak":                           targetMet,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	// judged by the transfer, not end to end
	r.CatchUpLite.SnapshotMiBPerS = 45
	if ts := r.targets(); ts[1].State != targetMet {
		t.Errorf("a transfer of 45 MiB/s (30 end to end): %+v", ts[1])
	}
	r.Soak = &wanSoak{Error: "no soakwan: line"}
	if ts := r.targets(); ts[len(ts)-1].State != targetNotMeasured {
		t.Errorf("a soak that printed no summary: %+v", ts[len(ts)-1])
	}
}

// TestReceivedRE reads the follower's log line the catch-up is judged by.
func TestReceivedRE(t *testing.T) {
	line := "2026/12/07 12:31:17.036177 the leader's snapshot at 2002 (78.8 MB): received in 992ms (79.4 MB/s), loaded in 51ms"
	m := receivedRE.FindStringSubmatch(line)
	if m == nil || m[1] != "78.8" || m[2] != "79.4" {
		t.Fatalf("parsed %q", m)
	}
}
