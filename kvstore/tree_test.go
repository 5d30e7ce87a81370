package kvstore

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// naiveList is List as it was before the tree: a scan of every key. It is the model
// List is checked against, and the baseline of BenchmarkList.
func naiveList(keys map[string]bool, dir string) ([]string, bool) {
	prefix := ""
	if dir != "" {
		prefix = strings.TrimSuffix(dir, "/") + "/"
	}
	seen := map[string]bool{}
	for k := range keys {
		if strings.HasPrefix(k, prefix) {
			name, _, _ := strings.Cut(k[len(prefix):], "/")
			seen[name] = true
		}
	}
	if len(seen) == 0 {
		return nil, false
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, true
}

// TestListAgainstModel: names that sort around "/" ("a", "a+b", "a.", "a0", "a/b"), deep
// folders and single keys, every folder listed and compared with a full scan.
func TestListAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		s, keys := New(), map[string]bool{}
		parts := []string{"a", "a+b", "a.", "a0", "b", "a-", "z"}
		for i := 0; i < 300; i++ {
			depth := 1 + rng.IntN(4)
			var p []string
			for d := 0; d < depth; d++ {
				p = append(p, parts[rng.IntN(len(parts))])
			}
			k := strings.Join(p, "/")
			if rng.IntN(5) == 0 {
				s.Apply(uint64(i+1), Command{Op: OpUnset, Key: k})
				delete(keys, k)
			} else {
				s.Apply(uint64(i+1), Command{Op: OpSet, Key: k, Value: []byte("v")})
				keys[k] = true
			}
		}
		dirs := map[string]bool{"": true}
		for k := range keys {
			for i := range k {
				if k[i] == '/' {
					dirs[k[:i]] = true
				}
			}
			dirs[k] = true
		}
		dirs["nothing"], dirs["a/nothing"] = true, true
		for d := range dirs {
			got, ok := s.List(d)
			want, wok := naiveList(keys, d)
			if ok != wok || !slices.Equal(got, want) {
				t.Fatalf("seed %d: List(%q) = %v %v, want %v %v", seed, d, got, ok, want, wok)
			}
		}
	}
}

// TestCloneIsolated: a clone keeps the state it was taken at while the original goes
// on, and can be written out by another goroutine meanwhile (run with -race).
func TestCloneIsolated(t *testing.T) {
	s := New()
	for i := uint64(1); i <= 2000; i++ {
		s.Apply(i, Command{Op: OpSet, ClientID: i%7 + 1, Seq: i, Key: fmt.Sprintf("k/%d", i), Value: []byte("old")})
	}
	want := s.Snapshot()
	c := s.Clone()
	var wg sync.WaitGroup
	var streamed bytes.Buffer
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.WriteSnapshot(&streamed)
	}()
	for i := uint64(2001); i <= 4000; i++ {
		s.Apply(i, Command{Op: OpSet, ClientID: i%7 + 1, Seq: i, Key: fmt.Sprintf("k/%d", i%3000), Value: []byte("new")})
		s.Apply(i, Command{Op: OpUnset, Key: fmt.Sprintf("k/%d", i%500)})
	}
	wg.Wait()
	if !bytes.Equal(streamed.Bytes(), want) || !bytes.Equal(c.Snapshot(), want) {
		t.Fatal("the clone changed with the original")
	}
	if bytes.Equal(s.Snapshot(), want) {
		t.Fatal("the original did not change")
	}
}

func fill(b *testing.B, n int) (*Store, map[string]bool) {
	b.Helper()
	s, keys := New(), map[string]bool{}
	v := bytes.Repeat([]byte("x"), 100)
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("d%04d/k%07d", i%10000, i)
		s.Apply(uint64(i+1), Command{Op: OpSet, Key: k, Value: v})
		keys[k] = true
	}
	return s, keys
}

// BenchmarkList lists a folder of 20 names among 200,000 keys; BenchmarkListNaive is the
// scan List used to be, for the ratio.
func BenchmarkList(b *testing.B) {
	s, _ := fill(b, 200_000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if names, _ := s.List("d0042"); len(names) != 20 {
			b.Fatal(len(names))
		}
	}
}

func BenchmarkListNaive(b *testing.B) {
	_, keys := fill(b, 200_000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if names, _ := naiveList(keys, "d0042"); len(names) != 20 {
			b.Fatal(len(names))
		}
	}
}

// BenchmarkClone is what the loop pays for a snapshot now: O(1), whatever the size.
func BenchmarkClone(b *testing.B) {
	s, _ := fill(b, 200_000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Clone()
	}
}

// BenchmarkWriteSnapshot streams 200,000 keys (about 24 MB) from a clone.
func BenchmarkWriteSnapshot(b *testing.B) {
	s, _ := fill(b, 200_000)
	c := s.Clone()
	var n countingWriter
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n = 0
		c.WriteSnapshot(&n)
	}
	b.SetBytes(int64(n))
}

type countingWriter int

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}

// BenchmarkRestore reads the same 200,000 keys back from a stream, as an agent does at
// start and when it installs a snapshot from the leader.
func BenchmarkRestore(b *testing.B) {
	s, _ := fill(b, 200_000)
	data := s.Snapshot()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Restore(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
