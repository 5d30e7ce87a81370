package main

import (
	"strings"
	"testing"
)

// TestBatchInput is what the batch is fed: one set a line, values of batchValueSize bytes.
func TestBatchInput(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(string(batchInput("bench/b/", 3)), "\n"), "\n")
	want := []string{"set bench/b/0 0000000000000000", "set bench/b/1 0000000000000001", "set bench/b/2 0000000000000002"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("batchInput: %q", lines)
	}
	last := string(batchInput("k", 100001))
	last = last[strings.LastIndex(strings.TrimSuffix(last, "\n"), "\n")+1:]
	if f := strings.Fields(last); len(f) != 3 || len(f[2]) != batchValueSize {
		t.Errorf("the last line: %q", last)
	}
}

func TestParseBatchTiming(t *testing.T) {
	exit, secs, err := parseBatchTiming("0 1765110000.250000 1765110001.050000\n")
	if err != nil || exit != 0 || secs < 0.799 || secs > 0.801 {
		t.Errorf("got exit %d, %v s, %v", exit, secs, err)
	}
	if exit, _, err := parseBatchTiming("2 10.0 11.5"); err != nil || exit != 2 {
		t.Errorf("a batch that exited 2: exit %d, %v", exit, err)
	}
	for _, bad := range []string{"", "0 1.0", "x 1.0 2.0", "0 2.0 1.0"} {
		if _, _, err := parseBatchTiming(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCheckBatchOutput(t *testing.T) {
	if err := checkBatchOutput("0\n0\n0\n", 3); err != nil {
		t.Errorf("3 zeros: %v", err)
	}
	for out, want := range map[string]string{
		"":                            "no results for 3",
		"0\n0\n":                      "2 results for 3",
		"0\n0\n0\n0\n":                "4 results for 3",
		"0\n2 no leader\n0\n":         `1 of 3 results are not 0 (the first, line 2: "2 no leader")`,
		"0\n0 value\n7 timed out\n":   "2 of 3 results are not 0",
		"0\n\n0\n":                    `line 2: ""`,
		"1 set failed\n0\n0\n0\n0\n0": "1 of 6 results",
	} {
		err := checkBatchOutput(out, 3)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", out, err, want)
		}
	}
}

// TestBatchTargets judges issue 31's target and the ratios as the report prints them.
func TestBatchTargets(t *testing.T) {
	b := &batchReport{
		LiteLoop:      &rate{Sets: 300, Seconds: 6, SetsPerS: 50},
		EtcdLoop:      &rate{Skipped: "no etcdctl"},
		LiteBatch:     &rate{Sets: 20000, Seconds: 0.8, SetsPerS: 25000},
		EtcdPipelined: &rate{Sets: 20000, Seconds: 2, SetsPerS: 10000},
	}
	b.ratios()
	if b.BatchToEtcdPipelined != 2.5 || b.BatchToLoop != 500 || b.LoopToEtcdLoop != 0 {
		t.Errorf("ratios %v %v %v", b.BatchToEtcdPipelined, b.BatchToLoop, b.LoopToEtcdLoop)
	}
	if ts := b.targets(); len(ts) != 1 || ts[0].State != targetMet || !strings.Contains(ts[0].Got, "25000 sets/s") {
		t.Errorf("25,000 sets/s: %+v", ts)
	}
	b.LiteBatch.SetsPerS = 19999
	if ts := b.targets(); ts[0].State != targetNotMet {
		t.Errorf("19,999 sets/s: %+v", ts)
	}
	b.LiteLoop = nil
	if ts := b.targets(); ts[0].State != targetNotMeasured {
		t.Errorf("no loop beside it: %+v", ts)
	}
	b.LiteBatch = nil
	b.ratios()
	if ts := b.targets(); ts[0].State != targetNotMeasured || b.BatchToEtcdPipelined != 0 {
		t.Errorf("no batch: %+v, ratio %v", ts, b.BatchToEtcdPipelined)
	}
	var sb strings.Builder
	b.print(&sb) // rows not measured print as such, without a panic
	if !strings.Contains(sb.String(), "etcdctl loop skipped: no etcdctl") {
		t.Errorf("the report:\n%s", sb.String())
	}
}

func TestLoopRate(t *testing.T) {
	r := loopRate([]float64{10, 10, 20, 20, 40}) // sorted, as callTimes returns them
	if r.Sets != 5 || r.Seconds != 0.1 || r.SetsPerS != 50 || r.CallP50Ms != 20 || r.CallP99Ms != 40 {
		t.Errorf("%+v", r)
	}
}
