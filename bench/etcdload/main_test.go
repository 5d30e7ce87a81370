package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	lat := make([]time.Duration, 100)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Millisecond
	}
	if got := percentile(lat, 50); got != 50*time.Millisecond {
		t.Errorf("p50 of 1..100ms = %v, want 50ms", got)
	}
	if got := percentile(lat, 99); got != 99*time.Millisecond {
		t.Errorf("p99 of 1..100ms = %v, want 99ms", got)
	}
	one := []time.Duration{7 * time.Millisecond}
	if got := percentile(one, 50); got != 7*time.Millisecond {
		t.Errorf("p50 of one = %v", got)
	}
	three := []time.Duration{1, 2, 3}
	if got := percentile(three, 50); got != 2 { // ceil(1.5) = 2
		t.Errorf("p50 of 3 = %v, want 2", got)
	}
}

func TestNextValueDistinct(t *testing.T) {
	w := &worker{value: []byte(strings.Repeat("v", 20)), counter: 3, step: 8}
	a, b := w.nextValue(), w.nextValue()
	if a == b || len(a) != 20 || !strings.HasPrefix(a, "vvvv") {
		t.Errorf("values %q, %q", a, b)
	}
	if a != "vvvv000000000000000b" || b != "vvvv0000000000000013" {
		t.Errorf("values %q, %q", a, b)
	}
	short := &worker{value: []byte("vv"), counter: 0, step: 1}
	if v := short.nextValue(); v != "01" {
		t.Errorf("short value %q", v)
	}
}

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
