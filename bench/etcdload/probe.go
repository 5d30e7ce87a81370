package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"lite-raft/benchreport"
)

const (
	probeKey = "bench/probe"
	// probeTimeout bounds each put, so that a put stuck on the dead leader becomes a
	// failure quickly and the next one can go to a live member.
	probeTimeout = 500 * time.Millisecond
	// probeGiveUp is how long after "go" writes may stay unavailable before the probe
	// reports a cluster that did not recover.
	probeGiveUp = 30 * time.Second
)

// probeResult is the one JSON line the probe prints.
type probeResult struct {
	RecoveryMs   float64 `json:"recovery_ms"`
	FailedWrites int     `json:"failed_writes"`
	NoFailure    bool    `json:"no_failure,omitempty"`
	// MaxPutMs is the slowest put that ended after "go": when no put failed, it is the
	// stall the clients saw instead.
	MaxPutMs float64 `json:"max_put_ms"`
}

// runProbe measures the write-availability gap of a leader failure as a client sees it.
//
// It puts bench/probe in a loop, one put at a time, each with a timeout of 500ms (or
// --timeout if shorter). When the line "go" arrives on stdin it records t0 (the caller
// kills the leader right after). recovery_ms is then the gap as benchreport.Gap defines
// it for both systems of make bench (no_failure when no put failed within
// benchreport.Quiet); failed_writes counts the failed puts that ended after t0.
//
// The gap is measured from t0 rather than from the actual kill so that the caller needs
// no clock shared with the probe; it includes the kill's own latency, a few ms at most.
// If no put succeeds within 30 s after t0 (after a failure), the probe exits 1.
func runProbe(cfg config, stdin io.Reader, stdout, errw io.Writer) error {
	cl, err := newClient(cfg.endpoints, true)
	if err != nil {
		return err
	}
	defer cl.Close()
	timeout := min(probeTimeout, cfg.timeout)

	// The reader stamps t0 when the line arrives, not when the loop notices it: a put
	// can be in flight for up to timeout then.
	goCh := make(chan time.Time, 1)
	eofCh := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "go" {
				goCh <- time.Now()
				return
			}
		}
		eofCh <- sc.Err()
	}()

	var (
		armed, wroteOnce bool
		gap              benchreport.Gap
		maxPut           time.Duration
		firstErr         string
	)
	fmt.Fprintf(errw, "etcdload: probing %v with puts of %s (timeout %v); write \"go\" on stdin before the kill\n",
		cfg.endpoints, probeKey, timeout)
	for n := uint64(0); ; n++ {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		_, err := cl.Put(ctx, probeKey, strconv.FormatUint(n, 10))
		cancel()
		end := time.Now()

		if !armed {
			select {
			case gap.T0 = <-goCh:
				armed = true
				fmt.Fprintf(errw, "etcdload: go after %d puts\n", n)
			case err := <-eofCh:
				if err == nil {
					return fail("stdin closed before \"go\"")
				}
				return fail("reading stdin: %v", err)
			default:
			}
		}
		if !armed {
			if err == nil && !wroteOnce {
				wroteOnce = true
				fmt.Fprintf(errw, "etcdload: first put ok (%v)\n", end.Sub(start).Round(time.Microsecond))
			}
			if err != nil && firstErr == "" {
				firstErr = err.Error()
				fmt.Fprintf(errw, "etcdload: put failed before go: %v\n", err)
			}
			continue
		}

		if end.After(gap.T0) {
			maxPut = max(maxPut, end.Sub(start))
		}
		if err != nil && end.After(gap.T0) && gap.Failed == 0 {
			fmt.Fprintf(errw, "etcdload: first failed put %v after go: %v\n", end.Sub(gap.T0).Round(time.Millisecond), err)
		}
		if d, known := gap.Add(start, end, err == nil); known {
			return printProbe(stdout, probeResult{RecoveryMs: benchreport.Ms(d), FailedWrites: gap.Failed,
				NoFailure: gap.NoFailure, MaxPutMs: benchreport.Ms(maxPut)})
		}
		if end.Sub(gap.T0) >= probeGiveUp {
			return fail("no write succeeded within %v after go (%d failed puts); last error: %v", probeGiveUp, gap.Failed, err)
		}
	}
}

func printProbe(w io.Writer, r probeResult) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fail("%v", err)
	}
	fmt.Fprintln(w, string(b))
	return nil
}

// runLeader prints the endpoint, as given, whose member is the leader it reports itself;
// it polls until --timeout since right after a kill no member may know a leader yet.
func runLeader(cfg config, stdout io.Writer) error {
	// not blocking: a dead endpoint among the others must not fail the whole look-up
	cl, err := newClient(cfg.endpoints, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(cfg.timeout)
	var lastErr error
	for {
		for _, ep := range cfg.endpoints {
			d := time.Now().Add(time.Second)
			if d.After(deadline) {
				d = deadline
			}
			ctx, cancel := context.WithDeadline(context.Background(), d)
			st, err := cl.Status(ctx, ep)
			cancel()
			if err != nil {
				lastErr = fmt.Errorf("%s: %w", ep, err)
				continue
			}
			if st.Header != nil && st.Leader != 0 && st.Header.MemberId == st.Leader {
				fmt.Fprintln(stdout, ep)
				return nil
			}
		}
		if time.Now().Add(100 * time.Millisecond).After(deadline) {
			if lastErr != nil {
				return fail("no leader among %v within %v (last error: %v)", cfg.endpoints, cfg.timeout, lastErr)
			}
			return fail("no leader among %v within %v", cfg.endpoints, cfg.timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
