package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"lite-raft/benchreport"
)

const (
	opSet = iota
	opGet
	opCAS
)

var opNames = [...]string{"set", "get", "cas"}

// casCond is the value cas compares against; no write ever stores it, so every cas on an
// existing key succeeds, as lite-raft's "if KEY != x set V" does.
const casCond = "x"

// worker is one client: its counters (the atomics are read by the progress line) and
// the latency of every request it made.
type worker struct {
	ops, errs atomic.Int64

	cl       *clientv3.Client
	rng      *rand.Rand
	values   *benchreport.Values // no two writes of a run carry the same value
	lat      []time.Duration
	timeouts int64
	firstErr string
}

func (w *worker) nextValue() string { return string(w.values.Next()) }

// do sends one request and reports whether it succeeded.
func (w *worker) do(ctx context.Context, op int, key string) bool {
	var err error
	switch op {
	case opSet:
		_, err = w.cl.Put(ctx, key, w.nextValue())
	case opGet:
		_, err = w.cl.Get(ctx, key)
	default:
		_, err = w.cl.Txn(ctx).
			If(clientv3.Compare(clientv3.Value(key), "!=", casCond)).
			Then(clientv3.OpPut(key, w.nextValue())).
			Commit()
	}
	if err == nil {
		return true
	}
	if isTimeout(err) {
		w.timeouts++
	}
	if w.firstErr == "" {
		w.firstErr = fmt.Sprintf("%s %s: %v", opNames[op], key, err)
	}
	return false
}

// isTimeout tells a request that ran out of its own deadline; clientv3 usually turns the
// gRPC status into ctx.Err(), but not on every path.
func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded
}

// benchRun is the state shared by the workers of one run.
type benchRun struct {
	cfg     config
	keys    []string
	stop    atomic.Bool // set on Ctrl-C: start no more requests
	workers []*worker
}

// loop makes requests until end. As in lite-raft's bench, a request's latency runs from
// the end of the previous one, so the key pick is included and no time is lost between
// requests; failed requests are counted too.
func (r *benchRun) loop(ctx context.Context, w *worker, end time.Time) {
	t0 := time.Now()
	for t0.Before(end) && !r.stop.Load() {
		key := r.keys[w.rng.IntN(len(r.keys))]
		rctx, cancel := context.WithDeadline(ctx, t0.Add(r.cfg.timeout))
		ok := w.do(rctx, r.cfg.op, key)
		cancel()
		t1 := time.Now()
		w.lat = append(w.lat, t1.Sub(t0))
		w.ops.Add(1)
		if !ok {
			w.errs.Add(1)
		}
		t0 = t1
	}
}

// prepopulate puts every key once, the keys split among the workers; not timed. Without
// it, get would mostly read missing keys and cas would find nothing to compare.
func (r *benchRun) prepopulate(ctx context.Context, errw io.Writer) error {
	t := time.Now()
	failed, first := benchreport.Prepopulate(r.keys, len(r.workers), &r.stop, func(i int, key string) error {
		rctx, cancel := context.WithTimeout(ctx, r.cfg.timeout)
		defer cancel()
		if _, err := r.workers[i].cl.Put(rctx, key, r.workers[i].nextValue()); err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		return nil
	})
	if failed > 0 {
		return fail("pre-populating: %d of %d puts failed; first: %v", failed, len(r.keys), first)
	}
	if r.stop.Load() {
		return fail("interrupted while pre-populating")
	}
	fmt.Fprintf(errw, "etcdload: pre-populated %d keys in %.2fs\n", len(r.keys), time.Since(t).Seconds())
	return nil
}

// progress prints a line a second until the workers are done.
func (r *benchRun) progress(errw io.Writer, start time.Time, done <-chan struct{}) {
	benchreport.Progress(errw, start, done, func() (ops, errs int64) {
		for _, w := range r.workers {
			ops += w.ops.Load()
			errs += w.errs.Load()
		}
		return ops, errs
	})
}

func runBench(cfg config, stdout, errw io.Writer) error {
	conns := make([]*clientv3.Client, 0, cfg.conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range cfg.conns {
		c, err := newClient(cfg.endpoints, true)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}

	r := &benchRun{cfg: cfg, keys: make([]string, cfg.keys)}
	for i := range r.keys {
		r.keys[i] = benchreport.FillKey(cfg.keyPrefix, i)
	}
	for i := range cfg.clients {
		w := &worker{cl: conns[i%len(conns)],
			rng:    rand.New(rand.NewPCG(uint64(i)+1, uint64(i)+1)),
			values: benchreport.NewValues(cfg.valueSize, i, cfg.clients),
			lat:    make([]time.Duration, 0, 4096)}
		r.workers = append(r.workers, w)
	}

	// A first Ctrl-C lets the requests in flight finish; a second one cancels them.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer benchreport.OnInterrupt(&r.stop, cancel)()

	fmt.Fprintf(errw, "etcdload: %d clients on %d connection(s) to %v; %v, op %s, %d keys, values of %d bytes\n",
		cfg.clients, len(conns), cfg.endpoints, cfg.duration, opNames[cfg.op], cfg.keys, cfg.valueSize)
	if cfg.op != opSet {
		if err := r.prepopulate(ctx, errw); err != nil {
			return err
		}
	}

	start := time.Now()
	end := start.Add(cfg.duration)
	done := benchreport.Start(len(r.workers), func(i int) { r.loop(ctx, r.workers[i], end) })
	r.progress(errw, start, done)
	elapsed := time.Since(start)
	if r.stop.Load() {
		fmt.Fprintf(errw, "etcdload: interrupted after %.1fs\n", elapsed.Seconds())
	}

	s := r.summary(elapsed)
	if cfg.json {
		b, err := json.Marshal(s)
		if err != nil {
			return fail("%v", err)
		}
		fmt.Fprintln(stdout, string(b))
	} else {
		printSummary(stdout, s)
	}
	for _, w := range r.workers {
		if w.firstErr != "" {
			fmt.Fprintf(errw, "etcdload: first failure: %s\n", w.firstErr)
			break
		}
	}
	return nil
}

// summary has the fields of lite-raft bench's JSON, so that clusterbench reads both alike.
func (r *benchRun) summary(elapsed time.Duration) benchreport.Summary {
	var lat []time.Duration
	var errs, timeouts int64
	for _, w := range r.workers {
		lat = append(lat, w.lat...)
		errs += w.errs.Load()
		timeouts += w.timeouts
	}
	st := benchreport.Stats(lat, errs, elapsed)
	// every etcd error is a gRPC error, so all errors count as transport errors here
	s := benchreport.Summary{Clients: r.cfg.clients, Conns: r.cfg.conns, Mix: opNames[r.cfg.op] + "=100",
		DurationS: benchreport.Round3(elapsed.Seconds()), OpStats: st, Timeouts: timeouts, TransportErrors: errs,
		Codes: map[string]int64{"0": int64(st.Ops) - errs},
		ByOp:  map[string]benchreport.OpStats{opNames[r.cfg.op]: st}}
	if errs > 0 {
		s.Codes["1"] = errs
	}
	return s
}

func printSummary(w io.Writer, s benchreport.Summary) {
	fmt.Fprintf(w, "%d ops in %.2fs: %.0f ops/s (%d clients, %d connection(s), mix %s)\n",
		s.Ops, s.DurationS, s.OpsPerS, s.Clients, s.Conns, s.Mix)
	fmt.Fprintf(w, "p50 %.3fms  p99 %.3fms  max %.3fms  errors %d (timeouts %d)\n",
		s.P50Ms, s.P99Ms, s.MaxMs, s.Errors, s.Timeouts)
}

// runFill puts every key once (--fill) and prints what benchreport.Fill measured, as
// `lite-raft bench --fill` does: a key is tried 3 times, the fill gives up after 1000
// failed keys, and it exits 1 unless every key was written.
func runFill(cfg config, stdout, errw io.Writer) error {
	conns := make([]*clientv3.Client, 0, cfg.conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range cfg.conns {
		c, err := newClient(cfg.endpoints, true)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	values := make([]*benchreport.Values, cfg.clients)
	for i := range values {
		values[i] = benchreport.NewValues(cfg.valueSize, i, cfg.clients)
	}
	var stop atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer benchreport.OnInterrupt(&stop, cancel)()
	fmt.Fprintf(errw, "etcdload: filling %d keys (%s0 ...) of %d bytes with %d clients on %d connection(s) to %v\n",
		cfg.keys, cfg.keyPrefix, cfg.valueSize, cfg.clients, len(conns), cfg.endpoints)
	s := benchreport.Fill(benchreport.FillConfig{Keys: cfg.keys, Prefix: cfg.keyPrefix, ValueSize: cfg.valueSize,
		Workers: cfg.clients, Attempts: 3, MaxFailed: 1000, Every: 2 * time.Second, Progress: errw, Label: "etcdload"},
		&stop, func(i int, key string) error {
			rctx, cancel := context.WithTimeout(ctx, cfg.timeout)
			defer cancel()
			if _, err := conns[i%len(conns)].Put(rctx, key, string(values[i].Next())); err != nil {
				return fmt.Errorf("put %s: %w", key, err)
			}
			return nil
		})
	if cfg.json {
		b, err := json.Marshal(s)
		if err != nil {
			return fail("%v", err)
		}
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintln(stdout, s)
	}
	if why := s.Incomplete(); why != "" {
		return fail("fill: %s", why)
	}
	return nil
}
