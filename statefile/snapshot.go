package statefile

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"lite-raft/raftcore"
)

// A snapshot file starts with a text header that `head` can show, then the data:
//
//	lite-raft snapshot v1
//	index 1200
//	term 3
//	members voters=a,b,c outgoing= learners=
//	size 52344
//	crc32c 8f3e21aa
//	header-crc32c 1b2c3d4e
//	<empty line>
//	<size bytes of data>
//
// The last header line checks the lines before it. The file is replaced atomically;
// state-machine-snapshot/meta repeats the header for `cat`.
const snapshotMagic = "lite-raft snapshot v1"

const (
	snapshotFile = "snapshot"
	// previousFile is the snapshot before the latest (snapshot.go, keepPrevious)
	previousFile = "snapshot.previous"
	incomingFile = "incoming.partial"
	metaFile     = "meta"
	maxHeader    = 64 << 10
)

// snapshotHeader renders the header. size is written with a fixed width, so that a
// header written before the data (with size and checksum still zero) can be rewritten in
// place once they are known.
func snapshotHeader(meta raftcore.SnapshotMeta, size int64, sum uint32) []byte {
	h := fmt.Sprintf("%s\nindex %d\nterm %d\nmembers %s\nsize %020d\ncrc32c %08x\n",
		snapshotMagic, meta.Index, meta.Term, raftcore.EncodeMembership(meta.Members), size, sum)
	// the header's own checksum: a flipped digit in index or term must not read as
	// another snapshot
	return []byte(fmt.Sprintf("%sheader-crc32c %08x\n\n", h, crc32.Checksum([]byte(h), castagnoli)))
}

// parseSnapshotHeader reads the header from r and returns it with the header's length.
func parseSnapshotHeader(r *bufio.Reader) (meta raftcore.SnapshotMeta, size int64, sum uint32, hlen int, err error) {
	readLine := func() (string, error) {
		line, err := r.ReadString('\n')
		hlen += len(line)
		if err != nil {
			return "", fmt.Errorf("header cut short")
		}
		if hlen > maxHeader {
			return "", fmt.Errorf("header longer than %d bytes", maxHeader)
		}
		return strings.TrimSuffix(line, "\n"), nil
	}
	line, err := readLine()
	if err != nil {
		return
	}
	if line != snapshotMagic {
		err = fmt.Errorf("not a lite-raft snapshot (first line %q)", line)
		return
	}
	seen := map[string]bool{}
	var covered []byte // header bytes the header checksum covers
	covered = append(covered, line+"\n"...)
	var headerSum uint32
	for {
		line, err = readLine()
		if err != nil {
			return
		}
		if line == "" {
			break
		}
		if seen["header-crc32c"] {
			err = fmt.Errorf("header-crc32c is not the last header line")
			return
		}
		if !strings.HasPrefix(line, "header-crc32c ") {
			covered = append(covered, line+"\n"...)
		}
		key, val, _ := strings.Cut(line, " ")
		if seen[key] {
			err = fmt.Errorf("header field %q twice", key)
			return
		}
		seen[key] = true
		var perr error
		switch key {
		case "index":
			meta.Index, perr = strconv.ParseUint(val, 10, 64)
		case "term":
			meta.Term, perr = strconv.ParseUint(val, 10, 64)
		case "members":
			meta.Members, perr = raftcore.DecodeMembership([]byte(val))
		case "size":
			size, perr = strconv.ParseInt(val, 10, 64)
			if perr == nil && size < 0 {
				perr = errors.New("negative")
			}
		case "crc32c", "header-crc32c":
			var v uint64
			v, perr = strconv.ParseUint(val, 16, 32)
			if key == "crc32c" {
				sum = uint32(v)
			} else {
				headerSum = uint32(v)
			}
		default:
			perr = errors.New("unknown field")
		}
		if perr != nil {
			err = fmt.Errorf("header field %q: %v", line, perr)
			return
		}
	}
	for _, k := range []string{"index", "term", "members", "size", "crc32c", "header-crc32c"} {
		if !seen[k] {
			err = fmt.Errorf("header lacks %q", k)
			return
		}
	}
	if crc32.Checksum(covered, castagnoli) != headerSum {
		err = fmt.Errorf("header checksum mismatch")
	}
	return
}

// bootstrapSnapshot writes the empty snapshot of a first boot.
func bootstrapSnapshot(dir string, meta raftcore.SnapshotMeta) error {
	p, err := prepareSnapshot(dir, meta, func(io.Writer) error { return nil })
	if err != nil {
		return err
	}
	return p.commit()
}

// preparedSnapshot is a snapshot written and fsynced beside the current one, not yet in
// its place.
type preparedSnapshot struct {
	dir, tmp string
	snap     raftcore.Snapshot
	header   []byte
}

// countingWriter computes the size and CRC-32C of what goes through it.
type countingWriter struct {
	w    io.Writer
	n    int64
	sum  uint32
	werr error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.sum = crc32.Update(c.sum, castagnoli, p[:n])
	if err != nil {
		c.werr = err
	}
	return n, err
}

// SnapshotOfStream is the snapshot (size and CRC-32C, as a snapshot file's header says
// them) that write would store at meta, computed without storing it.
func SnapshotOfStream(meta raftcore.SnapshotMeta, write func(io.Writer) error) (raftcore.Snapshot, error) {
	cw := &countingWriter{w: io.Discard}
	if err := write(cw); err != nil {
		return raftcore.Snapshot{}, err
	}
	return raftcore.Snapshot{Meta: meta, Size: uint64(cw.n), Checksum: cw.sum}, nil
}

// pacedFile fsyncs a snapshot being written every snapshotSyncEvery bytes. Written in
// one go and fsynced at the end, a large snapshot leaves hundreds of MB of dirty pages
// that the log's next fsync may have to wait for (ext4 in ordered mode flushes them with
// the journal commit): every write of the cluster would stall for as long. Paced, an
// fsync of the log waits for a few MB at most.
type pacedFile struct {
	f       *os.File
	pending int64
}

const snapshotSyncEvery = 4 << 20

func (p *pacedFile) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.pending += int64(n)
	if err == nil && p.pending >= snapshotSyncEvery {
		p.pending = 0
		if serr := fsync(p.f); serr != nil {
			return n, serr
		}
	}
	return n, err
}

// prepareSnapshot streams the data write produces into a temporary file beside the
// snapshot, behind a header whose size and checksum are filled in at the end, and
// fsyncs it. Nothing of the state is held in memory but a buffer.
func prepareSnapshot(dir string, meta raftcore.SnapshotMeta, write func(io.Writer) error) (*preparedSnapshot, error) {
	tmp, snap, header, err := writeSnapshotTemp(filepath.Join(dir, snapshotFile), meta, write)
	if err != nil {
		return nil, err
	}
	return &preparedSnapshot{dir: dir, tmp: tmp, snap: snap, header: header}, nil
}

// writeSnapshotTemp writes a snapshot file (header and data) to a durable temporary file
// beside path, and returns its name, the snapshot it holds and its header.
func writeSnapshotTemp(path string, meta raftcore.SnapshotMeta, write func(io.Writer) error) (string, raftcore.Snapshot, []byte, error) {
	var header []byte
	var cw *countingWriter
	tmp, err := writeTemp(path, 0o600, func(f *os.File) error {
		placeholder := snapshotHeader(meta, 0, 0)
		if _, err := f.Write(placeholder); err != nil {
			return err
		}
		bw := bufio.NewWriterSize(&pacedFile{f: f}, 256<<10)
		cw = &countingWriter{w: bw}
		if err := write(cw); err != nil {
			if cw.werr != nil {
				return cw.werr
			}
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		header = snapshotHeader(meta, cw.n, cw.sum)
		if len(header) != len(placeholder) {
			return fmt.Errorf("snapshot header changed length (%d, %d bytes)", len(placeholder), len(header))
		}
		_, err := f.WriteAt(header, 0)
		return err
	})
	if err != nil {
		return "", raftcore.Snapshot{}, nil, fmt.Errorf("save snapshot at %d: %w", meta.Index, err)
	}
	return tmp, raftcore.Snapshot{Meta: meta, Size: uint64(cw.n), Checksum: cw.sum}, header, nil
}

func (p *preparedSnapshot) commit() error {
	if err := commitTemp(p.tmp, filepath.Join(p.dir, snapshotFile)); err != nil {
		return fmt.Errorf("save snapshot at %d: %w", p.snap.Meta.Index, err)
	}
	if err := writeMeta(p.dir, p.header); err != nil {
		// meta is only informative, but the disk failed an fsync right after the
		// snapshot was put in place: trust neither
		return fmt.Errorf("save snapshot at %d: %s %w: %w", p.snap.Meta.Index, filepath.Join(p.dir, snapshotFile), errInPlace, err)
	}
	return nil
}

// writeMeta repeats a snapshot's header in state-machine-snapshot/meta. It is
// informative only: a crash before it leaves an older meta, never a wrong snapshot.
func writeMeta(dir string, header []byte) error {
	return WriteFileAtomic(filepath.Join(dir, metaFile), header[len(snapshotMagic)+1:], 0o600)
}

func (p *preparedSnapshot) discard() { os.Remove(p.tmp) }

// openSnapshotFile opens a snapshot file and reads its header; the file is left
// positioned nowhere in particular (read it with ReadAt from hlen).
func openSnapshotFile(path string) (f *os.File, snap raftcore.Snapshot, hlen int64, err error) {
	f, err = os.Open(path)
	if err != nil {
		return nil, snap, 0, err
	}
	meta, size, sum, n, err := parseSnapshotHeader(bufio.NewReader(io.NewSectionReader(f, 0, maxHeader)))
	if err != nil {
		f.Close()
		return nil, snap, 0, &DamageError{File: path, Offset: 0, Reason: err.Error()}
	}
	return f, raftcore.Snapshot{Meta: meta, Size: uint64(size), Checksum: sum}, int64(n), nil
}

// checkSnapshotData reads the data of an open snapshot file and checks its length and
// checksum.
func checkSnapshotData(f *os.File, snap raftcore.Snapshot, hlen int64) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if held := fi.Size() - hlen; held != int64(snap.Size) {
		return &DamageError{File: f.Name(), Offset: hlen,
			Reason: fmt.Sprintf("header says %d bytes of data, file holds %d", snap.Size, held)}
	}
	h := crc32.New(castagnoli)
	if _, err := io.Copy(h, io.NewSectionReader(f, hlen, int64(snap.Size))); err != nil {
		return fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if h.Sum32() != snap.Checksum {
		return &DamageError{File: f.Name(), Offset: hlen, Reason: "data checksum mismatch"}
	}
	return nil
}

// loadSnapshot checks the snapshot in dir and describes it; ok is false if there is none.
// The data is read through once, not kept.
func loadSnapshot(dir string) (snap raftcore.Snapshot, ok bool, err error) {
	path := filepath.Join(dir, snapshotFile)
	f, snap, hlen, err := openSnapshotFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return snap, false, nil
	}
	if err != nil {
		return snap, false, err
	}
	defer f.Close()
	if err := checkSnapshotData(f, snap, hlen); err != nil {
		return snap, false, err
	}
	return snap, true, nil
}

// snapshotReaders keeps snapshot files open while they are being sent, so that a
// snapshot replaced by a newer one stays readable (an open file outlives its name) until
// its transfers end. One not read for snapshotReaderIdle is closed.
type snapshotReaders struct {
	open map[snapKey]*openSnapshot
}

type snapKey struct {
	index, term, size uint64
	sum               uint32
}

type openSnapshot struct {
	f        *os.File
	hlen     int64
	lastRead time.Time
}

const snapshotReaderIdle = 2 * time.Minute

func keyOf(s raftcore.Snapshot) snapKey {
	return snapKey{s.Meta.Index, s.Meta.Term, s.Size, s.Checksum}
}

// read fills p from snapshot s at off; path is where the current snapshot lives.
func (r *snapshotReaders) read(path string, s raftcore.Snapshot, off uint64, p []byte) error {
	now := time.Now()
	r.sweep(now)
	o := r.open[keyOf(s)]
	if o == nil {
		f, got, hlen, err := openSnapshotFile(path)
		if err != nil {
			return err
		}
		if keyOf(got) != keyOf(s) {
			f.Close()
			return fmt.Errorf("snapshot at %d (term %d) is not stored any more (%s holds the one at %d)",
				s.Meta.Index, s.Meta.Term, path, got.Meta.Index)
		}
		if r.open == nil {
			r.open = map[snapKey]*openSnapshot{}
		}
		o = &openSnapshot{f: f, hlen: hlen}
		r.open[keyOf(s)] = o
	}
	o.lastRead = now
	if off+uint64(len(p)) > s.Size {
		return fmt.Errorf("snapshot at %d: %d bytes at %d, beyond its %d", s.Meta.Index, len(p), off, s.Size)
	}
	if _, err := o.f.ReadAt(p, o.hlen+int64(off)); err != nil && !(errors.Is(err, io.EOF) && len(p) == 0) {
		return fmt.Errorf("read snapshot at %d: %w", s.Meta.Index, err)
	}
	return nil
}

// sweep closes the files not read for snapshotReaderIdle: a replaced snapshot's space
// is given back once no transfer reads it any more.
func (r *snapshotReaders) sweep(now time.Time) {
	for k, o := range r.open {
		if now.Sub(o.lastRead) > snapshotReaderIdle {
			o.f.Close()
			delete(r.open, k)
		}
	}
}

func (r *snapshotReaders) close() {
	for k, o := range r.open {
		o.f.Close()
		delete(r.open, k)
	}
}

// incoming is the partial snapshot a follower is receiving, in incoming.partial: the
// header of the whole (as the leader announced it), then the data received so far.
type incoming struct {
	f        *os.File
	snap     raftcore.Snapshot
	hlen     int64
	have     uint64
	sum      uint32
	unsynced int64
	// named: the file's directory entry is durable (a file created by writeChunk is
	// not until the directory is fsynced, and its synced pieces are lost with it)
	named bool
}

// openIncoming opens the partial snapshot in dir, if there is one after index after, and
// reads how much it holds; anything else there is removed.
func openIncoming(dir string, after uint64, readOnly bool) (*incoming, error) {
	path := filepath.Join(dir, incomingFile)
	f, snap, hlen, err := openSnapshotFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err == nil && snap.Meta.Index > after && !readOnly {
		fi, serr := f.Stat()
		if serr == nil && fi.Size() >= hlen {
			have := min(uint64(fi.Size()-hlen), snap.Size)
			h := crc32.New(castagnoli)
			if _, rerr := io.Copy(h, io.NewSectionReader(f, hlen, int64(have))); rerr == nil {
				f.Close()
				rw, oerr := os.OpenFile(path, os.O_RDWR, 0)
				if oerr == nil {
					return &incoming{f: rw, snap: snap, hlen: hlen, have: have, sum: h.Sum32(), named: true}, nil
				}
			}
		}
	}
	if f != nil {
		f.Close()
	}
	if readOnly {
		return nil, nil
	}
	// damaged, older than the snapshot, or unreadable: it only costs a transfer again
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove %s: %w", path, err)
	}
	return nil, nil
}

// writeChunk adds a piece to the partial snapshot; a piece at offset 0 starts a new one.
func (s *Store) writeChunk(c raftcore.SnapshotChunk) error {
	path := s.path(SnapshotDir, incomingFile)
	if c.Offset == 0 {
		if s.in != nil {
			s.in.f.Close()
			s.in = nil
		}
		snap := raftcore.Snapshot{Meta: c.Meta, Size: c.Total, Checksum: c.Checksum}
		header := snapshotHeader(c.Meta, int64(c.Total), c.Checksum)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
		if _, err := f.Write(header); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
		s.in = &incoming{f: f, snap: snap, hlen: int64(len(header))}
	}
	in := s.in
	if in == nil || in.have != c.Offset || in.snap.Meta.Index != c.Meta.Index || in.snap.Meta.Term != c.Meta.Term {
		return fmt.Errorf("snapshot piece at %d of the snapshot at %d: does not follow the partial snapshot held", c.Offset, c.Meta.Index)
	}
	if _, err := in.f.WriteAt(c.Data, in.hlen+int64(c.Offset)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	in.have += uint64(len(c.Data))
	in.sum = crc32.Update(in.sum, castagnoli, c.Data)
	// paced as a snapshot being written is (pacedFile), and what is synced survives a
	// crash or a power cut for the transfer to resume from: at the first fsync, the
	// directory's too, or the file's name would not survive with its data
	if in.unsynced += int64(len(c.Data)); in.unsynced >= snapshotSyncEvery {
		in.unsynced = 0
		if err := fsync(in.f); err != nil {
			return err
		}
		if !in.named {
			if err := syncDir(s.path(SnapshotDir)); err != nil {
				return err
			}
			in.named = true
		}
	}
	return nil
}

// installIncoming makes the complete partial snapshot, which must be snap, the stored
// snapshot, durably.
func (s *Store) installIncoming(snap raftcore.Snapshot) error {
	in := s.in
	if in == nil || keyOf(in.snap) != keyOf(snap) || in.have != snap.Size || in.sum != snap.Checksum {
		return fmt.Errorf("install the snapshot at %d: the partial snapshot held is not it", snap.Meta.Index)
	}
	s.in = nil
	defer in.f.Close()
	// no read-back: the checksum was computed over every piece as it was written, and
	// Open checks the file at the next start; reading 500 MB again here only held up the
	// install
	if err := fsync(in.f); err != nil {
		return err
	}
	if err := commitTemp(in.f.Name(), s.path(SnapshotDir, snapshotFile)); err != nil {
		return fmt.Errorf("install the snapshot at %d: %w", snap.Meta.Index, err)
	}
	return writeMeta(s.path(SnapshotDir), snapshotHeader(snap.Meta, int64(snap.Size), snap.Checksum))
}

// SnapshotData opens the stored snapshot's data for reading (to restore the state
// machine from it) and describes the snapshot.
func (s *Store) SnapshotData() (io.ReadCloser, raftcore.Snapshot, error) {
	f, snap, hlen, err := openSnapshotFile(s.path(SnapshotDir, snapshotFile))
	if err != nil {
		return nil, snap, fmt.Errorf("open the snapshot: %w", err)
	}
	return struct {
		io.Reader
		io.Closer
	}{bufio.NewReaderSize(io.NewSectionReader(f, hlen, int64(snap.Size)), 256<<10), f}, snap, nil
}

// keepPrevious links the snapshot in place to snapshot.previous, before a newer one of
// the node's own replaces it. The log is kept from that snapshot on (raftcore's
// KeepPrevious), and an entry alone does not say what it changed: a restart applies the
// log again from this snapshot to a scratch store to know what each entry changed, so
// that watch --from serves everything the log holds. Best effort, and never fsynced: a
// restart without it serves the changes since the latest snapshot only. A link costs no
// space until the newer snapshot is in place, and then one snapshot more.
func (s *Store) keepPrevious() {
	cur, prev := s.path(SnapshotDir, snapshotFile), s.path(SnapshotDir, previousFile)
	tmp := s.path(SnapshotDir, "."+previousFile+".tmp")
	os.Remove(tmp)
	if os.Link(cur, tmp) == nil && os.Rename(tmp, prev) != nil {
		os.Remove(tmp)
	}
}

// dropPrevious removes snapshot.previous when the log no longer runs from it (a snapshot
// that replaced the log): a replay from it would apply entries to a state they do not
// follow. Best effort too: the replay also checks that the log runs from it.
func (s *Store) dropPrevious() {
	os.Remove(s.path(SnapshotDir, previousFile))
}

// PreviousSnapshotData opens the snapshot before the latest (to replay the log from it)
// and describes it, once its data is checked: a damaged one must not replay into wrong
// changes. An error matching os.ErrNotExist says there is none.
func (s *Store) PreviousSnapshotData() (io.ReadCloser, raftcore.Snapshot, error) {
	path := s.path(SnapshotDir, previousFile)
	f, snap, hlen, err := openSnapshotFile(path)
	if err != nil {
		return nil, snap, fmt.Errorf("open the previous snapshot: %w", err)
	}
	if err := checkSnapshotData(f, snap, hlen); err != nil {
		f.Close()
		return nil, snap, err
	}
	return struct {
		io.Reader
		io.Closer
	}{bufio.NewReaderSize(io.NewSectionReader(f, hlen, int64(snap.Size)), 256<<10), f}, snap, nil
}
