package main

import (
	"bytes"
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
