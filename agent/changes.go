package agent

import (
	"fmt"
	"time"

	"lite-raft/agent/core"
	"lite-raft/internal/logsink"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
	"lite-raft/statefile"
)

// replayBatchBytes bounds the entry data read from the log at once during the replay.
const replayBatchBytes = 4 << 20

// replayChanges rebuilds, before the core starts, what each entry the log holds before
// the snapshot changed (watch --from serves it; core.Replay says why a replay): it
// applies the entries up to the latest snapshot to a scratch store loaded with the state
// the log starts from. That is the empty state of index 0 while the log still runs from
// entry 1, else the snapshot before the latest (kept beside it; the log is kept from
// there, up to a segment before). Without one, the log not reaching back to it (a
// snapshot from the leader replaced the log), or on a failure (logged), it returns nil:
// watches are served after the latest snapshot only.
//
// The scratch store ends as of the latest snapshot: init takes it for the state machine
// if it encodes to the snapshot's very bytes, instead of reading the snapshot again.
func (a *Agent) replayChanges(st raftcore.State) *core.Replay {
	to := st.Snapshot.Meta.Index
	if to == 0 || st.First == 0 {
		return nil
	}
	began := a.clock.Now()
	var kv *kvstore.Store
	var from uint64
	if st.First == 1 {
		// nothing was ever compacted: the state before entry 1 is a first boot's, empty
		// (a restored or recovered state starts a log after its own index)
		kv = kvstore.New()
	} else {
		r, snap, err := a.store.PreviousSnapshotData()
		if err != nil {
			return nil // none kept yet (a first snapshot, or the files of an older lite-raft)
		}
		defer r.Close()
		from = snap.Meta.Index
		if from >= to || st.First > from+1 {
			return nil // the log does not run from it
		}
		if st.First <= from {
			// the log holds the snapshot's own entry: it must be of the same term, else
			// the snapshot is of another history than the log
			e, err := a.store.Entries(from, from+1, 0)
			if err != nil || len(e) == 0 || e[0].Term != snap.Meta.Term {
				a.log.Printf(logsink.Warn+"watch history: the log does not follow the snapshot at %d (term %d): watches are served after index %d only", from, snap.Meta.Term, to)
				return nil
			}
		}
		if kv, err = kvstore.Restore(r); err != nil {
			a.log.Printf(logsink.Warn+"watch history: load the snapshot at %d: %v: watches are served after index %d only", from, err, to)
			return nil
		}
	}
	rp := core.NewReplay(kv, from)
	for rp.Next() <= to {
		ents, err := a.store.Entries(rp.Next(), to+1, replayBatchBytes)
		if err == nil && len(ents) == 0 {
			err = fmt.Errorf("no entries from %d to %d", rp.Next(), to)
		}
		if err == nil {
			err = rp.Apply(ents)
		}
		if err != nil {
			a.log.Printf(logsink.Warn+"watch history: read the log at %d: %v: watches are served after index %d only", rp.Next(), err, to)
			return nil
		}
	}
	a.log.Printf("watch history: replayed the log from index %d to the snapshot at %d in %v", from, to,
		a.clock.Now().Sub(began).Round(time.Millisecond))
	return rp
}

// replayedState is the replay's store if it encodes to the bytes of snap (the same size
// and CRC-32C), which it does unless the snapshot was written by an older lite-raft (in
// another encoding) or applying the log gave another state than it did before: then the
// replay's changes are not to be trusted either, and it returns nil (nil too without a
// replay).
func (a *Agent) replayedState(rp *core.Replay, snap raftcore.Snapshot) *kvstore.Store {
	if rp == nil {
		return nil
	}
	began := a.clock.Now()
	got, err := statefile.SnapshotOfStream(snap.Meta, rp.State().WriteSnapshot)
	if err != nil || got.Size != snap.Size || got.Checksum != snap.Checksum {
		a.log.Printf(logsink.Warn+"watch history: the log replayed to %d does not give the snapshot's state (%d bytes, CRC %08x; the snapshot: %d bytes, CRC %08x): "+
			"watches are served after index %d only", snap.Meta.Index, got.Size, got.Checksum, snap.Size, snap.Checksum, snap.Meta.Index)
		return nil
	}
	a.log.Printf("the replayed state is the snapshot's at %d (%.1f MB, checked in %v): the snapshot is not read again",
		snap.Meta.Index, float64(snap.Size)/1e6, a.clock.Now().Sub(began).Round(time.Millisecond))
	return rp.State()
}
