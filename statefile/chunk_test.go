package statefile

// Snapshots that never sit whole in memory: written from a stream, read back in pieces
// for sending (also after a newer one replaced them), and received piece by piece into
// a partial file that survives a restart.

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"lite-raft/raftcore"
)

var testMembers = raftcore.Membership{Voters: []raftcore.NodeID{"a", "b", "c"}, Learners: []raftcore.NodeID{"d"}}

func snapBytes(size int, seed uint64) []byte {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i ^ (i >> 8) ^ int(seed))
	}
	return data
}

// takeSnapshot writes data as the store's own snapshot at index and commits it.
func takeSnapshot(t *testing.T, s *Store, index, term uint64, data []byte) raftcore.Snapshot {
	t.Helper()
	meta := raftcore.SnapshotMeta{Index: index, Term: term, Members: testMembers}
	snap, commit, err := s.WriteSnapshot(meta, func(w io.Writer) error {
		// in odd pieces, as a streaming encoder writes
		for off := 0; off < len(data); off += 777 {
			if _, err := w.Write(data[off:min(off+777, len(data))]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Size != uint64(len(data)) || snap.Checksum != checksum(data) {
		t.Fatalf("snapshot described as %d bytes, crc %08x; want %d, %08x", snap.Size, snap.Checksum, len(data), checksum(data))
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.CompactLog(index + 1); err != nil {
		t.Fatal(err)
	}
	return snap
}

// leaderWithSnapshot returns an open store whose snapshot holds size bytes.
func leaderWithSnapshot(t *testing.T, size int, index, term uint64) (*Store, raftcore.Snapshot, []byte) {
	t.Helper()
	root := t.TempDir()
	bootstrap(t, root)
	s, _ := openStore(t, root, Options{})
	if err := s.Save(nil, nil, nil, makeEntries(1, int(index)+2, term)); err != nil {
		t.Fatal(err)
	}
	data := snapBytes(size, index)
	return s, takeSnapshot(t, s, index, term, data), data
}

func readPieces(t *testing.T, s *Store, snap raftcore.Snapshot, piece int) []byte {
	t.Helper()
	var got []byte
	for off := uint64(0); off < snap.Size; off += uint64(piece) {
		p := make([]byte, min(uint64(piece), snap.Size-off))
		if err := s.ReadSnapshot(snap, off, p); err != nil {
			t.Fatalf("read %d bytes at %d: %v", len(p), off, err)
		}
		got = append(got, p...)
	}
	return got
}

func TestSnapshotStreamedAndReadInPieces(t *testing.T) {
	for _, size := range []int{0, 1, 4095, 70000, 1 << 20} {
		s, snap, data := leaderWithSnapshot(t, size, 10, 2)
		for _, piece := range []int{7, 4096, 1 << 20} {
			if got := readPieces(t, s, snap, piece); !bytes.Equal(got, data) {
				t.Fatalf("size %d, pieces of %d: read back %d bytes that differ", size, piece, len(got))
			}
		}
		// and at a restart it is found, checked and described the same
		root := filepath.Dir(filepath.Dir(s.path(SnapshotDir, snapshotFile)))
		s.Close()
		_, st := openStore(t, root, Options{})
		if st.State.Snapshot.Size != snap.Size || st.State.Snapshot.Checksum != snap.Checksum || st.State.Snapshot.Meta.Index != 10 {
			t.Fatalf("reopened: %+v, want %+v", st.Snapshot, snap)
		}
	}
}

// A snapshot being sent stays readable after a newer one took its place.
func TestSnapshotReadableAfterReplaced(t *testing.T) {
	s, old, data := leaderWithSnapshot(t, 50000, 10, 2)
	p := make([]byte, 100)
	if err := s.ReadSnapshot(old, 0, p); err != nil { // the transfer starts: the file is held
		t.Fatal(err)
	}
	if err := s.Save(nil, nil, nil, makeEntries(13, 10, 2)); err != nil {
		t.Fatal(err)
	}
	newer := takeSnapshot(t, s, 20, 2, snapBytes(3000, 20))
	if got := readPieces(t, s, old, 4096); !bytes.Equal(got, data) {
		t.Fatal("the replaced snapshot reads back differently")
	}
	if got := readPieces(t, s, newer, 4096); !bytes.Equal(got, snapBytes(3000, 20)) {
		t.Fatal("the new snapshot reads back differently")
	}
	// one never read before it was replaced is gone, and says so
	other := old
	other.Meta.Index = 15
	if err := s.ReadSnapshot(other, 0, p); err == nil {
		t.Fatal("read a snapshot that was never stored")
	}
}

func TestSnapshotDamagedIsReported(t *testing.T) {
	s, _, _ := leaderWithSnapshot(t, 5000, 10, 2)
	root := filepath.Dir(filepath.Dir(s.path(SnapshotDir, snapshotFile)))
	s.Close()
	path := filepath.Join(root, SnapshotDir, snapshotFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{len(snapshotMagic) + 8, len(b) - 10} {
		bad := bytes.Clone(b)
		bad[at] ^= 0x10
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Open(root, Options{}); err == nil {
			t.Fatalf("a flipped byte at %d went unnoticed", at)
		} else if _, ok := asDamage(err); !ok {
			t.Fatalf("flipped byte at %d: %v, want a DamageError", at, err)
		}
	}
}

// follower returns a store that receives snapshots.
func follower(t *testing.T) (string, *Store) {
	t.Helper()
	root := t.TempDir()
	bootstrap(t, root)
	s, _ := openStore(t, root, Options{})
	return root, s
}

func chunksOf(snap raftcore.Snapshot, data []byte, piece int) []raftcore.SnapshotChunk {
	var cs []raftcore.SnapshotChunk
	for off := 0; ; off += piece {
		end := min(off+piece, len(data))
		cs = append(cs, raftcore.SnapshotChunk{Meta: snap.Meta, Offset: uint64(off), Data: data[off:end],
			Done: end == len(data), Total: snap.Size, Checksum: snap.Checksum})
		if end == len(data) {
			return cs
		}
	}
}

func TestSnapshotReceiveResumesAfterRestart(t *testing.T) {
	leader, snap, data := leaderWithSnapshot(t, 100000, 40, 3)
	_ = leader
	root, s := follower(t)
	cs := chunksOf(snap, data, 4096)
	if err := s.Save(nil, cs[:10], nil, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, st := openStore(t, root, Options{})
	in := st.Incoming
	if in == nil || in.Have != 10*4096 || in.Sum != checksum(data[:10*4096]) || in.Meta.Index != 40 || in.Size != snap.Size {
		t.Fatalf("after a restart the partial snapshot is %+v, want 40960 bytes of the one at 40", in)
	}
	if err := s2.Save(nil, cs[10:], &snap, makeEntries(41, 3, 3)); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	_, st = openStore(t, root, Options{})
	if st.State.Snapshot.Meta.Index != 40 || st.State.Snapshot.Checksum != snap.Checksum || st.Incoming != nil {
		t.Fatalf("after the install: snapshot %+v, incoming %+v", st.Snapshot, st.Incoming)
	}
	if st.First != 41 || len(st.Terms) != 3 {
		t.Fatalf("log after the install: first %d, %d terms", st.First, len(st.Terms))
	}
	got, err := io.ReadAll(must(t, root))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("installed data differs (%v)", err)
	}
}

func must(t *testing.T, root string) io.Reader {
	t.Helper()
	s, _ := openStore(t, root, Options{ReadOnly: true})
	r, _, err := s.SnapshotData()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestSnapshotReceiveOtherSnapshotStartsOver(t *testing.T) {
	_, a, da := leaderWithSnapshot(t, 30000, 40, 3)
	_, b, db := leaderWithSnapshot(t, 20000, 50, 3)
	root, s := follower(t)
	if err := s.Save(nil, chunksOf(a, da, 4096)[:3], nil, nil); err != nil {
		t.Fatal(err)
	}
	// a piece of another snapshot that does not start it is refused, and nothing changes
	if err := s.Save(nil, chunksOf(b, db, 4096)[1:2], nil, nil); err == nil {
		t.Fatal("a piece of another snapshot was taken")
	}
	if err := s.Save(nil, chunksOf(b, db, 4096), &b, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, st := openStore(t, root, Options{})
	if st.State.Snapshot.Meta.Index != 50 || st.State.Snapshot.Checksum != checksum(db) {
		t.Fatalf("installed %+v, want the one at 50", st.Snapshot)
	}
}

func TestSnapshotReceiveRefusesWrongData(t *testing.T) {
	_, snap, data := leaderWithSnapshot(t, 30000, 40, 3)
	root, s := follower(t)
	bad := bytes.Clone(data)
	bad[12345] ^= 1
	if err := s.Save(nil, chunksOf(snap, bad, 4096), &snap, nil); err == nil {
		t.Fatal("installed a snapshot whose data does not match its checksum")
	}
	s.Close()
	_, st := openStore(t, root, Options{})
	if st.State.Snapshot.Meta.Index != 0 {
		t.Fatalf("the stored snapshot is now %+v", st.State.Snapshot.Meta)
	}
}

// A partial file cut short (a crash while a piece was written) resumes from what it holds.
func TestSnapshotReceiveTruncatedPartial(t *testing.T) {
	_, snap, data := leaderWithSnapshot(t, 30000, 40, 3)
	root, s := follower(t)
	if err := s.Save(nil, chunksOf(snap, data, 4096)[:4], nil, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(root, SnapshotDir, incomingFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()-1000); err != nil {
		t.Fatal(err)
	}
	_, st := openStore(t, root, Options{})
	if in := st.Incoming; in == nil || in.Have != 4*4096-1000 || in.Sum != checksum(data[:4*4096-1000]) {
		t.Fatalf("partial after the cut: %+v", st.Incoming)
	}
	// a partial file with a damaged header is dropped, not an error
	b, _ := os.ReadFile(path)
	b[3] ^= 1
	os.WriteFile(path, b, 0o600)
	_, st2, err := Open(root, Options{})
	if err != nil || st2.Incoming != nil {
		t.Fatalf("damaged partial: %v, incoming %+v", err, st2.Incoming)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the damaged partial file is still there")
	}
}
