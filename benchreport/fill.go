package benchreport

import (
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"
)

// MB is the megabyte of the fill's and the scale workload's figures: 10^6 bytes, so that
// 500,000 keys of 1 KB are "512 MB" and not a figure in MiB that reads as a different size.
const MB = 1e6

// FillConfig is a fill: every key of Prefix0 ... Prefix<Keys-1> written once, by Workers
// clients at once.
type FillConfig struct {
	Keys      int
	Prefix    string
	ValueSize int
	Workers   int
	// Attempts is how many times a key is tried before it counts as failed (at least 1):
	// a write that timed out once during a leader change should not leave a hole.
	Attempts int
	// MaxFailed stops the fill once that many keys have failed (0: never), so that a
	// cluster that is down ends the fill in seconds instead of after every key's timeouts.
	MaxFailed int
	// Every is the interval of the progress lines written to Progress (nil: none).
	Every    time.Duration
	Progress io.Writer
	// Label starts every progress line ("bench", "etcdload").
	Label string
}

// FillSummary is what a fill prints at the end (--json: as is). Latency counts every
// attempt, failed ones included, like the timed runs.
type FillSummary struct {
	Keys       int     `json:"keys"`
	Written    int64   `json:"written"`
	Failed     int64   `json:"failed"`
	Retries    int64   `json:"retries"`
	Clients    int     `json:"clients"`
	ValueSize  int     `json:"value_size"`
	Bytes      int64   `json:"bytes"` // keys and values of the keys written
	DurationS  float64 `json:"duration_s"`
	KeysPerS   float64 `json:"keys_per_s"`
	MBPerS     float64 `json:"mb_per_s"`
	Latency    OpStats `json:"latency"`
	FirstError string  `json:"first_error,omitempty"`
	// Stopped says why the fill ended before every key was tried (empty: it did not).
	Stopped string `json:"stopped,omitempty"`
}

// String is the summary as one line of text (without --json).
func (s FillSummary) String() string {
	return fmt.Sprintf("%d of %d keys written in %.2fs: %.0f keys/s, %.1f MB/s; latency p50 %.3fms p99 %.3fms max %.3fms; %d retries, %d failed",
		s.Written, s.Keys, s.DurationS, s.KeysPerS, s.MBPerS, s.Latency.P50Ms, s.Latency.P99Ms, s.Latency.MaxMs, s.Retries, s.Failed)
}

// Incomplete says why not every key was written, or "" if every one was.
func (s FillSummary) Incomplete() string {
	if s.Written >= int64(s.Keys) {
		return ""
	}
	why := fmt.Sprintf("%d keys not written", int64(s.Keys)-s.Written)
	if s.Stopped != "" {
		why += " (" + s.Stopped + ")"
	}
	if s.FirstError != "" {
		why += "; first failure: " + s.FirstError
	}
	return why
}

// FillKey is the key number i of a fill with that prefix.
func FillKey(prefix string, i int) string { return prefix + strconv.Itoa(i) }

// FillBytes is how many bytes of keys and values a complete fill writes: what the store
// holds afterwards, its live data, whatever its own overhead.
func FillBytes(prefix string, keys, valueSize int) int64 {
	var n int64
	// by number of digits (keys lo..hi-1 have the same length) rather than key by key
	lo, hi := 0, 10
	for digits := 1; lo < keys; digits++ {
		n += int64(min(hi, keys)-lo) * int64(len(prefix)+digits+valueSize)
		lo, hi = hi, hi*10
	}
	return n
}

// FillProgressLine is one progress line: done of total keys, bytes written so far, the
// rate since the previous line, the failures, the time since the start.
func FillProgressLine(label string, done, total int, bytes int64, rate float64, failed int64, elapsed time.Duration) string {
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	return fmt.Sprintf("%s: fill %d/%d keys (%.1f%%), %.1f MB, %.0f keys/s, %d failed, %.0fs",
		label, done, total, pct, float64(bytes)/MB, rate, failed, elapsed.Seconds())
}

// Fill writes every key once with cfg.Workers workers; set(i, key) is worker i's write of
// key (the worker makes the value). Keys are handed out in order from a shared counter,
// so a slow worker holds up no range of keys. It stops early once stop is set or
// cfg.MaxFailed keys have failed.
func Fill(cfg FillConfig, stop *atomic.Bool, set func(worker int, key string) error) FillSummary {
	attempts := max(cfg.Attempts, 1)
	var next, written, failed, retries, bytes atomic.Int64
	var firstErr atomic.Pointer[error]
	var tooMany atomic.Bool
	lats := make([][]time.Duration, cfg.Workers)
	start := time.Now()
	done := Start(cfg.Workers, func(w int) {
		lat := make([]time.Duration, 0, cfg.Keys/max(cfg.Workers, 1)+16)
		defer func() { lats[w] = lat }()
		for !stop.Load() && !tooMany.Load() {
			i := int(next.Add(1) - 1)
			if i >= cfg.Keys {
				return
			}
			key := FillKey(cfg.Prefix, i)
			var err error
			for a := range attempts {
				if a > 0 {
					retries.Add(1)
				}
				t0 := time.Now()
				err = set(w, key)
				lat = append(lat, time.Since(t0))
				if err == nil || stop.Load() {
					break
				}
			}
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
				if n := failed.Add(1); cfg.MaxFailed > 0 && n >= int64(cfg.MaxFailed) {
					tooMany.Store(true)
				}
				continue
			}
			written.Add(1)
			bytes.Add(int64(len(key) + cfg.ValueSize))
		}
	})
	if cfg.Progress != nil {
		every := cfg.Every
		if every <= 0 {
			every = 2 * time.Second
		}
		fillProgress(cfg, every, start, done, func() (int, int64, int64) {
			return int(written.Load() + failed.Load()), bytes.Load(), failed.Load()
		})
	} else {
		<-done
	}
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	s := FillSummary{Keys: cfg.Keys, Written: written.Load(), Failed: failed.Load(), Retries: retries.Load(),
		Clients: cfg.Workers, ValueSize: cfg.ValueSize, Bytes: bytes.Load(),
		DurationS: Round3(elapsed.Seconds()),
		KeysPerS:  Round3(float64(written.Load()) / elapsed.Seconds()),
		MBPerS:    Round3(float64(bytes.Load()) / MB / elapsed.Seconds()),
		Latency:   Stats(all, retries.Load()+failed.Load(), elapsed)}
	if p := firstErr.Load(); p != nil {
		s.FirstError = (*p).Error()
	}
	switch {
	case tooMany.Load():
		s.Stopped = fmt.Sprintf("gave up after %d failed keys", s.Failed)
	case stop.Load():
		s.Stopped = "interrupted"
	}
	return s
}

// fillProgress prints a line every interval until done closes, and a last one then.
func fillProgress(cfg FillConfig, every time.Duration, start time.Time, done <-chan struct{}, counts func() (int, int64, int64)) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	last, lastDone := start, 0
	line := func(now time.Time) {
		n, b, f := counts()
		rate := float64(n-lastDone) / max(now.Sub(last).Seconds(), 1e-9)
		fmt.Fprintln(cfg.Progress, FillProgressLine(cfg.Label, n, cfg.Keys, b, rate, f, now.Sub(start)))
		last, lastDone = now, n
	}
	for {
		select {
		case <-done:
			line(time.Now())
			return
		case now := <-tick.C:
			line(now)
		}
	}
}
