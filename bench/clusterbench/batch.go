package main

// The batch workload (issue 31; --only batch, make bench-batch): what a script gains by
// piping its writes into one `lite-raft-client batch` rather than calling
// `lite-raft-client set` once a write, beside etcd's two counterparts, in one run:
//
//   - the loop: --batch-loop single calls `./lite-raft-client set bench/loop/$i v` on the
//     leader's host, each process timed by bash's clock (timedCalls); etcd: the same loop
//     of `etcdctl put` to its leader's endpoint (skipped without etcdctl);
//   - the batch: one `./lite-raft-client batch --window W` on the leader's host fed
//     --batch-n lines `set bench/b/$i VALUE` (16-byte values) from a file written
//     beforehand; only the process is timed (its start and its connection included), and
//     its output must be one "0" a line, exit 0; then the same on a follower, which
//     forwards every set to the leader; etcd: etcdload --fill of the same keys with W
//     clients on one connection (one clientv3.Client, W Puts in flight as the batch keeps
//     W commands in flight), timed from its first Put to its last, its dial not included.
//
// Every step runs on lite-raft and then at once on etcd; a step that fails is recorded
// with its message and the next one runs. The target (issue 31): the batch at least
// 20,000 sets/s from one process, measured in the same run as the loop.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"lite-raft/benchreport"
	"lite-raft/internal/harness"
)

var (
	batchN      = flag.Int("batch-n", 100000, "batch workload: `N` sets fed to one lite-raft-client batch (and written by etcdload, the same keys)")
	batchWindow = flag.Int("batch-window", 2000, "batch workload: commands in flight (lite-raft-client batch --window; etcdload's clients on one connection)")
	batchLoop   = flag.Int("batch-loop", 300, "batch workload: single calls timed in a loop (lite-raft-client set; etcdctl put)")
)

const (
	batchValueSize = 16
	batchPrefix    = "bench/b/"
	// the follower's batch writes keys of its own, so that it sets no key the leader's did
	batchFollowerPrefix = "bench/bf/"
	loopPrefix          = "bench/loop/"
	// issue 31's target, from one process
	batchTargetSetsPerS = 20000
)

// rate is one row of the batch workload on one system: sets written by one process, or
// by a loop of processes, and how long they took.
type rate struct {
	Host     string  `json:"host,omitempty"` // lite-raft: the host it ran on
	Sets     int     `json:"sets,omitempty"`
	Seconds  float64 `json:"seconds,omitempty"` // a loop: the sum of its calls' wall times
	SetsPerS float64 `json:"sets_per_s,omitempty"`
	// a loop's calls, each a process, wall time
	CallP50Ms float64 `json:"call_p50_ms,omitempty"`
	CallP99Ms float64 `json:"call_p99_ms,omitempty"`
	// not empty: the row was not run, and why
	Skipped string `json:"skipped,omitempty"`
}

// batchReport is the batch workload's part of the report.
type batchReport struct {
	LoopCalls         int   `json:"loop_calls"`
	Sets              int   `json:"batch_sets"`
	Window            int   `json:"window"`
	ValueSize         int   `json:"value_size"`
	LiteLoop          *rate `json:"lite_raft_loop,omitempty"`
	EtcdLoop          *rate `json:"etcdctl_loop,omitempty"`
	LiteBatch         *rate `json:"lite_raft_batch,omitempty"`
	EtcdPipelined     *rate `json:"etcd_pipelined,omitempty"`
	LiteBatchFollower *rate `json:"lite_raft_batch_follower,omitempty"`
	// ratios of sets/s, absent when a side was not measured
	BatchToEtcdPipelined float64  `json:"ratio_batch_to_etcd_pipelined,omitempty"`
	BatchToLoop          float64  `json:"ratio_batch_to_loop,omitempty"`
	LoopToEtcdLoop       float64  `json:"ratio_loop_to_etcdctl_loop,omitempty"`
	Errors               []string `json:"errors,omitempty"`
	Targets              []target `json:"targets"`
}

func (b *batchReport) fail(step string, err error) {
	msg := fmt.Sprintf("%s: %v", step, err)
	logf("batch: %s", msg)
	b.Errors = append(b.Errors, msg)
}

// checkBatchFlags refuses sizes the batch workload cannot run with, before the clusters
// start (lite-raft-client batch takes windows of 1 to 20,000).
func checkBatchFlags() error {
	switch {
	case *batchN < 1 || *batchLoop < 1:
		return fmt.Errorf("--batch-n %d, --batch-loop %d: want at least 1", *batchN, *batchLoop)
	case *batchWindow < 1 || *batchWindow > 20000:
		return fmt.Errorf("--batch-window %d: want 1 to 20000", *batchWindow)
	}
	return nil
}

// runBatch runs the batch workload on lite-raft and, when ec is not nil, on etcd.
func runBatch(lc *liteCluster, ec *etcdCluster) *batchReport {
	b := &batchReport{LoopCalls: *batchLoop, Sets: *batchN, Window: *batchWindow, ValueSize: batchValueSize}
	lead, err := lc.leader(30 * time.Second)
	if err != nil {
		b.fail("lite-raft", err)
	}
	if lead != nil {
		logf("batch: %d `./lite-raft-client set` calls in a loop on the leader %s", *batchLoop, lead.Name)
		if b.LiteLoop, err = liteLoop(lead, *batchLoop); err != nil {
			b.fail("lite-raft loop", err)
		}
	}
	if ec != nil {
		logf("batch: %d `etcdctl put` calls in a loop to etcd's leader", *batchLoop)
		if b.EtcdLoop, err = ec.loop(*batchLoop); err != nil {
			b.fail("etcdctl loop", err)
		}
	}
	if lead != nil {
		logf("batch: one `./lite-raft-client batch --window %d` of %d sets on the leader %s", *batchWindow, *batchN, lead.Name)
		if b.LiteBatch, err = liteBatch(lead, batchPrefix, *batchN, *batchWindow); err != nil {
			b.fail("lite-raft batch on the leader", err)
		}
	}
	if ec != nil {
		logf("batch: etcdload, %d puts with %d in flight on one connection to etcd's leader", *batchN, *batchWindow)
		if b.EtcdPipelined, err = ec.pipelined(batchPrefix, *batchN, *batchWindow); err != nil {
			b.fail("etcd pipelined", err)
		}
	}
	if lead != nil {
		follower := others(lc.members, lead)[0]
		logf("batch: the same batch on the follower %s (forwarded to the leader)", follower.Name)
		if b.LiteBatchFollower, err = liteBatch(follower, batchFollowerPrefix, *batchN, *batchWindow); err != nil {
			b.fail("lite-raft batch on a follower", err)
		}
	}
	b.ratios()
	b.Targets = b.targets()
	return b
}

// liteLoop times n `./lite-raft-client set` processes in a row on h.
func liteLoop(h *harness.Host, n int) (*rate, error) {
	lat, err := timedCalls(h, "", "./lite-raft-client set "+loopPrefix+"$i v", n)
	if err != nil {
		return nil, err
	}
	r := loopRate(lat)
	r.Host = h.Name
	return r, nil
}

// loop times n `etcdctl put` processes in a row against etcd's leader, or says why the
// row is skipped.
func (ec *etcdCluster) loop(n int) (*rate, error) {
	if _, err := os.Stat(*etcdctlBin); err != nil {
		return &rate{Skipped: fmt.Sprintf("no etcdctl: %v (apt-get install etcd-client)", err)}, nil
	}
	lead, err := ec.leader()
	if err != nil {
		return nil, err
	}
	// etcd's best case: its leader's endpoint only, so that no put is forwarded
	call := fmt.Sprintf("ETCDCTL_API=3 %s --endpoints=http://%s put %s$i v", *etcdctlBin, ec.eps[lead], loopPrefix)
	lat, err := timedCallsHere("", call, n)
	if err != nil {
		return nil, err
	}
	return loopRate(lat), nil
}

// loopRate sums up a loop's calls (their wall times in ms, sorted): the calls made one
// after the other, sets/s is their count over the sum of their times.
func loopRate(lat []float64) *rate {
	sum := 0.0
	for _, l := range lat {
		sum += l
	}
	r := &rate{Sets: len(lat), Seconds: benchreport.Round3(sum / 1000)}
	if sum > 0 {
		r.SetsPerS = benchreport.Round3(float64(len(lat)) / (sum / 1000))
	}
	if len(lat) > 0 {
		r.CallP50Ms, r.CallP99Ms = benchreport.Round3(benchreport.Percentile(lat, 50)), benchreport.Round3(benchreport.Percentile(lat, 99))
	}
	return r
}

// batchInput is n batch commands setting prefix0 ... prefix<n-1>, each to a value of
// batchValueSize bytes of its own.
func batchInput(prefix string, n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "set %s %0*x\n", benchreport.FillKey(prefix, i), batchValueSize, i)
	}
	return b.Bytes()
}

// liteBatch runs one `./lite-raft-client batch` on h fed n sets under prefix and times
// the process alone: its input is written to a file on h first, its output goes to a
// file there, so that neither ssh nor this program is in the timed interval.
func liteBatch(h *harness.Host, prefix string, n, window int) (*rate, error) {
	files := map[string]string{"in": "batch-in", "out": "batch-out", "err": "batch-err"}
	for _, f := range files {
		defer os.Remove(filepath.Join(h.Dir, f))
	}
	if err := os.WriteFile(filepath.Join(h.Dir, files["in"]), batchInput(prefix, n), 0o644); err != nil {
		return nil, fmt.Errorf("batch input on %s: %w", h.Name, err)
	}
	script := fmt.Sprintf(`cd %s && s=$EPOCHREALTIME; ./lite-raft-client batch --window %d <%s >%s 2>%s; rc=$?; e=$EPOCHREALTIME; echo "$rc $s $e"`,
		harness.RemoteDir, window, files["in"], files["out"], files["err"])
	o, e, code, err := h.Exec("bash", "-c", script)
	if err != nil || code != 0 {
		return nil, fmt.Errorf("batch on %s: exit %d %v %s", h.Name, code, err, strings.TrimSpace(e))
	}
	exit, secs, err := parseBatchTiming(o)
	if err != nil {
		return nil, fmt.Errorf("batch on %s: %w", h.Name, err)
	}
	out, err := os.ReadFile(filepath.Join(h.Dir, files["out"]))
	if err == nil {
		err = checkBatchOutput(string(out), n)
	}
	if exit != 0 || err != nil {
		stderr, _ := os.ReadFile(filepath.Join(h.Dir, files["err"]))
		return nil, fmt.Errorf("batch on %s: exit %d after %.2fs: %v; stderr: %q", h.Name, exit, secs, err, lastLines(string(stderr), 3))
	}
	return &rate{Host: h.Name, Sets: n, Seconds: benchreport.Round3(secs), SetsPerS: benchreport.Round3(float64(n) / secs)}, nil
}

// parseBatchTiming reads liteBatch's line "EXIT START END" (bash's clock, in seconds):
// the batch's exit code and its wall time in seconds.
func parseBatchTiming(o string) (exit int, secs float64, err error) {
	f := strings.Fields(o)
	if len(f) != 3 {
		return 0, 0, fmt.Errorf("no timing in %q", o)
	}
	exit, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseFloat(f[1], 64)
	end, err3 := strconv.ParseFloat(f[2], 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, 0, fmt.Errorf("timing %q: %w", o, err)
	}
	if end <= start {
		return 0, 0, fmt.Errorf("timing %q: it ends before it starts", o)
	}
	return exit, end - start, nil
}

// checkBatchOutput checks a batch of n sets answered every one with "0": n lines, each
// "0"; the error counts the others and quotes the first.
func checkBatchOutput(out string, n int) error {
	lines, bad, first := 0, 0, ""
	if out = strings.TrimSuffix(out, "\n"); out == "" {
		return fmt.Errorf("no results for %d commands", n)
	}
	for _, l := range strings.Split(out, "\n") {
		lines++
		if l != "0" {
			if bad++; first == "" {
				first = fmt.Sprintf("line %d: %q", lines, l)
			}
		}
	}
	switch {
	case bad > 0:
		return fmt.Errorf("%d of %d results are not 0 (the first, %s)", bad, lines, first)
	case lines != n:
		return fmt.Errorf("%d results for %d commands", lines, n)
	}
	return nil
}

// pipelined writes the n keys prefix0 ... with window Puts in flight on one connection
// to etcd's leader (etcdload --fill), and reads the fill's own time, first Put to last.
func (ec *etcdCluster) pipelined(prefix string, n, window int) (*rate, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fillBound(n)+time.Minute)
	defer cancel()
	cmd, err := ec.loadCommand(ctx, "--fill", "--keys", strconv.Itoa(n), "--key-prefix", prefix,
		"--value-size", strconv.Itoa(batchValueSize), "--clients", strconv.Itoa(window), "--conns", "1", "--json")
	if err != nil {
		return nil, err
	}
	f, err := runFill(cmd, "etcd", n)
	if err != nil {
		return nil, err
	}
	if f.Retries > 0 {
		logf("batch: etcd: %d puts were retried", f.Retries)
	}
	return &rate{Sets: int(f.Written), Seconds: f.DurationS, SetsPerS: f.KeysPerS}, nil
}

// cell is a row's cell: its sets/s, or why there is none.
func (r *rate) cell() cell {
	switch {
	case r == nil:
		return none("-")
	case r.Skipped != "":
		return none("skipped")
	}
	return cell{v: r.SetsPerS}
}

func ratioOf(a, b *rate) float64 {
	ac, bc := a.cell(), b.cell()
	if ac.text != "" || bc.text != "" || bc.v == 0 {
		return 0
	}
	return benchreport.Round3(ac.v / bc.v)
}

// ratios fills in the ratios of the rows measured.
func (b *batchReport) ratios() {
	b.BatchToEtcdPipelined = ratioOf(b.LiteBatch, b.EtcdPipelined)
	b.BatchToLoop = ratioOf(b.LiteBatch, b.LiteLoop)
	b.LoopToEtcdLoop = ratioOf(b.LiteLoop, b.EtcdLoop)
}

// targets judges issue 31's target: the batch from one process, measured in the same run
// as the loop.
func (b *batchReport) targets() []target {
	what := fmt.Sprintf("batch, one process on the leader: >= %d sets/s", batchTargetSetsPerS)
	l := b.LiteBatch.cell()
	switch {
	case l.text != "":
		return []target{{what, targetNotMeasured, "the batch failed"}}
	case b.LiteLoop.cell().text != "":
		return []target{{what, targetNotMeasured, fmt.Sprintf("%.0f sets/s, but the loop beside it failed", l.v)}}
	}
	got := fmt.Sprintf("%.0f sets/s; the loop of single calls %.1f sets/s (%.0fx)", l.v, b.LiteLoop.SetsPerS, b.BatchToLoop)
	if b.BatchToEtcdPipelined > 0 {
		got += fmt.Sprintf("; etcd pipelined %.0f sets/s", b.EtcdPipelined.SetsPerS)
	}
	return []target{{what, metOrNot(l.v >= batchTargetSetsPerS), got}}
}

func (b *batchReport) print(w io.Writer) {
	fmt.Fprintf(w, "\nbatch (issue 31): a loop of %d single calls, each a process, against one process writing %d sets with %d in flight; 16-byte values; lite-raft's on its leader's host, etcd's to its leader's endpoint on loopback\n\n",
		b.LoopCalls, b.Sets, b.Window)
	fmt.Fprintln(w, "| batch workload | lite-raft sets/s | s | per call p50 / p99 ms | etcd sets/s | s | per call p50 / p99 ms | sets/s ratio |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	// prec: a loop's tens of sets/s with a decimal, a batch's thousands without
	row := func(name string, prec int, l, e *rate) {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", name,
			l.cell().format(prec), l.seconds(), l.callMs(), e.cell().format(prec), e.seconds(), e.callMs(), ratioCell(l.cell(), e.cell()))
	}
	row(fmt.Sprintf("loop of %d single calls: lite-raft-client set; etcdctl put", b.LoopCalls), 1, b.LiteLoop, b.EtcdLoop)
	row(fmt.Sprintf("one process, %d sets: lite-raft-client batch --window %d; etcd's Go client, %d Puts in flight on one connection", b.Sets, b.Window, b.Window), 0, b.LiteBatch, b.EtcdPipelined)
	row("the same batch on a follower (forwarded to the leader)", 0, b.LiteBatchFollower, nil)
	fmt.Fprintf(w, "\nratios of sets/s: lite-raft batch / etcd pipelined %s; lite-raft batch / lite-raft loop %s; lite-raft loop / etcdctl loop %s\n",
		ratioText(b.BatchToEtcdPipelined), ratioText(b.BatchToLoop), ratioText(b.LoopToEtcdLoop))
	if b.EtcdLoop != nil && b.EtcdLoop.Skipped != "" {
		fmt.Fprintf(w, "etcdctl loop skipped: %s\n", b.EtcdLoop.Skipped)
	}
	if len(b.Errors) > 0 {
		fmt.Fprintln(w, "batch: steps that failed:")
		for _, e := range b.Errors {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	fmt.Fprintln(w, "\nbatch targets (issue 31):")
	for _, t := range b.Targets {
		fmt.Fprintln(w, formatTarget(t))
	}
}

func (r *rate) seconds() string {
	if r.cell().text != "" {
		return "-"
	}
	return fmt.Sprintf("%.2f", r.Seconds)
}

func (r *rate) callMs() string {
	if r.cell().text != "" || r.CallP50Ms == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f / %.1f", r.CallP50Ms, r.CallP99Ms)
}

func ratioText(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", x)
}
