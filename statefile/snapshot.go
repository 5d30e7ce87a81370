package statefile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
	incomingFile = "incoming.partial"
	metaFile     = "meta"
	maxHeader    = 64 << 10
)

func snapshotHeader(meta raftcore.SnapshotMeta, size int64, sum uint32) []byte {
	h := fmt.Sprintf("%s\nindex %d\nterm %d\nmembers %s\nsize %d\ncrc32c %08x\n",
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

// saveSnapshot writes snap as the snapshot in dir, atomically.
func saveSnapshot(dir string, snap raftcore.Snapshot) error {
	p, err := prepareSnapshot(dir, snap)
	if err != nil {
		return err
	}
	return p.commit()
}

// preparedSnapshot is a snapshot written and fsynced beside the current one, not yet in
// its place.
type preparedSnapshot struct {
	dir, tmp string
	meta     raftcore.SnapshotMeta
	header   []byte
}

func prepareSnapshot(dir string, snap raftcore.Snapshot) (*preparedSnapshot, error) {
	sum := crc32.Checksum(snap.Data, castagnoli)
	header := snapshotHeader(snap.Meta, int64(len(snap.Data)), sum)
	tmp, err := writeTemp(filepath.Join(dir, snapshotFile), 0o600, header, snap.Data)
	if err != nil {
		return nil, fmt.Errorf("save snapshot at %d: %w", snap.Meta.Index, err)
	}
	return &preparedSnapshot{dir: dir, tmp: tmp, meta: snap.Meta, header: header}, nil
}

func (p *preparedSnapshot) commit() error {
	if err := commitTemp(p.tmp, filepath.Join(p.dir, snapshotFile)); err != nil {
		return fmt.Errorf("save snapshot at %d: %w", p.meta.Index, err)
	}
	// informative only: a crash before this leaves an older meta, never a wrong snapshot
	return WriteFileAtomic(filepath.Join(p.dir, metaFile), p.header[len(snapshotMagic)+1:], 0o600)
}

func (p *preparedSnapshot) discard() { os.Remove(p.tmp) }

// loadSnapshot reads the snapshot in dir; ok is false if there is none.
func loadSnapshot(dir string) (snap raftcore.Snapshot, ok bool, err error) {
	path := filepath.Join(dir, snapshotFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return snap, false, nil
	}
	if err != nil {
		return snap, false, fmt.Errorf("read %s: %w", path, err)
	}
	meta, size, sum, hlen, err := parseSnapshotHeader(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return snap, false, &DamageError{File: path, Offset: 0, Reason: err.Error()}
	}
	body := data[hlen:]
	if int64(len(body)) != size {
		return snap, false, &DamageError{File: path, Offset: int64(hlen),
			Reason: fmt.Sprintf("header says %d bytes of data, file holds %d", size, len(body))}
	}
	if crc32.Checksum(body, castagnoli) != sum {
		return snap, false, &DamageError{File: path, Offset: int64(hlen), Reason: "data checksum mismatch"}
	}
	return raftcore.Snapshot{Meta: meta, Data: body}, true, nil
}

// ReadSnapshotChunk reads up to max bytes of the stored snapshot's data from offset, for
// sending it to a peer piece by piece. It also returns the data's total size.
func ReadSnapshotChunk(dir string, offset int64, max int) ([]byte, int64, error) {
	path := filepath.Join(dir, snapshotFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("open snapshot: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	_, size, _, hlen, err := parseSnapshotHeader(br)
	if err != nil {
		return nil, 0, &DamageError{File: path, Offset: 0, Reason: err.Error()}
	}
	if max < 0 {
		return nil, size, fmt.Errorf("snapshot chunk of %d bytes: must not be negative", max)
	}
	if offset < 0 || offset > size {
		return nil, size, fmt.Errorf("snapshot chunk at %d: the data is %d bytes", offset, size)
	}
	n := min(int64(max), size-offset)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, int64(hlen)+offset); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return nil, size, fmt.Errorf("read %s at %d: %w", path, int64(hlen)+offset, err)
	}
	return buf, size, nil
}

// SnapshotReceiver assembles a snapshot that arrives in pieces into a partial file, so
// that a transfer cut by a crash or a lost connection resumes where it stopped.
type SnapshotReceiver struct {
	dir   string
	meta  raftcore.SnapshotMeta
	size  int64
	sum   uint32
	f     *os.File
	hlen  int64
	have  int64
	store *Store
}

// Have is how many bytes of data the receiver holds: the offset to resume from.
func (r *SnapshotReceiver) Have() int64 { return r.have }

// Write adds data at offset, which must be Have().
func (r *SnapshotReceiver) Write(offset int64, data []byte) error {
	if offset != r.have {
		return fmt.Errorf("snapshot piece at %d: holding %d bytes", offset, r.have)
	}
	if r.have+int64(len(data)) > r.size {
		return fmt.Errorf("snapshot piece at %d of %d bytes: beyond the announced %d", offset, len(data), r.size)
	}
	if _, err := r.f.WriteAt(data, r.hlen+offset); err != nil {
		return fmt.Errorf("write %s: %w", r.f.Name(), err)
	}
	r.have += int64(len(data))
	return nil
}

// Commit checks the whole and makes it the node's snapshot (replacing the log, as a
// snapshot from the leader does). It returns the snapshot.
func (r *SnapshotReceiver) Commit() (raftcore.Snapshot, error) {
	if r.have != r.size {
		return raftcore.Snapshot{}, fmt.Errorf("snapshot incomplete: %d of %d bytes", r.have, r.size)
	}
	data := make([]byte, r.size)
	if _, err := r.f.ReadAt(data, r.hlen); err != nil && r.size > 0 {
		return raftcore.Snapshot{}, fmt.Errorf("read back %s: %w", r.f.Name(), err)
	}
	if crc32.Checksum(data, castagnoli) != r.sum {
		r.Abort()
		return raftcore.Snapshot{}, fmt.Errorf("snapshot at %d: checksum mismatch, discarded", r.meta.Index)
	}
	r.f.Close()
	os.Remove(r.f.Name())
	snap := raftcore.Snapshot{Meta: r.meta, Data: data}
	if err := r.store.InstallSnapshot(snap); err != nil {
		return raftcore.Snapshot{}, err
	}
	return snap, nil
}

// Abort drops the partial file.
func (r *SnapshotReceiver) Abort() {
	r.f.Close()
	os.Remove(r.f.Name())
}
