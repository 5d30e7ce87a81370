package statefile

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"lite-raft/raftcore"
)

// DefaultSegmentSize is the size at which a new segment file is started.
const DefaultSegmentSize = 64 << 20

// DamageError reports damage that recovery must not paper over: it names the file and
// the byte offset so that a person can look.
type DamageError struct {
	File   string
	Offset int64
	Reason string
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("%s at byte offset %d: %s; refusing to start rather than lose entries "+
		"(restore the file from a backup, or re-seed this host with first-boot --join)", e.File, e.Offset, e.Reason)
}

// segment is one file of the log. offsets[i] is where the record of index first+i starts.
type segment struct {
	path    string
	first   uint64
	offsets []int64
	size    int64
}

func (s *segment) last() uint64 { return s.first + uint64(len(s.offsets)) - 1 }

// Log is the Raft log as segment files named by the index of their first record. Only the
// last segment is written to; whole segments are deleted when a snapshot covers them.
type Log struct {
	dir         string
	segmentSize int64
	segs        []*segment
	active      *os.File // the last segment, open for appending
	lastTerm    uint64
	buf         []byte
	readOnly    bool
	afterTerm   uint64 // openLogAt: term of the record at the index it was given
	broken      error  // set after a failed write: only reopening recovers
	// TornBytes is how many bytes of a torn write recovery cut off the last segment.
	TornBytes int64
}

func segmentName(first uint64) string { return fmt.Sprintf("%020d.log", first) }

// logScan is what opening the log learns without keeping the entries: the term of every
// record from the first on, and the membership entries after a given index.
type logScan struct {
	terms       []uint64 // terms[i] is the term of record FirstIndex()+i
	memberships []raftcore.Entry
}

// openLog recovers the log in dir. A record cut short at the very end of the last
// segment (a crash in the middle of an append that was never acknowledged) is cut off;
// any other damage is a *DamageError. With readOnly nothing is changed on disk. The
// membership entries it reports are those above after (a snapshot covers the others).
func openLog(dir string, segmentSize int64, after uint64, readOnly bool) (*Log, logScan, error) {
	l, scan, _, err := openLogAt(dir, segmentSize, after, readOnly)
	return l, scan, err
}

// openLogAt is openLog that also reports the term of the record at index after, if the
// log holds it (0 if not).
func openLogAt(dir string, segmentSize int64, after uint64, readOnly bool) (*Log, logScan, uint64, error) {
	if segmentSize <= 0 {
		segmentSize = DefaultSegmentSize
	}
	l := &Log{dir: dir, segmentSize: segmentSize, readOnly: readOnly}
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, logScan{}, 0, err
	}
	type named struct {
		first uint64
		path  string
	}
	var files []named
	for _, p := range names {
		first, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(p), ".log"), 10, 64)
		if err != nil || first == 0 {
			return nil, logScan{}, 0, fmt.Errorf("%s: not a segment name (want 20 digits of its first index)", p)
		}
		files = append(files, named{first, p})
	}
	slices.SortFunc(files, func(a, b named) int { return cmp.Compare(a.first, b.first) })

	var scan logScan
	// one buffer for every segment: a fresh 64 MiB slice per segment was zeroed by the
	// runtime and collected again, a third of opening 700 MB of log (nothing the scan
	// keeps points into it)
	var buf []byte
	for k, f := range files {
		isLast := k == len(files)-1
		data, err := readInto(&buf, f.path)
		if err != nil {
			return nil, logScan{}, 0, fmt.Errorf("read %s: %w", f.path, err)
		}
		seg := &segment{path: f.path, first: f.first}
		off, torn, err := l.scanSegment(seg, data, isLast, after, &scan)
		if err != nil {
			return nil, logScan{}, 0, err
		}
		// zeros alone after the records are the space the segment reserves ahead (or
		// blocks a crash left unwritten): nothing to cut, and the reservation stays
		if torn && !allZero(data[off:]) {
			l.TornBytes = int64(len(data)) - off
			if !readOnly {
				if err := truncateSync(f.path, off); err != nil {
					return nil, logScan{}, 0, err
				}
			}
		}
		seg.size = off
		if len(seg.offsets) == 0 {
			// nothing durable in it: a segment whose first append was torn
			if !readOnly {
				if err := os.Remove(f.path); err != nil {
					return nil, logScan{}, 0, fmt.Errorf("remove empty segment: %w", err)
				}
			}
			continue
		}
		if n := len(l.segs); n > 0 && l.segs[n-1].last()+1 != seg.first {
			return nil, logScan{}, 0, &DamageError{File: f.path, Offset: 0,
				Reason: fmt.Sprintf("segment starts at index %d but the previous one ends at %d", seg.first, l.segs[n-1].last())}
		}
		l.segs = append(l.segs, seg)
	}
	if !readOnly && len(l.segs) > 0 {
		if err := l.openActive(); err != nil {
			return nil, logScan{}, 0, err
		}
	}
	return l, scan, l.afterTerm, nil
}

// readInto reads the file at path into *buf, grown if it is too small, and returns the
// bytes read.
func readInto(buf *[]byte, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if n := int(fi.Size()); cap(*buf) < n {
		*buf = make([]byte, n)
	}
	b := (*buf)[:fi.Size()]
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	return b[:n], nil // a file cut while it was read: what was there
}

// scanSegment parses one segment file into scan. It returns the offset where valid
// records end and whether the rest is a torn write.
func (l *Log) scanSegment(seg *segment, data []byte, isLast bool, after uint64, scan *logScan) (int64, bool, error) {
	damage := func(off int, reason string) error {
		return &DamageError{File: seg.path, Offset: int64(off), Reason: reason}
	}
	if len(data) < len(segmentMagic) || string(data[:len(segmentMagic)]) != segmentMagic {
		if isLast && (bytes.HasPrefix([]byte(segmentMagic), trimZeroTail(data, 0)) || allZero(data)) {
			return 0, true, nil // the crash hit while the segment was being created
		}
		return 0, false, damage(0, "not a lite-raft log segment (bad magic)")
	}
	off := len(segmentMagic)
	for off < len(data) {
		e, n, st, reason := decodeRecord(data[off:])
		switch st {
		case recordShort:
			if isLast {
				return int64(off), true, nil
			}
			return 0, false, damage(off, reason+" in a segment that is not the last")
		case recordBad:
			if isLast && (allZero(data[off:]) || tornThenZeros(data, off)) {
				return int64(off), true, nil
			}
			return 0, false, damage(off, reason)
		}
		want := seg.first + uint64(len(seg.offsets))
		if e.Index != want {
			return 0, false, damage(off, fmt.Sprintf("record holds index %d where %d belongs", e.Index, want))
		}
		if e.Term < l.lastTerm {
			return 0, false, damage(off, fmt.Sprintf("term %d after term %d", e.Term, l.lastTerm))
		}
		l.lastTerm = e.Term
		seg.offsets = append(seg.offsets, int64(off))
		if e.Index == after {
			l.afterTerm = e.Term
		}
		scan.terms = append(scan.terms, e.Term)
		if e.Index > after && e.Type == raftcore.EntryMembership {
			e.Data = bytes.Clone(e.Data) // not the whole segment's buffer
			scan.memberships = append(scan.memberships, e)
		}
		off += n
	}
	return int64(off), false, nil
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("truncate %s to %d: %w", path, size, err)
	}
	if err := fsync(f); err != nil {
		return err
	}
	return nil
}

func (l *Log) openActive() error {
	seg := l.segs[len(l.segs)-1]
	f, err := os.OpenFile(seg.path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", seg.path, err)
	}
	if _, err := f.Seek(seg.size, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("seek %s: %w", seg.path, err)
	}
	if seg.size < l.segmentSize {
		// reserve what a cut torn tail (or an older lite-raft's segment) does not hold;
		// a range already reserved costs nothing
		_ = preallocate(f, l.segmentSize)
	}
	l.active = f
	return nil
}

// FirstIndex and LastIndex bound the records on disk (0, 0 when there are none).
func (l *Log) FirstIndex() uint64 {
	if len(l.segs) == 0 {
		return 0
	}
	return l.segs[0].first
}

func (l *Log) LastIndex() uint64 {
	if len(l.segs) == 0 {
		return 0
	}
	return l.segs[len(l.segs)-1].last()
}

// Append writes ents durably: one write and one fsync for the whole batch. If ents start
// at or before the last index, the log is first cut back to make room (a conflict).
func (l *Log) Append(ents []raftcore.Entry) error {
	if err := l.writable(); err != nil || len(ents) == 0 {
		return err
	}
	first := ents[0].Index
	if last := l.LastIndex(); last != 0 && first <= last {
		if err := l.TruncateFrom(first); err != nil {
			return err
		}
	}
	if last := l.LastIndex(); last != 0 && first != last+1 {
		return fmt.Errorf("append entries from %d: the log ends at %d", first, last)
	}
	l.buf = l.buf[:0]
	newSegment := l.active == nil || l.segs[len(l.segs)-1].size >= l.segmentSize
	if newSegment {
		l.buf = append(l.buf, segmentMagic...)
	}
	offsets := make([]int64, 0, len(ents))
	for _, e := range ents {
		offsets = append(offsets, int64(len(l.buf)))
		l.buf = appendRecord(l.buf, e)
	}
	if newSegment {
		if err := l.startSegment(first); err != nil {
			return err
		}
	}
	seg := l.segs[len(l.segs)-1]
	base := seg.size
	if newSegment {
		base = 0
	}
	if _, err := l.active.Write(l.buf); err != nil {
		return l.failed(fmt.Errorf("append entries %d..%d to %s: %w", first, ents[len(ents)-1].Index, seg.path, pathless(err)))
	}
	if err := datasync(l.active); err != nil {
		return l.failed(err)
	}
	if newSegment {
		if err := syncDir(l.dir); err != nil {
			return l.failed(err)
		}
	}
	for _, o := range offsets {
		seg.offsets = append(seg.offsets, base+o)
	}
	seg.size = base + int64(len(l.buf))
	l.lastTerm = ents[len(ents)-1].Term
	return nil
}

// failed closes the log after a write or fsync error: what reached the disk is unknown
// (after a failed fsync the kernel may have dropped the dirty pages), so the only safe
// way on is to reopen and recover.
func (l *Log) failed(err error) error {
	l.Close()
	l.broken = fmt.Errorf("%w (the log is closed; restart to recover)", err)
	return l.broken
}

func (l *Log) writable() error {
	if l.readOnly {
		return errors.New("log opened read-only")
	}
	return l.broken
}

// startSegment closes the active segment and opens a new one whose first index is first.
func (l *Log) startSegment(first uint64) error {
	if l.active != nil {
		// the segment is cut to its records first, durably: only the last segment may
		// end in reserved zeros (recovery takes zeros anywhere else for damage)
		prev := l.segs[len(l.segs)-1]
		if err := l.active.Truncate(prev.size); err != nil {
			return fmt.Errorf("cut %s to its records: %w", prev.path, pathless(err))
		}
		if err := datasync(l.active); err != nil {
			return err
		}
		if err := l.active.Close(); err != nil {
			return fmt.Errorf("close %s: %w", l.segs[len(l.segs)-1].path, err)
		}
		l.active = nil
	}
	path := filepath.Join(l.dir, segmentName(first))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	_ = preallocate(f, l.segmentSize) // without it (a file system that cannot), appends grow the file
	l.active = f
	l.segs = append(l.segs, &segment{path: path, first: first})
	return nil
}

// TruncateFrom removes the records from index i on, durably, before anything new is
// written: a crash must not leave new records followed by old ones.
func (l *Log) TruncateFrom(i uint64) error {
	if err := l.writable(); err != nil || len(l.segs) == 0 || i > l.LastIndex() {
		return err
	}
	removed := false
	for len(l.segs) > 0 && l.segs[len(l.segs)-1].first >= i {
		seg := l.segs[len(l.segs)-1]
		if l.active != nil {
			l.active.Close()
			l.active = nil
		}
		if err := os.Remove(seg.path); err != nil {
			return fmt.Errorf("remove %s: %w", seg.path, err)
		}
		l.segs = l.segs[:len(l.segs)-1]
		removed = true
	}
	if removed {
		if err := syncDir(l.dir); err != nil {
			return err
		}
	}
	if len(l.segs) == 0 {
		l.lastTerm = 0
		return nil
	}
	seg := l.segs[len(l.segs)-1]
	if i <= seg.last() {
		off := seg.offsets[i-seg.first]
		if l.active != nil {
			l.active.Close()
			l.active = nil
		}
		if err := truncateSync(seg.path, off); err != nil {
			return err
		}
		seg.offsets = seg.offsets[:i-seg.first]
		seg.size = off
	}
	if l.active == nil {
		if err := l.openActive(); err != nil {
			return err
		}
	}
	return l.refreshLastTerm()
}

func (l *Log) refreshLastTerm() error {
	e, err := l.Entry(l.LastIndex())
	if err != nil {
		return err
	}
	l.lastTerm = e.Term
	return nil
}

// CompactTo deletes every segment whose records are all at or below i, oldest first, so
// that a crash in between leaves a log without gaps. The segment holding i stays: the
// records at or below i in it are skipped when the log is read.
func (l *Log) CompactTo(i uint64) error {
	if err := l.writable(); err != nil {
		return err
	}
	n := 0
	for n < len(l.segs) && l.segs[n].last() <= i {
		n++
	}
	if n == 0 {
		return nil
	}
	if n == len(l.segs) && l.active != nil {
		l.active.Close()
		l.active = nil
	}
	for _, seg := range l.segs[:n] {
		if err := os.Remove(seg.path); err != nil {
			return fmt.Errorf("remove %s: %w", seg.path, err)
		}
	}
	l.segs = slices.Delete(l.segs, 0, n)
	if len(l.segs) == 0 {
		l.lastTerm = 0
	}
	return syncDir(l.dir)
}

// Reset deletes every segment (a snapshot from the leader replaced the whole log).
func (l *Log) Reset() error {
	return l.CompactTo(^uint64(0))
}

// Entry reads one record back from disk.
func (l *Log) Entry(i uint64) (raftcore.Entry, error) {
	ents, err := l.Entries(i, i+1, 0)
	if err != nil {
		return raftcore.Entry{}, err
	}
	return ents[0], nil
}

// Entries reads records [lo, hi) back from disk, as many as fit in maxBytes of data (at
// least one; no limit when 0). It reads only the bytes of those records. Asked for
// records before the first, it fails with raftcore.ErrCompacted.
func (l *Log) Entries(lo, hi, maxBytes uint64) ([]raftcore.Entry, error) {
	if lo < l.FirstIndex() && lo < hi {
		return nil, fmt.Errorf("entries from %d: %w (the log starts at %d)", lo, raftcore.ErrCompacted, l.FirstIndex())
	}
	if hi > l.LastIndex()+1 || lo >= hi {
		return nil, fmt.Errorf("entries [%d, %d): the log holds [%d, %d]", lo, hi, l.FirstIndex(), l.LastIndex())
	}
	var out []raftcore.Entry
	var size uint64
	for _, seg := range l.segs {
		if seg.last() < lo || seg.first >= hi {
			continue
		}
		from, to := max(lo, seg.first), min(hi-1, seg.last())
		// cut at maxBytes using the record offsets, before reading anything
		for k := from; k <= to && maxBytes > 0; k++ {
			end := seg.size
			if k < seg.last() {
				end = seg.offsets[k+1-seg.first]
			}
			size += uint64(end - seg.offsets[k-seg.first])
			if size > maxBytes && (k > from || len(out) > 0) {
				to = k - 1
				break
			}
		}
		if to < from {
			break
		}
		start := seg.offsets[from-seg.first]
		end := seg.size
		if to < seg.last() {
			end = seg.offsets[to+1-seg.first]
		}
		buf := make([]byte, end-start)
		f, err := os.Open(seg.path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", seg.path, err)
		}
		_, err = f.ReadAt(buf, start)
		f.Close()
		if err != nil {
			return nil, &DamageError{File: seg.path, Offset: start, Reason: fmt.Sprintf("read %d bytes: %v", len(buf), err)}
		}
		for k := from; k <= to; k++ {
			off := seg.offsets[k-seg.first] - start
			e, _, st, reason := decodeRecord(buf[off:])
			if st != recordOK || e.Index != k {
				return nil, &DamageError{File: seg.path, Offset: start + off, Reason: reason}
			}
			out = append(out, e)
		}
		if to < min(hi-1, seg.last()) || (maxBytes > 0 && size > maxBytes) {
			break
		}
	}
	return out, nil
}

// Close releases the active segment.
func (l *Log) Close() error {
	if l.active == nil {
		return nil
	}
	err := l.active.Close()
	l.active = nil
	return err
}

// trimZeroTail drops a run of zero bytes at the end of b if the run starts at a 512-byte
// boundary of the file (base is b's offset in the file). A crash after the file grew but
// before its new blocks were written leaves such a run; a flipped bit does not start on
// a sector boundary, so it is still reported as damage.
func trimZeroTail(b []byte, base int) []byte {
	n := len(b)
	for n > 0 && b[n-1] == 0 {
		n--
	}
	if n == len(b) || (base+n)%512 != 0 {
		return b
	}
	return b[:n]
}

// tornThenZeros reports whether the record at off is a record cut short by a crash and
// followed by zero-filled blocks.
func tornThenZeros(data []byte, off int) bool {
	rest := trimZeroTail(data[off:], off)
	if len(rest) == len(data[off:]) {
		return false
	}
	_, _, st, _ := decodeRecord(rest)
	return st == recordShort
}
