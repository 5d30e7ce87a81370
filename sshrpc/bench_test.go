package sshrpc

import (
	"context"
	"sync"
	"testing"
)

// The benchmarks run the same three workloads over a plain unix socket and over one SSH
// session (in ssh_test.go), so their ratio shows what SSH costs:
//   - round trips with one caller, one call at a time;
//   - round trips with 64 callers pipelining on one stream;
//   - MB/s of 1 MiB frames sent one way.

func benchOneCaller(b *testing.B, c *Conn) {
	payload := make([]byte, 64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Call(context.Background(), 1, payload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

func benchPipelined(b *testing.B, c *Conn, callers int) {
	payload := make([]byte, 64)
	var wg sync.WaitGroup
	per := (b.N + callers - 1) / callers
	b.ResetTimer()
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if _, err := c.Call(context.Background(), 1, payload); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(per*callers)/b.Elapsed().Seconds(), "calls/s")
}

// benchThroughput sends 1 MiB one-way frames and waits until the other end counted them.
func benchThroughput(b *testing.B, c *Conn, received func() int) {
	payload := make([]byte, 1<<20)
	base := received()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Send(2, payload); err != nil {
			b.Fatal(err)
		}
	}
	// a round trip after the last frame: the stream is ordered, so all were read
	if _, err := c.Call(context.Background(), 1, nil); err != nil {
		b.Fatal(err)
	}
	if got := received() - base; got != b.N {
		b.Fatalf("received %d frames, sent %d", got, b.N)
	}
}

// countingHandler echoes requests and counts one-way frames without keeping them.
type countingHandler struct {
	mu sync.Mutex
	n  int
}

func (h *countingHandler) handle(c *Conn, f Frame) {
	if f.Kind == KindRequest {
		c.Reply(f.ID, f.Type, f.Payload)
		return
	}
	h.mu.Lock()
	h.n++
	h.mu.Unlock()
}

func (h *countingHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

func BenchmarkUnixSocket(b *testing.B) {
	h := &countingHandler{}
	_, path, _ := startServer(b, h.handle, 0)
	c, err := DialUnix(path, ConnOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.Run("RoundTrip1", func(b *testing.B) { benchOneCaller(b, c) })
	b.Run("RoundTrip64", func(b *testing.B) { benchPipelined(b, c, 64) })
	b.Run("Throughput1MiB", func(b *testing.B) { benchThroughput(b, c, h.count) })
}
