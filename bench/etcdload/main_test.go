package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"
)

// Percentiles and values are benchreport's, tested there and shared with lite-raft bench.

func TestBadFlagsExit2(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--endpoints", "x", "--clients", "0"},
		{"--endpoints", "x", "--op", "del"},
		{"--endpoints", "x", "--duration", "-1s"},
		{"--endpoints", "x", "--conns", "3", "--clients", "2"},
		{"--endpoints", "x", "--value-size", "99999999"},
		{"--endpoints", "x", "--nosuchflag"},
		{"--endpoints", "x", "extra"},
		{"--endpoints", "x", "--leader", "--failover-probe"},
		{"--endpoints", ",", "--leader"},
		{"--endpoints", "x", "--fill", "--status"},
		{"--endpoints", "x", "--wait-caught-up", "x", "--promote", "a1"},
		{"--endpoints", "x", "--add-learner", "e4"},
		{"--endpoints", "x", "--add-learner", "=http://x"},
		{"--endpoints", "x", "--promote", "xyz"},
		{"--endpoints", "x", "--fill", "--key-prefix", ""},
		{"--endpoints", "x", "--fill", "--keys", "0"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, strings.NewReader(""), &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
		if !strings.Contains(errb.String(), "usage:") {
			t.Errorf("%q: no usage on stderr: %q", args, errb.String())
		}
	}
}

func TestSummaryFields(t *testing.T) {
	r := &benchRun{cfg: config{clients: 2, conns: 1, op: opCAS}}
	w := &worker{lat: []time.Duration{time.Millisecond, 3 * time.Millisecond}}
	w.errs.Store(1)
	r.workers = []*worker{w}
	s := r.summary(2 * time.Second)
	if s.Mix != "cas=100" || s.Ops != 2 || s.OpsPerS != 1 || s.Codes["0"] != 1 || s.Codes["1"] != 1 ||
		s.TransportErrors != 1 || s.ByOp["cas"].P99Ms != 3 || s.P50Ms != 1 {
		t.Errorf("summary %+v", s)
	}
}

func TestModes(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg, err := parseFlags(fs, []string{"--endpoints", "a,b", "--fill", "--keys", "20", "--key-prefix", "bench/s"})
	if err != nil || !cfg.fill || cfg.keys != 20 || cfg.keyPrefix != "bench/s" {
		t.Errorf("--fill: %+v %v", cfg, err)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	cfg, err = parseFlags(fs, []string{"--endpoints", "a", "--promote", "8e9e05c52164694d"})
	if err != nil || cfg.promote != "8e9e05c52164694d" {
		t.Errorf("--promote: %+v %v", cfg, err)
	}
}

func TestLagOf(t *testing.T) {
	sts := []endpointStatus{
		{Endpoint: "a", RaftIndex: 5000, IsLeader: true},
		{Endpoint: "b", RaftIndex: 4200},
		{Endpoint: "c", Error: "connection refused"},
	}
	if mine, lead, why := lagOf(sts, "b"); mine != 4200 || lead != 5000 || why != "" {
		t.Errorf("b: %d %d %q", mine, lead, why)
	}
	if _, _, why := lagOf(sts, "c"); !strings.Contains(why, "connection refused") {
		t.Errorf("c: %q", why)
	}
	if _, _, why := lagOf(sts, "d"); !strings.Contains(why, "not among") {
		t.Errorf("d: %q", why)
	}
	sts[0].IsLeader = false
	if _, _, why := lagOf(sts, "b"); !strings.Contains(why, "no endpoint is the leader") || !strings.Contains(why, "c: connection refused") {
		t.Errorf("no leader: %q", why)
	}
}
