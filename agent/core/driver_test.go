package core

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"lite-raft/api"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
)

// testDriver does a core's Ready batches for the tests (the simulation, the one-member
// cores, the backup tests), as the agent's loop does in agent.processReady, in the order
// core.Ready's comment gives:
//  1. send Replies, start Calls and Runs;
//  2. send Messages; make the Raft part durable on disk (hard state, snapshot chunks,
//     snapshot, entries); when a snapshot came from the leader, load the state machine
//     from it into Restored; then send PersistedMessages;
//  3. write Logs, compact the log (CompactLog); Members has no file to rewrite here;
//  4. Advance (the core applies CommittedEntries);
//  5. start SaveSnapshot and the backup work away from the loop.
//
// Its knobs model a host's faults: lag (a save that completes some time later, while the
// core takes other inputs; the driver takes no Ready until then and does steps 3 to 5
// when it completes), saveErr (a save that fails: fatal, as for the agent), snapshotErr
// and snapshotLag (a snapshot save that fails, or takes time) and loseReply (an answer
// that never reaches its client). Every hook and knob is optional.
type testDriver struct {
	c    *Core
	disk *memDisk
	now  func() Time
	// after runs fn d ms of virtual time later; nil: there is no clock to wait on, and
	// what would complete later completes at once (lag is then not available).
	after func(d Time, fn func())

	reply     func(Reply)
	call      func(Call)
	run       func(Run)
	send      func(raftcore.Message)
	log       func(string)
	applying  func(rd Ready) // just before Advance: what is about to be applied
	advanced  func(rd Ready) // just after a successful Advance
	snapSaved func(raftcore.Snapshot)
	backup    func(BackupJob)
	read      func(BackupRead)
	drop      func(string)
	// fail is told of a fatal error (a save, a snapshot that does not load, Advance); the
	// driver stops then, as the agent does. Nil: it is only kept in err.
	fail func(error)

	// the knobs
	lag         func() Time      // how long the save of a batch with Raft's part takes; 0: done in line
	saveErr     func() error     // non-nil: the save of Raft's part fails
	snapshotErr func() error     // non-nil: a snapshot save fails with it
	snapshotLag func() Time      // how long a snapshot save takes (away from the loop)
	loseReply   func(Reply) bool // true: the reply is dropped on its way to the client
	// applyLag makes an applier that lags behind the commit: the committed entries of
	// each batch join a queue, and every t ms the next n of them are applied (an Advance
	// with those alone), while the driver goes on taking batches. It is as if Raft
	// handed committed entries out in small batches (as a small MaxCacheBytes makes it)
	// to a slow state machine: the reads confirmed meanwhile, whose ReadStates come with
	// the batches, must wait for their index to be applied. Nil: applied at once.
	applyLag func() (n int, t Time)

	// plant breaks the contract on purpose, to show the tests catch a driver that does:
	// "advance-before-replies" (answers after Advance) or "advance-before-persist"
	// (Advance, and so apply and acknowledge, while the save still lags behind).
	plant string

	pending  bool // a batch handed out whose save has not completed: no Ready is taken
	stopped  bool // a fatal error, or the host crashed
	diskFree Time // when the (planted) disk is done with the saves queued on it
	err      error
	toApply  []raftcore.Entry // committed, not yet applied (applyLag)
	applyDue bool             // the next batch of toApply is due (applyLag)
	// the entries of toApply due while a batch's save lagged (0: none): they go once
	// that batch is advanced
	held int
}

// pump does the core's Ready batches until it has none, a save lags, or 64 were done (a
// core that spins does not hang a test: the simulation sees it as time that never passes).
func (d *testDriver) pump() {
	for i := 0; i < 64 && !d.stopped && !d.pending && d.c.HasReady(); i++ {
		d.step(d.c.Ready())
	}
}

// stop makes the driver drop everything it has not done (the host crashed).
func (d *testDriver) stop() { d.stopped = true }

func (d *testDriver) fatal(err error) {
	d.err, d.stopped = err, true
	if d.fail != nil {
		d.fail(err)
	}
}

// later runs fn t ms from now (at once without a clock), unless the driver stopped
// meanwhile, and then does the batches that waited.
func (d *testDriver) later(t Time, fn func()) {
	if d.after == nil {
		fn()
		return
	}
	d.after(t, func() {
		if !d.stopped {
			fn()
			d.pump()
		}
	})
}

// step does one batch.
func (d *testDriver) step(rd Ready) {
	if d.plant != "advance-before-replies" {
		d.answer(rd)
	}
	for _, m := range rd.Messages {
		d.sendMsg(m)
	}
	var lag Time
	if d.lag != nil && (rd.HardState != nil || len(rd.Entries) > 0 || rd.Ready.Snapshot != nil) {
		lag = d.lag()
	}
	switch {
	case d.plant == "advance-before-persist" && (lag > 0 || d.diskFree > d.now()):
		// the planted bug: advanced (applied, acknowledged) now, durable later; the disk
		// does its saves in order
		at := max(d.now()+lag, d.diskFree)
		d.diskFree = at
		if rd.Ready.Snapshot == nil {
			d.later(at-d.now(), func() { d.persist(&rd) })
			d.finish(rd)
			return
		}
		d.pending = true // the state machine is loaded from the snapshot saved
		d.later(at-d.now(), func() {
			d.pending = false
			if d.persist(&rd) {
				d.finish(rd)
			}
		})
	case lag > 0:
		d.pending = true
		d.later(lag, func() {
			d.pending = false
			if d.persist(&rd) {
				d.finish(rd)
			}
		})
	default:
		if d.persist(&rd) {
			d.finish(rd)
		}
	}
}

// answer sends the replies (those loseReply spares) and starts the calls and runs.
func (d *testDriver) answer(rd Ready) {
	for _, r := range rd.Replies {
		if d.reply != nil && (d.loseReply == nil || !d.loseReply(r)) {
			d.reply(r)
		}
	}
	for _, c := range rd.Calls {
		if d.call != nil {
			d.call(c)
		}
	}
	for _, r := range rd.Runs {
		if d.run != nil {
			d.run(r)
		}
	}
}

func (d *testDriver) sendMsg(m raftcore.Message) {
	if d.send != nil {
		d.send(m)
	}
}

// persist makes Raft's part of rd durable, loads an installed snapshot and sends the
// messages that had to wait for the disk. It reports whether it succeeded.
func (d *testDriver) persist(rd *Ready) bool {
	if d.stopped {
		return false
	}
	if d.saveErr != nil {
		if err := d.saveErr(); err != nil {
			d.fatal(fmt.Errorf("persist: %w", err))
			return false
		}
	}
	if err := d.disk.save(rd.Ready); err != nil {
		d.fatal(fmt.Errorf("persist: %w", err))
		return false
	}
	if rd.Ready.Snapshot != nil {
		kv, err := d.disk.kv()
		if err != nil {
			d.fatal(fmt.Errorf("the installed snapshot does not load: %w", err))
			return false
		}
		rd.Restored = kv
	}
	for _, m := range rd.PersistedMessages {
		d.sendMsg(m)
	}
	return true
}

// finish does the rest of a batch whose Raft part is durable: the logs, the compaction,
// Advance, and what is done away from the loop.
func (d *testDriver) finish(rd Ready) {
	if d.stopped {
		return
	}
	for _, l := range rd.Logs {
		if d.log != nil {
			d.log(l)
		}
	}
	if rd.CompactLog > 0 {
		d.disk.store.CompactLog(rd.CompactLog)
	}
	if d.applyLag != nil && (len(rd.CommittedEntries) > 0 || len(d.toApply) > 0) {
		if snap := rd.Ready.Snapshot; snap != nil {
			// the state machine jumps past what waits: what comes after it goes now, in order
			var after []raftcore.Entry
			for _, e := range d.toApply {
				if e.Index > snap.Meta.Index {
					after = append(after, e)
				}
			}
			rd.Ready.CommittedEntries = append(after, rd.CommittedEntries...)
			d.toApply = nil
		} else {
			d.toApply = append(d.toApply, rd.CommittedEntries...)
			rd.Ready.CommittedEntries = nil
			d.applyLater()
		}
	}
	if !d.advance(rd) {
		return
	}
	if n := d.held; n > 0 {
		d.held = 0
		d.applyNext(n)
	}
	if d.plant == "advance-before-replies" {
		d.answer(rd)
	}
	if job := rd.SaveSnapshot; job != nil {
		d.saveSnapshot(job)
	}
	for _, b := range rd.Backups {
		if d.backup != nil {
			d.backup(b)
		}
	}
	for _, r := range rd.BackupReads {
		if d.read != nil {
			d.read(r)
		}
	}
	for _, f := range rd.DropBackups {
		if d.drop != nil {
			d.drop(f)
		}
	}
}

// advance hands rd to Advance between the hooks; false: a fatal error stopped the driver.
func (d *testDriver) advance(rd Ready) bool {
	if d.applying != nil {
		d.applying(rd)
	}
	if err := d.c.Advance(d.now(), rd); err != nil {
		d.fatal(fmt.Errorf("advance: %w", err))
		return false
	}
	if d.advanced != nil {
		d.advanced(rd)
	}
	return true
}

// applyLater applies the next entries of toApply some time from now (applyLag), unless
// that is already due. A batch whose save lags holds Raft's part out: the entries wait
// until it is advanced, never applied in between, and go right after it. (Trying again
// a lag later instead starved the applier of a host whose saves lag back to back: in
// the simulation, a leader applied nothing for 1.1 s while its commit index moved on.)
func (d *testDriver) applyLater() {
	if d.applyDue || d.held > 0 || len(d.toApply) == 0 {
		return
	}
	d.applyDue = true
	n, t := d.applyLag()
	d.later(t, func() {
		d.applyDue = false
		n = max(n, 1)
		if d.pending {
			d.held = n
			return
		}
		d.applyNext(n)
	})
}

// applyNext applies the next n entries of toApply (n > 0), and schedules the rest.
func (d *testDriver) applyNext(n int) {
	if len(d.toApply) == 0 {
		return // a snapshot took their place
	}
	n = min(n, len(d.toApply))
	var rd Ready
	rd.raft = true
	rd.Ready.CommittedEntries = d.toApply[:n:n]
	d.toApply = d.toApply[n:]
	if d.advance(rd) {
		d.applyLater()
	}
}

// saveSnapshot writes a snapshot of the state machine away from the loop (its State is a
// clone): it ends snapshotLag later, while the host goes on, and is reported with
// SnapshotSaved.
func (d *testDriver) saveSnapshot(job *SnapshotJob) {
	data := job.State.Snapshot()
	snap := raftcore.SnapshotOf(job.Meta, data)
	var err error
	if d.snapshotErr != nil {
		err = d.snapshotErr() // decided when the save starts: the disk is full now
	}
	var t Time
	if d.snapshotLag != nil {
		t = d.snapshotLag()
	}
	d.later(t, func() {
		switch {
		case err != nil:
		case job.Meta.Index <= d.disk.store.State(d.disk.hs).Snapshot.Meta.Index:
			err = fmt.Errorf("a newer snapshot is stored")
		default:
			d.disk.store.TakeSnapshot(snap, data)
			if d.snapSaved != nil {
				d.snapSaved(snap)
			}
		}
		d.c.SnapshotSaved(d.now(), snap, err)
	})
}

// memDisk is a host's durable state: the hard state and a raftcore.MemoryStorage.
type memDisk struct {
	hs    raftcore.HardState
	store *raftcore.MemoryStorage
}

func (d *memDisk) save(rd raftcore.Ready) error {
	if rd.HardState != nil {
		d.hs = *rd.HardState
	}
	return d.store.Save(rd)
}

func (d *memDisk) kv() (*kvstore.Store, error) {
	_, data := d.store.Snapshot()
	return kvstore.Restore(bytes.NewReader(data))
}

func (d *memDisk) state() raftcore.State { return d.store.State(d.hs) }

// The contract is checked: a driver that breaks it fails the tests. One that advances
// (applies, acknowledges) before its lagging disk has saved the batch loses acknowledged
// writes in a crash, and the simulation sees it; one that advances before it answers
// loses the answers of the batch whose Advance fails.
func TestDriverContractIsChecked(t *testing.T) {
	t.Run("advance-before-persist-sim", func(t *testing.T) {
		if *agentSimSeed != 0 || *agentSimBug != "" {
			t.Skip("runs only without -agentsim.bug and -agentsim.seed")
		}
		const limit = 400
		r, ok := firstFailure(bugs{}, "advance-before-persist", limit)
		if !ok {
			t.Fatalf("no seed of %d caught a driver that advances before its disk has saved the batch", limit)
		}
		line, _, _ := strings.Cut(r.failure, "\n")
		t.Logf("caught by seed %d: %s", r.seed, line)
	})
	t.Run("advance-before-persist-solo", func(t *testing.T) {
		if msg := ackedWriteSurvivesCrash(newSoloCore(t, 1000)); msg != "" {
			t.Fatalf("the correct driver fails: %s", msg)
		}
		s := newSoloCore(t, 1000)
		s.d.plant = "advance-before-persist"
		msg := ackedWriteSurvivesCrash(s)
		if msg == "" {
			t.Fatal("a driver that advances before its disk has saved the batch passed")
		}
		t.Logf("caught: %s", msg)
	})
	t.Run("advance-before-replies", func(t *testing.T) {
		if msg := undecodableEntryStops(newSoloCore(t, 1000)); msg != "" {
			t.Fatalf("the correct driver fails: %s", msg)
		}
		s := newSoloCore(t, 1000)
		s.d.plant = "advance-before-replies"
		msg := undecodableEntryStops(s)
		if msg == "" {
			t.Fatal("a driver that advances before it answers passed TestUndecodableEntryStops")
		}
		t.Logf("caught: %s", msg)
	})
}

// ackedWriteSurvivesCrash: on a disk that lags, a write is answered only once saved, so
// a crash right after its answer does not lose it. It says what went wrong, if anything.
func ackedWriteSurvivesCrash(s *soloCore) string {
	s.d.after = s.after
	s.d.lag = func() Time { return 50 }
	to := ReplyTo(1000)
	s.c.Request(s.now, to, api.Request{Op: api.OpSet, Key: "k", Value: []byte("v")})
	s.pump()
	for i := 0; i < 100; i++ {
		if _, ok := s.replies[to]; ok {
			break
		}
		s.tick(10)
	}
	if r, ok := s.replies[to]; !ok || r.Code != 0 {
		return fmt.Sprintf("set k: %+v %v", r, ok)
	}
	s.d.stop() // the host crashes as soon as the client has its answer
	r := s.restart()
	if g := r.ask(api.Request{Op: api.OpGet, Key: "k"}); g.Code != 0 || string(g.Value) != "v" {
		return fmt.Sprintf("get k after a crash: %+v; want v, which the client was told was set", g)
	}
	return ""
}

// A write whose answer is lost (loseReply) and that its client sends again, with its
// client ID and sequence number, is answered and applied once: a write made in between
// is not overwritten by the retry.
func TestDriverLostReplyRetried(t *testing.T) {
	s := newSoloCore(t, 1000)
	lost := 0
	s.d.loseReply = func(Reply) bool { lost++; return lost == 1 }
	w := api.Request{Op: api.OpSet, Key: "k", Value: []byte("a"), ClientID: 7, Seq: 1, TimeoutMs: 1000}
	s.next++
	to := s.next
	s.c.Request(s.now, to, w)
	s.tick(100)
	if r, ok := s.replies[to]; ok || lost != 1 {
		t.Fatalf("the lost answer arrived: %+v %v (%d answers)", r, ok, lost)
	}
	if r := s.ask(api.Request{Op: api.OpSet, Key: "k", Value: []byte("b"), ClientID: 8, Seq: 1}); r.Code != 0 {
		t.Fatalf("set k b: %+v", r)
	}
	if r := s.ask(w); r.Code != 0 {
		t.Fatalf("the write retried: %+v, want it answered as done", r)
	}
	if g := s.ask(api.Request{Op: api.OpGet, Key: "k"}); g.Code != 0 || string(g.Value) != "b" {
		t.Fatalf("get k: %+v, want b (the retry is not applied again)", g)
	}
}

// A save that fails (saveErr) stops the driver as it stops the agent: nothing of the
// batch is applied or answered, and the host restarted from its disk does not hold it.
func TestDriverFailedSave(t *testing.T) {
	s := newSoloCore(t, 1000)
	s.set("k", []byte("v"))
	s.d.fail = nil
	s.d.saveErr = func() error { return errors.New("input/output error") }
	to := ReplyTo(1000) // set answers to 1
	s.c.Request(s.now, to, api.Request{Op: api.OpSet, Key: "k", Value: []byte("w")})
	s.pump()
	if s.d.err == nil || !strings.Contains(s.d.err.Error(), "persist: input/output error") {
		t.Fatalf("driver error %v, want the failed save", s.d.err)
	}
	if r, ok := s.replies[to]; ok {
		t.Fatalf("a write whose entry was never saved was answered: %+v", r)
	}
	r := s.restart()
	if g := r.ask(api.Request{Op: api.OpGet, Key: "k"}); g.Code != 0 || string(g.Value) != "v" {
		t.Fatalf("get k after the restart: %+v, want v", g)
	}
}
