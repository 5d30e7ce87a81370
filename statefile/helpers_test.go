package statefile

// Helpers shared by the crash, property, chunk and fuzz tests of this package.

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"lite-raft/raftcore"
)

// testSeed returns the seed for a randomized test: STATEFILE_SEED if set, else the clock.
// If the test fails, the seed is logged with the command that replays the run.
func testSeed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("STATEFILE_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("STATEFILE_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("random seed %d; replay with: STATEFILE_SEED=%d go test -count=1 -run '^%s$' ./statefile/",
				seed, seed, strings.SplitN(t.Name(), "/", 2)[0])
		}
	})
	return seed
}

func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// diffEntries says how got differs from want, comparing index, term, type and data
// (nil and empty data are the same), or returns "" if they agree.
func diffEntries(got, want []raftcore.Entry) string {
	for i := 0; i < len(got) || i < len(want); i++ {
		switch {
		case i >= len(got):
			return fmt.Sprintf("got %d entries, want %d: missing %s", len(got), len(want), entryString(want[i]))
		case i >= len(want):
			return fmt.Sprintf("got %d entries, want %d: extra %s", len(got), len(want), entryString(got[i]))
		}
		g, w := got[i], want[i]
		if g.Index != w.Index || g.Term != w.Term || g.Type != w.Type || !bytes.Equal(g.Data, w.Data) {
			return fmt.Sprintf("entry #%d: got %s, want %s", i, entryString(g), entryString(w))
		}
	}
	return ""
}

func entryString(e raftcore.Entry) string {
	d := e.Data
	suffix := ""
	if len(d) > 16 {
		d, suffix = d[:16], "..."
	}
	return fmt.Sprintf("{i%d t%d %s %q%s (%d bytes)}", e.Index, e.Term, e.Type, d, suffix, len(e.Data))
}

// cloneEntries deep-copies ents so that a model never aliases buffers the store owns.
func cloneEntries(ents []raftcore.Entry) []raftcore.Entry {
	out := make([]raftcore.Entry, len(ents))
	for i, e := range ents {
		e.Data = bytes.Clone(e.Data)
		out[i] = e
	}
	return out
}

// makeEntries returns n entries from index first with the given term; data is derived
// from the index so that every entry differs, with some empty and some membership ones.
func makeEntries(first uint64, n int, term uint64) []raftcore.Entry {
	ents := make([]raftcore.Entry, n)
	for i := range ents {
		idx := first + uint64(i)
		e := raftcore.Entry{Index: idx, Term: term, Data: []byte(fmt.Sprintf("value-%d-term-%d", idx, term))}
		switch idx % 7 {
		case 3:
			e.Data = nil // a new leader's empty entry
		case 5:
			e.Type = raftcore.EntryMembership
			e.Data = raftcore.EncodeMembership(raftcore.Membership{Voters: []raftcore.NodeID{"a", "b", "c"}})
		}
		ents[i] = e
	}
	return ents
}

// randomEntries returns n entries from index first with the given term and random data.
func randomEntries(rnd *rand.Rand, first uint64, n int, term uint64, maxData int) []raftcore.Entry {
	ents := make([]raftcore.Entry, n)
	for i := range ents {
		data := make([]byte, rnd.IntN(maxData+1))
		for j := range data {
			data[j] = byte(rnd.Uint32())
		}
		typ := raftcore.EntryNormal
		if rnd.IntN(10) == 0 {
			typ = raftcore.EntryMembership
		}
		ents[i] = raftcore.Entry{Index: first + uint64(i), Term: term, Type: typ, Data: data}
	}
	return ents
}

// copyDir copies the tree at src to dst (plain copies: the copy is the "disk after a
// crash" that recovery then sees).
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, fi.Mode().Perm()|0o700)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

// segmentFiles lists the log's segment files under root, oldest first.
func segmentFiles(t testing.TB, root string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(root, LogDir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return names // Glob sorts, and the names are zero-padded
}

// recordStarts parses a well-formed segment file and returns the offset of each record.
func recordStarts(t testing.TB, data []byte) []int {
	t.Helper()
	if !bytes.HasPrefix(data, []byte(segmentMagic)) {
		t.Fatalf("segment without magic")
	}
	var starts []int
	for off := len(segmentMagic); off < len(data); {
		_, n, st, reason := decodeRecord(data[off:])
		if st != recordOK {
			t.Fatalf("template segment damaged at %d: %s", off, reason)
		}
		starts = append(starts, off)
		off += n
	}
	return starts
}

// asDamage returns the *DamageError in err's chain, if any.
func asDamage(err error) (*DamageError, bool) {
	var de *DamageError
	ok := errors.As(err, &de)
	return de, ok
}

// testSnap is a snapshot with its data, as the tests write and compare them.
type testSnap struct {
	Meta raftcore.SnapshotMeta
	Data []byte
}

// saveSnapshot writes snap as the snapshot in dir, atomically.
func saveSnapshot(dir string, snap testSnap) error {
	p, err := prepareSnapshot(dir, snap.Meta, func(w io.Writer) error { _, err := w.Write(snap.Data); return err })
	if err != nil {
		return err
	}
	return p.commit()
}

// Compact stores snap as the node's own snapshot and drops the log it covers.
func (s *Store) Compact(snap testSnap) error {
	_, commit, err := s.WriteSnapshot(snap.Meta, func(w io.Writer) error { _, err := w.Write(snap.Data); return err })
	if err != nil {
		return err
	}
	if err := commit(); err != nil {
		return err
	}
	return s.CompactLog(snap.Meta.Index + 1)
}

// InstallSnapshot receives snap from a leader in pieces of piece bytes and installs it.
func (s *Store) InstallSnapshot(snap testSnap, piece int) error {
	whole := raftcore.SnapshotOf(snap.Meta, snap.Data)
	var chunks []raftcore.SnapshotChunk
	for off := 0; ; off += piece {
		end := min(off+piece, len(snap.Data))
		chunks = append(chunks, raftcore.SnapshotChunk{Meta: snap.Meta, Offset: uint64(off), Data: snap.Data[off:end],
			Done: end == len(snap.Data), Total: whole.Size, Checksum: whole.Checksum})
		if end == len(snap.Data) {
			break
		}
	}
	return s.Save(nil, chunks, &whole, nil)
}

// testState is what Open returns with what the tests look at besides: the entries
// after the snapshot (read back from the log) and the snapshot with its data.
type testState struct {
	raftcore.State
	Entries  []raftcore.Entry
	Snapshot testSnap
}

// openT is Open that also reads back the entries after the snapshot and its data.
func openT(root string, opts Options) (*Store, testState, error) {
	s, st, err := Open(root, opts)
	if err != nil {
		return s, testState{State: st}, err
	}
	ts := testState{State: st, Snapshot: testSnap{Meta: st.Snapshot.Meta}}
	if first, last := st.Snapshot.Meta.Index+1, st.First+uint64(len(st.Terms)); len(st.Terms) > 0 && last > first {
		if ts.Entries, err = s.log.Entries(first, last, 0); err != nil {
			s.Close()
			return nil, ts, err
		}
	}
	r, _, err := s.SnapshotData()
	if err != nil {
		s.Close()
		return nil, ts, err
	}
	defer r.Close()
	if ts.Snapshot.Data, err = io.ReadAll(r); err != nil {
		s.Close()
		return nil, ts, err
	}
	if len(ts.Snapshot.Data) == 0 {
		ts.Snapshot.Data = nil
	}
	return s, ts, nil
}

// openStore opens root and fails the test on error; the store is closed at cleanup.
func openStore(t testing.TB, root string, opts Options) (*Store, testState) {
	t.Helper()
	s, st, err := openT(root, opts)
	if err != nil {
		t.Fatalf("open %s: %v", root, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, st
}

func bootstrap(t testing.TB, root string) {
	t.Helper()
	if err := Bootstrap(root, raftcore.Membership{Voters: []raftcore.NodeID{"a", "b", "c"}}); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
}

func fileSize(t testing.TB, path string) (int64, bool) {
	t.Helper()
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size(), true
}

// checksum is the CRC-32C the store uses.
func checksum(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

// cutReserved drops the zeros a segment reserves ahead, for a test that reads or damages
// its records as a file.
func cutReserved(t *testing.T, seg *segment) {
	t.Helper()
	if err := os.Truncate(seg.path, seg.size); err != nil {
		t.Fatal(err)
	}
}
