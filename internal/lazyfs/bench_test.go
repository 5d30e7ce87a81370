//go:build linux

package lazyfs

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkAppendSync is a log's pattern: append a batch, fsync; the file grows to
// 64 MiB (a statefile segment), then the writes start over at its beginning. What it
// costs per batch shows that an fsync copies only what the batch wrote, however large
// the file.
func BenchmarkAppendSync(b *testing.B) {
	for _, size := range []int{128, 64 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			requireFUSE(b)
			f := New()
			dir := b.TempDir()
			m, err := f.Mount(dir)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Unmount()
			fh, err := os.Create(filepath.Join(dir, "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer fh.Close()
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			const segment = 64 << 20
			off := int64(0)
			for range b.N {
				if off+int64(size) > segment {
					off = 0
				}
				if _, err := fh.WriteAt(buf, off); err != nil {
					b.Fatal(err)
				}
				if err := fh.Sync(); err != nil {
					b.Fatal(err)
				}
				off += int64(size)
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
