package statefile

// Group commit figures: an Append of a batch is one write and one fsync, so its cost
// should be close to a plain write+fsync whatever the batch size, and entries/s should
// grow with the batch. Run:
//
//	go test -run '^$' -bench . -benchtime 2s ./statefile/

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"lite-raft/raftcore"
)

const benchDataSize = 256

var benchBatchSizes = []int{1, 16, 256}

// benchLog is a log being appended to with batches of n entries of 256-byte data.
type benchLog struct {
	l     *Log
	next  uint64
	batch []raftcore.Entry
}

func newBenchLog(b *testing.B, dir string, n int) *benchLog {
	b.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	l, _, err := openLog(dir, DefaultSegmentSize, 0, false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	data := make([]byte, benchDataSize)
	for i := range data {
		data[i] = byte(i)
	}
	bl := &benchLog{l: l, next: 1, batch: make([]raftcore.Entry, n)}
	for i := range bl.batch {
		bl.batch[i] = raftcore.Entry{Term: 1, Data: data}
	}
	return bl
}

// append writes the next batch: one Log.Append, so one write and one fsync.
func (bl *benchLog) append(b *testing.B) {
	for i := range bl.batch {
		bl.batch[i].Index = bl.next + uint64(i)
	}
	bl.next += uint64(len(bl.batch))
	if err := bl.l.Append(bl.batch); err != nil {
		b.Fatal(err)
	}
}

// trim deletes full segments so that long runs do not fill the disk; the caller stops
// the timer around it.
func (bl *benchLog) trim(b *testing.B) {
	if n := len(bl.l.segs); n >= 2 {
		if err := bl.l.CompactTo(bl.l.segs[n-2].last()); err != nil {
			b.Fatal(err)
		}
	}
}

// rawFile is the baseline: write 256 bytes, fsync, on a file in the same directory.
type rawFile struct {
	f   *os.File
	buf []byte
}

func newRawFile(b *testing.B, dir string) *rawFile {
	b.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "raw-fsync"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return &rawFile{f: f, buf: make([]byte, benchDataSize)}
}

func (r *rawFile) writeSync(b *testing.B) {
	if _, err := r.f.Write(r.buf); err != nil {
		b.Fatal(err)
	}
	if err := r.f.Sync(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, n := range benchBatchSizes {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			bl := newBenchLog(b, b.TempDir(), n)
			b.SetBytes(int64(n * benchDataSize))
			ops := 0
			for b.Loop() {
				bl.append(b)
				ops++
				if len(bl.l.segs) >= 2 {
					b.StopTimer()
					bl.trim(b)
					b.StartTimer()
				}
			}
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(ops)/secs, "appends/s")
			b.ReportMetric(float64(ops*n)/secs, "entries/s")
		})
	}
}

func BenchmarkRawFsync(b *testing.B) {
	r := newRawFile(b, b.TempDir())
	b.SetBytes(benchDataSize)
	ops := 0
	for b.Loop() {
		r.writeSync(b)
		ops++
	}
	b.ReportMetric(float64(ops)/b.Elapsed().Seconds(), "fsyncs/s")
}

// BenchmarkGroupCommitRatio measures, in one run and in one directory, a raw write+fsync
// and an Append of each batch size, interleaved round by round so that they see the same
// disk, and prints how they compare:
//
//	group commit: batch=1 ratio_to_raw_fsync=0.97
//
// ratio_to_raw_fsync is appends/s over raw fsyncs/s (1.0: an append costs one fsync);
// entries_per_s_ratio is entries/s over raw fsyncs/s (what batching gains over one
// fsync per entry).
func BenchmarkGroupCommitRatio(b *testing.B) {
	dir := b.TempDir()
	raw := newRawFile(b, dir)
	logs := make([]*benchLog, len(benchBatchSizes))
	for i, n := range benchBatchSizes {
		logs[i] = newBenchLog(b, filepath.Join(dir, fmt.Sprintf("log-batch-%d", n)), n)
	}
	// warm up: the first append of each log creates its segment file
	for _, bl := range logs {
		bl.append(b)
	}
	var rawTime time.Duration
	logTime := make([]time.Duration, len(logs))
	rounds := 0
	for b.Loop() {
		t0 := time.Now()
		raw.writeSync(b)
		rawTime += time.Since(t0)
		for i, bl := range logs {
			t0 := time.Now()
			bl.append(b)
			logTime[i] += time.Since(t0)
		}
		rounds++
		b.StopTimer()
		for _, bl := range logs {
			if len(bl.l.segs) >= 2 {
				bl.trim(b)
			}
		}
		b.StartTimer()
	}
	rawRate := float64(rounds) / rawTime.Seconds()
	b.ReportMetric(rawRate, "raw-fsyncs/s")
	fmt.Printf("group commit: %d rounds in %s; raw write(256 B)+fsync: %.0f fsyncs/s (%v each)\n",
		rounds, dir, rawRate, (rawTime / time.Duration(rounds)).Round(time.Microsecond))
	for i, n := range benchBatchSizes {
		appends := float64(rounds) / logTime[i].Seconds()
		ratio := appends / rawRate
		entriesRatio := appends * float64(n) / rawRate
		b.ReportMetric(ratio, fmt.Sprintf("batch%d-ratio", n))
		if n == 1 {
			fmt.Printf("group commit: batch=%d ratio_to_raw_fsync=%.2f (%.0f appends/s)\n", n, ratio, appends)
		} else {
			fmt.Printf("group commit: batch=%d ratio_to_raw_fsync=%.2f entries_per_s_ratio=%.1f (%.0f appends/s, %.0f entries/s)\n",
				n, ratio, entriesRatio, appends, appends*float64(n))
		}
	}
}

// Snapshots at scale: written from a stream (with the fsync), read back in the 1 MiB
// pieces a leader sends, received piece by piece and installed (with the checks and the
// fsync), all without holding the whole in memory. 64 MiB each.
const benchSnapSize = 64 << 20

func benchSnapStore(b *testing.B) *Store {
	b.Helper()
	root := b.TempDir()
	if err := Bootstrap(root, raftcore.Membership{Voters: []raftcore.NodeID{"a", "b", "c"}}); err != nil {
		b.Fatal(err)
	}
	s, _, err := Open(root, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchSnapWrite(s *Store, index uint64) (raftcore.Snapshot, func() error, error) {
	piece := make([]byte, 64<<10)
	for i := range piece {
		piece[i] = byte(i)
	}
	meta := raftcore.SnapshotMeta{Index: index, Term: 1, Members: raftcore.Membership{Voters: []raftcore.NodeID{"a", "b", "c"}}}
	return s.WriteSnapshot(meta, func(w io.Writer) error {
		for n := 0; n < benchSnapSize; n += len(piece) {
			if _, err := w.Write(piece); err != nil {
				return err
			}
		}
		return nil
	})
}

func BenchmarkSnapshotWriteStreamed(b *testing.B) {
	s := benchSnapStore(b)
	b.SetBytes(benchSnapSize)
	for i := 0; i < b.N; i++ {
		_, commit, err := benchSnapWrite(s, uint64(i+1))
		if err != nil {
			b.Fatal(err)
		}
		if err := commit(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSnapshotReadPieces(b *testing.B) {
	s := benchSnapStore(b)
	snap, commit, err := benchSnapWrite(s, 1)
	if err != nil {
		b.Fatal(err)
	}
	if err := commit(); err != nil {
		b.Fatal(err)
	}
	p := make([]byte, 1<<20)
	b.SetBytes(benchSnapSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for off := uint64(0); off < snap.Size; off += uint64(len(p)) {
			if err := s.ReadSnapshot(snap, off, p); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkSnapshotReceive(b *testing.B) {
	leader := benchSnapStore(b)
	snap, commit, err := benchSnapWrite(leader, 1)
	if err != nil {
		b.Fatal(err)
	}
	if err := commit(); err != nil {
		b.Fatal(err)
	}
	follower := benchSnapStore(b)
	p := make([]byte, 1<<20)
	b.SetBytes(benchSnapSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := snap
		s.Meta.Index = uint64(i + 1) // a newer one each time
		for off := uint64(0); off < snap.Size; off += uint64(len(p)) {
			if err := leader.ReadSnapshot(snap, off, p); err != nil {
				b.Fatal(err)
			}
			c := raftcore.SnapshotChunk{Meta: s.Meta, Offset: off, Data: p, Done: off+uint64(len(p)) == snap.Size,
				Total: snap.Size, Checksum: snap.Checksum}
			var install *raftcore.Snapshot
			if c.Done {
				install = &s
			}
			if err := follower.Save(nil, []raftcore.SnapshotChunk{c}, install, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
}
