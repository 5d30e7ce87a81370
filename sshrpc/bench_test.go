package sshrpc

import (
	"context"
	"sync"
	"testing"
	"time"

	"lite-raft/internal/harness"
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

// benchThroughput sends 1 MiB requests, 8 in flight, each answered with an empty
// acknowledgement (type 2), so the data crosses the stream once.
func benchThroughput(b *testing.B, c *Conn) {
	payload := make([]byte, 1<<20)
	b.SetBytes(int64(len(payload)))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if f, err := c.Call(context.Background(), 2, payload); err != nil || len(f.Payload) != 0 {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
}

// benchHandler echoes requests of type 1 and acknowledges those of type 2 (throughput)
// with an empty answer; echoagent does the same on harness hosts.
func benchHandler(c *Conn, f Frame) {
	if f.Kind != KindRequest {
		return
	}
	if f.Type == 2 {
		c.Reply(f.ID, f.Type, nil)
		return
	}
	c.Reply(f.ID, f.Type, f.Payload)
}

func BenchmarkUnixSocket(b *testing.B) {
	_, path, _ := startServer(b, benchHandler, 0)
	c, err := DialUnix(path, ConnOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.Run("RoundTrip1", func(b *testing.B) { benchOneCaller(b, c) })
	b.Run("RoundTrip64", func(b *testing.B) { benchPipelined(b, c, 64) })
	b.Run("Throughput1MiB", func(b *testing.B) { benchThroughput(b, c) })
}

// BenchmarkSSHSession runs the same workloads over one SSH session to a harness host
// (real sshd, the real `lite-raft rpc` bridge, echoagent behind it). It needs root; run
// it next to BenchmarkUnixSocket to compare: go test -run '^$' -bench . ./sshrpc/
func BenchmarkSSHSession(b *testing.B) {
	_, d := sshSetup(b, 1, harness.Options{})
	p := NewPeer("host1", d, rpcCommand(), ConnOptions{})
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c, err := p.Conn(ctx)
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("RoundTrip1", func(b *testing.B) { benchOneCaller(b, c) })
	b.Run("RoundTrip64", func(b *testing.B) { benchPipelined(b, c, 64) })
	b.Run("Throughput1MiB", func(b *testing.B) { benchThroughput(b, c) })
}
