package agent

import (
	"fmt"
	"time"

	"lite-raft/agent/core"
	"lite-raft/internal/logsink"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
)

// replayBatchBytes bounds the entry data read from the log at once during the replay.
const replayBatchBytes = 4 << 20

// replayChanges rebuilds, before the core starts, what each entry the log holds before
// the snapshot changed (watch --from serves it; core.Replay says why a replay): it
// applies the entries up to the latest snapshot to a scratch store loaded with the state
// the log starts from. That is the empty state of index 0 while the log still runs from
// entry 1, else the snapshot before the latest (kept beside it; the log is kept from
// there, up to a segment before). Without one, the log not reaching back to it (a
// snapshot from the leader replaced the log), or on a failure (logged), watches are
// served after the latest snapshot only.
func (a *Agent) replayChanges(st raftcore.State) {
	to := st.Snapshot.Meta.Index
	if to == 0 || st.First == 0 {
		return
	}
	var kv *kvstore.Store
	var from uint64
	if st.First == 1 {
		// nothing was ever compacted: the state before entry 1 is a first boot's, empty
		// (a restored or recovered state starts a log after its own index)
		kv = kvstore.New()
	} else {
		r, snap, err := a.store.PreviousSnapshotData()
		if err != nil {
			return // none kept yet (a first snapshot, or the files of an older lite-raft)
		}
		defer r.Close()
		from = snap.Meta.Index
		if from >= to || st.First > from+1 {
			return // the log does not run from it
		}
		if st.First <= from {
			// the log holds the snapshot's own entry: it must be of the same term, else
			// the snapshot is of another history than the log
			e, err := a.store.Entries(from, from+1, 0)
			if err != nil || len(e) == 0 || e[0].Term != snap.Meta.Term {
				a.log.Printf(logsink.Warn+"watch history: the log does not follow the snapshot at %d (term %d): watches are served after index %d only", from, snap.Meta.Term, to)
				return
			}
		}
		if kv, err = kvstore.Restore(r); err != nil {
			a.log.Printf(logsink.Warn+"watch history: load the snapshot at %d: %v: watches are served after index %d only", from, err, to)
			return
		}
	}
	began := a.clock.Now()
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
			return
		}
	}
	if err := a.core.LoadReplay(rp); err != nil {
		a.log.Printf(logsink.Warn+"watch history: %v", err)
		return
	}
	a.log.Printf("watch history: replayed the log from index %d to the snapshot at %d in %v", from, to,
		a.clock.Now().Sub(began).Round(time.Millisecond))
}
