package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
	"lite-raft/benchreport"
	"lite-raft/client"
	"lite-raft/internal/sshcmd"
	"lite-raft/sshrpc"
)

const benchUsageText = `lite-raft bench [--clients N] [--duration D] [--mix set=50,get=40,cas=10] [--value-size BYTES]
                [--keys N] [--key-prefix P] [--stale] [--conns N] [--timeout D] [--json] [--hosts h1,h2,... [--remote-dir PATH]]
lite-raft bench --fill [--keys N] [--key-prefix P] [--value-size BYTES] [--clients N] [--conns N] [--timeout D] [--json] [--hosts ...]`

const benchDescription = `Every client is a goroutine sending one request at a time; the clients share --conns
streams to the agent (requests are pipelined on a stream). Keys are bench/k0 ...
bench/k<N-1> (--key-prefix changes bench/k), pre-populated with one set each when the
mix has get or cas. cas is "if KEY != x set V", which succeeds whenever KEY exists.

--fill sets every key once instead, as fast as the clients go (a key that fails is tried
3 times; the fill gives up after 1000 failed keys), prints a progress line every 2 s and
a summary (keys/s, MB/s, latency), and exits 1 if a key was not written.

Without --hosts the bench talks to the local agent (DIR/temp/agent.sock); with --hosts
it runs "exec PATH/lite-raft rpc" over ssh on the first host that answers.

Progress goes to stderr once a second; the summary to stdout (--json: one JSON object).
Latencies count every request, failed ones included; a request the agent did not answer
counts under the code lite-raft client would exit with (2 for a write that may have been
applied, 1 for a read past its deadline, 11 or 12 when nothing was sent).`

// The operations of the mix, in the order they are reported.
const (
	benchSet = iota
	benchGet
	benchCAS
	benchNumOps
)

var benchOpNames = [benchNumOps]string{"set", "get", "cas"}

// benchConfig is the parsed command line.
type benchConfig struct {
	clients, conns, keys, valueSize int
	duration, timeout               time.Duration
	weights                         [benchNumOps]int
	stale, json, fill               bool
	keyPrefix                       string
	hosts                           []string
	remoteDir                       string
}

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:        "bench",
		Usage:       "load the key-value store with concurrent clients; report ops/s and latency",
		UsageText:   benchUsageText,
		Description: benchDescription,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "clients", Value: 16, Usage: "concurrent clients, each one request at a time"},
			&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "how long to run"},
			&cli.StringFlag{Name: "mix", Value: "set=100", Usage: "weights of set, get and cas, e.g. set=50,get=40,cas=10"},
			&cli.IntFlag{Name: "value-size", Value: 16, Usage: "`BYTES` per value written"},
			&cli.IntFlag{Name: "keys", Value: 1000, Usage: "size of the key space (bench/k0 ... bench/k<N-1>)"},
			&cli.StringFlag{Name: "key-prefix", Value: "bench/k", Usage: "keys are `PREFIX`0 ... PREFIX<N-1>"},
			&cli.BoolFlag{Name: "fill", Usage: "set every key once, report the rate and exit (no --duration, --mix, --stale)"},
			&cli.BoolFlag{Name: "stale", Usage: "gets read the answering agent's local state"},
			&cli.IntFlag{Name: "conns", Value: 1, Usage: "streams the clients are spread over"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "per-request timeout (sent to the agent)"},
			&cli.BoolFlag{Name: "json", Usage: "print the summary as one JSON object"},
			&cli.StringFlag{Name: "hosts", Usage: "comma-separated ssh hosts: use the first that answers instead of the local agent"},
			&cli.StringFlag{Name: "remote-dir", Usage: "lite-raft `PATH` on the hosts (default: the lite-raft directory here)"},
		},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError(c, err.Error())
		},
		Action: func(c *cli.Context) error {
			cfg, err := parseBenchFlags(c)
			if err != nil {
				return usageError(c, err.Error())
			}
			dir, err := liteRaftDir(c)
			if err != nil {
				return cli.Exit(err, 1)
			}
			if cfg.remoteDir == "" {
				cfg.remoteDir = dir
			}
			return runBench(c, cfg, dir)
		},
	}
}

func parseBenchFlags(c *cli.Context) (benchConfig, error) {
	cfg := benchConfig{
		clients: c.Int("clients"), conns: c.Int("conns"), keys: c.Int("keys"), valueSize: c.Int("value-size"),
		duration: c.Duration("duration"), timeout: c.Duration("timeout"),
		stale: c.Bool("stale"), json: c.Bool("json"), remoteDir: c.String("remote-dir"),
		fill: c.Bool("fill"), keyPrefix: c.String("key-prefix"),
	}
	if c.NArg() > 0 {
		return cfg, fmt.Errorf("bench takes no arguments (got %q)", c.Args().First())
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"--clients", cfg.clients}, {"--conns", cfg.conns}, {"--keys", cfg.keys}, {"--value-size", cfg.valueSize}} {
		if p.v <= 0 {
			return cfg, fmt.Errorf("%s must be positive (got %d)", p.name, p.v)
		}
	}
	if cfg.duration <= 0 {
		return cfg, fmt.Errorf("--duration must be positive (got %v)", cfg.duration)
	}
	if cfg.timeout <= 0 {
		return cfg, fmt.Errorf("--timeout must be positive (got %v)", cfg.timeout)
	}
	if limit := time.Duration(api.MaxClientTimeoutMs) * time.Millisecond; cfg.timeout > limit {
		// as the client's: every retry within the cluster's session horizon
		return cfg, fmt.Errorf("--timeout %v: at most %v (a write retried later than %d minutes after its first send could no longer be told from a new one)",
			cfg.timeout, limit, api.SessionHorizonMs/60000)
	}
	if cfg.conns > cfg.clients {
		return cfg, fmt.Errorf("--conns %d is more than --clients %d", cfg.conns, cfg.clients)
	}
	if cfg.fill {
		for _, f := range []string{"duration", "mix", "stale"} {
			if c.IsSet(f) {
				return cfg, fmt.Errorf("--fill sets every key once: --%s does not apply", f)
			}
		}
	}
	if cfg.keyPrefix == "" {
		return cfg, errors.New("--key-prefix must not be empty")
	}
	if cfg.valueSize > api.MaxValueLen {
		return cfg, fmt.Errorf("--value-size must be at most %d (1 MiB)", api.MaxValueLen)
	}
	var err error
	if cfg.weights, err = parseBenchMix(c.String("mix")); err != nil {
		return cfg, err
	}
	for _, h := range strings.Split(c.String("hosts"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.hosts = append(cfg.hosts, h)
		}
	}
	if c.IsSet("hosts") && len(cfg.hosts) == 0 {
		return cfg, errors.New("--hosts names no host")
	}
	if cfg.remoteDir != "" && len(cfg.hosts) == 0 {
		return cfg, errors.New("--remote-dir needs --hosts")
	}
	return cfg, nil
}

// parseBenchMix parses "set=50,get=40,cas=10": non-negative weights, at least one positive.
func parseBenchMix(s string) ([benchNumOps]int, error) {
	var w [benchNumOps]int
	var seen [benchNumOps]bool
	total := 0
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return w, fmt.Errorf("--mix %q: want OP=WEIGHT,... with OP one of set, get, cas", s)
		}
		i := slices.Index(benchOpNames[:], strings.TrimSpace(name))
		if i < 0 {
			return w, fmt.Errorf("--mix %q: unknown operation %q (use set, get, cas)", s, name)
		}
		if seen[i] {
			return w, fmt.Errorf("--mix %q: %s given twice", s, name)
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 || n > 1_000_000 {
			return w, fmt.Errorf("--mix %q: weight of %s is not a number from 0 to 1000000", s, name)
		}
		seen[i], w[i] = true, n
		total += n
	}
	if total == 0 {
		return w, fmt.Errorf("--mix %q: no operation has a positive weight", s)
	}
	return w, nil
}

// benchOpContext is a client's context for its requests. Its deadline is set before each
// request, so that the agent is told --timeout, while cancellation comes from the run's
// context (which ends --timeout after the run, or at once if the run is given up): this
// spares a context and a timer per request. client.Do and sshrpc only read the deadline
// to size the request's timeout and never wait on it.
type benchOpContext struct {
	context.Context
	deadline time.Time
}

func (c *benchOpContext) Deadline() (time.Time, bool) { return c.deadline, true }

// benchSocket is a stream to the local agent, dialled again if it breaks.
type benchSocket struct {
	path string
	cur  atomic.Pointer[sshrpc.Conn]
	mu   sync.Mutex // serializes redials
}

func (s *benchSocket) conn() (*sshrpc.Conn, error) {
	if c := s.live(); c != nil {
		return c, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.live(); c != nil {
		return c, nil
	}
	c, err := sshrpc.DialUnix(s.path, sshrpc.ConnOptions{})
	if err != nil {
		return nil, err
	}
	if old := s.cur.Swap(c); old != nil {
		old.Close()
	}
	return c, nil
}

// live returns the stream unless it has ended (without taking its lock: this is per request).
func (s *benchSocket) live() *sshrpc.Conn {
	c := s.cur.Load()
	if c == nil {
		return nil
	}
	select {
	case <-c.Done():
		return nil
	default:
		return c
	}
}

func (s *benchSocket) Call(ctx context.Context, typ uint8, payload []byte) (sshrpc.Frame, error) {
	c, err := s.conn()
	if err != nil {
		return sshrpc.Frame{}, fmt.Errorf("%w: %w", api.ErrNotSent, err) // the socket did not answer
	}
	return c.Call(ctx, typ, payload)
}

func (s *benchSocket) Close() error {
	if c := s.cur.Swap(nil); c != nil {
		c.Close()
	}
	return nil
}

// benchDial opens cfg.conns streams: to the local agent, or over ssh to the first of
// cfg.hosts that answers. It returns them, a description, and a function closing them.
func benchDial(cfg benchConfig, dir string, errw io.Writer) ([]client.Caller, string, func(), error) {
	var callers []client.Caller
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	if len(cfg.hosts) == 0 {
		path := filepath.Join(dir, "temp", "agent.sock")
		for range cfg.conns {
			s := &benchSocket{path: path}
			if _, err := s.conn(); err != nil {
				closeAll()
				return nil, "", nil, notSentExit(thisHost(), err)
			}
			callers, closers = append(callers, s), append(closers, s)
		}
		return callers, "the local agent (" + path + ")", closeAll, nil
	}
	d, err := sshrpc.NewDialer(sshrpc.DialerOptions{})
	if err != nil {
		return nil, "", nil, cli.Exit(fmt.Sprintf("ssh set-up: %v", err), 1)
	}
	command := sshcmd.Command(cfg.remoteDir, "rpc")
	connect := func(host string) (*sshrpc.Peer, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p := sshrpc.NewPeer(host, d, command, sshrpc.ConnOptions{})
		if _, err := p.Conn(ctx); err != nil {
			p.Close()
			return nil, err
		}
		return p, nil
	}
	var failures []string
	for _, host := range cfg.hosts {
		p, err := connect(host)
		if err != nil {
			fmt.Fprintf(errw, "bench: %s: %v\n", host, err)
			failures = append(failures, fmt.Sprintf("%s: %v", host, err))
			continue
		}
		callers, closers = append(callers, p), append(closers, p)
		for len(callers) < cfg.conns {
			p, err := connect(host)
			if err != nil {
				closeAll()
				return nil, "", nil, notSentExit(host, fmt.Errorf("connection %d: %w", len(callers)+1, err))
			}
			callers, closers = append(callers, p), append(closers, p)
		}
		return callers, fmt.Sprintf("%s over ssh (%s)", host, command), closeAll, nil
	}
	return nil, "", nil, notSentExit(strings.Join(cfg.hosts, ", "), fmt.Errorf("no host answered:\n  %s", strings.Join(failures, "\n  ")))
}

// benchWorker is one client: its counters (the atomics are read by the progress line) and
// the latency of every request it made, by operation.
type benchWorker struct {
	ops, errs atomic.Int64

	cl     *client.Client
	ctx    benchOpContext
	rng    *rand.Rand
	values *benchreport.Values
	lat    [benchNumOps][]time.Duration
	opErrs [benchNumOps]int64
	codes  [256]int64
	// transport counts requests that got no answer from an agent (codes 1, 2, 11 or 12 then)
	transport int64
	firstErr  string
}

var benchCASCond = []byte("x")

// do sends one request of operation op and records its outcome; it returns the code.
func (w *benchWorker) do(op int, key string, stale bool, timeout time.Duration, now time.Time) int {
	var req api.Request
	switch op {
	case benchSet:
		req = api.Request{Op: api.OpSet, Key: key, Value: w.values.Next()}
	case benchGet:
		req = api.Request{Op: api.OpGet, Key: key, Stale: stale}
	default:
		req = api.Request{Op: api.OpIfSet, Key: key, Cond: "!=", CondValue: benchCASCond, Value: w.values.Next()}
	}
	w.ctx.deadline = now.Add(timeout)
	resp, err := w.cl.Do(&w.ctx, req)
	code := resp.Code
	if err != nil {
		w.transport++
		code = client.ExitCodeOf(err) // as `lite-raft client` would exit: the table
		if w.firstErr == "" {
			w.firstErr = fmt.Sprintf("%s %s: %v", benchOpNames[op], key, err)
		}
	} else if code != 0 && w.firstErr == "" {
		w.firstErr = fmt.Sprintf("%s %s: exit %d: %s", benchOpNames[op], key, code, resp.Msg)
	}
	w.codes[code&255]++
	if code != 0 {
		w.opErrs[op]++
	}
	return code
}

// benchRun is the state shared by the workers of one run.
type benchRun struct {
	cfg     benchConfig
	keys    []string
	cum     [benchNumOps]int // cumulative weights
	total   int
	only    int         // the operation when the mix has one, else -1
	stop    atomic.Bool // set on Ctrl-C: start no more requests
	workers []*benchWorker
}

func (r *benchRun) pick(rng *rand.Rand) int {
	if r.only >= 0 {
		return r.only
	}
	x := rng.IntN(r.total)
	for i, c := range r.cum {
		if x < c {
			return i
		}
	}
	return benchNumOps - 1
}

// loop makes requests until end; latencies include the requests that failed.
func (r *benchRun) loop(w *benchWorker, end time.Time) {
	stale, timeout, nkeys := r.cfg.stale, r.cfg.timeout, len(r.keys)
	t0 := time.Now()
	for t0.Before(end) && !r.stop.Load() {
		op := r.pick(w.rng)
		code := w.do(op, r.keys[w.rng.IntN(nkeys)], stale, timeout, t0)
		t1 := time.Now()
		w.lat[op] = append(w.lat[op], t1.Sub(t0))
		w.ops.Add(1)
		if code != 0 {
			w.errs.Add(1)
		}
		t0 = t1
	}
}

func runBench(c *cli.Context, cfg benchConfig, dir string) error {
	callers, target, closeAll, err := benchDial(cfg, dir, c.App.ErrWriter)
	if err != nil {
		return err
	}
	defer closeAll()

	if cfg.fill {
		return runBenchFill(c, cfg, callers, target)
	}
	r := &benchRun{cfg: cfg, keys: make([]string, cfg.keys)}
	for i := range r.keys {
		r.keys[i] = benchreport.FillKey(cfg.keyPrefix, i)
	}
	sum, positive := 0, 0
	for i, wt := range cfg.weights {
		sum += wt
		r.cum[i] = sum
		if wt > 0 {
			positive++
			r.only = i
		}
	}
	r.total = sum
	if positive > 1 {
		r.only = -1
	}

	// the run's context ends --timeout after the run at the latest (or at a second Ctrl-C)
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer benchreport.OnInterrupt(&r.stop, cancel)()

	for i := range cfg.clients {
		w := &benchWorker{cl: client.New(callers[i%len(callers)]), ctx: benchOpContext{Context: runCtx},
			rng:    rand.New(rand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano()))),
			values: benchreport.NewValues(cfg.valueSize, i, cfg.clients)}
		for op, wt := range cfg.weights {
			if wt > 0 {
				w.lat[op] = make([]time.Duration, 0, 4096)
			}
		}
		r.workers = append(r.workers, w)
	}
	errw := c.App.ErrWriter
	fmt.Fprintf(errw, "bench: %d clients on %d connection(s) to %s; %v, mix %s, %d keys, values of %d bytes\n",
		cfg.clients, len(callers), target, cfg.duration, benchMixString(cfg.weights), cfg.keys, cfg.valueSize)

	if cfg.weights[benchGet] > 0 || cfg.weights[benchCAS] > 0 {
		if err := r.prepopulate(errw); err != nil {
			return err
		}
	}

	start := time.Now()
	end := start.Add(cfg.duration)
	done := benchreport.Start(len(r.workers), func(i int) { r.loop(r.workers[i], end) })
	r.progress(errw, start, end, done, cancel)
	elapsed := time.Since(start)
	if r.stop.Load() {
		fmt.Fprintf(errw, "bench: interrupted after %.1fs\n", elapsed.Seconds())
	}
	s := r.summary(elapsed)
	if cfg.json {
		b, err := json.Marshal(s)
		if err != nil {
			return cli.Exit(err.Error(), 1)
		}
		fmt.Fprintln(c.App.Writer, string(b))
	} else {
		printBenchSummary(c.App.Writer, s)
	}
	for _, w := range r.workers {
		if w.firstErr != "" {
			fmt.Fprintf(errw, "bench: first failure: %s\n", w.firstErr)
			break
		}
	}
	return nil
}

// prepopulate sets every key once, the keys split among the workers; not counted.
func (r *benchRun) prepopulate(errw io.Writer) error {
	t := time.Now()
	failed, first := benchreport.Prepopulate(r.keys, len(r.workers), &r.stop, func(i int, key string) error {
		w := r.workers[i]
		w.ctx.deadline = time.Now().Add(r.cfg.timeout)
		resp, err := w.cl.Do(&w.ctx, api.Request{Op: api.OpSet, Key: key, Value: w.values.Next()})
		if err != nil {
			return fmt.Errorf("set %s: %w", key, err)
		}
		if resp.Code != 0 {
			return fmt.Errorf("set %s: exit %d: %s", key, resp.Code, resp.Msg)
		}
		return nil
	})
	if failed > 0 {
		return cli.Exit(fmt.Sprintf("bench: pre-populating: %d of %d sets failed; first: %v", failed, len(r.keys), first), 1)
	}
	if r.stop.Load() {
		return cli.Exit("bench: interrupted while pre-populating", 1)
	}
	fmt.Fprintf(errw, "bench: pre-populated %d keys in %.2fs\n", len(r.keys), time.Since(t).Seconds())
	return nil
}

// runBenchFill sets every key once (--fill) and prints what benchreport.Fill measured.
func runBenchFill(c *cli.Context, cfg benchConfig, callers []client.Caller, target string) error {
	var stop atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer benchreport.OnInterrupt(&stop, cancel)()
	workers := make([]*benchWorker, cfg.clients)
	for i := range workers {
		workers[i] = &benchWorker{cl: client.New(callers[i%len(callers)]), ctx: benchOpContext{Context: ctx},
			values: benchreport.NewValues(cfg.valueSize, i, cfg.clients)}
	}
	errw := c.App.ErrWriter
	fmt.Fprintf(errw, "bench: filling %d keys (%s0 ...) of %d bytes with %d clients on %d connection(s) to %s\n",
		cfg.keys, cfg.keyPrefix, cfg.valueSize, cfg.clients, len(callers), target)
	s := benchreport.Fill(benchreport.FillConfig{Keys: cfg.keys, Prefix: cfg.keyPrefix, ValueSize: cfg.valueSize,
		Workers: cfg.clients, Attempts: 3, MaxFailed: 1000, Every: 2 * time.Second, Progress: errw, Label: "bench"},
		&stop, func(i int, key string) error {
			w := workers[i]
			w.ctx.deadline = time.Now().Add(cfg.timeout)
			resp, err := w.cl.Do(&w.ctx, api.Request{Op: api.OpSet, Key: key, Value: w.values.Next()})
			if err != nil {
				return fmt.Errorf("set %s: %w", key, err)
			}
			if resp.Code != 0 {
				return fmt.Errorf("set %s: exit %d: %s", key, resp.Code, resp.Msg)
			}
			return nil
		})
	if cfg.json {
		b, err := json.Marshal(s)
		if err != nil {
			return cli.Exit(err.Error(), 1)
		}
		fmt.Fprintln(c.App.Writer, string(b))
	} else {
		fmt.Fprintln(c.App.Writer, s)
	}
	if why := s.Incomplete(); why != "" {
		return cli.Exit("bench: fill: "+why, 1)
	}
	return nil
}

// progress prints a line a second until the workers are done; --timeout after the end it
// gives up on the requests still unanswered.
func (r *benchRun) progress(errw io.Writer, start, end time.Time, done <-chan struct{}, cancel func()) {
	giveUp := time.AfterFunc(time.Until(end)+r.cfg.timeout, cancel)
	defer giveUp.Stop()
	benchreport.Progress(errw, start, done, func() (ops, errs int64) {
		for _, w := range r.workers {
			ops += w.ops.Load()
			errs += w.errs.Load()
		}
		return ops, errs
	})
}

func benchMixString(w [benchNumOps]int) string {
	var parts []string
	for i, n := range w {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", benchOpNames[i], n))
		}
	}
	return strings.Join(parts, ",")
}

func (r *benchRun) summary(elapsed time.Duration) benchreport.Summary {
	s := benchreport.Summary{Clients: r.cfg.clients, Conns: r.cfg.conns, Mix: benchMixString(r.cfg.weights),
		DurationS: benchreport.Round3(elapsed.Seconds()), Codes: map[string]int64{}, ByOp: map[string]benchreport.OpStats{}}
	var codes [256]int64
	var all []time.Duration
	var errs int64
	for op := range benchNumOps {
		if r.cfg.weights[op] == 0 {
			continue
		}
		var lat []time.Duration
		var opErrs int64
		for _, w := range r.workers {
			lat = append(lat, w.lat[op]...)
			opErrs += w.opErrs[op]
		}
		s.ByOp[benchOpNames[op]] = benchreport.Stats(lat, opErrs, elapsed)
		all = append(all, lat...)
		errs += opErrs
	}
	for _, w := range r.workers {
		for code, n := range w.codes {
			codes[code] += n
		}
		s.TransportErrors += w.transport
	}
	for code, n := range codes {
		if n > 0 {
			s.Codes[strconv.Itoa(code)] = n
		}
	}
	s.Timeouts = codes[api.CodeTimeout]
	s.OpStats = benchreport.Stats(all, errs, elapsed)
	return s
}

func printBenchSummary(w io.Writer, s benchreport.Summary) {
	fmt.Fprintf(w, "%d ops in %.2fs: %.0f ops/s (%d clients, %d connection(s), mix %s)\n",
		s.Ops, s.DurationS, s.OpsPerS, s.Clients, s.Conns, s.Mix)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tops\tops/s\tp50\tp99\tmax\terrors\t")
	row := func(name string, st benchreport.OpStats) {
		lat := func(d time.Duration) string {
			if !st.Has {
				return "-"
			}
			return d.Round(time.Microsecond).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t\n", name, st.Ops, st.OpsPerS,
			lat(st.P50), lat(st.P99), lat(st.Max), st.Errors)
	}
	for _, name := range benchOpNames {
		if st, ok := s.ByOp[name]; ok {
			row(name, st)
		}
	}
	row("all", s.OpStats)
	tw.Flush()
	var other []string
	var nOther int64
	for code := 1; code < 256; code++ {
		if n := s.Codes[strconv.Itoa(code)]; n > 0 && code != api.CodeTimeout {
			nOther += n
			other = append(other, fmt.Sprintf("%d: %d", code, n))
		}
	}
	line := fmt.Sprintf("exit codes: 0 (ok): %d, 2 (timeout): %d, others: %d", s.Codes["0"], s.Timeouts, nOther)
	if len(other) > 0 {
		line += " (" + strings.Join(other, ", ") + ")"
	}
	fmt.Fprintln(w, line)
	if s.TransportErrors > 0 {
		fmt.Fprintf(w, "transport errors (no answer from an agent): %d\n", s.TransportErrors)
	}
}
