package statefile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lite-raft/raftcore"
)

// A snapshot file outside the state reads back as written, and any damage to it is found
// by OpenSnapshotFile (header) or Check (data), named by file and offset.
func TestSnapshotFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "backup")
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	meta := raftcore.SnapshotMeta{Index: 42, Term: 5, Members: raftcore.Membership{Voters: []raftcore.NodeID{"a", "b"}}}
	snap, size, err := WriteSnapshotFile(path, meta, func(w io.Writer) error { _, err := w.Write(data); return err })
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if int64(len(b)) != size || snap.Size != uint64(len(data)) || snap.Checksum != raftcore.SnapshotOf(meta, data).Checksum {
		t.Fatalf("written %d bytes (said %d), snapshot %+v", len(b), size, snap)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d files beside it, want none", len(ents)-1)
	}
	f, err := OpenSnapshotFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f.Data())
	if err := f.Check(); err != nil || f.Snapshot.Meta.Index != 42 || f.Snapshot.Meta.Members.String() != "voters=a,b outgoing= learners=" || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v %+v, %d bytes", err, f.Snapshot, len(got))
	}
	f.Close()
	for name, damage := range map[string]func([]byte) []byte{
		"a data byte":   func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
		"cut short":     func(b []byte) []byte { return b[:len(b)-10] },
		"a header byte": func(b []byte) []byte { b[25] ^= 1; return b },
	} {
		bad := filepath.Join(dir, "bad")
		os.WriteFile(bad, damage(bytes.Clone(b)), 0o600)
		f, err := OpenSnapshotFile(bad)
		if err == nil {
			err = f.Check()
			f.Close()
		}
		if err == nil || !strings.Contains(err.Error(), bad+" is damaged at byte offset") || strings.Contains(err.Error(), "refusing to start") {
			t.Errorf("%s damaged: %v", name, err)
		}
	}
}

// An AtomicFile changes nothing at its path until Commit, and Abort leaves nothing.
func TestAtomicFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	os.WriteFile(path, []byte("old"), 0o600)
	a, err := CreateAtomic(path, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("new"))
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("before Commit the file holds %q", b)
	}
	a.Abort()
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("Abort left %d files", len(ents))
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("after Abort the file holds %q", b)
	}
	a, _ = CreateAtomic(path, 0o640)
	a.Write([]byte("new"))
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	a.Abort() // after Commit: nothing
	fi, _ := os.Stat(path)
	if b, _ := os.ReadFile(path); string(b) != "new" || fi.Mode().Perm() != 0o640 {
		t.Fatalf("after Commit: %q, mode %v", b, fi.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("Commit left %d files", len(ents))
	}
	if err := a.Commit(); err == nil {
		t.Fatal("a second Commit succeeded")
	}
}
