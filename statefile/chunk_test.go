package statefile

// Snapshots in pieces: ReadSnapshotChunk on the sending side, SnapshotReceiver on the
// receiving side (resuming a transfer, starting over for another snapshot, rejecting a
// wrong checksum).

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lite-raft/raftcore"
)

// leaderWithSnapshot returns a directory whose stored snapshot holds size bytes.
func leaderWithSnapshot(t *testing.T, size int, index, term uint64) (string, raftcore.Snapshot) {
	t.Helper()
	root := t.TempDir()
	bootstrap(t, root)
	s, _ := openStore(t, root, Options{})
	if err := s.Save(nil, nil, makeEntries(1, int(index)+2, term)); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i ^ (i >> 8) ^ int(index))
	}
	snap := raftcore.Snapshot{Meta: raftcore.SnapshotMeta{Index: index, Term: term,
		Members: raftcore.Membership{Voters: []raftcore.NodeID{"a", "b", "c"}, Learners: []raftcore.NodeID{"d"}}}, Data: data}
	if err := s.Compact(snap); err != nil {
		t.Fatal(err)
	}
	s.Close()
	return filepath.Join(root, SnapshotDir), snap
}

// chunk reads one piece from the leader's snapshot directory.
func chunk(t *testing.T, dir string, off int64, max int) []byte {
	t.Helper()
	data, _, err := ReadSnapshotChunk(dir, off, max)
	if err != nil {
		t.Fatalf("chunk at %d: %v", off, err)
	}
	return data
}

func TestChunkReadReassembles(t *testing.T) {
	for _, size := range []int{0, 1, 100, 4095, 4096, 4097, 70000} {
		dir, snap := leaderWithSnapshot(t, size, 10, 2)
		for _, max := range []int{1, 7, 1000, 4096, 65536, 1 << 20} {
			if size > 5000 && max < 100 {
				continue
			}
			var got []byte
			pieces := 0
			for off := int64(0); ; {
				data, total, err := ReadSnapshotChunk(dir, off, max)
				if err != nil {
					t.Fatalf("size %d max %d: chunk at %d: %v", size, max, off, err)
				}
				if total != int64(size) {
					t.Fatalf("size %d: chunk reports a total of %d", size, total)
				}
				if len(data) > max {
					t.Fatalf("size %d: asked for %d bytes, got %d", size, max, len(data))
				}
				if len(data) == 0 {
					if off != total {
						t.Fatalf("size %d max %d: empty chunk at %d", size, max, off)
					}
					break
				}
				got = append(got, data...)
				off += int64(len(data))
				pieces++
			}
			if !bytes.Equal(got, snap.Data) {
				t.Fatalf("size %d max %d: %d pieces reassemble to %d bytes that differ from the snapshot", size, max, pieces, len(got))
			}
		}
		// out of range
		if _, _, err := ReadSnapshotChunk(dir, int64(size)+1, 10); err == nil {
			t.Fatalf("size %d: a chunk after the end was served", size)
		}
		if _, _, err := ReadSnapshotChunk(dir, -1, 10); err == nil {
			t.Fatalf("size %d: a chunk at -1 was served", size)
		}
	}
	if _, _, err := ReadSnapshotChunk(t.TempDir(), 0, 10); err == nil {
		t.Fatal("a chunk of a missing snapshot was served")
	}
}

// TestChunkReadDamagedHeader: a snapshot whose header is damaged is not served.
func TestChunkReadDamagedHeader(t *testing.T) {
	dir, _ := leaderWithSnapshot(t, 100, 10, 2)
	path := filepath.Join(dir, snapshotFile)
	if err := os.WriteFile(path, []byte("lite-raft snapshot v1\nindex 10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := ReadSnapshotChunk(dir, 0, 10)
	if de, ok := asDamage(err); !ok || de.File != path {
		t.Fatalf("want a *DamageError naming %s, got %v", path, err)
	}
}

// TestChunkReadNegativeMax: asking for a negative number of bytes panics (make with a
// negative length) instead of returning an error.
func TestChunkReadNegativeMax(t *testing.T) {
	dir, _ := leaderWithSnapshot(t, 100, 10, 2)
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("ReadSnapshotChunk with max -1 panicked: %v", p)
		}
	}()
	if _, _, err := ReadSnapshotChunk(dir, 0, -1); err == nil {
		t.Fatal("max -1 accepted")
	}
}

// follower returns a store with some log of its own, which a received snapshot replaces.
func follower(t *testing.T) (string, *Store) {
	t.Helper()
	root := t.TempDir()
	bootstrap(t, root)
	s, _, err := Open(root, Options{SegmentSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(&raftcore.HardState{Term: 1, Vote: "a"}, nil, makeEntries(1, 8, 1)); err != nil {
		t.Fatal(err)
	}
	return root, s
}

// send streams the leader's snapshot into r from r.Have(), max bytes a piece, stopping
// (as a lost connection would) once stopAt bytes are held, if stopAt >= 0.
func send(t *testing.T, r *SnapshotReceiver, dir string, max int, stopAt int64) {
	t.Helper()
	for {
		if stopAt >= 0 && r.Have() >= stopAt {
			return
		}
		data, total, err := ReadSnapshotChunk(dir, r.Have(), max)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			if r.Have() != total {
				t.Fatalf("nothing more to send at %d of %d", r.Have(), total)
			}
			return
		}
		if err := r.Write(r.Have(), data); err != nil {
			t.Fatalf("write at %d: %v", r.Have(), err)
		}
	}
}

func TestChunkReceiveResume(t *testing.T) {
	dir, snap := leaderWithSnapshot(t, 50000, 30, 4)
	size, sum := int64(len(snap.Data)), checksum(snap.Data)
	root, s := follower(t)
	defer func() { s.Close() }()

	r, err := s.ReceiveSnapshot(snap.Meta, size, sum)
	if err != nil {
		t.Fatal(err)
	}
	if r.Have() != 0 {
		t.Fatalf("a fresh receiver holds %d bytes", r.Have())
	}
	send(t, r, dir, 4000, 20000)
	held := r.Have()
	if err := r.Write(0, []byte("x")); err == nil {
		t.Fatal("a piece at 0 was taken while holding data")
	}
	if err := r.Write(held+1, []byte("x")); err == nil {
		t.Fatal("a piece after a hole was taken")
	}
	if _, err := r.Commit(); err == nil {
		t.Fatal("an incomplete snapshot was committed")
	}
	// the transfer is abandoned (connection lost, or the process restarted)
	r.f.Close()
	s.Close()
	s, _ = openStore(t, root, Options{SegmentSize: 200})

	r2, err := s.ReceiveSnapshot(snap.Meta, size, sum)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Have() != held {
		t.Fatalf("resumed receiver holds %d bytes, want %d", r2.Have(), held)
	}
	if err := r2.Write(held, snap.Data[held:]); err != nil { // the rest in one piece
		t.Fatalf("write the rest: %v", err)
	}
	if err := r2.Write(r2.Have(), []byte("y")); err == nil {
		t.Fatal("a piece beyond the announced size was taken")
	}
	got, err := r2.Commit()
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if !sameSnapshot(got, snap) {
		t.Fatalf("commit returned %+v", got.Meta)
	}
	if _, err := os.Stat(filepath.Join(root, SnapshotDir, incomingFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the partial file is still there: %v", err)
	}
	if meta := s.SnapshotMeta(); meta.Index != snap.Meta.Index || meta.Term != snap.Meta.Term {
		t.Fatalf("store's snapshot meta %+v", meta)
	}
	s.Close()

	// a committed snapshot is what Open returns, and it replaced the follower's log
	_, st := openStore(t, root, Options{SegmentSize: 200})
	if !sameSnapshot(st.Snapshot, snap) || len(st.Entries) != 0 || st.Applied != snap.Meta.Index {
		t.Fatalf("after commit: snapshot %+v, %d entries", st.Snapshot.Meta, len(st.Entries))
	}
	if st.HardState != (raftcore.HardState{Term: 1, Vote: "a"}) {
		t.Fatalf("hard state %+v", st.HardState)
	}
	if segs := segmentFiles(t, root); len(segs) != 0 {
		t.Fatalf("the follower's old log is still there: %v", segs)
	}
}

func TestChunkReceiveOtherSnapshotStartsOver(t *testing.T) {
	dirA, snapA := leaderWithSnapshot(t, 9000, 20, 3)
	dirB, snapB := leaderWithSnapshot(t, 9000, 25, 3)
	root, s := follower(t)
	defer func() { s.Close() }()

	rA, err := s.ReceiveSnapshot(snapA.Meta, int64(len(snapA.Data)), checksum(snapA.Data))
	if err != nil {
		t.Fatal(err)
	}
	send(t, rA, dirA, 1000, 3000)
	rA.f.Close()

	// the same meta with another size or checksum is another snapshot too
	for _, v := range []struct {
		size int64
		sum  uint32
	}{{int64(len(snapA.Data)) + 1, checksum(snapA.Data)}, {int64(len(snapA.Data)), checksum(snapA.Data) + 1}} {
		r, err := s.ReceiveSnapshot(snapA.Meta, v.size, v.sum)
		if err != nil {
			t.Fatal(err)
		}
		if r.Have() != 0 {
			t.Fatalf("size %d sum %08x: a receiver for another snapshot resumed at %d", v.size, v.sum, r.Have())
		}
		r.Abort()
	}
	rA, err = s.ReceiveSnapshot(snapA.Meta, int64(len(snapA.Data)), checksum(snapA.Data))
	if err != nil {
		t.Fatal(err)
	}
	if rA.Have() != 0 {
		t.Fatalf("the aborted partial file was resumed at %d", rA.Have())
	}
	send(t, rA, dirA, 1000, 3000)
	rA.f.Close()

	rB, err := s.ReceiveSnapshot(snapB.Meta, int64(len(snapB.Data)), checksum(snapB.Data))
	if err != nil {
		t.Fatal(err)
	}
	if rB.Have() != 0 {
		t.Fatalf("snapshot B resumed A's partial file at %d", rB.Have())
	}
	send(t, rB, dirB, 1000, 5000)
	rB.f.Close()
	// A's pieces are gone: B's partial file replaced them
	rA, err = s.ReceiveSnapshot(snapA.Meta, int64(len(snapA.Data)), checksum(snapA.Data))
	if err != nil {
		t.Fatal(err)
	}
	if rA.Have() != 0 {
		t.Fatalf("A resumed B's partial file at %d", rA.Have())
	}
	rA.f.Close()
	rB, err = s.ReceiveSnapshot(snapB.Meta, int64(len(snapB.Data)), checksum(snapB.Data))
	if err != nil {
		t.Fatal(err)
	}
	if rB.Have() != 0 {
		t.Fatalf("B resumed at %d after A started over", rB.Have())
	}
	send(t, rB, dirB, 1000, -1)
	if _, err := rB.Commit(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, st := openStore(t, root, Options{SegmentSize: 200})
	if !sameSnapshot(st.Snapshot, snapB) || len(st.Entries) != 0 {
		t.Fatalf("after commit of B: snapshot %+v, %d entries", st.Snapshot.Meta, len(st.Entries))
	}
}

func TestChunkReceiveWrongChecksum(t *testing.T) {
	dir, snap := leaderWithSnapshot(t, 5000, 20, 3)
	root, s := follower(t)
	defer func() { s.Close() }()
	before := s.SnapshotMeta()

	for name, corrupt := range map[string]func(r *SnapshotReceiver){
		"announced checksum wrong": nil,
		"piece damaged in transit": func(r *SnapshotReceiver) {
			data := chunk(t, dir, 0, len(snap.Data))
			data[1234] ^= 0x10
			if err := r.Write(0, data); err != nil {
				t.Fatal(err)
			}
		},
	} {
		sum := checksum(snap.Data)
		if corrupt == nil {
			sum ^= 1
		}
		r, err := s.ReceiveSnapshot(snap.Meta, int64(len(snap.Data)), sum)
		if err != nil {
			t.Fatal(err)
		}
		if corrupt != nil {
			corrupt(r)
		} else {
			send(t, r, dir, 700, -1)
		}
		_, err = r.Commit()
		if err == nil || !strings.Contains(err.Error(), "checksum") {
			t.Fatalf("%s: commit: %v, want a checksum error", name, err)
		}
		if meta := s.SnapshotMeta(); meta.Index != before.Index {
			t.Fatalf("%s: the store's snapshot changed to %+v", name, meta)
		}
		if _, err := os.Stat(filepath.Join(root, SnapshotDir, incomingFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: the bad partial file is still there: %v", name, err)
		}
		// the next attempt starts from zero
		r, err = s.ReceiveSnapshot(snap.Meta, int64(len(snap.Data)), checksum(snap.Data))
		if err != nil {
			t.Fatal(err)
		}
		if r.Have() != 0 {
			t.Fatalf("%s: a rejected transfer was resumed at %d", name, r.Have())
		}
		r.Abort()
	}
	s.Close()
	_, st := openStore(t, root, Options{SegmentSize: 200})
	if st.Snapshot.Meta.Index != 0 || len(st.Entries) != 8 || st.HardState.Term != 1 {
		t.Fatalf("after rejected snapshots: snapshot %+v, %d entries", st.Snapshot.Meta, len(st.Entries))
	}
}

// TestChunkReceiveTruncatedPartial: a partial file cut inside its header (a crash right
// after creating it) starts over; one cut inside the data resumes from what it holds.
func TestChunkReceiveTruncatedPartial(t *testing.T) {
	dir, snap := leaderWithSnapshot(t, 3000, 20, 3)
	root, s := follower(t)
	defer func() { s.Close() }()
	size, sum := int64(len(snap.Data)), checksum(snap.Data)
	r, err := s.ReceiveSnapshot(snap.Meta, size, sum)
	if err != nil {
		t.Fatal(err)
	}
	send(t, r, dir, 500, 2000)
	r.f.Close()
	partial := filepath.Join(root, SnapshotDir, incomingFile)
	hlen := r.hlen
	for _, c := range []struct{ cut, want int64 }{{hlen + 1500, 1500}, {hlen + 1, 1}, {hlen, 0}, {hlen - 1, 0}, {0, 0}} {
		if err := os.Truncate(partial, c.cut); err != nil {
			t.Fatal(err)
		}
		r, err := s.ReceiveSnapshot(snap.Meta, size, sum)
		if err != nil {
			t.Fatal(err)
		}
		if r.Have() != c.want {
			t.Fatalf("partial file cut to %d bytes (header %d): resumed at %d, want %d", c.cut, hlen, r.Have(), c.want)
		}
		send(t, r, dir, 500, 2000)
		r.f.Close()
	}
	r, err = s.ReceiveSnapshot(snap.Meta, size, sum)
	if err != nil {
		t.Fatal(err)
	}
	send(t, r, dir, 500, -1)
	if _, err := r.Commit(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, st := openStore(t, root, Options{}); !sameSnapshot(st.Snapshot, snap) {
		t.Fatalf("snapshot %+v", st.Snapshot.Meta)
	}
}
