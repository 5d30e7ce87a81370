//go:build linux

package lazyfs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"lite-raft/raftcore"
	"lite-raft/statefile"
)

// bootedMount is a new mount with a lite-raft folder in it, durable, bootstrapped with
// members.
func bootedMount(t *testing.T, members raftcore.Membership) (f *FS, root string) {
	t.Helper()
	f, dir := newMount(t)
	root = filepath.Join(dir, "lite-raft")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	mustSync(t, dir)
	if err := statefile.Bootstrap(root, members); err != nil {
		t.Fatal(err)
	}
	return f, root
}

// acked is what a statefile.Store acknowledged: Save or SaveHardState returned nil.
type acked struct {
	hs      raftcore.HardState
	entries map[uint64]raftcore.Entry // by index, from the snapshot's index on
	last    uint64
	snap    raftcore.SnapshotMeta
}

func entryData(term, index uint64) []byte {
	return []byte(fmt.Sprintf("term %d index %d %s", term, index, strings.Repeat("x", int(index%97))))
}

// TestStatefileSurvivesPowerCuts runs lite-raft's own statefile under the mount: batches
// of entries (many small segments, so new segments and their directory fsyncs are
// frequent), hard state changes, a conflict that cuts the log back, snapshots that
// replace the snapshot file and delete segments, a commit hint that is never synced, and
// an fsync that fails; then a power cut with the store still open, and a reopen that must
// find every acknowledged entry, the last acknowledged hard state and snapshot.
func TestStatefileSurvivesPowerCuts(t *testing.T) {
	members := raftcore.Membership{Voters: []raftcore.NodeID{"a", "b", "c"}}
	f, root := bootedMount(t, members)
	// statefile makes its three folders with MkdirAll and never fsyncs the directory
	// holding them, so under this file system's rule a cut would lose them all (see
	// TestStatefileFirstBoot); the test does that fsync itself, to test the rest.
	mustSync(t, root)
	opts := statefile.Options{SegmentSize: 4096}
	a := acked{entries: map[uint64]raftcore.Entry{}, snap: raftcore.SnapshotMeta{Members: members}}
	term := uint64(1)
	for round := range 4 {
		s, st, err := statefile.Open(root, opts)
		if err != nil {
			t.Fatalf("round %d: open after the cut: %v", round, err)
		}
		checkAcked(t, round, s, st, a)
		last := a.last
		save := func(hs *raftcore.HardState, ents []raftcore.Entry) error {
			err := s.Save(hs, nil, nil, ents)
			if err == nil {
				if hs != nil {
					a.hs = *hs
				}
				if len(ents) > 0 {
					for i := ents[0].Index; i <= a.last; i++ {
						delete(a.entries, i) // cut back by the conflict
					}
					for _, e := range ents {
						a.entries[e.Index] = e
					}
					a.last = ents[len(ents)-1].Index
				}
			}
			return err
		}
		batch := func(from uint64, n int, term uint64) []raftcore.Entry {
			var ents []raftcore.Entry
			for i := range uint64(n) {
				ents = append(ents, raftcore.Entry{Index: from + i, Term: term, Data: entryData(term, from+i)})
			}
			return ents
		}
		term++
		hs := raftcore.HardState{Term: term, Vote: "a"}
		if err := save(&hs, nil); err != nil {
			t.Fatal(err)
		}
		for k := range 30 {
			if err := save(nil, batch(last+1, 1+k%5, term)); err != nil {
				t.Fatal(err)
			}
			last = a.last
		}
		// A new leader's entries replace the last two.
		term++
		hs = raftcore.HardState{Term: term}
		if err := save(&hs, batch(last-1, 3, term)); err != nil {
			t.Fatal(err)
		}
		last = a.last
		if err := s.SaveCommit(last); err != nil { // a hint, never synced
			t.Fatal(err)
		}
		if round%2 == 1 {
			// A snapshot of the state at last-5, then the log before it dropped.
			meta := raftcore.SnapshotMeta{Index: last - 5, Term: a.entries[last-5].Term, Members: members}
			_, commit, err := s.WriteSnapshot(meta, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "state as of %d", meta.Index)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := commit(); err != nil {
				t.Fatal(err)
			}
			a.snap = meta
			if err := s.CompactLog(meta.Index + 1); err != nil {
				t.Fatal(err)
			}
			for i := range a.entries {
				if i <= meta.Index {
					delete(a.entries, i)
				}
			}
		}
		if round == 2 {
			// An fsync of the log fails: that batch is not acknowledged, and the store
			// refuses further writes until it is reopened.
			f.FailSyncsOf(regexp.MustCompile(`^lite-raft/state-machine-log/`))
			if err := save(nil, batch(last+1, 3, term)); err == nil {
				t.Fatal("Save succeeded although the log's fsync failed")
			}
			f.FailSyncsOf(nil)
		}
		// Unacknowledged work in flight: entries written with the log's own file, which
		// the cut must drop (the store is not closed: the power goes).
		cs := f.PowerCut()
		if cs.BytesDropped == 0 || cs.EntriesUndone == 0 {
			t.Errorf("round %d: the cut dropped nothing (%+v): the commit hint, at least, was unsynced", round, cs)
		}
		s.Close() // stale handles: errors expected, no crash
	}
	s, st, err := statefile.Open(root, opts)
	if err != nil {
		t.Fatalf("final open: %v", err)
	}
	checkAcked(t, 4, s, st, a)
	s.Close()
	stats := f.Stats()
	if stats.FileSyncs < 50 || stats.DirSyncs < 10 || stats.FailedSyncs != 1 {
		t.Errorf("stats %+v: fewer fsyncs than statefile should have made", stats)
	}
	t.Logf("%d entries acknowledged at the end, stats %+v", len(a.entries), stats)
}

func checkAcked(t *testing.T, round int, s *statefile.Store, st raftcore.State, a acked) {
	t.Helper()
	defer func() {
		if t.Failed() {
			s.Close()
			t.FailNow()
		}
	}()
	if st.HardState != a.hs {
		t.Errorf("round %d: hard state %+v, acknowledged %+v", round, st.HardState, a.hs)
	}
	if st.Snapshot.Meta.Index != a.snap.Index || st.Snapshot.Meta.Term != a.snap.Term {
		t.Errorf("round %d: snapshot at %d/%d, acknowledged %d/%d", round, st.Snapshot.Meta.Index, st.Snapshot.Meta.Term, a.snap.Index, a.snap.Term)
	}
	lastIndex := st.First + uint64(len(st.Terms)) - 1
	if len(st.Terms) == 0 {
		lastIndex = st.Snapshot.Meta.Index
	}
	if lastIndex < a.last {
		t.Errorf("round %d: the log ends at %d, acknowledged up to %d", round, lastIndex, a.last)
		return
	}
	if len(a.entries) == 0 {
		return
	}
	lo := a.snap.Index + 1
	ents, err := s.Entries(lo, a.last+1, 0)
	if err != nil {
		t.Errorf("round %d: read entries %d..%d: %v", round, lo, a.last, err)
		return
	}
	for _, e := range ents {
		want, ok := a.entries[e.Index]
		if !ok {
			continue
		}
		if e.Term != want.Term || !bytes.Equal(e.Data, want.Data) {
			t.Errorf("round %d: entry %d is term %d %q, acknowledged term %d %q", round, e.Index, e.Term, e.Data, want.Term, want.Data)
		}
	}
	if uint64(len(ents)) != a.last-lo+1 {
		t.Errorf("round %d: read %d entries of %d..%d", round, len(ents), lo, a.last)
	}
}

// TestStatefileFirstBoot: a host booted for the first time, some entries acknowledged,
// then the power goes. statefile creates state/, state-machine-log/ and
// state-machine-snapshot/ (os.MkdirAll in Open) without fsyncing the lite-raft directory
// that holds them, so their names are not durable and the cut takes everything with
// them. On ext4 the next journal commit (any fsync) happens to save them; POSIX does not
// promise it. The test skips, saying so, while that is the case, and becomes a plain
// regression test once statefile fsyncs the directory.
func TestStatefileFirstBoot(t *testing.T) {
	members := raftcore.Membership{Voters: []raftcore.NodeID{"a"}}
	f, root := bootedMount(t, members)
	s, _, err := statefile.Open(root, statefile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hs := raftcore.HardState{Term: 1, Vote: "a"}
	if err := s.Save(&hs, nil, nil, []raftcore.Entry{{Index: 1, Term: 1, Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	f.PowerCut()
	s.Close()
	lost, _ := os.ReadDir(root)
	s, st, err := statefile.Open(root, statefile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st.HardState != hs || len(st.Terms) != 1 {
		t.Fatalf("after the cut: hard state %+v and %d entries (folders left: %d), acknowledged %+v and 1",
			st.HardState, len(st.Terms), len(lost), hs)
	}
}

// tinyLog is a log in the manner of statefile's, small enough to plant bugs in: records
// are lines appended to segment files of a few records each, every append is fsynced,
// and so is the directory when a segment is created. skipFileSync and skipDirSync are
// the planted bugs.
type tinyLog struct {
	dir                       string
	skipFileSync, skipDirSync bool
	f                         *os.File
	n                         int
}

const tinySegment = 8 // records per segment

func (l *tinyLog) append(rec string) error {
	if l.n%tinySegment == 0 {
		if l.f != nil {
			l.f.Close()
		}
		var err error
		l.f, err = os.OpenFile(filepath.Join(l.dir, fmt.Sprintf("%06d.log", l.n)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		defer func() {
			if !l.skipDirSync && err == nil {
				err = syncPath(l.dir)
			}
		}()
	}
	if _, err := l.f.WriteString(rec + "\n"); err != nil {
		return err
	}
	l.n++
	if !l.skipFileSync {
		return l.f.Sync()
	}
	return nil
}

// readTinyLog returns the records of the segments in order.
func readTinyLog(dir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, err
	}
	var recs []string
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			recs = append(recs, sc.Text())
		}
		f.Close()
	}
	return recs, nil
}

// TestPlantedBugsAreCaught shows that the file system catches the bugs it is for: a log
// that acknowledges appends it did not fsync, or segments whose directory it did not
// fsync, loses acknowledged records at a power cut; the same log done right loses none.
func TestPlantedBugsAreCaught(t *testing.T) {
	for _, c := range []struct {
		name                      string
		skipFileSync, skipDirSync bool
	}{
		{"correct", false, false},
		{"no-fsync-of-appends", true, false},
		{"no-fsync-of-the-directory", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, dir := newMount(t)
			l := &tinyLog{dir: dir, skipFileSync: c.skipFileSync, skipDirSync: c.skipDirSync}
			const n = 100
			for i := range n {
				if err := l.append("record " + strconv.Itoa(i)); err != nil {
					t.Fatal(err)
				}
			}
			cs := f.PowerCut()
			l.f.Close()
			recs, err := readTinyLog(dir)
			if err != nil {
				t.Fatal(err)
			}
			lost := n - len(recs)
			for i, r := range recs {
				if r != "record "+strconv.Itoa(i) {
					lost = n - i // anything after a gap is unusable to a log
					break
				}
			}
			t.Logf("%s: %d of %d acknowledged records lost at the cut (%+v)", c.name, lost, n, cs)
			if buggy := c.skipFileSync || c.skipDirSync; buggy && lost == 0 {
				t.Errorf("the planted bug went unnoticed: no acknowledged record lost")
			} else if !buggy && lost != 0 {
				t.Errorf("the correct log lost %d acknowledged records", lost)
			}
		})
	}
}

// TestStatefileOpenMakesDurableWhatItReports: what statefile.Open reports is what Raft
// takes as durable (a restarted follower answers that it holds those entries, a node
// votes by that term and vote), so it must survive a power cut even when the process
// before this one never got to fsync it: an fsync that failed (EIO) or an agent killed
// between its write and its fsync leaves the data in the file, readable, and not
// durable. Each case makes one such write fail its fsync, reopens the store as a
// restarted agent would, and cuts the power: the reopened store must find what the
// first reopen reported.
func TestStatefileOpenMakesDurableWhatItReports(t *testing.T) {
	for _, c := range []struct {
		name, failSync string // the fsync that fails (a path pattern)
		save           func(s *statefile.Store, next uint64) error
	}{
		{"entries whose fsync failed", `^lite-raft/state-machine-log/`, func(s *statefile.Store, next uint64) error {
			return s.Save(nil, nil, nil, []raftcore.Entry{{Index: next, Term: 2, Data: entryData(2, next)}})
		}},
		{"a new segment whose directory fsync failed", `^lite-raft/state-machine-log$`, func(s *statefile.Store, next uint64) error {
			// the segments are small: this batch starts a new one
			return s.Save(nil, nil, nil, []raftcore.Entry{{Index: next, Term: 2, Data: entryData(2, next)}})
		}},
		{"a hard state whose directory fsync failed", `^lite-raft/state$`, func(s *statefile.Store, next uint64) error {
			return s.SaveHardState(raftcore.HardState{Term: 3, Vote: "b"})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, root := bootedMount(t, raftcore.Membership{Voters: []raftcore.NodeID{"a", "b", "c"}})
			opts := statefile.Options{SegmentSize: 64}
			s, _, err := statefile.Open(root, opts)
			if err != nil {
				t.Fatal(err)
			}
			hs := raftcore.HardState{Term: 2, Vote: "a"}
			var ents []raftcore.Entry
			for i := uint64(1); i <= 4; i++ {
				ents = append(ents, raftcore.Entry{Index: i, Term: 2, Data: entryData(2, i)})
			}
			if err := s.Save(&hs, nil, nil, ents); err != nil {
				t.Fatal(err)
			}
			f.FailSyncsOf(regexp.MustCompile(c.failSync))
			if err := c.save(s, 5); err == nil {
				t.Fatal("the save succeeded although its fsync failed")
			}
			f.ClearFaults()
			s.Close()
			// the agent that comes back (no power cut yet: the unsynced write is there)
			s, reported, err := statefile.Open(root, opts)
			if err != nil {
				t.Fatal(err)
			}
			f.PowerCut()
			s.Close()
			s, after, err := statefile.Open(root, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			lastOf := func(st raftcore.State) uint64 { return st.First + uint64(len(st.Terms)) - 1 }
			if after.HardState != reported.HardState || lastOf(after) != lastOf(reported) {
				t.Fatalf("Open reported hard state %+v and entries up to %d; after a power cut: %+v and up to %d",
					reported.HardState, lastOf(reported), after.HardState, lastOf(after))
			}
		})
	}
}

// TestStatefileIncomingSnapshotSurvivesCut: the pieces of a snapshot being received are
// fsynced every few MB so that a restart resumes the transfer there instead of from the
// start (a snapshot can be hundreds of MB); a power cut must keep them too, which needs
// the new file's directory entry to be durable, not only its data.
func TestStatefileIncomingSnapshotSurvivesCut(t *testing.T) {
	members := raftcore.Membership{Voters: []raftcore.NodeID{"a", "b", "c"}}
	f, root := bootedMount(t, members)
	s, _, err := statefile.Open(root, statefile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const piece, total = 1 << 20, 12 << 20
	meta := raftcore.SnapshotMeta{Index: 100, Term: 3, Members: members}
	for off := uint64(0); off < 6<<20; off += piece {
		c := raftcore.SnapshotChunk{Meta: meta, Offset: off, Data: bytes.Repeat([]byte{byte(off >> 20)}, piece), Total: total, Checksum: 1}
		if err := s.Save(nil, []raftcore.SnapshotChunk{c}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	f.PowerCut()
	s.Close()
	s, st, err := statefile.Open(root, statefile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st.Incoming == nil || st.Incoming.Have < 4<<20 {
		t.Fatalf("after a cut with 6 MiB of the snapshot received (4 MiB of it fsynced), the store resumes from %+v", st.Incoming)
	}
}

// TestStatefileSnapshotReplacedNotDurably: a snapshot whose file was renamed over the
// old one but whose directory fsync failed is in place without being durable, and the
// store's own idea of its snapshot is behind the file (a leader would then fail to read
// the snapshot Raft still holds, to send it). Like a failed fsync of the log, that
// leaves the store refusing to write until it is reopened, which recovers a consistent
// state, also after a power cut.
func TestStatefileSnapshotReplacedNotDurably(t *testing.T) {
	members := raftcore.Membership{Voters: []raftcore.NodeID{"a", "b", "c"}}
	f, root := bootedMount(t, members)
	s, _, err := statefile.Open(root, statefile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ents []raftcore.Entry
	for i := uint64(1); i <= 10; i++ {
		ents = append(ents, raftcore.Entry{Index: i, Term: 2, Data: entryData(2, i)})
	}
	if err := s.Save(&raftcore.HardState{Term: 2, Vote: "a"}, nil, nil, ents); err != nil {
		t.Fatal(err)
	}
	f.FailSyncsOf(regexp.MustCompile(`^lite-raft/state-machine-snapshot$`))
	_, commit, err := s.WriteSnapshot(raftcore.SnapshotMeta{Index: 8, Term: 2, Members: members}, func(w io.Writer) error {
		_, err := io.WriteString(w, "state as of 8")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := commit(); err == nil {
		t.Fatal("the snapshot's commit succeeded although its directory's fsync failed")
	}
	f.ClearFaults()
	if err := s.Save(nil, nil, nil, []raftcore.Entry{{Index: 11, Term: 2, Data: entryData(2, 11)}}); err == nil {
		t.Fatal("the store went on writing after a snapshot replaced the old one without being durable")
	}
	s.Close()
	for _, cut := range []bool{false, true} {
		if cut {
			f.PowerCut()
		}
		s, st, err := statefile.Open(root, statefile.Options{})
		if err != nil {
			t.Fatalf("reopen (after a cut: %v): %v", cut, err)
		}
		if last := st.First + uint64(len(st.Terms)) - 1; last != 10 || st.First > st.Snapshot.Meta.Index+1 {
			t.Fatalf("reopened (after a cut: %v): snapshot at %d, log %d..%d; want the entries up to 10", cut, st.Snapshot.Meta.Index, st.First, last)
		}
		s.Close()
	}
}
