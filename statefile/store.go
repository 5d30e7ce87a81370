package statefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
	root string
	opts Options
	log  *Log
	snap raftcore.SnapshotMeta
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
		for _, d := range []string{StateDir, LogDir, SnapshotDir} {
			if err := os.MkdirAll(s.path(d), 0o700); err != nil {
				return nil, st, fmt.Errorf("create %s: %w", s.path(d), err)
			}
			if err := removeStaleTemps(s.path(d)); err != nil {
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
	log, ents, termAt, err := openLogAt(s.path(LogDir), opts.SegmentSize, snap.Meta.Index, opts.ReadOnly)
	if err != nil {
		return nil, st, err
	}
	s.log = log
	s.snap = snap.Meta
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
		ents = nil
		if !opts.ReadOnly {
			if err := log.Reset(); err != nil {
				return nil, st, err
			}
		}
	}
	st = raftcore.State{HardState: hs, Snapshot: snap, Entries: ents, Applied: snap.Meta.Index}
	st.Commit = s.loadCommit()
	return s, st, nil
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
	return saveSnapshot(s.path(SnapshotDir), raftcore.Snapshot{Meta: raftcore.SnapshotMeta{Members: members}})
}

// Save makes a Ready's durable parts durable, in the order raftcore requires: hard state,
// snapshot (replacing the log), entries (one write, one fsync for the batch).
func (s *Store) Save(hs *raftcore.HardState, snap *raftcore.Snapshot, ents []raftcore.Entry) error {
	if hs != nil {
		if err := s.SaveHardState(*hs); err != nil {
			return err
		}
	}
	if snap != nil {
		if err := s.InstallSnapshot(*snap); err != nil {
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

// InstallSnapshot stores a snapshot received from the leader and drops the whole log.
func (s *Store) InstallSnapshot(snap raftcore.Snapshot) error {
	if s.opts.ReadOnly {
		return errors.New("store opened read-only")
	}
	if err := saveSnapshot(s.path(SnapshotDir), snap); err != nil {
		return err
	}
	s.snap = snap.Meta
	return s.log.Reset()
}

// Compact stores a snapshot the node took of its own state and drops the log segments it
// covers, without rewriting any.
func (s *Store) Compact(snap raftcore.Snapshot) error {
	commit, err := s.WriteSnapshot(snap)
	if err != nil {
		return err
	}
	return commit()
}

// ErrStaleSnapshot is what committing a snapshot returns when a newer one (from the
// leader) was stored meanwhile: it is thrown away.
var ErrStaleSnapshot = errors.New("a newer snapshot was stored meanwhile")

// WriteSnapshot is Compact in two steps, so that the long one need not hold up the log:
// it writes and fsyncs snap beside the current snapshot, touching nothing else, and may
// run on another goroutine than the one appending to the log. The commit it returns,
// called on the log's goroutine, puts the snapshot in place and drops the log segments it
// covers; if a newer snapshot was installed meanwhile it throws this one away and returns
// ErrStaleSnapshot.
func (s *Store) WriteSnapshot(snap raftcore.Snapshot) (commit func() error, err error) {
	if s.opts.ReadOnly {
		return nil, errors.New("store opened read-only")
	}
	p, err := prepareSnapshot(s.path(SnapshotDir), snap)
	if err != nil {
		return nil, err
	}
	return func() error {
		if snap.Meta.Index <= s.snap.Index && s.snap.Index != 0 {
			p.discard()
			return fmt.Errorf("compact to %d: %w (the snapshot is at %d)", snap.Meta.Index, ErrStaleSnapshot, s.snap.Index)
		}
		if err := p.commit(); err != nil {
			return err
		}
		s.snap = snap.Meta
		return s.log.CompactTo(snap.Meta.Index)
	}, nil
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

// SnapshotMeta describes the stored snapshot.
func (s *Store) SnapshotMeta() raftcore.SnapshotMeta { return s.snap }

// ReceiveSnapshot starts (or resumes, if a partial file of the same snapshot is there) the
// assembly of a snapshot arriving in pieces of size bytes with CRC-32C sum.
func (s *Store) ReceiveSnapshot(meta raftcore.SnapshotMeta, size int64, sum uint32) (*SnapshotReceiver, error) {
	if s.opts.ReadOnly {
		return nil, errors.New("store opened read-only")
	}
	header := snapshotHeader(meta, size, sum)
	path := s.path(SnapshotDir, incomingFile)
	r := &SnapshotReceiver{dir: s.path(SnapshotDir), meta: meta, size: size, sum: sum,
		hlen: int64(len(header)), store: s}
	if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
		buf := make([]byte, len(header))
		fi, serr := f.Stat()
		if _, rerr := f.ReadAt(buf, 0); rerr == nil && serr == nil && string(buf) == string(header) {
			r.f = f
			r.have = min(fi.Size()-r.hlen, size)
			return r, nil
		}
		f.Close()
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(header); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	r.f = f
	return r, nil
}

// Close releases the files.
func (s *Store) Close() error { return s.log.Close() }
