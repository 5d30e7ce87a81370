package benchreport

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFillBytes(t *testing.T) {
	for _, keys := range []int{0, 1, 9, 10, 11, 99, 100, 1234, 100000} {
		var want int64
		for i := range keys {
			want += int64(len(FillKey("bench/s", i)) + 1024)
		}
		if got := FillBytes("bench/s", keys, 1024); got != want {
			t.Errorf("FillBytes(%d keys) = %d, want %d", keys, got, want)
		}
	}
}

func TestFillWritesEveryKeyOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	var progress bytes.Buffer
	var stop atomic.Bool
	s := Fill(FillConfig{Keys: 1000, Prefix: "p/", ValueSize: 10, Workers: 7, Attempts: 3, Progress: &progress, Label: "t"},
		&stop, func(_ int, key string) error {
			mu.Lock()
			defer mu.Unlock()
			seen[key]++
			return nil
		})
	if len(seen) != 1000 || s.Written != 1000 || s.Failed != 0 || s.Retries != 0 || s.Stopped != "" {
		t.Fatalf("%d distinct keys, summary %+v", len(seen), s)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s written %d times", k, n)
		}
	}
	if s.Bytes != FillBytes("p/", 1000, 10) || s.Latency.Ops != 1000 || s.Clients != 7 || s.Incomplete() != "" {
		t.Errorf("summary %+v", s)
	}
	if !strings.HasPrefix(s.String(), "1000 of 1000 keys written in ") {
		t.Errorf("text summary %q", s.String())
	}
	// the last line is printed when the fill ends, whatever the interval
	if !strings.Contains(progress.String(), "t: fill 1000/1000 keys (100.0%)") {
		t.Errorf("progress %q", progress.String())
	}
}

func TestFillRetriesAndGivesUp(t *testing.T) {
	var calls atomic.Int64
	var stop atomic.Bool
	// every key fails its first attempt and succeeds on the second
	var mu sync.Mutex
	tried := map[string]bool{}
	s := Fill(FillConfig{Keys: 50, Prefix: "k", Workers: 3, Attempts: 2}, &stop, func(_ int, key string) error {
		calls.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if !tried[key] {
			tried[key] = true
			return errors.New("timeout")
		}
		return nil
	})
	if s.Written != 50 || s.Failed != 0 || s.Retries != 50 || calls.Load() != 100 || s.Latency.Errors != 50 {
		t.Errorf("retried fill: %+v (%d calls)", s, calls.Load())
	}

	// a cluster that refuses everything: the fill ends at MaxFailed, not after every key
	calls.Store(0)
	s = Fill(FillConfig{Keys: 100000, Prefix: "k", Workers: 4, Attempts: 2, MaxFailed: 10}, &stop, func(int, string) error {
		calls.Add(1)
		return errors.New("no leader")
	})
	if s.Written != 0 || s.Failed < 10 || s.Failed > 13 || s.FirstError != "no leader" || !strings.HasPrefix(s.Stopped, "gave up after ") {
		t.Errorf("failing fill: %+v", s)
	}
	if why := s.Incomplete(); !strings.HasPrefix(why, "100000 keys not written (") || !strings.HasSuffix(why, "failed keys); first failure: no leader") {
		t.Errorf("Incomplete() = %q", why)
	}

	stop.Store(true)
	if s := Fill(FillConfig{Keys: 10, Prefix: "k", Workers: 2}, &stop, func(int, string) error { return nil }); s.Written != 0 || s.Stopped != "interrupted" {
		t.Errorf("stopped fill: %+v", s)
	}
}

func TestFillProgressLine(t *testing.T) {
	got := FillProgressLine("bench", 250000, 500000, 256_000_000, 12345.6, 2, 21*time.Second)
	want := "bench: fill 250000/500000 keys (50.0%), 256.0 MB, 12346 keys/s, 2 failed, 21s"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
