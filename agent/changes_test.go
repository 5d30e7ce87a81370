package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/conf"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
	"lite-raft/statefile"
)

// memSolo runs a one-member agent on storage (kept across restarts) until stop.
func memSolo(t *testing.T, store *MemStorage, logs *lineLog) (do func(api.Request) api.Response, stop func()) {
	t.Helper()
	a := initTestAgent(t, "solo", conf.Config{ElectionTimeout: 100 * time.Millisecond, SnapshotPeriod: 20}, store,
		NewMemNetwork().Transport("solo"), systemClock{}, logs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.run(ctx)
	}()
	do = func(req api.Request) api.Response {
		t.Helper()
		got := make(chan api.Response, 1)
		a.post(requestEvent(req, func(r api.Response) { got <- r }))
		select {
		case r := <-got:
			return r
		case <-time.After(20 * time.Second):
			t.Fatalf("%s %s: no answer in 20 s", req.Op, req.Key)
			return api.Response{}
		}
	}
	return do, func() { cancel(); <-done }
}

// appliedAtLeast polls until the member has applied index n and leads (its own entry
// committed), and returns what it applied.
func appliedAtLeast(t *testing.T, do func(api.Request) api.Response, n uint64) uint64 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var st api.Status
		json.Unmarshal(do(api.Request{Op: api.OpStatus, Stale: true}).JSON, &st)
		if st.Leader == "solo" && st.Applied >= n && st.Applied > 0 {
			return st.Applied
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	t.Fatalf("not leading with index %d applied within 15 s", n)
	return 0
}

// A restarted member serves watch --from N for every N its log holds, exactly as before
// the restart: the changes of the entries before its snapshot are rebuilt by applying the
// log again from the snapshot before it (an entry alone does not say what it changed:
// the failed if, the create of a key that was there, the unset of a missing key change
// nothing). Only a watch from before where the log runs from is refused with 17.
func TestWatchHistorySurvivesRestart(t *testing.T) {
	store := NewMemStorage("solo")
	logs := &lineLog{}
	do, stop := memSolo(t, store, logs)
	applied := writeUntilTwoSnapshots(t, store, do)
	watch := func(from uint64) api.Response {
		return do(api.Request{Op: api.OpWatchLog, Key: "/", From: from, FromSet: true, TimeoutMs: 20})
	}
	before := map[uint64]api.Response{}
	for n := uint64(0); n <= applied; n++ {
		if r := watch(n); r.Code != 0 {
			t.Fatalf("before the restart, watch --from %d: exit %d %s", n, r.Code, r.Msg)
		} else {
			before[n] = r
		}
	}
	stop()
	st := store.State()
	if st.Snapshot.Meta.Index == 0 || st.First <= 1 || store.prev == nil {
		t.Fatalf("snapshot at %d, log from %d, previous snapshot %v: the test wants a compacted log and two snapshots",
			st.Snapshot.Meta.Index, st.First, store.prev)
	}
	logStart := st.First - 1 // the log holds the entries after it
	t.Logf("applied %d, snapshots at %d and %d, log from %d", applied, store.prev.Meta.Index, st.Snapshot.Meta.Index, st.First)

	do, stop = memSolo(t, store, logs)
	defer stop()
	appliedAtLeast(t, do, applied)
	if !strings.Contains(logs.String(), "watch history: replayed the log") {
		t.Errorf("no replay logged:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "the replayed state is the snapshot's") {
		t.Errorf("the replay's state was not taken for the snapshot's:\n%s", logs.String())
	}
	for n := uint64(0); n <= applied; n++ {
		r := watch(n)
		if n < logStart {
			if r.Code != api.CodeCompacted {
				t.Errorf("after the restart, watch --from %d (before the log, from %d): exit %d, want 17", n, st.First, r.Code)
			}
			continue
		}
		if r.Code != 0 || !bytes.Equal(r.Value, before[n].Value) {
			a, _ := api.DecodeChanges(r.Value)
			b, _ := api.DecodeChanges(before[n].Value)
			t.Fatalf("after the restart, watch --from %d: exit %d %s\n%d changes %v\nbefore: %d changes %v", n, r.Code, r.Msg, len(a), a, len(b), b)
		}
	}
}

// writeUntilTwoSnapshots writes (writeMixed) on a member just started on store until it
// has taken two snapshots and compacted its log, and returns what it applied.
// Snapshots are written away from the loop: on a loaded machine the writes can all be
// answered before the second one is taken, so it writes on until there are two.
func writeUntilTwoSnapshots(t *testing.T, store *MemStorage, do func(api.Request) api.Response) uint64 {
	t.Helper()
	appliedAtLeast(t, do, 0)
	writeMixed(t, do, 0, 150)
	compacted := func() bool {
		st := store.State()
		store.mu.Lock()
		defer store.mu.Unlock()
		return st.First > 1 && store.prev != nil && store.prev.Meta.Index > 0
	}
	deadline := time.Now().Add(15 * time.Second)
	for n := 150; !compacted() && time.Now().Before(deadline); n += 30 {
		writeMixed(t, do, n, 30)
	}
	return appliedAtLeast(t, do, 0)
}

// A restart takes the state the watch history's replay ends with for the state machine
// only if it encodes to the snapshot's bytes: here the snapshot holds a key the log never
// wrote (as a snapshot of an older lite-raft, in another encoding, differs), and the
// restarted member serves the snapshot's state, with watches from after it only.
func TestRestartReadsTheSnapshotWhenTheReplayDiffers(t *testing.T) {
	store := NewMemStorage("solo")
	logs := &lineLog{}
	do, stop := memSolo(t, store, logs)
	applied := writeUntilTwoSnapshots(t, store, do)
	stop()
	snap := func() raftcore.Snapshot {
		store.mu.Lock()
		defer store.mu.Unlock()
		snap, data := store.store.Snapshot()
		kv, err := kvstore.Restore(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		kv.Apply(snap.Meta.Index, kvstore.Command{Op: kvstore.OpSet, Key: "d/planted", Value: []byte("only in the snapshot")})
		var b bytes.Buffer
		if err := kv.WriteSnapshot(&b); err != nil {
			t.Fatal(err)
		}
		store.store.TakeSnapshot(raftcore.SnapshotOf(snap.Meta, b.Bytes()), b.Bytes())
		return snap
	}()

	do, stop = memSolo(t, store, logs)
	defer stop()
	appliedAtLeast(t, do, applied)
	if !strings.Contains(logs.String(), "does not give the snapshot's state") {
		t.Errorf("the difference was not logged:\n%s", logs.String())
	}
	if r := do(api.Request{Op: api.OpGet, Key: "d/planted"}); r.Code != 0 || string(r.Value) != "only in the snapshot" {
		t.Errorf("get d/planted: exit %d %q: the snapshot's state was not the one served", r.Code, r.Value)
	}
	from := snap.Meta.Index - 1
	if r := do(api.Request{Op: api.OpWatchLog, Key: "/", From: from, FromSet: true, TimeoutMs: 20}); r.Code != api.CodeCompacted {
		t.Errorf("watch --from %d, before the snapshot at %d: exit %d, want 17 (the replay's changes are not trusted)", from, snap.Meta.Index, r.Code)
	}
}

// writeMixed makes n writes, numbered from from on (a call that goes on from an earlier
// one gives from as the number it made), a third of which change nothing (a failed if, a
// create of a key that is there, an unset of a missing key), with values that hold
// newlines.
func writeMixed(t *testing.T, do func(api.Request) api.Response, from, n int) {
	t.Helper()
	seq := uint64(from)
	write := func(req api.Request) {
		seq++
		req.ClientID, req.Seq = 91, seq
		if r := do(req); r.Code != 0 && r.Code != api.CodeCondFalse && r.Code != api.CodeExists {
			t.Logf("%s %s: exit %d %s", req.Op, req.Key, r.Code, r.Msg)
		}
	}
	for i := from; i < from+n; i++ {
		k := fmt.Sprintf("d/k%d", i%5)
		v := []byte(fmt.Sprintf("v%d\nline", i))
		switch i % 6 {
		case 0, 1:
			write(api.Request{Op: api.OpSet, Key: k, Value: v})
		case 2:
			write(api.Request{Op: api.OpIfSet, Key: k, Cond: "=", CondValue: []byte("no such value"), Value: v}) // fails: nothing
		case 3:
			write(api.Request{Op: api.OpCreate, Key: k, Value: v}) // mostly there already: nothing
		case 4:
			write(api.Request{Op: api.OpUnset, Key: fmt.Sprintf("d/k%d", (i+2)%5)})
		case 5:
			write(api.Request{Op: api.OpUnset, Key: "d/missing"}) // nothing
		}
	}
}

// With the files of a real agent, whose log was never compacted (its segments are far
// larger than this test writes), a restart serves every change from index 0: the log
// runs from the first boot's empty state.
func TestWatchHistorySurvivesRestartOnDisk(t *testing.T) {
	dir := soloDir(t)
	do, stop := startSolo(t, dir)
	appliedAtLeast(t, do, 0)
	writeMixed(t, do, 0, 150)
	applied := appliedAtLeast(t, do, 0)
	before := map[uint64][]byte{}
	for n := uint64(0); n <= applied; n++ {
		r := do(api.Request{Op: api.OpWatchLog, Key: "d/", From: n, FromSet: true, TimeoutMs: 20})
		if r.Code != 0 {
			t.Fatalf("before the restart, watch --from %d: exit %d %s", n, r.Code, r.Msg)
		}
		before[n] = r.Value
	}
	stop()
	if _, err := os.Stat(filepath.Join(dir, statefile.SnapshotDir, "snapshot.previous")); err != nil {
		t.Fatalf("no previous snapshot kept after %d entries with a period of 50: %v", applied, err)
	}
	logs := &lineLog{}
	do, stop = startSoloLogging(t, dir, logs)
	defer stop()
	appliedAtLeast(t, do, applied)
	// the snapshot file's size and CRC-32C are those of the replayed state's encoding
	if !strings.Contains(logs.String(), "the replayed state is the snapshot's") {
		t.Errorf("the replay's state was not taken for the snapshot's:\n%s", logs.String())
	}
	for n := uint64(0); n <= applied; n++ {
		r := do(api.Request{Op: api.OpWatchLog, Key: "d/", From: n, FromSet: true, TimeoutMs: 20})
		if r.Code != 0 || !bytes.Equal(r.Value, before[n]) {
			t.Fatalf("after the restart, watch --from %d: exit %d %s, %d bytes of changes, %d before", n, r.Code, r.Msg, len(r.Value), len(before[n]))
		}
	}
}
