package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

const usageText = `usage:
  etcdload --endpoints HOST:PORT[,...] [--clients N] [--duration D] [--op set|get|cas]
           [--value-size BYTES] [--keys N] [--key-prefix P] [--timeout D] [--conns N] [--json]
  etcdload --endpoints HOST:PORT[,...] --fill [--keys N] [--key-prefix P] [--value-size BYTES]
           [--clients N] [--conns N] [--timeout D] [--json]
  etcdload --endpoints HOST:PORT[,...] --failover-probe [--timeout D]
  etcdload --endpoints HOST:PORT[,...] --leader [--timeout D]
  etcdload --endpoints HOST:PORT[,...] --status [--timeout D]
  etcdload --endpoints HOST:PORT[,...] --wait-caught-up HOST:PORT [--max-lag N] [--timeout D]
  etcdload --endpoints HOST:PORT[,...] --add-learner NAME=PEER-URL [--timeout D]
  etcdload --endpoints HOST:PORT[,...] --promote MEMBER-ID [--timeout D]

flags:
`

// Limits on the sizes given on the command line: beyond them the run would only exhaust
// memory (or exceed etcd's default 1.5 MiB request limit), so they are refused up front.
const (
	maxClients   = 100000
	maxKeys      = 10000000
	maxValueSize = 1 << 20 // as lite-raft's api.MaxValueLen
)

// config is the parsed command line.
type config struct {
	endpoints         []string
	clients, conns    int
	keys, valueSize   int
	keyPrefix         string
	duration, timeout time.Duration
	op                int
	json              bool
	probe, leader     bool
	fill, status      bool
	waitCaughtUp      string // the endpoint whose catch-up is awaited
	maxLag            uint64
	addLearner        string // NAME=PEER-URL
	promote           string // member ID in hex
}

// usageError is a bad command line: usage and exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitError ends the program with a message and a code.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

func fail(format string, a ...any) error {
	return exitError{1, fmt.Sprintf(format, a...)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("etcdload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	cfg, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "etcdload: %s\n", ue.msg)
			fs.Usage()
		}
		// errors of the flag package itself were already printed with the usage
		return 2
	}
	switch {
	case cfg.leader:
		err = runLeader(cfg, stdout)
	case cfg.probe:
		err = runProbe(cfg, stdin, stdout, stderr)
	case cfg.status:
		err = runStatus(cfg, stdout)
	case cfg.waitCaughtUp != "":
		err = runWaitCaughtUp(cfg, stdout, stderr)
	case cfg.addLearner != "":
		err = runAddLearner(cfg, stdout)
	case cfg.promote != "":
		err = runPromote(cfg, stdout, stderr)
	case cfg.fill:
		err = runFill(cfg, stdout, stderr)
	default:
		err = runBench(cfg, stdout, stderr)
	}
	if err != nil {
		code := 1
		var ee exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		fmt.Fprintf(stderr, "etcdload: %v\n", err)
		return code
	}
	return 0
}

func parseFlags(fs *flag.FlagSet, args []string) (config, error) {
	var cfg config
	endpoints := fs.String("endpoints", "", "comma-separated etcd client endpoints (required)")
	fs.IntVar(&cfg.clients, "clients", 16, "concurrent clients, each one request at a time")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long to run")
	op := fs.String("op", "set", "operation: set, get or cas")
	fs.IntVar(&cfg.valueSize, "value-size", 16, "bytes per value written")
	fs.IntVar(&cfg.keys, "keys", 1000, "size of the key space (bench/k0 ... bench/k<N-1>)")
	fs.StringVar(&cfg.keyPrefix, "key-prefix", "bench/k", "keys are `PREFIX`0 ... PREFIX<N-1>")
	fs.BoolVar(&cfg.fill, "fill", false, "put every key once, report the rate and exit")
	fs.BoolVar(&cfg.status, "status", false, "print every endpoint's status (raft index, db size) as JSON")
	fs.StringVar(&cfg.waitCaughtUp, "wait-caught-up", "", "wait until the member at `ENDPOINT` is within --max-lag of the leader's raft index")
	fs.Uint64Var(&cfg.maxLag, "max-lag", 1000, "--wait-caught-up: raft entries the member may lag")
	fs.StringVar(&cfg.addLearner, "add-learner", "", "add `NAME=PEER-URL` as a learner; print its ID and the initial cluster it must start with")
	fs.StringVar(&cfg.promote, "promote", "", "promote the learner `ID` (hex), retrying until it is in sync or --timeout")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "per-request timeout (--leader: overall)")
	fs.IntVar(&cfg.conns, "conns", 1, "etcd clients (gRPC connections) the clients are spread over")
	fs.BoolVar(&cfg.json, "json", false, "print the summary as one JSON object")
	fs.BoolVar(&cfg.probe, "failover-probe", false, "measure write unavailability after \"go\" on stdin")
	fs.BoolVar(&cfg.leader, "leader", false, "print the endpoint of the current leader")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	for _, ep := range strings.Split(*endpoints, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			cfg.endpoints = append(cfg.endpoints, ep)
		}
	}
	if len(cfg.endpoints) == 0 {
		return cfg, usageError{"--endpoints is required"}
	}
	var modes []string
	for _, m := range []struct {
		name string
		on   bool
	}{{"--failover-probe", cfg.probe}, {"--leader", cfg.leader}, {"--status", cfg.status}, {"--fill", cfg.fill},
		{"--wait-caught-up", cfg.waitCaughtUp != ""}, {"--add-learner", cfg.addLearner != ""}, {"--promote", cfg.promote != ""}} {
		if m.on {
			modes = append(modes, m.name)
		}
	}
	if len(modes) > 1 {
		return cfg, usageError{strings.Join(modes, " and ") + " exclude each other"}
	}
	if cfg.timeout <= 0 {
		return cfg, usageError{fmt.Sprintf("--timeout must be positive (got %v)", cfg.timeout)}
	}
	if cfg.addLearner != "" {
		if name, url, ok := strings.Cut(cfg.addLearner, "="); !ok || name == "" || url == "" {
			return cfg, usageError{fmt.Sprintf("--add-learner wants NAME=PEER-URL (got %q)", cfg.addLearner)}
		}
	}
	if cfg.promote != "" {
		if _, err := strconv.ParseUint(cfg.promote, 16, 64); err != nil {
			return cfg, usageError{fmt.Sprintf("--promote wants a member ID in hex (got %q)", cfg.promote)}
		}
	}
	if len(modes) == 1 && !cfg.fill {
		return cfg, nil
	}
	if cfg.keyPrefix == "" {
		return cfg, usageError{"--key-prefix must not be empty"}
	}
	for _, p := range []struct {
		name   string
		v, max int
	}{
		{"--clients", cfg.clients, maxClients},
		{"--conns", cfg.conns, maxClients},
		{"--keys", cfg.keys, maxKeys},
		{"--value-size", cfg.valueSize, maxValueSize},
	} {
		if p.v <= 0 || p.v > p.max {
			return cfg, usageError{fmt.Sprintf("%s must be between 1 and %d (got %d)", p.name, p.max, p.v)}
		}
	}
	if cfg.conns > cfg.clients {
		return cfg, usageError{fmt.Sprintf("--conns %d is more than --clients %d", cfg.conns, cfg.clients)}
	}
	if cfg.duration <= 0 {
		return cfg, usageError{fmt.Sprintf("--duration must be positive (got %v)", cfg.duration)}
	}
	switch *op {
	case "set":
		cfg.op = opSet
	case "get":
		cfg.op = opGet
	case "cas":
		cfg.op = opCAS
	default:
		return cfg, usageError{fmt.Sprintf("--op must be set, get or cas (got %q)", *op)}
	}
	return cfg, nil
}

// newClient connects to the endpoints. With block, it waits (DialTimeout at most) until
// one endpoint answers, so that a wrong address is reported at once rather than as a
// run of failed requests.
func newClient(endpoints []string, block bool) (*clientv3.Client, error) {
	c := clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 2 * time.Second,
		// A killed member leaves no one to close the TCP connection cleanly on some
		// paths; keepalives make gRPC notice a dead endpoint within about 2 s.
		DialKeepAliveTime:    time.Second,
		DialKeepAliveTimeout: time.Second,
		// The client's own warnings (retries, endpoint switches) would drown the
		// progress lines; errors are counted and the first one is reported instead.
		Logger: zap.NewNop(),
	}
	if block {
		c.DialOptions = []grpc.DialOption{grpc.WithBlock()}
	}
	cl, err := clientv3.New(c)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = errors.New("no endpoint answered within 2s")
		}
		return nil, fail("cannot connect to etcd at %s: %v", strings.Join(endpoints, ","), err)
	}
	return cl, nil
}
