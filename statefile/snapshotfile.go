package statefile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"lite-raft/raftcore"
)

// Snapshot files outside the node's state: the backups of `lite-raft-client snapshot save`
// (the leader's copy under temp/, the FILE the client writes) have the format of
// state-machine-snapshot/snapshot, so that `head -8` shows what one holds and `lite-raft
// restore` checks it with the same code as a node's own snapshot.

// WriteSnapshotFile writes the snapshot at meta whose data write produces to path,
// streamed and atomically: a temporary file beside it, fsynced as it grows (as a node's
// snapshot is, so that a large one never leaves the log's next fsync hundreds of MB of
// dirty pages to wait for), then renamed over path. It returns the snapshot it holds and
// the size of the whole file, header included.
func WriteSnapshotFile(path string, meta raftcore.SnapshotMeta, write func(io.Writer) error) (raftcore.Snapshot, int64, error) {
	tmp, snap, header, err := writeSnapshotTemp(path, meta, write)
	if err != nil {
		return raftcore.Snapshot{}, 0, err
	}
	if err := commitTemp(tmp, path); err != nil {
		return raftcore.Snapshot{}, 0, fmt.Errorf("save snapshot at %d: %w", meta.Index, err)
	}
	return snap, int64(len(header)) + int64(snap.Size), nil
}

// SnapshotFile is a snapshot file open for reading, its header read and checked.
type SnapshotFile struct {
	f *os.File
	// Snapshot is what the header says: index, term, members, data size and checksum.
	Snapshot raftcore.Snapshot
	// HeaderLen is where the data starts.
	HeaderLen int64
}

// OpenSnapshotFile opens a snapshot file and checks its header. Check reads the data
// through.
func OpenSnapshotFile(path string) (*SnapshotFile, error) {
	f, snap, hlen, err := openSnapshotFile(path)
	if err != nil {
		return nil, damaged(err)
	}
	return &SnapshotFile{f: f, Snapshot: snap, HeaderLen: hlen}, nil
}

// Check reads the data through and checks its length and CRC-32C against the header.
func (s *SnapshotFile) Check() error { return damaged(checkSnapshotData(s.f, s.Snapshot, s.HeaderLen)) }

// damaged words a *DamageError for a file that is not a node's state: where and what,
// without the advice for a node that will not start.
func damaged(err error) error {
	var de *DamageError
	if errors.As(err, &de) {
		return fmt.Errorf("%s is damaged at byte offset %d: %s", de.File, de.Offset, de.Reason)
	}
	return err
}

// Data reads the data (after the header), from the start.
func (s *SnapshotFile) Data() io.Reader {
	return io.NewSectionReader(s.f, s.HeaderLen, int64(s.Snapshot.Size))
}

func (s *SnapshotFile) Close() error { return s.f.Close() }

// AtomicFile is a file written under a temporary name beside its path and put in place,
// durably, only by Commit: until then nothing at path changes, and Abort leaves nothing
// behind. Writes are fsynced as they grow, as a snapshot's are.
type AtomicFile struct {
	f    *os.File
	w    pacedFile
	path string
	done bool
}

// CreateAtomic starts a file to replace path.
func CreateAtomic(path string, perm os.FileMode) (*AtomicFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	return &AtomicFile{f: f, w: pacedFile{f: f}, path: path}, nil
}

func (a *AtomicFile) Write(p []byte) (int, error) { return a.w.Write(p) }

// TempName is the file being written (read it back to check it before Commit).
func (a *AtomicFile) TempName() string { return a.f.Name() }

// Commit makes the file durable and renames it over path.
func (a *AtomicFile) Commit() error {
	if a.done {
		return errors.New("commit " + a.path + ": already committed or aborted")
	}
	a.done = true
	if err := fsync(a.f); err != nil {
		a.f.Close()
		os.Remove(a.f.Name())
		return err
	}
	if err := a.f.Close(); err != nil {
		os.Remove(a.f.Name())
		return fmt.Errorf("close %s: %w", a.f.Name(), err)
	}
	return commitTemp(a.f.Name(), a.path)
}

// Abort removes the temporary file; path is left as it was. It does nothing after Commit.
func (a *AtomicFile) Abort() {
	if a.done {
		return
	}
	a.done = true
	a.f.Close()
	os.Remove(a.f.Name())
}
