package statefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"lite-raft/raftcore"
)

func TestSmokeReopen(t *testing.T) {
	dir := t.TempDir()
	members := raftcore.Membership{Voters: []raftcore.NodeID{"a", "b", "c"}}
	if err := Bootstrap(dir, members); err != nil {
		t.Fatal(err)
	}
	s, st, err := openT(dir, Options{SegmentSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Snapshot.Meta.Members.Equal(members) || len(st.Entries) != 0 {
		t.Fatalf("bootstrap state: %+v", st)
	}
	hs := raftcore.HardState{Term: 2, Vote: "b"}
	var ents []raftcore.Entry
	for i := 1; i <= 20; i++ {
		ents = append(ents, raftcore.Entry{Index: uint64(i), Term: 2, Data: []byte(fmt.Sprintf("v%d", i))})
	}
	if err := s.Save(&hs, nil, nil, ents[:10]); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(nil, nil, nil, ents[10:]); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, st, err = openT(dir, Options{SegmentSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	if st.HardState != hs || len(st.Entries) != 20 || string(st.Entries[19].Data) != "v20" {
		t.Fatalf("reopened: hs=%+v entries=%d", st.HardState, len(st.Entries))
	}
	if len(s.log.segs) < 2 {
		t.Fatalf("want several segments, got %d", len(s.log.segs))
	}
	if err := s.Compact(testSnap{Meta: raftcore.SnapshotMeta{Index: 12, Term: 2, Members: members}, Data: []byte("state")}); err != nil {
		t.Fatal(err)
	}
	hs3 := raftcore.HardState{Term: 3}
	if err := s.Save(&hs3, nil, nil, []raftcore.Entry{{Index: 18, Term: 3, Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, st, err = openT(dir, Options{SegmentSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st.Snapshot.Meta.Index != 12 || len(st.Entries) != 6 || st.Entries[5].Term != 3 || st.Entries[0].Index != 13 {
		t.Fatalf("after compact+truncate: snap=%d entries=%v", st.Snapshot.Meta.Index, st.Entries)
	}
	n, err := raftcore.NewNode(raftcore.Config{ID: "a", ElectionTicks: 10, HeartbeatTicks: 1, Rand: fixedRand{}, Storage: s}, st.State)
	if err != nil || n.Status().LastIndex != 18 {
		t.Fatalf("node from state: %v", err)
	}
}

type fixedRand struct{}

func (fixedRand) IntN(int) int { return 0 }

// A failed fsync's error names the file once and keeps its cause for errors.Is.
func TestFsyncErrorNamesTheFileOnce(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	err = fsync(f)
	if want := "fsync " + f.Name() + ": file already closed"; err == nil || err.Error() != want || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("fsync of a closed file: %v, want %q (and os.ErrClosed)", err, want)
	}
}
