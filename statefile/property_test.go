package statefile

// Random sequences of the store's operations, checked against a simple in-memory model
// of what must be durable. Some steps also crash (a torn append, a snapshot saved without
// the log being cut) before reopening.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"lite-raft/raftcore"
)

// model is what the store must give back after a reopen.
type model struct {
	hs     raftcore.HardState
	snap   testSnap
	ents   []raftcore.Entry // contiguous, from snap.Meta.Index+1
	commit uint64
	term   uint64 // the highest entry or snapshot term so far: new entries use at least this
}

func (m *model) last() uint64 { return m.snap.Meta.Index + uint64(len(m.ents)) }

func (m *model) termAt(i uint64) uint64 {
	if i == m.snap.Meta.Index {
		return m.snap.Meta.Term
	}
	return m.ents[i-m.snap.Meta.Index-1].Term
}

// cutFrom drops the entries from index i on.
func (m *model) cutFrom(i uint64) { m.ents = m.ents[:i-m.snap.Meta.Index-1] }

var propMembers = []raftcore.Membership{
	{Voters: []raftcore.NodeID{"a", "b", "c"}},
	{Voters: []raftcore.NodeID{"a", "b", "c", "d"}, Outgoing: []raftcore.NodeID{"a", "b", "c"}},
	{Voters: []raftcore.NodeID{"b", "c", "d"}, Learners: []raftcore.NodeID{"e"}},
	{},
}

var propVotes = []raftcore.NodeID{"", "a", "b", "c", "host-2.example"}

type propRun struct {
	rnd   *rand.Rand
	root  string
	opts  Options
	s     *Store
	m     model
	trace []string
}

func (r *propRun) logf(format string, args ...any) {
	r.trace = append(r.trace, fmt.Sprintf(format, args...))
}

func (r *propRun) fail(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}

// appendBatch appends a batch at the end of the log or, sometimes, over its tail (a
// conflict). It returns the batch.
func (r *propRun) appendBatch() ([]raftcore.Entry, error) {
	m := &r.m
	first := m.last() + 1
	if len(m.ents) > 0 && r.rnd.IntN(5) == 0 {
		first = m.snap.Meta.Index + 1 + uint64(r.rnd.IntN(len(m.ents)))
		m.term++ // entries from a newer leader replace the tail
	} else if r.rnd.IntN(8) == 0 {
		m.term++
	}
	batch := randomEntries(r.rnd, first, 1+r.rnd.IntN(8), m.term, 80)
	var hs *raftcore.HardState
	if r.rnd.IntN(4) == 0 {
		h := r.randomHardState()
		hs = &h
	}
	r.logf("append %d..%d term %d (log ends at %d) hardstate %v", first, first+uint64(len(batch))-1, m.term, m.last(), hs)
	if err := r.s.Save(hs, nil, nil, batch); err != nil {
		return nil, r.fail("append: %v", err)
	}
	if hs != nil {
		m.hs = *hs
	}
	if first <= m.last() {
		m.cutFrom(first)
	}
	m.ents = append(m.ents, cloneEntries(batch)...)
	return batch, nil
}

func (r *propRun) randomHardState() raftcore.HardState {
	return raftcore.HardState{Term: r.m.hs.Term + uint64(r.rnd.IntN(3)), Vote: propVotes[r.rnd.IntN(len(propVotes))]}
}

func (r *propRun) randomSnapshot(index, term uint64) testSnap {
	data := make([]byte, r.rnd.IntN(200))
	for i := range data {
		data[i] = byte(r.rnd.Uint32())
	}
	return testSnap{Meta: raftcore.SnapshotMeta{Index: index, Term: term,
		Members: propMembers[r.rnd.IntN(len(propMembers))]}, Data: data}
}

// tornAppend appends a batch, then simulates a crash in the middle of its write: the last
// segment is cut at a random byte of the batch, and the store reopened.
func (r *propRun) tornAppend() error {
	before := r.m
	before.ents = append([]raftcore.Entry(nil), r.m.ents...)
	batch, err := r.appendBatch()
	if err != nil {
		return err
	}
	seg := r.s.log.segs[len(r.s.log.segs)-1]
	k0 := len(seg.offsets) - len(batch)
	lo := seg.offsets[k0]
	if seg.first == batch[0].Index {
		lo = 0 // the batch created the segment
	}
	c := lo + r.rnd.Int64N(seg.size-lo+1)
	k := 0
	for k < len(batch) && recEnd(seg, k0+k) <= c {
		k++
	}
	r.logf("crash: cut %s at %d (batch bytes %d..%d): %d of %d records whole", filepath.Base(seg.path), c, lo, seg.size, k, len(batch))
	r.s.Close()
	if err := os.Truncate(seg.path, c); err != nil {
		return err
	}
	// the model: the durable cut of a conflict, then the whole records of the batch
	hs := r.m.hs
	r.m = before
	r.m.hs = hs
	if batch[0].Index <= r.m.last() {
		r.m.cutFrom(batch[0].Index)
	}
	r.m.ents = append(r.m.ents, cloneEntries(batch[:k])...)
	r.m.term = max(before.term, batch[0].Term)
	return r.reopen()
}

func recEnd(seg *segment, i int) int64 {
	if i+1 < len(seg.offsets) {
		return seg.offsets[i+1]
	}
	return seg.size
}

func (r *propRun) compact(crash bool) error {
	m := &r.m
	if len(m.ents) == 0 {
		return nil
	}
	idx := m.snap.Meta.Index + 1 + uint64(r.rnd.IntN(len(m.ents)))
	snap := r.randomSnapshot(idx, m.termAt(idx))
	r.logf("compact to %d term %d (%d bytes) crash=%v", idx, snap.Meta.Term, len(snap.Data), crash)
	if crash {
		// a crash after the snapshot is saved and before any segment is removed
		if err := saveSnapshot(r.s.path(SnapshotDir), snap); err != nil {
			return err
		}
	} else if err := r.s.Compact(snap); err != nil {
		return r.fail("compact: %v", err)
	}
	m.ents = m.ents[idx-m.snap.Meta.Index:]
	m.snap = snap
	if crash {
		r.s.Close()
		return r.reopen()
	}
	return nil
}

// install stores a snapshot from a leader, inside the log with another term or beyond it.
func (r *propRun) install(crash bool) error {
	m := &r.m
	var idx uint64
	if len(m.ents) > 0 && r.rnd.IntN(2) == 0 {
		idx = m.snap.Meta.Index + 1 + uint64(r.rnd.IntN(len(m.ents)))
	} else {
		idx = m.last() + 1 + uint64(r.rnd.IntN(20))
	}
	m.term++ // a newer term than anything in the log: it disagrees with the log at idx
	snap := r.randomSnapshot(idx, m.term)
	r.logf("install snapshot %d term %d (log ends at %d) crash=%v", idx, m.term, m.last(), crash)
	if crash {
		if err := saveSnapshot(r.s.path(SnapshotDir), snap); err != nil {
			return err
		}
	} else if err := r.s.InstallSnapshot(snap, 1+r.rnd.IntN(3000)); err != nil {
		return r.fail("install: %v", err)
	}
	m.snap = snap
	m.ents = nil
	if crash {
		r.s.Close()
		return r.reopen()
	}
	return nil
}

func (r *propRun) reopen() error {
	r.logf("reopen")
	s, st, err := openT(r.root, r.opts)
	if err != nil {
		return r.fail("open: %v", err)
	}
	r.s = s
	m := &r.m
	if st.HardState != m.hs {
		return r.fail("hard state %+v, want %+v", st.HardState, m.hs)
	}
	got := st.Snapshot
	if got.Meta.Index != m.snap.Meta.Index || got.Meta.Term != m.snap.Meta.Term ||
		!got.Meta.Members.Equal(m.snap.Meta.Members) || !bytes.Equal(got.Data, m.snap.Data) {
		return r.fail("snapshot %d/%d %v (%d bytes), want %d/%d %v (%d bytes)", got.Meta.Index, got.Meta.Term,
			got.Meta.Members, len(got.Data), m.snap.Meta.Index, m.snap.Meta.Term, m.snap.Meta.Members, len(m.snap.Data))
	}
	if st.Applied != m.snap.Meta.Index {
		return r.fail("applied %d, want the snapshot index %d", st.Applied, m.snap.Meta.Index)
	}
	if d := diffEntries(st.Entries, m.ents); d != "" {
		return r.fail("entries after reopen: %s", d)
	}
	if st.Commit != m.commit {
		return r.fail("commit %d, want %d", st.Commit, m.commit)
	}
	return r.checkLive()
}

// checkLive compares what the open store says now with the model (without a reopen).
func (r *propRun) checkLive() error {
	m := &r.m
	if meta := r.s.Snapshot().Meta; meta.Index != m.snap.Meta.Index || meta.Term != m.snap.Meta.Term {
		return r.fail("SnapshotMeta %d/%d, want %d/%d", meta.Index, meta.Term, m.snap.Meta.Index, m.snap.Meta.Term)
	}
	l := r.s.Log()
	if len(m.ents) == 0 {
		if l.LastIndex() > m.snap.Meta.Index {
			return r.fail("log ends at %d, want nothing after the snapshot at %d", l.LastIndex(), m.snap.Meta.Index)
		}
		return nil
	}
	if l.LastIndex() != m.last() || l.FirstIndex() > m.snap.Meta.Index+1 {
		return r.fail("log holds [%d, %d], want up to %d from at most %d", l.FirstIndex(), l.LastIndex(), m.last(), m.snap.Meta.Index+1)
	}
	ents, err := l.Entries(m.snap.Meta.Index+1, m.last()+1, 0)
	if err != nil {
		return r.fail("read back: %v", err)
	}
	if d := diffEntries(ents, m.ents); d != "" {
		return r.fail("entries read back: %s", d)
	}
	// the snapshot on disk streams back as the model's data
	snap := r.s.Snapshot()
	data := make([]byte, snap.Size)
	if err := r.s.ReadSnapshot(snap, 0, data); err != nil || !bytes.Equal(data, m.snap.Data) {
		return r.fail("snapshot read back: %d bytes of %d, err %v", len(data), len(m.snap.Data), err)
	}
	return nil
}

func (r *propRun) step() error {
	m := &r.m
	switch p := r.rnd.IntN(100); {
	case p < 40:
		_, err := r.appendBatch()
		return err
	case p < 46:
		return r.tornAppend()
	case p < 54:
		return r.compact(false)
	case p < 57:
		return r.compact(true)
	case p < 62:
		return r.install(false)
	case p < 65:
		return r.install(true)
	case p < 77:
		hs := r.randomHardState()
		r.logf("hard state %+v", hs)
		var err error
		if r.rnd.IntN(2) == 0 {
			err = r.s.SaveHardState(hs)
		} else {
			err = r.s.Save(&hs, nil, nil, nil)
		}
		if err != nil {
			return r.fail("save hard state: %v", err)
		}
		m.hs = hs
	case p < 82:
		c := uint64(r.rnd.IntN(int(m.last()) + 1))
		r.logf("commit %d", c)
		if err := r.s.SaveCommit(c); err != nil {
			return r.fail("save commit: %v", err)
		}
		m.commit = c
	default:
		r.s.Close()
		return r.reopen()
	}
	return r.checkLive()
}

func runPropertySequence(t *testing.T, seed uint64, steps int) error {
	r := &propRun{rnd: newRand(seed), root: filepath.Join(t.TempDir(), strconv.FormatUint(seed, 10)),
		opts: Options{SegmentSize: 300}}
	defer os.RemoveAll(r.root)
	members := propMembers[0]
	if err := Bootstrap(r.root, members); err != nil {
		return err
	}
	r.m.snap = testSnap{Meta: raftcore.SnapshotMeta{Members: members}}
	r.m.term = 1
	var err error
	if err = r.reopen(); err == nil {
		for i := 0; i < steps && err == nil; i++ {
			err = r.step()
		}
		if err == nil {
			r.s.Close()
			err = r.reopen()
		}
	}
	if r.s != nil {
		r.s.Close()
	}
	if err != nil {
		tail := r.trace[max(0, len(r.trace)-25):]
		return fmt.Errorf("%v\nlast steps:\n  %s", err, strings.Join(tail, "\n  "))
	}
	return nil
}

// TestPropertyRandomSequences runs several hundred random sequences. Each sequence's seed
// is the run's seed plus its number; a failure prints the one to replay.
// STATEFILE_SEQUENCES sets how many sequences run (STATEFILE_SEQUENCES=1 with
// STATEFILE_SEED=<sequence seed> replays one sequence).
func TestPropertyRandomSequences(t *testing.T) {
	seed := testSeed(t)
	n, steps := 300, 30
	if testing.Short() {
		n = 40
	}
	if v := os.Getenv("STATEFILE_SEQUENCES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("STATEFILE_SEQUENCES=%q: %v", v, err)
		}
	}
	// The sequences are independent (each has its own directory), and their time goes to
	// waiting for fsync, so a few run at once; a failure reports the lowest failing one.
	const workers = 4
	errs := make([]error, n)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if errs[i] = runPropertySequence(t, seed+uint64(i), steps); errs[i] != nil {
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			seqSeed := seed + uint64(i)
			t.Fatalf("sequence %d (seed %d; replay: STATEFILE_SEED=%d STATEFILE_SEQUENCES=1 go test -count=1 -run TestPropertyRandomSequences ./statefile/): %v",
				i, seqSeed, seqSeed, err)
		}
	}
}

// TestPropertyCoverage checks that the random sequences reach the cases they are meant to:
// several segments, conflicts, torn appends that keep part of a batch, and so on.
func TestPropertyCoverage(t *testing.T) {
	seed := testSeed(t)
	counts := map[string]int{}
	for i := 0; i < 20; i++ {
		r := &propRun{rnd: newRand(seed + uint64(i)), root: t.TempDir(), opts: Options{SegmentSize: 300}}
		if err := Bootstrap(r.root, propMembers[0]); err != nil {
			t.Fatal(err)
		}
		r.m.snap = testSnap{Meta: raftcore.SnapshotMeta{Members: propMembers[0]}}
		r.m.term = 1
		if err := r.reopen(); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 40; j++ {
			if err := r.step(); err != nil {
				t.Fatalf("sequence seed %d: %v", seed+uint64(i), err)
			}
			if n := len(r.s.log.segs); n >= 3 {
				counts["3+ segments"]++
			}
		}
		r.s.Close()
		for _, line := range r.trace {
			switch {
			case strings.HasPrefix(line, "append") && strings.Contains(line, "log ends"):
				var a, b, term, end uint64
				fmt.Sscanf(line, "append %d..%d term %d (log ends at %d)", &a, &b, &term, &end)
				if a <= end {
					counts["conflict"]++
				}
			case strings.HasPrefix(line, "crash: cut"):
				var name string
				var c, lo, hi, k, n int
				fmt.Sscanf(line, "crash: cut %s at %d (batch bytes %d..%d): %d of %d", &name, &c, &lo, &hi, &k, &n)
				switch {
				case k == 0:
					counts["torn: nothing kept"]++
				case k < n:
					counts["torn: part of batch kept"]++
				default:
					counts["torn: whole batch kept"]++
				}
				if lo == 0 && c < len(segmentMagic) {
					counts["torn: inside new segment's magic"]++
				}
			case strings.HasPrefix(line, "compact"):
				counts["compact"]++
			case strings.HasPrefix(line, "install"):
				counts["install"]++
			}
		}
	}
	t.Logf("coverage over 20 sequences: %v", counts)
	for _, k := range []string{"3+ segments", "conflict", "torn: nothing kept", "torn: part of batch kept", "compact", "install"} {
		if counts[k] == 0 {
			t.Errorf("no %q in 20 sequences", k)
		}
	}
}
