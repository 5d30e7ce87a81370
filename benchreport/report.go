package benchreport

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// OpStats are the figures of one operation, or of all.
type OpStats struct {
	Ops     int     `json:"ops"`
	OpsPerS float64 `json:"ops_per_s"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
	Errors  int64   `json:"errors"`
	// the same latencies unrounded, for printing; Has is false when there were none
	P50, P99, Max time.Duration `json:"-"`
	Has           bool          `json:"-"`
}

// Summary is what a load generator prints at the end (--json: as is).
type Summary struct {
	Clients   int     `json:"clients"`
	Conns     int     `json:"conns"`
	Mix       string  `json:"mix"`
	DurationS float64 `json:"duration_s"`
	OpStats
	Timeouts int64 `json:"timeouts"`
	// requests that got no answer from the server at all
	TransportErrors int64              `json:"transport_errors"`
	Codes           map[string]int64   `json:"codes"`
	ByOp            map[string]OpStats `json:"by_op"`
}

// Stats sorts lat (every request's latency, failed ones included) and sums it up.
func Stats(lat []time.Duration, errs int64, elapsed time.Duration) OpStats {
	slices.Sort(lat)
	s := OpStats{Ops: len(lat), Errors: errs, OpsPerS: Round3(float64(len(lat)) / elapsed.Seconds())}
	if len(lat) == 0 {
		return s
	}
	s.Has = true
	s.P50, s.P99, s.Max = Percentile(lat, 50), Percentile(lat, 99), lat[len(lat)-1]
	s.P50Ms, s.P99Ms, s.MaxMs = Ms(s.P50), Ms(s.P99), Ms(s.Max)
	return s
}

// Percentile is the nearest-rank percentile of sorted, non-empty values.
func Percentile[T any](sorted []T, p int) T {
	i := (len(sorted)*p + 99) / 100 // ceil(n*p/100)
	return sorted[max(i, 1)-1]
}

// Ms is d in milliseconds, to the microsecond.
func Ms(d time.Duration) float64 { return Round3(float64(d) / float64(time.Millisecond)) }

// Round3 rounds to three decimals.
func Round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// Values makes the values one client writes: size bytes, the last (up to) 16 of them a
// counter in hex that steps by the number of clients from the client's number, so no two
// writes of a run carry the same value (with values of 16 bytes or more).
type Values struct {
	buf           []byte
	counter, step uint64
}

// NewValues prepares the values of client number client out of clients.
func NewValues(size, client, clients int) *Values {
	v := &Values{buf: make([]byte, size), counter: uint64(client), step: uint64(clients)}
	for i := range v.buf {
		v.buf[i] = 'v'
	}
	return v
}

// Next rewrites the buffer with the next value and returns it: the caller must be done
// with the previous one.
func (v *Values) Next() []byte {
	v.counter += v.step
	c := v.counter
	for i := len(v.buf) - 1; i >= 0 && i >= len(v.buf)-16; i-- {
		v.buf[i] = "0123456789abcdef"[c&15]
		c >>= 4
	}
	return v.buf
}

// OnInterrupt handles Ctrl-C during a run: the first sets stop (start no more
// requests), the second calls cancel (give up on those in flight). Call the function it
// returns when the run is over.
func OnInterrupt(stop *atomic.Bool, cancel func()) (release func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sigs:
				if stop.Swap(true) {
					cancel()
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// Progress prints a line to w every second, from the counts so far, until done closes.
func Progress(w io.Writer, start time.Time, done <-chan struct{}, counts func() (ops, errs int64)) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastOps int64
	last := start
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			ops, errs := counts()
			rate := float64(ops-lastOps) / now.Sub(last).Seconds()
			fmt.Fprintf(w, "%5.1fs  %9d ops  %9.0f ops/s  %d errors\n", now.Sub(start).Seconds(), ops, rate, errs)
			lastOps, last = ops, now
		}
	}
}

// Start runs loop(i) for i from 0 to n-1, each on a goroutine of its own, and returns a
// channel that is closed once all of them have returned.
func Start(n int, loop func(i int)) <-chan struct{} {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(i)
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// Prepopulate writes every key once before a timed run, the keys split among n workers
// writing at once: set(i, key) is worker i's write. It stops early once stop is set, and
// returns how many writes failed and the first failure.
func Prepopulate(keys []string, n int, stop *atomic.Bool, set func(i int, key string) error) (int64, error) {
	var failed atomic.Int64
	var first atomic.Pointer[error]
	<-Start(n, func(i int) {
		for k := i; k < len(keys) && !stop.Load(); k += n {
			if err := set(i, keys[k]); err != nil {
				failed.Add(1)
				first.CompareAndSwap(nil, &err)
			}
		}
	})
	if p := first.Load(); p != nil {
		return failed.Load(), *p
	}
	return 0, nil
}

// Quiet is how long after the kill a Gap waits for a failed write before it concludes
// that the kill interrupted no write at all.
const Quiet = 5 * time.Second

// Gap measures the write-availability gap after a leader is killed at T0, as `make bench`
// defines it for both systems. A probe writes one write at a time and reports each with
// Add. The gap runs from T0 to the end of the first write that succeeded and started
// after the end of the first write that failed and ended after T0. If no write failed
// within Quiet after T0, it runs to the end of the first write that succeeded and
// started after T0 (NoFailure).
type Gap struct {
	T0 time.Time
	// Failed counts the failed writes that ended after T0.
	Failed    int
	NoFailure bool

	failEnd, firstOK time.Time
}

// Add records a write that ran from start to end and succeeded or not; it returns the
// gap and true once the gap is known.
func (g *Gap) Add(start, end time.Time, ok bool) (time.Duration, bool) {
	if !end.After(g.T0) {
		return 0, false
	}
	if !ok {
		g.Failed++
		if g.failEnd.IsZero() {
			g.failEnd = end
		}
		return 0, false
	}
	if !g.failEnd.IsZero() && start.After(g.failEnd) {
		return end.Sub(g.T0), true
	}
	if g.firstOK.IsZero() && !start.Before(g.T0) {
		g.firstOK = end
	}
	if g.failEnd.IsZero() && !g.firstOK.IsZero() && end.Sub(g.T0) >= Quiet {
		g.NoFailure = true
		return g.firstOK.Sub(g.T0), true
	}
	return 0, false
}
