package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	value    []byte // rewritten before each write, so that no two writes carry the same value
	counter  uint64 // client number + k * clients
	step     uint64
	lat      []time.Duration
	timeouts int64
	firstErr string
}

// nextValue writes the worker's next value: the counter in hex, right-aligned over the
// last up to 16 bytes (the same scheme as lite-raft's bench).
func (w *worker) nextValue() string {
	w.counter += w.step
	v := w.counter
	for i := len(w.value) - 1; i >= 0 && i >= len(w.value)-16; i-- {
		w.value[i] = "0123456789abcdef"[v&15]
		v >>= 4
	}
	return string(w.value)
}

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
	var wg sync.WaitGroup
	var failed atomic.Int64
	var first atomic.Pointer[string]
	for i, w := range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := i; k < len(r.keys) && !r.stop.Load(); k += len(r.workers) {
				rctx, cancel := context.WithTimeout(ctx, r.cfg.timeout)
				_, err := w.cl.Put(rctx, r.keys[k], w.nextValue())
				cancel()
				if err != nil {
					failed.Add(1)
					msg := fmt.Sprintf("put %s: %v", r.keys[k], err)
					first.CompareAndSwap(nil, &msg)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fail("pre-populating: %d of %d puts failed; first: %s", n, len(r.keys), *first.Load())
	}
	if r.stop.Load() {
		return fail("interrupted while pre-populating")
	}
	fmt.Fprintf(errw, "etcdload: pre-populated %d keys in %.2fs\n", len(r.keys), time.Since(t).Seconds())
	return nil
}

// progress prints a line a second until the workers are done.
func (r *benchRun) progress(errw io.Writer, start time.Time, done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastOps int64
	last := start
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			var ops, errs int64
			for _, w := range r.workers {
				ops += w.ops.Load()
				errs += w.errs.Load()
			}
			rate := float64(ops-lastOps) / now.Sub(last).Seconds()
			fmt.Fprintf(errw, "%5.1fs  %9d ops  %9.0f ops/s  %d errors\n", now.Sub(start).Seconds(), ops, rate, errs)
			lastOps, last = ops, now
		}
	}
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
		r.keys[i] = "bench/k" + strconv.Itoa(i)
	}
	for i := range cfg.clients {
		w := &worker{cl: conns[i%len(conns)],
			rng:   rand.New(rand.NewPCG(uint64(i)+1, uint64(i)+1)),
			value: make([]byte, cfg.valueSize), counter: uint64(i), step: uint64(cfg.clients),
			lat: make([]time.Duration, 0, 4096)}
		for j := range w.value {
			w.value[j] = 'v'
		}
		r.workers = append(r.workers, w)
	}

	// A first Ctrl-C lets the requests in flight finish; a second one cancels them.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	go func() {
		for {
			select {
			case <-sigs:
				if r.stop.Swap(true) {
					cancel()
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	fmt.Fprintf(errw, "etcdload: %d clients on %d connection(s) to %v; %v, op %s, %d keys, values of %d bytes\n",
		cfg.clients, len(conns), cfg.endpoints, cfg.duration, opNames[cfg.op], cfg.keys, cfg.valueSize)
	if cfg.op != opSet {
		if err := r.prepopulate(ctx, errw); err != nil {
			return err
		}
	}

	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(cfg.duration)
	for _, w := range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx, w, end)
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
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
		s.print(stdout)
	}
	for _, w := range r.workers {
		if w.firstErr != "" {
			fmt.Fprintf(errw, "etcdload: first failure: %s\n", w.firstErr)
			break
		}
	}
	return nil
}

// opStats are the figures of one operation, or of all.
type opStats struct {
	Ops     int     `json:"ops"`
	OpsPerS float64 `json:"ops_per_s"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
	Errors  int64   `json:"errors"`
}

// summary has the fields, in the order, of lite-raft bench's JSON, so that the two can be
// compared by the same script.
type summary struct {
	Clients   int     `json:"clients"`
	Conns     int     `json:"conns"`
	Mix       string  `json:"mix"`
	DurationS float64 `json:"duration_s"`
	opStats
	Timeouts int64 `json:"timeouts"`
	// every etcd error is a gRPC error, so all errors count as transport errors here
	TransportErrors int64              `json:"transport_errors"`
	Codes           map[string]int64   `json:"codes"`
	ByOp            map[string]opStats `json:"by_op"`
}

func stats(lat []time.Duration, errs int64, elapsed time.Duration) opStats {
	slices.Sort(lat)
	s := opStats{Ops: len(lat), Errors: errs, OpsPerS: round3(float64(len(lat)) / elapsed.Seconds())}
	if len(lat) > 0 {
		s.P50Ms, s.P99Ms, s.MaxMs = durMs(percentile(lat, 50)), durMs(percentile(lat, 99)), durMs(lat[len(lat)-1])
	}
	return s
}

// percentile is the nearest-rank percentile of sorted (non-empty) latencies.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100 // ceil(n*p/100)
	return sorted[max(i, 1)-1]
}

func durMs(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func (r *benchRun) summary(elapsed time.Duration) summary {
	var lat []time.Duration
	var errs, timeouts int64
	for _, w := range r.workers {
		lat = append(lat, w.lat...)
		errs += w.errs.Load()
		timeouts += w.timeouts
	}
	st := stats(lat, errs, elapsed)
	s := summary{Clients: r.cfg.clients, Conns: r.cfg.conns, Mix: opNames[r.cfg.op] + "=100",
		DurationS: round3(elapsed.Seconds()), opStats: st, Timeouts: timeouts, TransportErrors: errs,
		Codes: map[string]int64{"0": int64(st.Ops) - errs},
		ByOp:  map[string]opStats{opNames[r.cfg.op]: st}}
	if errs > 0 {
		s.Codes["1"] = errs
	}
	return s
}

func (s summary) print(w io.Writer) {
	fmt.Fprintf(w, "%d ops in %.2fs: %.0f ops/s (%d clients, %d connection(s), mix %s)\n",
		s.Ops, s.DurationS, s.OpsPerS, s.Clients, s.Conns, s.Mix)
	fmt.Fprintf(w, "p50 %.3fms  p99 %.3fms  max %.3fms  errors %d (timeouts %d)\n",
		s.P50Ms, s.P99Ms, s.MaxMs, s.Errors, s.Timeouts)
}
