package statefile

import (
	"bytes"
	"runtime"
	"testing"

	"lite-raft/raftcore"
)

// TestSegmentsReserveAhead: the last segment reserves its space (zeros after its records),
// a segment that is not the last is cut to its records when the next one starts, and a
// reopen finds the entries, reports no torn write and reserves again.
func TestSegmentsReserveAhead(t *testing.T) {
	root := t.TempDir()
	bootstrap(t, root)
	opts := Options{SegmentSize: 4096}
	s, _ := openStore(t, root, opts)
	var all []raftcore.Entry
	for b := 0; b < 12; b++ {
		batch := makeEntries(uint64(len(all)+1), 8, 1)
		for i := range batch {
			if batch[i].Type != raftcore.EntryMembership {
				batch[i].Data = bytes.Repeat([]byte{byte(b)}, 100)
			}
		}
		if err := s.Save(nil, nil, nil, batch); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
	}
	check := func(when string) {
		t.Helper()
		segs := s.log.segs
		if len(segs) < 3 {
			t.Fatalf("%s: %d segments, want at least 3", when, len(segs))
		}
		for i, seg := range segs {
			size, _ := fileSize(t, seg.path)
			last := i == len(segs)-1
			switch {
			case !last && size != seg.size:
				t.Errorf("%s: segment %s is %d bytes, its records %d: only the last may hold reserved zeros", when, seg.path, size, seg.size)
			case last && runtime.GOOS == "linux" && size != max(opts.SegmentSize, seg.size):
				t.Errorf("%s: the last segment is %d bytes, its records %d: want %d reserved", when, size, seg.size, opts.SegmentSize)
			}
		}
	}
	check("after the appends")
	s.Close()
	s, st := openStore(t, root, opts)
	defer s.Close()
	if d := diffEntries(st.Entries, all); d != "" {
		t.Fatalf("reopen: %s", d)
	}
	if s.log.TornBytes != 0 {
		t.Errorf("reopen reports %d torn bytes: reserved zeros are not a torn write", s.log.TornBytes)
	}
	check("after a reopen")
	next := makeEntries(uint64(len(all)+1), 1, 1)
	if err := s.Save(nil, nil, nil, next); err != nil {
		t.Fatal(err)
	}
}
