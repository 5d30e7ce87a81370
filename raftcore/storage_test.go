package raftcore

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// Tests of what lives outside the node's memory: old entries read back through Storage,
// entries kept behind a snapshot, and snapshots sent from Storage in a window of chunks,
// to a follower that writes them down and resumes after a restart.

// With a window of 3, three chunks go out before any answer; a chunk lost in the middle
// makes the follower answer the next with the offset it holds, and the leader goes back
// there once, not once per answer to a chunk sent before.
func TestRuleSnapshotWindow(t *testing.T) {
	c, r, snap, chunks := rtSnapSetupWith(t, func(cfg *Config) { cfg.SnapshotWindow = 3 })
	var sent []uint64
	r.onSend = func(m Message) {
		if m.Type == MsgSnap && m.To == "n3" {
			sent = append(sent, m.Snapshot.Offset)
		}
	}
	lost := false
	r.drop = func(m Message) bool {
		if m.Type == MsgSnap && m.Snapshot.Offset == 3 && !lost {
			lost = true
			return true
		}
		return false
	}
	// the heartbeat after the restart gets n3's answer; the leader's next Ready holds the
	// first window
	r.tick()
	r.settle()
	if len(sent) < 3 || !slices.Equal(sent[:3], []uint64{0, 3, 6}) {
		t.Fatalf("first chunks sent %v, want a window of 0, 3, 6", sent)
	}
	if !lost {
		t.Fatal("chunk 3 was never sent")
	}
	for i := 0; i < 5 && c.nodes["n3"].store.snap.Meta.Index != snap.Meta.Index; i++ {
		r.tick()
		r.settle()
	}
	// 6 chunks, one lost and sent again: at most the window's worth of extra sends
	if n := len(sent); n > 6+1+3 {
		t.Errorf("%d chunks sent for a 6-chunk snapshot with one lost: %v", n, sent)
	}
	if got := rtOffsets(*chunks, "n1"); !slices.Contains(got, 15) {
		t.Errorf("delivered %v, never the last chunk", got)
	}
	rtInstalled(t, c, r, snap)
}

// A snapshot being sent stays the one sent even when the leader takes a newer one: the
// transfer resumes and ends with it, and the follower is then brought up to date with
// the entries after it, which the leader kept for it.
func TestRuleSnapshotKeptWhileSent(t *testing.T) {
	c, r, snap, chunks := rtSnapSetup(t)
	r.drop = func(m Message) bool { return m.Type == MsgSnap && m.Snapshot.Offset >= 9 }
	r.tick()
	r.settle()
	if in := c.nodes["n3"].node.incoming; in == nil || in.Have != 9 {
		t.Fatalf("n3 should hold 9 bytes; chunks %v", *chunks)
	}
	// the leader's status tells how far the transfer is
	if p := r.st("n1").Progress["n3"]; p.State != "snapshot" || p.SnapshotAcked != 9 || p.SnapshotSize != 16 {
		t.Fatalf("leader's progress of n3: %+v, want snapshot 9 of 16 bytes", p)
	}
	for i := 0; i < 10; i++ {
		if !c.propose("n1", []byte{byte(100 + i)}) {
			t.Fatal("propose")
		}
	}
	r.settle()
	if !c.compact("n1") {
		t.Fatal("compact")
	}
	if c.nodes["n1"].store.snap.Meta.Index <= snap.Meta.Index {
		t.Fatal("the leader did not take a newer snapshot")
	}
	r.drop = nil
	installed := rtTrackInstalled(c, r)
	for i := 0; i < 3*snapIdleBeats; i++ {
		r.tick()
		r.settle()
	}
	// and the leader kept the entries after it, so that one snapshot is all it takes
	if !slices.Equal((*installed)[1:], []uint64{snap.Meta.Index}) {
		t.Fatalf("n3 installed snapshots %v, want only the one being sent (%d)", *installed, snap.Meta.Index)
	}
	// it went on from 9, never from 0, with the first snapshot
	offs := rtOffsets(*chunks, "n1")
	if i := slices.Index(offs, 9); i < 0 || slices.Contains(offs[3:i], 0) {
		t.Errorf("chunk offsets %v: the transfer did not resume at 9", offs)
	}
	r.tickSettle(3)
	if got, want := c.nodes["n3"].appliedIndex, c.nodes["n1"].appliedIndex; got != want {
		t.Fatalf("n3 applied %d, the leader %d", got, want)
	}
	r.check()
}

// A follower that restarts in the middle of a transfer resumes from what it wrote down.
func TestRuleSnapshotResumesAfterFollowerRestart(t *testing.T) {
	c, r, snap, chunks := rtSnapSetup(t)
	r.drop = func(m Message) bool { return m.Type == MsgSnap && m.Snapshot.Offset >= 9 }
	r.tick()
	r.settle()
	c.crash("n3")
	c.restart("n3")
	if in := c.nodes["n3"].node.incoming; in == nil || in.Have != 9 {
		t.Fatalf("after a restart n3 should hold 9 bytes of the snapshot, holds %+v", in)
	}
	before := len(*chunks)
	r.drop = nil
	for i := 0; i < 3*snapIdleBeats && c.nodes["n3"].store.snap.Meta.Index != snap.Meta.Index; i++ {
		r.tick()
		r.settle()
	}
	var after []uint64
	for _, ch := range (*chunks)[before:] {
		if ch.offset > 0 {
			after = append(after, ch.offset)
		}
	}
	if !slices.Equal(after, []uint64{9, 12, 15}) {
		t.Errorf("after the restart chunks at %v were delivered (besides 0), want 9, 12, 15", after)
	}
	rtInstalled(t, c, r, snap)
}

// A leader whose cache holds only a few entries sends a follower that was down the
// older ones from Storage, and its cache stays within its bound.
func TestRuleLogCacheReadsStorage(t *testing.T) {
	ids := rtIDs(3)
	const maxCache = 200
	c, r := rtCluster(t, 5, ids, ids, func(cfg *Config) { cfg.MaxCacheBytes = maxCache })
	rtCampaign(t, c, "n1")
	r.settle()
	c.crash("n3")
	var data []byte
	for i := 0; i < 40; i++ {
		data = make([]byte, 50)
		data[0] = byte(i)
		if !c.propose("n1", data) {
			t.Fatal("propose")
		}
		r.settle()
		if l := &r.node("n1").log; l.cacheBytes > maxCache+uint64(len(data)) {
			t.Fatalf("leader caches %d bytes, bound %d", l.cacheBytes, maxCache)
		}
	}
	if cf := r.node("n1").log.cacheFirst(); cf < 10 {
		t.Fatalf("the cache starts at %d: it did not give up old entries", cf)
	}
	snaps := rtCountSnapChunks(r)
	c.restart("n3")
	r.tickSettle(3)
	if got, want := c.nodes["n3"].appliedIndex, c.nodes["n1"].appliedIndex; got != want {
		t.Fatalf("n3 applied %d, the leader %d", got, want)
	}
	if *snaps > 0 {
		t.Errorf("%d snapshot chunks sent: the entries were all there", *snaps)
	}
	// a node restarting with many committed entries to apply gets them in bounded batches
	c.crash("n2")
	c.restart("n2")
	sn := c.nodes["n2"]
	for sn.node.HasReady() {
		rd := sn.node.Ready()
		if sz := entriesSize(rd.CommittedEntries); sz > maxCache+uint64(len(data))+32 {
			t.Fatalf("a Ready hands out %d bytes of committed entries, bound %d", sz, maxCache)
		}
		c.persist(sn, rd)
		c.apply(sn, rd)
		sn.node.Advance(rd)
	}
	r.check()
}

// rtCountSnapChunks counts the snapshot chunks the nodes send from now on.
func rtCountSnapChunks(r *rtRunner) *int {
	n := new(int)
	r.onSend = func(m Message) {
		if m.Type == MsgSnap {
			*n++
		}
	}
	return n
}

// Entries kept behind a snapshot let a follower that lags a little catch up without it.
func TestRuleKeepEntriesBehindSnapshot(t *testing.T) {
	ids := rtIDs(3)
	c, r := rtCluster(t, 6, ids, ids, func(cfg *Config) { cfg.KeepEntries = 10 })
	rtCampaign(t, c, "n1")
	r.settle()
	r.tickSettle(1)
	c.crash("n3")
	for i := 0; i < 5; i++ {
		c.propose("n1", []byte{byte(i)})
	}
	r.settle()
	r.tickSettle(1)
	if !c.compact("n1") || !c.compact("n2") {
		t.Fatal("compact")
	}
	snaps := rtCountSnapChunks(r)
	c.restart("n3")
	r.tickSettle(3)
	if got, want := c.nodes["n3"].appliedIndex, c.nodes["n1"].appliedIndex; got != want {
		t.Fatalf("n3 applied %d, the leader %d", got, want)
	}
	if *snaps > 0 {
		t.Errorf("%d snapshot chunks sent to a follower 5 entries behind, with 10 kept", *snaps)
	}
	r.check()
}

type failingStorage struct{ Storage }

func (failingStorage) Entries(lo, hi, maxBytes uint64) ([]Entry, error) {
	return nil, errors.New("disk on fire")
}

// A leader that cannot read its own log back says so in its Ready instead of sending
// nothing forever or panicking.
func TestRuleStorageErrorIsReported(t *testing.T) {
	ids := rtIDs(3)
	c, r := rtCluster(t, 7, ids, ids, func(cfg *Config) { cfg.MaxCacheBytes = 1 })
	rtCampaign(t, c, "n1")
	r.settle()
	c.crash("n3")
	for i := 0; i < 5; i++ {
		c.propose("n1", []byte{byte(i)})
		r.settle()
	}
	n1 := r.node("n1")
	n1.log.storage = failingStorage{c.nodes["n1"].store}
	c.restart("n3")
	var got error
	for i := 0; i < 5 && got == nil; i++ {
		c.tickAll()
		c.deliverAll(1)
		if n1.HasReady() {
			got = n1.Ready().StorageErr
		}
		c.violations = nil // the driver's check fails on the error too; it is this test's
	}
	if got == nil {
		t.Fatal("no StorageErr in the leader's Ready")
	}
}

// The appends in flight to a follower are bounded in bytes as well as in number: with
// 200-byte entries (232 counted with their overhead), one per append, and
// MaxInflightBytes 600, the third append fills the window, though MaxInflight allows four.
func TestRulePipeliningBoundedByBytes(t *testing.T) {
	ids := rtIDs(3)
	c, r := rtCluster(t, 7, ids, ids, func(cfg *Config) { cfg.MaxInflight, cfg.MaxInflightBytes = 4, 600 })
	l := r.elect(200)
	r.tickSettle(1)
	sent := map[NodeID]int{}
	r.onSend = func(m Message) {
		if m.From == l && m.Type == MsgApp && len(m.Entries) > 0 {
			sent[m.To]++
		}
	}
	for i := 0; i < 8; i++ {
		if !c.propose(l, bytes.Repeat([]byte{byte('a' + i)}, 200)) {
			t.Fatal("propose")
		}
	}
	r.process(l)
	for _, f := range ids {
		if f != l && sent[f] != 3 {
			t.Fatalf("before any answer %d appends went to %s, want 3 (600 bytes of 232)", sent[f], f)
		}
	}
	r.settle()
	r.tickSettle(1)
	last := r.st(l).LastIndex
	for _, id := range ids {
		if st := r.st(id); st.Commit != last {
			t.Errorf("%s commit %d, want %d", id, st.Commit, last)
		}
	}
	r.check()
}

// Pieces that arrive out of order within the window are held until the ones before them
// come, not refused: each piece crosses once. (Refusing them, as a follower that takes
// pieces only in order does, sent 20 pieces for these 6.)
func TestRuleSnapshotPiecesOutOfOrder(t *testing.T) {
	c, r, snap, _ := rtSnapSetupWith(t, func(cfg *Config) { cfg.SnapshotWindow = 3 })
	var sent []uint64
	r.onSend = func(m Message) {
		if m.Type == MsgSnap && m.To == "n3" {
			sent = append(sent, m.Snapshot.Offset)
		}
	}
	for i := 0; i < 10 && c.nodes["n3"].store.snap.Meta.Index != snap.Meta.Index; i++ {
		r.tick()
		deliverReversed(r, snapTo3)
	}
	if got := slices.Sorted(slices.Values(sent)); !slices.Equal(got, []uint64{0, 3, 6, 9, 12, 15}) {
		t.Errorf("pieces sent %v, want each of the 6 once", sent)
	}
	if h := c.nodes["n3"].node.ahead; h.pieces != nil || h.bytes != 0 {
		t.Errorf("n3 still holds %d bytes of pieces ahead after the install", h.bytes)
	}
	rtInstalled(t, c, r, snap)
}

// A follower holds at most MaxSnapshotAhead bytes of pieces ahead; one beyond that is
// refused and sent again, and the snapshot still arrives whole.
func TestRuleSnapshotAheadBound(t *testing.T) {
	c, r, snap, _ := rtSnapSetupWith(t, func(cfg *Config) { cfg.SnapshotWindow = 4; cfg.MaxSnapshotAhead = 3 })
	var sent []uint64
	r.onSend = func(m Message) {
		if m.Type == MsgSnap && m.To == "n3" {
			sent = append(sent, m.Snapshot.Offset)
		}
	}
	maxHeld := uint64(0)
	r.after = func() {
		if n := c.nodes["n3"].node; n != nil {
			maxHeld = max(maxHeld, n.ahead.bytes)
		}
	}
	for i := 0; i < 30 && c.nodes["n3"].store.snap.Meta.Index != snap.Meta.Index; i++ {
		r.tick()
		deliverReversed(r, snapTo3)
	}
	if maxHeld > 3 {
		t.Errorf("n3 held %d bytes ahead, bound 3", maxHeld)
	}
	if len(sent) <= 6 {
		t.Errorf("pieces sent %v: with room for one piece ahead, some must have been refused and sent again", sent)
	}
	rtInstalled(t, c, r, snap)
}

// A leader's view of what the follower holds can be stale (the follower lost its partial
// snapshot, or another leader's replaced it): the pieces it sends are held ahead, and
// the one it sends again, once it hears no progress, is refused with what the follower
// holds, so it goes back there instead of waiting forever.
func TestRuleSnapshotStaleView(t *testing.T) {
	c, r, snap, _ := rtSnapSetupWith(t, func(cfg *Config) { cfg.SnapshotWindow = 2 })
	r.drop = func(m Message) bool { return m.Type == MsgSnap && m.Snapshot.Offset >= 9 }
	r.tick()
	r.settle()
	if in := c.nodes["n3"].node.incoming; in == nil || in.Have != 9 {
		t.Fatalf("n3 should hold 9 bytes, holds %+v", in)
	}
	// n3 loses its partial snapshot in a crash; the leader still counts 9 bytes there
	c.crash("n3")
	c.nodes["n3"].store.incoming, c.nodes["n3"].store.inData = nil, nil
	c.restart("n3")
	r.drop = nil
	for i := 0; i < 30 && c.nodes["n3"].store.snap.Meta.Index != snap.Meta.Index; i++ {
		r.tick()
		r.settle()
	}
	rtInstalled(t, c, r, snap)
}

// SetSnapshotWindow widens the window to one member, in whole pieces (13 bytes: 5 of 3),
// at most what a follower holds out of order.
func TestRuleSetSnapshotWindow(t *testing.T) {
	c, r, snap, _ := rtSnapSetupWith(t, func(cfg *Config) { cfg.SnapshotWindow, cfg.MaxSnapshotAhead = 1, 1<<20 })
	r.node("n1").SetSnapshotWindow("n3", 1<<30)
	if w := r.node("n1").snapshotWindow("n3"); w != (1<<20)/3 {
		t.Errorf("a window of 1 GiB: %d pieces, want the %d a follower holds ahead", w, (1<<20)/3)
	}
	r.node("n1").SetSnapshotWindow("n3", 13)
	var sent []uint64
	r.onSend = func(m Message) {
		if m.Type == MsgSnap && m.To == "n3" {
			sent = append(sent, m.Snapshot.Offset)
		}
	}
	r.drop = func(m Message) bool { return m.Type == MsgSnap } // none answered: only the window goes
	r.tick()
	r.settle()
	if !slices.Equal(sent, []uint64{0, 3, 6, 9, 12}) {
		t.Fatalf("pieces sent before any answer %v, want a window of 5", sent)
	}
	r.node("n1").SetSnapshotWindow("n3", 0) // back to the configured 1 (what is out stays out)
	if w := r.node("n1").snapshotWindow("n3"); w != 1 {
		t.Errorf("window after 0: %d pieces, want the configured 1", w)
	}
	r.drop = nil
	for i := 0; i < 30 && c.nodes["n3"].store.snap.Meta.Index != snap.Meta.Index; i++ {
		r.tick()
		r.settle()
	}
	rtInstalled(t, c, r, snap)
}

// snapTo3 picks the snapshot pieces to n3.
func snapTo3(m Message) bool { return m.Type == MsgSnap && m.To == "n3" }

// deliverReversed delivers what is in flight, the messages sel picks newest first (as
// messages spread over several streams may arrive), everything else in order, until
// nothing is.
func deliverReversed(r *rtRunner, sel func(Message) bool) {
	for {
		last := -1
		for i, m := range r.c.net {
			if sel(m) {
				last = i
			}
		}
		if last < 0 {
			if !r.deliverNext() {
				return
			}
			continue
		}
		m := r.c.net[last]
		r.c.net = slices.Delete(r.c.net, last, last+1)
		r.deliverMsg(m)
	}
}

// rtReplicating makes n1 the leader of three, replicating to n3 (which took an append
// from it), with one entry per append.
func rtReplicating(t *testing.T, maxInflight int) (*cluster, *rtRunner) {
	t.Helper()
	ids := rtIDs(3)
	c, r := rtCluster(t, 7, ids, ids, func(cfg *Config) { cfg.MaxMsgBytes, cfg.MaxInflight, cfg.BulkAppendBytes = 1, maxInflight, 1 })
	rtCampaign(t, c, "n1")
	r.settle()
	if !c.propose("n1", []byte("first")) {
		t.Fatal("propose")
	}
	r.settle()
	return c, r
}

// Pipelined appends that arrive out of order are held until the ones before them come,
// not refused: no rejection, nothing sent twice. (Refusing them, planted, sent the
// follower 23 appends for these 6, and 12 rejections.)
func TestRuleAppendsOutOfOrder(t *testing.T) {
	c, r := rtReplicating(t, 256)
	var sent, rejects int
	r.onSend = func(m Message) {
		if m.Type == MsgApp && m.To == "n3" && len(m.Entries) > 0 {
			sent++
		}
		if m.Type == MsgAppResp && m.From == "n3" && m.Reject {
			rejects++
		}
	}
	for i := 0; i < 6; i++ {
		if !c.propose("n1", []byte{byte(i)}) {
			t.Fatal("propose")
		}
	}
	r.process("n1")
	deliverReversed(r, func(m Message) bool { return m.Type == MsgApp && m.To == "n3" })
	r.settle()
	if sent != 6 || rejects != 0 {
		t.Errorf("%d appends sent to n3 for 6 entries, %d rejections", sent, rejects)
	}
	if h := r.node("n3").appAhead; len(h.msgs) != 0 || h.bytes != 0 {
		t.Errorf("n3 still holds %d appends", len(h.msgs))
	}
	if got, want := r.st("n3").LastIndex, r.st("n1").LastIndex; got != want {
		t.Fatalf("n3's log ends at %d, the leader's at %d", got, want)
	}
	r.tickSettle(2)
	r.check()
}

// A pipelined append lost on the way leaves the ones after it held, unanswered; once the
// gap has not closed for appGapTicks, the follower refuses the first of them and the
// leader, its window full (a backlog: it never gets to the empty append that would be
// refused), goes back to what the follower has. (With that rule planted away, n3 was
// still 39 entries behind after the same ticks.)
func TestRuleAppendLostThenHeld(t *testing.T) {
	c, r := rtReplicating(t, 2)
	start := r.st("n3").LastIndex
	lost := false
	r.drop = func(m Message) bool {
		if m.Type == MsgApp && m.To == "n3" && len(m.Entries) > 0 && m.Entries[0].Index == start+2 && !lost {
			lost = true
			return true
		}
		return false
	}
	for i := 0; i < 40; i++ {
		if !c.propose("n1", []byte{byte(i)}) {
			t.Fatal("propose")
		}
	}
	r.settle()
	if !lost {
		t.Fatal("no append was lost")
	}
	if n := len(r.node("n3").appAhead.msgs); n == 0 {
		t.Fatal("n3 holds none of the appends after the lost one")
	}
	for i := 0; i < 2*int(r.node("n3").appGapTicks())+2 && r.st("n3").LastIndex != r.st("n1").LastIndex; i++ {
		r.tick()
		r.settle()
	}
	if got, want := r.st("n3").LastIndex, r.st("n1").LastIndex; got != want {
		t.Fatalf("n3's log ends at %d, the leader's at %d", got, want)
	}
	r.check()
}

// A member whose state is made anew after it confirmed entries (its host booted again in
// join mode: an empty log, no members) holds less than the leader's match for it; told
// so (ForgetProgress), the leader probes it again and brings it back. (Without it, planted,
// the leader probed it at the old match forever and n3 stayed empty.)
func TestRuleMemberStateLost(t *testing.T) {
	c, r := rtReplicating(t, 256)
	for i := 0; i < 5; i++ {
		if !c.propose("n1", []byte{byte(i)}) {
			t.Fatal("propose")
		}
	}
	r.settle()
	if p := r.st("n1").Progress["n3"]; p.Match < 5 {
		t.Fatalf("the leader's match for n3: %d", p.Match)
	}
	c.crash("n3")
	c.nodes["n3"].store = NewMemoryStorage(Snapshot{}, nil)
	c.restart("n3")
	r.node("n1").ForgetProgress("n3")
	if !c.propose("n1", []byte("after")) { // (an idle leader sends it nothing but heartbeats)
		t.Fatal("propose")
	}
	for i := 0; i < 10 && r.st("n3").LastIndex != r.st("n1").LastIndex; i++ {
		r.tick()
		r.settle()
	}
	if got, want := r.st("n3").LastIndex, r.st("n1").LastIndex; got != want {
		t.Fatalf("n3's log ends at %d after its state was lost, the leader's at %d", got, want)
	}
}

// A transfer that has barely begun waits while the leader writes a newer snapshot
// (SnapshotSoon), and starts over with it once it is there: the follower installs the
// fresh snapshot, never the old one, and replays only what came after it. A write that
// fails lets the old transfer go on.
func TestRuleSnapshotFreshForNewTransfer(t *testing.T) {
	c, r, old, chunks := rtYoungTransfer(t)
	n1 := c.nodes["n1"].node
	if p := r.st("n1").Progress["n3"]; p.State != "snapshot" || p.SnapshotAcked != 3 || !n1.SnapshotWanted() {
		t.Fatalf("leader's progress of n3: %+v, want snapshot 3 of 16 bytes, and a fresh snapshot wanted", p)
	}
	for i := 0; i < 10; i++ {
		if !c.propose("n1", []byte{byte(100 + i)}) {
			t.Fatal("propose")
		}
	}
	r.settle()
	n1.SnapshotSoon(c.nodes["n1"].appliedIndex)
	before := len(*chunks)
	for i := 0; i < 3*snapIdleBeats; i++ {
		r.tick()
		r.settle()
	}
	if got := (*chunks)[before:]; len(got) > 0 {
		t.Fatalf("pieces of the old snapshot sent while a newer one is written: %v", got)
	}
	if !c.compact("n1") {
		t.Fatal("compact")
	}
	fresh := c.nodes["n1"].store.snap
	if fresh.Meta.Index <= old.Meta.Index {
		t.Fatal("the leader did not take a newer snapshot")
	}
	installed := rtTrackInstalled(c, r)
	r.settle()
	r.tickSettle(3)
	if got := *installed; got[len(got)-1] != fresh.Meta.Index || slices.Contains(got, old.Meta.Index) {
		t.Fatalf("n3 installed snapshots %v, want the fresh one at %d and never the old at %d", got, fresh.Meta.Index, old.Meta.Index)
	}
	if n1.SnapshotWanted() {
		t.Error("the leader still wants a snapshot after the transfer")
	}
	if got, want := c.nodes["n3"].appliedIndex, c.nodes["n1"].appliedIndex; got != want {
		t.Fatalf("n3 applied %d, the leader %d", got, want)
	}
	r.check()
}

// A snapshot write that fails (SnapshotSoon(0)) lets the held transfer go on with the
// snapshot the leader has.
func TestRuleSnapshotSoonFailed(t *testing.T) {
	c, r, old, _ := rtYoungTransfer(t)
	n1 := c.nodes["n1"].node
	n1.SnapshotSoon(c.nodes["n1"].appliedIndex + 1)
	r.tickSettle(3)
	if got := c.nodes["n3"].store.snap.Meta.Index; got == old.Meta.Index {
		t.Fatal("n3 received the old snapshot while a newer one was being written")
	}
	n1.SnapshotSoon(0)
	r.tickSettle(3)
	rtInstalled(t, c, r, old)
}

// A follower that went down while its snapshot transfer was young is not one the leader
// writes a fresh snapshot for: it would write one each time its log allows.
func TestRuleSnapshotNotWantedForADeadFollower(t *testing.T) {
	c, r, _, _ := rtYoungTransfer(t)
	n1 := c.nodes["n1"].node
	if !n1.SnapshotWanted() {
		t.Fatalf("n3 barely began receiving the leader's snapshot and it is not wanted: %+v", r.st("n1").Progress["n3"])
	}
	c.crash("n3")
	r.tickSettle(4 * c.nodes["n1"].node.cfg.ElectionTicks)
	if p := r.st("n1").Progress["n3"]; p.State != "snapshot" || n1.SnapshotWanted() {
		t.Fatalf("n3 is down (progress %+v): a fresh snapshot is wanted for it: %v", p, n1.SnapshotWanted())
	}
}

// rtYoungTransfer is rtSnapSetup with n3 holding the first piece of the snapshot only: a
// transfer that has not gone beyond its first window.
func rtYoungTransfer(t *testing.T) (c *cluster, r *rtRunner, snap Snapshot, chunks *[]rtChunk) {
	t.Helper()
	c, r, snap, chunks = rtSnapSetup(t)
	r.drop = func(m Message) bool { return m.Type == MsgSnap && m.Snapshot.Offset >= 3 }
	r.tick()
	r.settle()
	r.drop = nil
	return c, r, snap, chunks
}

// rtTrackInstalled records the snapshots n3 holds from now on, each once in a row, from
// the one it holds now.
func rtTrackInstalled(c *cluster, r *rtRunner) *[]uint64 {
	installed := []uint64{c.nodes["n3"].store.snap.Meta.Index}
	r.after = func() {
		if s := c.nodes["n3"].store.snap.Meta.Index; installed[len(installed)-1] != s {
			installed = append(installed, s)
		}
	}
	return &installed
}
