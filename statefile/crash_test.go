package statefile

// Crash simulation. A crash is simulated by changing the files the way an interrupted
// write leaves them (cut short, zero-filled, a temporary file never renamed, a snapshot
// saved but the old log not yet removed), then opening the directory again. The rule
// under test is DESIGN.md's: a torn record at the tail of the last segment is cut off, any
// other damage stops with a *DamageError naming the file and offset, and no acknowledged
// entry is ever lost or changed.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lite-raft/raftcore"
)

// tornTemplate is a directory whose log holds acknowledged batches followed by one more
// batch (the "in-flight" one) whose bytes the tests cut at every offset.
type tornTemplate struct {
	root     string
	opts     Options
	segRel   string           // the last segment, relative to root
	base     []raftcore.Entry // what is durable before the in-flight batch's write starts
	inflight []raftcore.Entry
	newSeg   bool  // the in-flight batch created the last segment
	lo, end  int64 // the in-flight write's bytes in the last segment (lo = 0 if newSeg)
	recEnds  []int64
	segData  []byte // the last segment's bytes, whole
}

type tornScenario struct {
	name    string
	segSize int64
	acked   [][]raftcore.Entry // acknowledged batches, in order
	// inflight is the batch the crash interrupts. If it starts at or before the last
	// acknowledged index, Append first cuts the log back (durably) as a Raft conflict does.
	inflight       []raftcore.Entry
	wantNewSegment bool
}

func tornScenarios() []tornScenario {
	return []tornScenario{
		{
			name:     "append-to-segment",
			acked:    [][]raftcore.Entry{makeEntries(1, 1, 1), makeEntries(2, 3, 1), makeEntries(5, 2, 2)},
			inflight: makeEntries(7, 4, 2),
		},
		{
			// each batch is bigger than the segment size, so each starts a new segment
			name:           "new-segment",
			segSize:        100,
			acked:          [][]raftcore.Entry{makeEntries(1, 2, 1), makeEntries(3, 3, 1)},
			inflight:       makeEntries(6, 3, 2),
			wantNewSegment: true,
		},
		{
			name:     "overwrite-in-segment",
			acked:    [][]raftcore.Entry{makeEntries(1, 4, 1), makeEntries(5, 4, 1)},
			inflight: makeEntries(6, 3, 2),
		},
		{
			// the conflict removes the last segment and the batch starts a new one
			name:           "overwrite-new-segment",
			segSize:        100,
			acked:          [][]raftcore.Entry{makeEntries(1, 2, 1), makeEntries(3, 3, 1), makeEntries(6, 3, 1)},
			inflight:       makeEntries(6, 2, 2),
			wantNewSegment: true,
		},
	}
}

func buildTornTemplate(t *testing.T, sc tornScenario) *tornTemplate {
	t.Helper()
	segSize := sc.segSize
	if segSize == 0 {
		// one segment for the whole scenario, and small: every cut's recovery reads the
		// segment and reserves its space again
		segSize = 64 << 10
	}
	tp := &tornTemplate{root: t.TempDir(), opts: Options{SegmentSize: segSize}, inflight: sc.inflight}
	bootstrap(t, tp.root)
	s, _, err := openT(tp.root, tp.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var all []raftcore.Entry
	for _, b := range sc.acked {
		if err := s.Save(nil, nil, nil, b); err != nil {
			t.Fatalf("acknowledged append: %v", err)
		}
		all = append(all, b...)
	}
	for _, e := range all {
		if e.Index < sc.inflight[0].Index {
			tp.base = append(tp.base, e)
		}
	}
	if err := s.Log().Append(sc.inflight); err != nil {
		t.Fatalf("in-flight append: %v", err)
	}
	seg := s.log.segs[len(s.log.segs)-1]
	k0 := len(seg.offsets) - len(sc.inflight)
	if k0 < 0 || seg.last() != sc.inflight[len(sc.inflight)-1].Index {
		t.Fatalf("the in-flight batch is not all in the last segment")
	}
	tp.newSeg = seg.first == sc.inflight[0].Index
	if tp.newSeg != sc.wantNewSegment {
		t.Fatalf("scenario %s: in-flight batch started a new segment: %v, want %v", sc.name, tp.newSeg, sc.wantNewSegment)
	}
	if tp.newSeg {
		if seg.offsets[0] != int64(len(segmentMagic)) {
			t.Fatalf("new segment's first record at %d", seg.offsets[0])
		}
	} else {
		tp.lo = seg.offsets[k0]
	}
	for i := k0 + 1; i < len(seg.offsets); i++ {
		tp.recEnds = append(tp.recEnds, seg.offsets[i])
	}
	tp.recEnds = append(tp.recEnds, seg.size)
	tp.end = seg.size
	// the space the segment reserves ahead is left out of the template: crashCopy's
	// zeros stand for it
	cutReserved(t, seg)
	tp.segRel, _ = filepath.Rel(tp.root, seg.path)
	if tp.segData, err = os.ReadFile(seg.path); err != nil {
		t.Fatal(err)
	}
	return tp
}

// expectAfterCut returns how many in-flight records survive a cut at c followed by zeros
// zero bytes, and where the valid bytes of the last segment end (gone: the segment must be
// removed). A record survives if it is whole on disk: before the cut, or completed by the
// zeros because its last bytes were zeros anyway (an empty entry's data checksum is 0).
func (tp *tornTemplate) expectAfterCut(c int64, zeros int) (k int, validEnd int64, gone bool) {
	whole := func(i int) bool {
		end := tp.recEnds[i]
		return end <= c || (end <= c+int64(zeros) && allZero(tp.segData[c:end]))
	}
	for k < len(tp.recEnds) && whole(k) {
		k++
	}
	switch {
	case k > 0:
		return k, tp.recEnds[k-1], false
	case tp.newSeg:
		if c < int64(len(segmentMagic)) {
			return 0, 0, true
		}
		return 0, int64(len(segmentMagic)), true
	}
	return 0, tp.lo, false
}

// crashCopy copies the template to dir (emptied first), cuts the last segment at c and
// appends zeros zero bytes.
func (tp *tornTemplate) crashCopy(t *testing.T, dir string, c int64, zeros int) string {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	copyDir(t, tp.root, dir)
	seg := filepath.Join(dir, tp.segRel)
	if err := os.Truncate(seg, c); err != nil {
		t.Fatal(err)
	}
	if zeros > 0 {
		f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(make([]byte, zeros)); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return seg
}

// checkRecovery opens dir (cut at c, plus zeros) read-only and then for real, and checks
// that exactly the expected entries come back and the torn bytes are gone from disk.
func (tp *tornTemplate) checkRecovery(dir string, c int64, zeros int, followUp bool) error {
	k, validEnd, gone := tp.expectAfterCut(c, zeros)
	want := append(append([]raftcore.Entry(nil), tp.base...), tp.inflight[:k]...)
	seg := filepath.Join(dir, tp.segRel)
	onDisk := c + int64(zeros)
	crashed, err := os.ReadFile(seg)
	if err != nil {
		return err
	}
	torn := onDisk - validEnd
	if allZero(crashed[min(validEnd, onDisk):]) {
		torn = 0 // zeros alone are reserved space, not a torn write
	}

	ro, st, err := openT(dir, Options{SegmentSize: tp.opts.SegmentSize, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("read-only open: %v", err)
	}
	ro.Close()
	if d := diffEntries(st.Entries, want); d != "" {
		return fmt.Errorf("read-only open: %s", d)
	}
	if fi, err := os.Stat(seg); err != nil || fi.Size() != onDisk {
		return fmt.Errorf("read-only open changed the segment (stat: %v)", err)
	}

	s, st, err := openT(dir, tp.opts)
	if err != nil {
		return fmt.Errorf("open: %v", err)
	}
	defer s.Close()
	if d := diffEntries(st.Entries, want); d != "" {
		return fmt.Errorf("open: %s", d)
	}
	if s.log.TornBytes != torn {
		return fmt.Errorf("TornBytes = %d, want %d", s.log.TornBytes, torn)
	}
	fi, err := os.Stat(seg)
	switch {
	case gone && err == nil:
		return fmt.Errorf("a segment without a whole record was left behind (%d bytes)", fi.Size())
	case gone && !errors.Is(err, os.ErrNotExist):
		return err
	case !gone && err != nil:
		return fmt.Errorf("segment: %v", err)
	case !gone && fi.Size() < validEnd:
		return fmt.Errorf("segment is %d bytes after recovery, want %d and reserved zeros", fi.Size(), validEnd)
	case !gone:
		// what follows the records is reserved again: zeros only
		after, err := os.ReadFile(seg)
		if err != nil {
			return err
		}
		if !allZero(after[validEnd:]) {
			return fmt.Errorf("segment holds data after its records end at %d", validEnd)
		}
	}
	if !followUp {
		return nil
	}
	// The recovered log must take the next append and give everything back again.
	last := want[len(want)-1]
	next := raftcore.Entry{Index: last.Index + 1, Term: last.Term, Data: []byte("after recovery")}
	if err := s.Save(nil, nil, nil, []raftcore.Entry{next}); err != nil {
		return fmt.Errorf("append after recovery: %v", err)
	}
	s.Close()
	s2, st, err := openT(dir, tp.opts)
	if err != nil {
		return fmt.Errorf("reopen after recovery and append: %v", err)
	}
	s2.Close()
	if d := diffEntries(st.Entries, append(want, next)); d != "" {
		return fmt.Errorf("reopen after recovery and append: %s", d)
	}
	return nil
}

// TestCrashTornAppend cuts the in-flight batch at every byte offset. Recovery must return
// the acknowledged entries, plus the in-flight records that are whole before the cut (so
// all of the batch when the cut is at its end), never fewer and never different.
//
// Note: the store is atomic per record, not per batch: a cut after the first whole records
// of a batch keeps those records. That is what DESIGN.md promises ("a torn record at the
// tail ... is cut off") and is safe for Raft, which allows any prefix of an unacknowledged
// append to survive a crash.
func TestCrashTornAppend(t *testing.T) {
	for _, sc := range tornScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel() // fsync-bound: the scenarios overlap their waits
			tp := buildTornTemplate(t, sc)
			work := filepath.Join(t.TempDir(), "node")
			cuts := 0
			for c := tp.lo; c <= tp.end; c++ {
				tp.crashCopy(t, work, c, 0)
				if err := tp.checkRecovery(work, c, 0, true); err != nil {
					t.Fatalf("cut at byte %d of %s (in-flight bytes %d..%d, record ends %v): %v",
						c, tp.segRel, tp.lo, tp.end, tp.recEnds, err)
				}
				cuts++
			}
			if tp.newSeg && tp.lo != 0 {
				t.Fatal("cuts must include the new segment's magic")
			}
			t.Logf("%d cuts recovered (in-flight bytes %d..%d of %s)", cuts, tp.lo, tp.end, tp.segRel)
		})
	}
}

var zeroTailLengths = []int{1, 5, 31, 32, 33, 100, 4096}

// zeroTailHandled tells the cases that the current recovery handles: zeros after a whole
// record (or as the whole of a new segment), or too few zeros to complete the torn record.
func (tp *tornTemplate) zeroTailHandled(c int64, zeros int) bool {
	k, validEnd, _ := tp.expectAfterCut(c, 0)
	if c == validEnd && !(tp.newSeg && k == 0 && c != 0 && c != int64(len(segmentMagic))) {
		return true
	}
	if tp.newSeg && c < int64(len(segmentMagic)) {
		return false // part of the magic followed by zeros
	}
	start := validEnd
	if k < len(tp.recEnds) {
		recLen := tp.recEnds[k] - start
		have := c - start + int64(zeros)
		if have < recordHeaderSize || (c-start >= recordHeaderSize && have < recLen) {
			return true // still a record cut short
		}
	}
	return false
}

// TestCrashZeroFilledTail appends zeros (blocks allocated but never written) after the
// cut. Recovery must cut them off along with the torn record. This test covers the cases
// the current code handles; TestCrashZeroFilledTailAfterTornRecord the rest.
func TestCrashZeroFilledTail(t *testing.T) {
	for _, sc := range tornScenarios()[:2] {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel() // fsync-bound: the scenarios overlap their waits
			tp := buildTornTemplate(t, sc)
			work := filepath.Join(t.TempDir(), "node")
			n := 0
			for c := tp.lo; c <= tp.end; c++ {
				for _, z := range zeroTailLengths {
					if !tp.zeroTailHandled(c, z) {
						continue
					}
					tp.crashCopy(t, work, c, z)
					if err := tp.checkRecovery(work, c, z, false); err != nil {
						t.Fatalf("cut at byte %d of %s, then %d zero bytes: %v", c, tp.segRel, z, err)
					}
					n++
				}
			}
			t.Logf("%d zero-filled tails recovered", n)
		})
	}
}

// TestCrashZeroFilledTailAfterTornRecord: a torn record followed by enough zeros to cover
// its announced length (or a torn segment magic followed by zeros) is damage to the current
// code, though it is exactly what a crash leaves on a file system that extends the file
// before the data reaches the disk.
//
// A crash after the file grew but before its new blocks reached the disk leaves zeros
// from a sector boundary on (devices write whole 512-byte sectors), so the cuts here are
// the sector boundaries inside the in-flight write, and its end. Zeros that start
// elsewhere are treated as damage: a flipped bit could otherwise shorten the log.
func TestCrashZeroFilledTailAfterTornRecord(t *testing.T) {
	for _, sc := range tornScenarios()[:2] {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel() // fsync-bound: the scenarios overlap their waits
			tp := buildTornTemplate(t, sc)
			work := filepath.Join(t.TempDir(), "node")
			var failures []string
			var cuts []int64
			for c := (tp.lo + 511) / 512 * 512; c < tp.end; c += 512 {
				cuts = append(cuts, c)
			}
			cuts = append(cuts, tp.end)
			for _, c := range cuts {
				for _, z := range zeroTailLengths {
					tp.crashCopy(t, work, c, z)
					if err := tp.checkRecovery(work, c, z, false); err != nil {
						failures = append(failures, fmt.Sprintf("cut %d + %d zeros: %v", c, z, err))
					}
				}
			}
			if len(failures) > 0 {
				t.Fatalf("%d of %d zero-filled tails not recovered, e.g.\n%s", len(failures),
					len(cuts)*len(zeroTailLengths), strings.Join(failures[:min(5, len(failures))], "\n"))
			}
		})
	}
}

// TestCrashTornNonLastSegment: a record cut short in a segment that is not the last is
// not a torn append (appends only go to the last segment): it is damage.
func TestCrashTornNonLastSegment(t *testing.T) {
	root := t.TempDir()
	bootstrap(t, root)
	opts := Options{SegmentSize: 120}
	s, _ := openStore(t, root, opts)
	for i := uint64(1); i <= 12; i += 2 {
		if err := s.Save(nil, nil, nil, makeEntries(i, 2, 1)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	segs := segmentFiles(t, root)
	if len(segs) < 3 {
		t.Fatalf("want 3 segments or more, got %d", len(segs))
	}
	victim := segs[1]
	data, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	starts := recordStarts(t, data)
	work := filepath.Join(t.TempDir(), "node")
	for c := int64(0); c < int64(len(data)); c++ {
		if err := os.RemoveAll(work); err != nil {
			t.Fatal(err)
		}
		copyDir(t, root, work)
		cut := filepath.Join(work, LogDir, filepath.Base(victim))
		if err := os.Truncate(cut, c); err != nil {
			t.Fatal(err)
		}
		s, _, err := openT(work, opts)
		if err == nil {
			s.Close()
			t.Fatalf("%s cut at %d of %d bytes: Open succeeded", filepath.Base(victim), c, len(data))
		}
		de, ok := asDamage(err)
		if !ok {
			t.Fatalf("cut at %d: want a *DamageError, got %v", c, err)
		}
		if !strings.Contains(err.Error(), de.File) || !strings.HasPrefix(de.File, work) {
			t.Fatalf("cut at %d: error %q does not name a file of the directory", c, err)
		}
		atBoundary := c == int64(len(segmentMagic))
		for _, st := range starts {
			atBoundary = atBoundary || int64(st) == c
		}
		if !atBoundary && de.File != cut {
			// cut inside a record or the magic: the damaged segment itself is named
			t.Fatalf("cut at %d: damage reported in %s, want %s", c, de.File, cut)
		}
	}
}

// TestCrashBitFlips flips one random bit of one segment file of an acknowledged log.
// Open must either return exactly the acknowledged state or fail with a *DamageError
// naming that file and the offset of the record (or magic) that holds the bit.
func TestCrashBitFlips(t *testing.T) {
	seed := testSeed(t)
	rnd := newRand(seed)
	root := t.TempDir()
	bootstrap(t, root)
	opts := Options{SegmentSize: 300}
	s, _ := openStore(t, root, opts)
	hs := raftcore.HardState{Term: 4, Vote: "b"}
	if err := s.SaveHardState(hs); err != nil {
		t.Fatal(err)
	}
	var all []raftcore.Entry
	next, term := uint64(1), uint64(1)
	for b := 0; b < 20; b++ {
		if rnd.IntN(4) == 0 {
			term++
		}
		batch := randomEntries(rnd, next, 1+rnd.IntN(6), term, 60)
		if err := s.Save(nil, nil, nil, batch); err != nil {
			t.Fatal(err)
		}
		all = append(all, cloneEntries(batch)...)
		next += uint64(len(batch))
	}
	snapIdx := uint64(len(all) / 3)
	snap := testSnap{Meta: raftcore.SnapshotMeta{Index: snapIdx, Term: all[snapIdx-1].Term,
		Members: raftcore.Membership{Voters: []raftcore.NodeID{"a", "b", "c"}}}, Data: []byte("kv state")}
	if err := s.Compact(snap); err != nil {
		t.Fatal(err)
	}
	cutReserved(t, s.log.segs[len(s.log.segs)-1]) // the flips are for records, not reserved zeros
	s.Close()
	acked := all[snapIdx:]

	segs := segmentFiles(t, root)
	type segInfo struct {
		rel    string
		data   []byte
		starts []int
	}
	var infos []segInfo
	total := 0
	for _, p := range segs {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		infos = append(infos, segInfo{rel, data, recordStarts(t, data)})
		total += len(data)
	}
	t.Logf("%d entries in %d segment files (%d bytes), snapshot at %d", len(all), len(segs), total, snapIdx)

	work := filepath.Join(t.TempDir(), "node")
	const flips = 400
	damaged, intact, fresh := 0, 0, true
	for n := 0; n < flips; n++ {
		pos := rnd.IntN(total)
		k := 0
		for pos >= len(infos[k].data) {
			pos -= len(infos[k].data)
			k++
		}
		bit := rnd.IntN(8)
		info := infos[k]
		wantOff := 0
		for _, st := range info.starts {
			if st <= pos {
				wantOff = st
			}
		}
		where := fmt.Sprintf("flip #%d: bit %d of byte %d of %s (record at %d)", n, bit, pos, info.rel, wantOff)

		// The work copy is made afresh only after an Open that succeeded (which may have
		// changed it); otherwise the flipped file alone is put back after the check.
		if fresh {
			if err := os.RemoveAll(work); err != nil {
				t.Fatal(err)
			}
			copyDir(t, root, work)
			fresh = false
		}
		path := filepath.Join(work, info.rel)
		flipped := bytes.Clone(info.data)
		flipped[pos] ^= 1 << bit
		if err := os.WriteFile(path, flipped, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, ro := range []bool{true, false} {
			s, st, err := openT(work, Options{SegmentSize: opts.SegmentSize, ReadOnly: ro})
			if err == nil {
				s.Close()
				if d := diffEntries(st.Entries, acked); d != "" || st.HardState != hs || st.Snapshot.Meta.Index != snapIdx {
					t.Fatalf("%s (read-only %v): Open succeeded with different state: %s", where, ro, d)
				}
				intact++
				fresh = true
				continue
			}
			de, ok := asDamage(err)
			if !ok {
				t.Fatalf("%s (read-only %v): want a *DamageError, got %v", where, ro, err)
			}
			if de.File != path || de.Offset != int64(wantOff) {
				t.Fatalf("%s (read-only %v): damage reported at %s offset %d, want %s offset %d (%v)",
					where, ro, de.File, de.Offset, path, wantOff, err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), fmt.Sprint(wantOff)) {
				t.Fatalf("%s: message does not name the file and offset: %q", where, err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, flipped) {
				t.Fatalf("%s (read-only %v): Open changed the damaged file", where, ro)
			}
			damaged++
		}
		if err := os.WriteFile(path, info.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d opens: %d detected damage, %d returned the acknowledged state", 2*flips, damaged, intact)
}

// TestCrashSegmentGap deletes a segment: in the middle it is a gap, at the start the log
// no longer meets the snapshot. Both are damage, never a silently shorter log.
func TestCrashSegmentGap(t *testing.T) {
	root := t.TempDir()
	bootstrap(t, root)
	opts := Options{SegmentSize: 120}
	s, _ := openStore(t, root, opts)
	for i := uint64(1); i <= 15; i += 3 {
		if err := s.Save(nil, nil, nil, makeEntries(i, 3, 1)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	segs := segmentFiles(t, root)
	if len(segs) < 4 {
		t.Fatalf("want 4 segments or more, got %d", len(segs))
	}
	for _, victim := range []int{1, len(segs) / 2, len(segs) - 2, 0} {
		t.Run(fmt.Sprintf("delete-%s", filepath.Base(segs[victim])), func(t *testing.T) {
			work := t.TempDir()
			copyDir(t, root, work)
			if err := os.Remove(filepath.Join(work, LogDir, filepath.Base(segs[victim]))); err != nil {
				t.Fatal(err)
			}
			for _, ro := range []bool{true, false} {
				s, st, err := openT(work, Options{SegmentSize: opts.SegmentSize, ReadOnly: ro})
				if err == nil {
					s.Close()
					t.Fatalf("read-only %v: Open succeeded with %d entries", ro, len(st.Entries))
				}
				de, ok := asDamage(err)
				if !ok {
					t.Fatalf("read-only %v: want a *DamageError, got %v", ro, err)
				}
				wantFile := filepath.Join(work, LogDir, filepath.Base(segs[victim+1]))
				if de.File != wantFile || !strings.Contains(err.Error(), wantFile) {
					t.Fatalf("read-only %v: damage in %s, want the segment after the gap %s: %v", ro, de.File, wantFile, err)
				}
			}
			if got := segmentFiles(t, work); len(got) != len(segs)-1 {
				t.Fatalf("Open removed segments of a damaged log: %d left of %d", len(got), len(segs)-1)
			}
		})
	}
}

// TestCrashHardState: leftovers of interrupted atomic writes are ignored and removed, an
// unfinished rename leaves the old term and vote, and garbage is an error naming the file.
func TestCrashHardState(t *testing.T) {
	old := raftcore.HardState{Term: 5, Vote: "b"}
	setup := func(t *testing.T) string {
		root := t.TempDir()
		bootstrap(t, root)
		s, _ := openStore(t, root, Options{})
		if err := s.SaveHardState(old); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(nil, nil, nil, makeEntries(1, 3, 5)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		return root
	}
	write := func(t *testing.T, path string, data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("leftover-temps", func(t *testing.T) {
		root := setup(t)
		temps := []string{
			filepath.Join(root, StateDir, ".current.tmp123"),
			filepath.Join(root, StateDir, ".current.tmp"),
			filepath.Join(root, StateDir, ".current.tmp4567890"),
			filepath.Join(root, SnapshotDir, ".snapshot.tmp42"),
			filepath.Join(root, SnapshotDir, ".meta.tmp42"),
		}
		write(t, temps[0], []byte("\x00\xffgarbage"))
		write(t, temps[1], nil)
		write(t, temps[2], []byte("term 9\nvo"))
		write(t, temps[3], []byte("lite-raft snapshot v1\nindex 99\n"))
		write(t, temps[4], []byte("index 99\n"))

		// read-only: ignored, not removed
		ro, st, err := openT(root, Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("read-only open with leftovers: %v", err)
		}
		ro.Close()
		if st.HardState != old || len(st.Entries) != 3 || st.Snapshot.Meta.Index != 0 {
			t.Fatalf("read-only open: %+v, %d entries", st.HardState, len(st.Entries))
		}
		for _, p := range temps {
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("read-only open removed %s", p)
			}
		}
		s, st := openStore(t, root, Options{})
		if st.HardState != old || len(st.Entries) != 3 || st.Snapshot.Meta.Index != 0 {
			t.Fatalf("open with leftovers: %+v, %d entries", st.HardState, len(st.Entries))
		}
		for _, p := range temps {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("leftover %s not removed: %v", p, err)
			}
		}
		// and the state can be written again
		if err := s.SaveHardState(raftcore.HardState{Term: 6}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, st := openStore(t, root, Options{}); st.HardState != (raftcore.HardState{Term: 6}) {
			t.Fatalf("after rewrite: %+v", st.HardState)
		}
	})

	t.Run("rename-never-happened", func(t *testing.T) {
		root := setup(t)
		// WriteFileAtomic got as far as a complete, fsynced temp file
		write(t, filepath.Join(root, StateDir, ".current.tmp777"),
			encodeHardState(raftcore.HardState{Term: 9, Vote: "c"}))
		_, st := openStore(t, root, Options{})
		if st.HardState != old {
			t.Fatalf("hard state %+v, want the old %+v", st.HardState, old)
		}
	})

	t.Run("no-state-file", func(t *testing.T) {
		root := setup(t)
		if err := os.Remove(filepath.Join(root, StateDir, hardFile)); err != nil {
			t.Fatal(err)
		}
		if _, st := openStore(t, root, Options{}); st.HardState != (raftcore.HardState{}) {
			t.Fatalf("hard state %+v without a file", st.HardState)
		}
	})

	t.Run("garbage", func(t *testing.T) {
		for i, garbage := range []string{
			"", "\x00\x00\x00\x00", "\xff\xfe garbage", "term 5\n", "vote b\n", "term x\nvote b\n",
			"term 5\nvote b\nterm 6\n", "term 5\nvote b,c\n", "term 5\nvote \n", "term -1\nvote b\n",
			"term 5\nvote b\nextra 1\n", "term 5 vote b", "term 99999999999999999999\nvote b\n",
		} {
			root := setup(t)
			path := filepath.Join(root, StateDir, hardFile)
			write(t, path, []byte(garbage))
			for _, ro := range []bool{true, false} {
				s, st, err := openT(root, Options{ReadOnly: ro})
				if err == nil {
					s.Close()
					t.Fatalf("#%d %q (read-only %v): Open succeeded with %+v", i, garbage, ro, st.HardState)
				}
				if !strings.Contains(err.Error(), path) {
					t.Fatalf("#%d %q: error does not name %s: %v", i, garbage, path, err)
				}
			}
		}
	})
}

// snapshotFixture is a directory with a compacted log: snapshot at 12 and entries 13..20.
func snapshotFixture(t *testing.T) (root string, snap testSnap, ents []raftcore.Entry) {
	root = t.TempDir()
	bootstrap(t, root)
	s, _ := openStore(t, root, Options{SegmentSize: 200})
	all := append(makeEntries(1, 10, 2), makeEntries(11, 10, 3)...)
	if err := s.Save(nil, nil, nil, all); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 80)
	for i := range data {
		data[i] = byte(i*7 + 1)
	}
	snap = testSnap{Meta: raftcore.SnapshotMeta{Index: 12, Term: 3,
		Members: raftcore.Membership{Voters: []raftcore.NodeID{"alpha", "beta"}, Learners: []raftcore.NodeID{"gamma"}}},
		Data: data}
	if err := s.Compact(snap); err != nil {
		t.Fatal(err)
	}
	s.Close()
	return root, snap, all[12:]
}

func sameSnapshot(a, b testSnap) bool {
	return a.Meta.Index == b.Meta.Index && a.Meta.Term == b.Meta.Term && a.Meta.Members.Equal(b.Meta.Members) &&
		bytes.Equal(a.Data, b.Data)
}

// snapshotHeaderFieldLines returns the byte ranges of the index, term and members lines,
// the header fields that no checksum covers.
func snapshotHeaderFieldLines(data []byte) [][2]int {
	var out [][2]int
	off := 0
	br := bufio.NewReader(bytes.NewReader(data))
	for {
		line, err := br.ReadString('\n')
		if err != nil || line == "\n" {
			return out
		}
		for _, k := range []string{"index ", "term ", "members "} {
			if strings.HasPrefix(line, k) {
				out = append(out, [2]int{off, off + len(line)})
			}
		}
		off += len(line)
	}
}

// TestCrashSnapshotDamage: a truncated snapshot file, or one with a bit flipped in its
// data, size, checksum or structure, stops Open with a *DamageError naming the file.
func TestCrashSnapshotDamage(t *testing.T) {
	root, snap, ents := snapshotFixture(t)
	path := filepath.Join(root, SnapshotDir, snapshotFile)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	expectDamage := func(t *testing.T, what string, damaged []byte) {
		t.Helper()
		if err := os.WriteFile(path, damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, ro := range []bool{true, false} {
			s, _, err := openT(root, Options{SegmentSize: 200, ReadOnly: ro})
			if err == nil {
				s.Close()
				t.Fatalf("%s (read-only %v): Open succeeded", what, ro)
			}
			de, ok := asDamage(err)
			if !ok || de.File != path || !strings.Contains(err.Error(), path) {
				t.Fatalf("%s (read-only %v): want a *DamageError naming %s, got %v", what, ro, path, err)
			}
		}
	}
	t.Run("truncated", func(t *testing.T) {
		for n := 0; n < len(orig); n++ {
			expectDamage(t, fmt.Sprintf("cut to %d of %d bytes", n, len(orig)), orig[:n])
		}
		expectDamage(t, "one byte appended", append(bytes.Clone(orig), 'x'))
	})
	t.Run("bit-flips", func(t *testing.T) {
		unprotected := snapshotHeaderFieldLines(orig)
		if len(unprotected) != 3 {
			t.Fatalf("header lines: %v", unprotected)
		}
		var silent []string
		for pos := 0; pos < len(orig); pos++ {
			inFields := false
			for _, r := range unprotected {
				inFields = inFields || (pos >= r[0] && pos < r[1])
			}
			for bit := 0; bit < 8; bit++ {
				flipped := bytes.Clone(orig)
				flipped[pos] ^= 1 << bit
				if err := os.WriteFile(path, flipped, 0o600); err != nil {
					t.Fatal(err)
				}
				s, st, err := openT(root, Options{SegmentSize: 200, ReadOnly: true})
				if err == nil {
					s.Close()
					if sameSnapshot(st.Snapshot, snap) && diffEntries(st.Entries, ents) == "" {
						continue // e.g. a hex digit of the checksum changed case
					}
					if inFields {
						silent = append(silent, fmt.Sprintf("byte %d bit %d: %q -> snapshot %d/%d %v",
							pos, bit, flipped[pos], st.Snapshot.Meta.Index, st.Snapshot.Meta.Term, st.Snapshot.Meta.Members))
						continue // known bug, see TestCrashSnapshotHeaderFieldFlips
					}
					t.Fatalf("byte %d bit %d: Open succeeded with a different state: snapshot %+v, %d entries",
						pos, bit, st.Snapshot.Meta, len(st.Entries))
				}
				de, ok := asDamage(err)
				if !ok || de.File != path || !strings.Contains(err.Error(), path) {
					t.Fatalf("byte %d bit %d: want a *DamageError naming %s, got %v", pos, bit, path, err)
				}
			}
		}
		if len(silent) > 0 {
			t.Logf("known bug: %d flips in the index/term/members lines went undetected, e.g. %s", len(silent), silent[0])
		}
	})
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, st := openStore(t, root, Options{SegmentSize: 200}); !sameSnapshot(st.Snapshot, snap) || diffEntries(st.Entries, ents) != "" {
		t.Fatal("the restored snapshot does not open")
	}
}

// TestCrashSnapshotHeaderFieldFlips: the snapshot's index, term and members are not
// covered by any checksum, so one flipped bit there opens as a different snapshot.
func TestCrashSnapshotHeaderFieldFlips(t *testing.T) {
	root, snap, _ := snapshotFixture(t)
	path := filepath.Join(root, SnapshotDir, snapshotFile)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var silent []string
	for _, r := range snapshotHeaderFieldLines(orig) {
		for pos := r[0]; pos < r[1]; pos++ {
			for bit := 0; bit < 8; bit++ {
				flipped := bytes.Clone(orig)
				flipped[pos] ^= 1 << bit
				if err := os.WriteFile(path, flipped, 0o600); err != nil {
					t.Fatal(err)
				}
				s, st, err := openT(root, Options{SegmentSize: 200, ReadOnly: true})
				if err == nil {
					s.Close()
					if !sameSnapshot(st.Snapshot, snap) {
						silent = append(silent, fmt.Sprintf("byte %d bit %d: opened as index %d term %d members %v",
							pos, bit, st.Snapshot.Meta.Index, st.Snapshot.Meta.Term, st.Snapshot.Meta.Members))
					}
				}
			}
		}
	}
	if len(silent) > 0 {
		t.Fatalf("%d single-bit flips opened as a different snapshot without error, e.g.\n%s",
			len(silent), strings.Join(silent[:min(5, len(silent))], "\n"))
	}
}

// TestCrashSnapshotBeforeLogReset simulates a crash between saving a snapshot and
// removing the old log (saveSnapshot called, the log left as it was).
func TestCrashSnapshotBeforeLogReset(t *testing.T) {
	members := raftcore.Membership{Voters: []raftcore.NodeID{"a", "b", "c"}}
	cases := []struct {
		name     string
		snap     raftcore.SnapshotMeta
		keepFrom uint64 // first entry kept after the snapshot, 0 = log dropped
	}{
		// a leader's snapshot whose term disagrees with the log at its index
		{"disagrees-first-segment", raftcore.SnapshotMeta{Index: 2, Term: 7, Members: members}, 0},
		{"disagrees-inside", raftcore.SnapshotMeta{Index: 9, Term: 7, Members: members}, 0},
		{"disagrees-at-last", raftcore.SnapshotMeta{Index: 16, Term: 7, Members: members}, 0},
		// a snapshot beyond the end of the log
		{"beyond-last", raftcore.SnapshotMeta{Index: 17, Term: 2, Members: members}, 0},
		{"far-beyond-last", raftcore.SnapshotMeta{Index: 1000, Term: 9, Members: members}, 0},
		// the log agrees with the snapshot (a crash inside Compact): entries after it stay
		{"agrees", raftcore.SnapshotMeta{Index: 9, Term: 2, Members: members}, 10},
		{"agrees-at-last", raftcore.SnapshotMeta{Index: 16, Term: 2, Members: members}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			bootstrap(t, root)
			opts := Options{SegmentSize: 150}
			s, _ := openStore(t, root, opts)
			all := append(makeEntries(1, 8, 1), makeEntries(9, 8, 2)...)
			for i := 0; i < len(all); i += 4 {
				if err := s.Save(nil, nil, nil, all[i:i+4]); err != nil {
					t.Fatal(err)
				}
			}
			if len(s.log.segs) < 3 {
				t.Fatalf("want several segments, got %d", len(s.log.segs))
			}
			s.Close()
			snap := testSnap{Meta: tc.snap, Data: []byte("state as of " + fmt.Sprint(tc.snap.Index))}
			if err := saveSnapshot(filepath.Join(root, SnapshotDir), snap); err != nil {
				t.Fatal(err)
			}
			var want []raftcore.Entry
			if tc.keepFrom != 0 {
				want = all[tc.keepFrom-1:]
			}
			s, st := openStore(t, root, opts)
			if !sameSnapshot(st.Snapshot, snap) || st.Applied != tc.snap.Index {
				t.Fatalf("snapshot %+v applied %d, want %+v", st.Snapshot.Meta, st.Applied, tc.snap)
			}
			if d := diffEntries(st.Entries, want); d != "" {
				t.Fatalf("entries: %s", d)
			}
			if segs := segmentFiles(t, root); tc.keepFrom == 0 && len(segs) != 0 {
				t.Fatalf("the old log was not removed: %v", segs)
			}
			// the node goes on from the snapshot
			next := makeEntries(tc.snap.Index+uint64(len(want))+1, 3, tc.snap.Term+1)
			if err := s.Save(nil, nil, nil, next); err != nil {
				t.Fatal(err)
			}
			s.Close()
			_, st = openStore(t, root, opts)
			if d := diffEntries(st.Entries, append(want, next...)); d != "" || st.Snapshot.Meta.Index != tc.snap.Index {
				t.Fatalf("after appending: %s", d)
			}
		})
	}
}
