package statefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"lite-raft/raftcore"
)

// Folders under the lite-raft directory (DESIGN.md, "Runtime files").
const (
	StateDir    = "state"
	LogDir      = "state-machine-log"
	SnapshotDir = "state-machine-snapshot"
	hardFile    = "current"
	commitFile  = "commit"
)

// Options tune a Store.
type Options struct {
	// SegmentSize is the size at which a new log segment is started (default 64 MiB).
	SegmentSize int64
	// ReadOnly opens the files for looking only (lite-raft debug): nothing is repaired,
	// created or removed, and every write fails.
	ReadOnly bool
}

// Store is a node's durable state under its lite-raft directory: the hard state, the log
// and the latest snapshot. It is the only code in lite-raft that calls fsync.
type Store struct {
	root    string
	opts    Options
	log     *Log
	snap    raftcore.Snapshot
	readers snapshotReaders
	in      *incoming // the partial snapshot being received, if any
}

func (s *Store) path(parts ...string) string {
	return filepath.Join(append([]string{s.root}, parts...)...)
}

// Open recovers the state stored under root and returns it as a raftcore.State. A torn
// write at the tail of the log (an append that was never acknowledged) is cut off; any
// other damage is a *DamageError naming the file and offset.
func Open(root string, opts Options) (*Store, raftcore.State, error) {
	s := &Store{root: root, opts: opts}
	var st raftcore.State
	if !opts.ReadOnly {
		created := false
		for _, d := range []string{StateDir, LogDir, SnapshotDir} {
			if _, err := os.Stat(s.path(d)); errors.Is(err, os.ErrNotExist) {
				created = true
			}
			if err := os.MkdirAll(s.path(d), 0o700); err != nil {
				return nil, st, fmt.Errorf("create %s: %w", s.path(d), err)
			}
			if err := removeStaleTemps(s.path(d)); err != nil {
				return nil, st, err
			}
		}
		if created {
			// the new folders' names are entries of the lite-raft directory: without this
			// a power cut after first boot could take every file in them along
			if err := syncDir(root); err != nil {
				return nil, st, err
			}
		}
	}
	hs, err := loadHardState(s.path(StateDir, hardFile))
	if err != nil {
		return nil, st, err
	}
	snap, _, err := loadSnapshot(s.path(SnapshotDir))
	if err != nil {
		return nil, st, err
	}
	log, scan, termAt, err := openLogAt(s.path(LogDir), opts.SegmentSize, snap.Meta.Index, opts.ReadOnly)
	if err != nil {
		return nil, st, err
	}
	s.log = log
	s.snap = snap
	first, last := log.FirstIndex(), log.LastIndex()
	switch {
	case last == 0:
	case first > snap.Meta.Index+1:
		log.Close()
		return nil, st, &DamageError{File: s.path(LogDir, segmentName(first)), Offset: 0,
			Reason: fmt.Sprintf("the log starts at index %d but the snapshot ends at %d: entries are missing", first, snap.Meta.Index)}
	case last <= snap.Meta.Index || (first <= snap.Meta.Index && termAt != snap.Meta.Term):
		// All covered by the snapshot, or the snapshot came from the leader and replaced
		// a log that disagrees with it, and a crash stopped the old log's removal.
		scan = logScan{}
		if !opts.ReadOnly {
			if err := log.Reset(); err != nil {
				return nil, st, err
			}
		}
	}
	if s.in, err = openIncoming(s.path(SnapshotDir), snap.Meta.Index, opts.ReadOnly); err != nil {
		log.Close()
		return nil, st, err
	}
	st = raftcore.State{HardState: hs, Snapshot: snap, First: log.FirstIndex(), Terms: scan.terms,
		Memberships: scan.memberships, Applied: snap.Meta.Index}
	if in := s.in; in != nil {
		st.Incoming = &raftcore.IncomingSnapshot{Meta: in.snap.Meta, Size: in.snap.Size,
			Checksum: in.snap.Checksum, Have: in.have, Sum: in.sum}
	}
	st.Commit = s.loadCommit()
	if !opts.ReadOnly {
		if err := s.syncRecovered(); err != nil {
			s.Close()
			return nil, raftcore.State{}, err
		}
	}
	return s, st, nil
}

// syncRecovered makes durable everything Open read: Raft takes the state it returns as
// durable (a restarted follower tells the leader it holds those entries, a node votes by
// that term), but an agent killed between a write and its fsync, or whose fsync failed,
// leaves data that the next process reads back and a power cut would still take: the
// tail of the last segment, a segment or a replaced file whose directory entry was never
// fsynced. Only the last segment can hold unsynced data: a new one is started only after
// an append to the previous one was fsynced.
func (s *Store) syncRecovered() error {
	if s.log.active != nil {
		if err := fsync(s.log.active); err != nil {
			return err
		}
	}
	if s.in != nil {
		if err := fsync(s.in.f); err != nil {
			return err
		}
	}
	for _, d := range []string{StateDir, LogDir, SnapshotDir} {
		if err := syncDir(s.path(d)); err != nil {
			return err
		}
	}
	return nil
}

// Bootstrap wipes every durable state under root and writes the state of a first boot:
// term 0, no vote, an empty log, and a snapshot at index 0 holding the initial members
// (none for a host that waits to be added).
func Bootstrap(root string, members raftcore.Membership) error {
	for _, d := range []string{StateDir, LogDir, SnapshotDir} {
		if err := os.RemoveAll(filepath.Join(root, d)); err != nil {
			return fmt.Errorf("wipe %s: %w", d, err)
		}
	}
	s, _, err := Open(root, Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.SaveHardState(raftcore.HardState{}); err != nil {
		return err
	}
	return bootstrapSnapshot(s.path(SnapshotDir), raftcore.SnapshotMeta{Members: members})
}

// SnapshotPath is the file that holds the stored snapshot of the lite-raft directory dir.
func SnapshotPath(dir string) string { return filepath.Join(dir, SnapshotDir, snapshotFile) }

// DiskBytes is what the Raft files of the lite-raft directory dir take (the state, the
// log's segments, the snapshots), as their sizes say; a file that goes while it is
// counted is not.
func DiskBytes(dir string) uint64 {
	var n uint64
	for _, d := range []string{StateDir, LogDir, SnapshotDir} {
		filepath.WalkDir(filepath.Join(dir, d), func(_ string, e fs.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				if fi, err := e.Info(); err == nil {
					n += uint64(fi.Size())
				}
			}
			return nil
		})
	}
	return n
}

// Save makes a Ready's durable parts durable, in the order raftcore requires: hard state,
// snapshot pieces, a complete snapshot (replacing the log), entries (one write, one fsync
// for the batch).
func (s *Store) Save(hs *raftcore.HardState, chunks []raftcore.SnapshotChunk, snap *raftcore.Snapshot, ents []raftcore.Entry) error {
	if s.opts.ReadOnly {
		return errors.New("store opened read-only")
	}
	if hs != nil {
		if err := s.SaveHardState(*hs); err != nil {
			return err
		}
	}
	for _, c := range chunks {
		if err := s.writeChunk(c); err != nil {
			return err
		}
	}
	if snap != nil {
		if err := s.installIncoming(*snap); err != nil {
			return err
		}
		s.snap = *snap
		s.dropPrevious() // the log it ran from is gone
		if err := s.log.Reset(); err != nil {
			return err
		}
	}
	return s.log.Append(ents)
}

// SaveHardState replaces the term and vote atomically.
func (s *Store) SaveHardState(hs raftcore.HardState) error {
	if s.opts.ReadOnly {
		return errors.New("store opened read-only")
	}
	return WriteFileAtomic(s.path(StateDir, hardFile), encodeHardState(hs), 0o600)
}

// ErrStaleSnapshot is what committing a snapshot returns when a newer one (from the
// leader) was stored meanwhile: it is thrown away.
var ErrStaleSnapshot = errors.New("a newer snapshot was stored meanwhile")

// WriteSnapshot writes a snapshot of the node's own state as of meta, streaming what
// write produces to a file beside the current snapshot and fsyncing it, touching nothing
// else; it may run on another goroutine than the one appending to the log. It returns
// the snapshot's description and a commit to call on the log's goroutine, which puts it
// in place; if a newer snapshot was installed meanwhile, the commit throws this one away
// and returns ErrStaleSnapshot. The log is left as it is: CompactLog drops what Raft no
// longer needs.
func (s *Store) WriteSnapshot(meta raftcore.SnapshotMeta, write func(io.Writer) error) (raftcore.Snapshot, func() error, error) {
	if s.opts.ReadOnly {
		return raftcore.Snapshot{}, nil, errors.New("store opened read-only")
	}
	p, err := prepareSnapshot(s.path(SnapshotDir), meta, write)
	if err != nil {
		return raftcore.Snapshot{}, nil, err
	}
	return p.snap, func() error {
		if meta.Index <= s.snap.Meta.Index && s.snap.Meta.Index != 0 {
			p.discard()
			return fmt.Errorf("compact to %d: %w (the snapshot is at %d)", meta.Index, ErrStaleSnapshot, s.snap.Meta.Index)
		}
		s.keepPrevious()
		if err := p.commit(); err != nil {
			if errors.Is(err, errInPlace) {
				// The file in place is the new snapshot, not durably, and the snapshot
				// Raft holds is gone from it: as after a failed fsync of the log, only a
				// reopen (which fsyncs what it finds) can go on from here.
				return s.log.failed(err)
			}
			return err
		}
		s.snap = p.snap
		s.readers.sweep(time.Now())
		return nil
	}, nil
}

// CompactLog drops the log segments wholly before keepFrom, which must be at most one
// past the snapshot's index.
func (s *Store) CompactLog(keepFrom uint64) error {
	if keepFrom > s.snap.Meta.Index+1 {
		return fmt.Errorf("compact the log to %d: the snapshot is at %d", keepFrom, s.snap.Meta.Index)
	}
	if keepFrom <= 1 {
		return nil
	}
	return s.log.CompactTo(keepFrom - 1)
}

// ReplaceWithSnapshot makes what write produces the snapshot at meta and drops the whole
// log (lite-raft recover: the state as of the log's end becomes a new cluster's start).
func (s *Store) ReplaceWithSnapshot(meta raftcore.SnapshotMeta, write func(io.Writer) error) error {
	if s.opts.ReadOnly {
		return errors.New("store opened read-only")
	}
	p, err := prepareSnapshot(s.path(SnapshotDir), meta, write)
	if err != nil {
		return err
	}
	if err := p.commit(); err != nil {
		return err
	}
	s.snap = p.snap
	s.dropPrevious() // of another history
	return s.log.Reset()
}

// Entries reads stable entries back (raftcore.Storage).
func (s *Store) Entries(lo, hi, maxBytes uint64) ([]raftcore.Entry, error) {
	return s.log.Entries(lo, hi, maxBytes)
}

// ReadSnapshot reads a piece of the data of snapshot snap, which may have been replaced
// by a newer one since it was first read (raftcore.Storage).
func (s *Store) ReadSnapshot(snap raftcore.Snapshot, off uint64, p []byte) error {
	return s.readers.read(s.path(SnapshotDir, snapshotFile), snap, off, p)
}

// SaveCommit records the commit index for the next start. It is not fsynced: a lost or
// older value only means the node waits for the leader to tell it again. Call it only
// after the entries up to c are durable.
func (s *Store) SaveCommit(c uint64) error {
	if s.opts.ReadOnly {
		return errors.New("store opened read-only")
	}
	p := s.path(StateDir, commitFile)
	tmp := p + ".next"
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(c, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return os.Rename(tmp, p)
}

func (s *Store) loadCommit() uint64 {
	data, err := os.ReadFile(s.path(StateDir, commitFile))
	if err != nil {
		return 0
	}
	c, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0 // advisory only; a damaged value costs nothing but waiting for the leader
	}
	return c
}

// Log gives access to the log (for lite-raft debug).
func (s *Store) Log() *Log { return s.log }

// Snapshot describes the stored snapshot.
func (s *Store) Snapshot() raftcore.Snapshot { return s.snap }

// Close releases the files.
func (s *Store) Close() error {
	s.readers.close()
	if s.in != nil {
		s.in.f.Close()
		s.in = nil
	}
	return s.log.Close()
}
