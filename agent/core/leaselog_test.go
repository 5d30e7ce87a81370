package core

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"lite-raft/api"
	"lite-raft/raftcore"
)

// trio is three cores on a network that delivers at once (unless a member is cut off),
// on one clock the test moves: enough to see what members count, and a leader change.
type trio struct {
	t       *testing.T
	now     Time
	ids     []raftcore.NodeID
	cores   map[raftcore.NodeID]*Core
	drv     map[raftcore.NodeID]*testDriver
	msgs    []raftcore.Message
	cut     map[raftcore.NodeID]bool
	next    ReplyTo
	replies map[ReplyTo]api.Response
}

// newTrio starts three members; every member says it understands commands version
// commands[id] (the newest if not given), and waits for a leader.
func newTrio(t *testing.T, commands map[raftcore.NodeID]int) *trio {
	return newTrioWith(t, commands, func(*Config) {})
}

// newTrioWith is newTrio with each member's Config changed by tweak.
func newTrioWith(t *testing.T, commands map[raftcore.NodeID]int, tweak func(*Config)) *trio {
	tr := &trio{t: t, now: 1000, ids: []raftcore.NodeID{"a", "b", "c"}, cores: map[raftcore.NodeID]*Core{},
		drv: map[raftcore.NodeID]*testDriver{}, cut: map[raftcore.NodeID]bool{}, replies: map[ReplyTo]api.Response{}}
	for i, id := range tr.ids {
		boot := raftcore.Snapshot{Meta: raftcore.SnapshotMeta{Members: raftcore.Membership{Voters: slices.Clone(tr.ids)}}}
		disk := &memDisk{store: raftcore.NewMemoryStorage(boot, nil)}
		kv, _ := disk.kv()
		cfg := Config{Raft: raftcore.Config{ID: id, ElectionTicks: 10, HeartbeatTicks: 1,
			Rand: rand.New(rand.NewPCG(uint64(i+1), 7)), Storage: disk.store}, TickMs: 10, SnapshotPeriod: 1000}
		tweak(&cfg)
		c, err := New(cfg, disk.state(), kv)
		if err != nil {
			t.Fatal(err)
		}
		tr.cores[id] = c
		tr.drv[id] = &testDriver{c: c, disk: disk, now: func() Time { return tr.now },
			reply: func(r Reply) { tr.replies[r.To] = r.Resp },
			send:  func(m raftcore.Message) { tr.msgs = append(tr.msgs, m) },
			fail:  func(err error) { t.Fatalf("%s: %v", id, err) }}
	}
	for _, id := range tr.ids {
		for _, peer := range tr.ids {
			if peer != id {
				v, ok := commands[peer]
				if !ok {
					v = api.CommandVersion
				}
				tr.cores[id].PeerVersion(tr.now, api.Version{ID: string(peer), Commands: v, Requests: api.RequestVersion})
			}
		}
	}
	for i := 0; i < 100 && tr.leader() == nil; i++ {
		tr.tick(10)
	}
	if tr.leader() == nil {
		t.Fatal("no leader")
	}
	tr.tick(50)
	return tr
}

// deliver pumps every core and hands over every message until none is left.
func (tr *trio) deliver() {
	for i := 0; i < 1000; i++ {
		for _, id := range tr.ids {
			tr.drv[id].pump()
		}
		if len(tr.msgs) == 0 {
			return
		}
		msgs := tr.msgs
		tr.msgs = nil
		for _, m := range msgs {
			if !tr.cut[m.From] && !tr.cut[m.To] {
				tr.cores[m.To].Step(tr.now, m)
			}
		}
	}
	tr.t.Fatal("messages never stop")
}

// tickOnly ticks every core once, 10 ms on, and pumps them, delivering nothing.
func (tr *trio) tickOnly() {
	tr.now += 10
	for _, id := range tr.ids {
		tr.cores[id].Tick(tr.now)
		tr.drv[id].pump()
	}
}

// tick moves the clock ms on, a tick at a time, delivering everything each tick.
func (tr *trio) tick(ms int) {
	for end := tr.now + Time(ms); tr.now < end; {
		tr.tickOnly()
		tr.deliver()
	}
}

func (tr *trio) leader() *Core {
	var best *Core
	for _, id := range tr.ids {
		c := tr.cores[id]
		if !tr.cut[id] && c.node.Role() == raftcore.Leader && (best == nil || c.node.Term() > best.node.Term()) {
			best = c
		}
	}
	return best
}

// send hands a request to member id and returns where its answer goes.
func (tr *trio) send(id raftcore.NodeID, req api.Request) ReplyTo {
	tr.next++
	tr.cores[id].Request(tr.now, tr.next, req)
	return tr.next
}

// ask sends a request to member id and ticks until it is answered.
func (tr *trio) ask(id raftcore.NodeID, req api.Request) api.Response {
	tr.t.Helper()
	to := tr.send(id, req)
	for i := 0; i < 500; i++ {
		tr.deliver()
		if r, ok := tr.replies[to]; ok {
			return r
		}
		tr.tick(10)
	}
	tr.t.Fatalf("%s %s: no answer", req.Op, req.Key)
	return api.Response{}
}

// setTTL puts key under a new lease of ttl ms through the leader: its lease.
func (tr *trio) setTTL(key string, ttl uint64) uint64 {
	tr.t.Helper()
	r := tr.ask(tr.leader().id, api.Request{Op: api.OpSetLease, Key: key, Value: []byte("v"), TTLMs: ttl})
	id, err := strconv.ParseUint(string(r.Value), 10, 64)
	if r.Code != 0 || err != nil {
		tr.t.Fatalf("set --ttl %s: %+v", key, r)
	}
	return id
}

// transfer hands leadership to the next member.
func (tr *trio) transfer() *Core {
	tr.t.Helper()
	l := tr.leader()
	to := tr.ids[(slices.Index(tr.ids, l.id)+1)%len(tr.ids)]
	if r := tr.ask(l.id, api.Request{Op: api.OpTransfer, Member: string(to), TimeoutMs: 3000}); r.Code != 0 {
		tr.t.Fatalf("transfer to %s: %+v", to, r)
	}
	return tr.cores[to]
}

// gone reports whether key is gone from member id's state.
func (tr *trio) gone(id raftcore.NodeID, key string) bool {
	_, ok := tr.cores[id].kv.Get(key)
	return !ok
}

// The keeps the leader confirmed in one tick go into one entry, proposed at the next
// tick, and each is answered only once that entry is applied.
func TestLeaseKeepsBatchedOneEntryATick(t *testing.T) {
	tr := newTrio(t, nil)
	a, b := tr.setTTL("a", 5000), tr.setTTL("b", 5000)
	l := tr.leader()
	var tos []ReplyTo
	for _, lease := range []uint64{a, b, a} {
		tos = append(tos, tr.send(l.id, api.Request{Op: api.OpLeaseKeep, Lease: lease}))
	}
	tr.deliver() // their read index is confirmed: they wait for the next batch
	if len(l.keeps) != 3 || len(l.keepBatches) != 0 {
		t.Fatalf("after the read index: %d keeps waiting, %d batches in flight; want 3 and 0", len(l.keeps), len(l.keepBatches))
	}
	last := l.node.Status().LastIndex
	tr.tickOnly() // the batch is proposed: nothing is committed yet
	if got := l.node.Status().LastIndex; got != last+1 {
		t.Fatalf("one tick of keeps appended %d entries, want 1", got-last)
	}
	bt := l.keepBatches[last+1]
	if bt == nil || !slices.Equal(bt.ids, []uint64{a, b}) || len(bt.waiters) != 3 {
		t.Fatalf("the batch at %d: %+v, want leases %d and %d for 3 keeps", last+1, bt, a, b)
	}
	for _, to := range tos {
		if r, ok := tr.replies[to]; ok {
			t.Fatalf("a keep answered before its batch committed: %+v", r)
		}
	}
	tr.deliver()
	for _, to := range tos {
		if r, ok := tr.replies[to]; !ok || r.Code != 0 {
			t.Fatalf("a keep once its batch applied: %+v (answered %v)", r, ok)
		}
	}
	// a keep of a lease revoked before its batch applies hears that it is gone
	to := tr.send(l.id, api.Request{Op: api.OpLeaseKeep, Lease: b})
	tr.deliver()
	if r := tr.ask(l.id, api.Request{Op: api.OpRevoke, Lease: b}); r.Code != 0 {
		t.Fatalf("revoke: %+v", r)
	}
	tr.tick(20)
	if r := tr.replies[to]; r.Code != api.CodeNotFound {
		t.Fatalf("a keep whose batch applied after the revoke: %+v, want 9", r)
	}
}

// Every member counts each lease from its own apply of its grant and of its renewals,
// leader or not.
func TestFollowerLeaseClockFollowsApplies(t *testing.T) {
	tr := newTrio(t, nil)
	l := tr.leader()
	sent := tr.now
	id := tr.setTTL("k", 3000)
	tr.tick(20) // the followers hear of the commit
	for _, m := range tr.ids {
		due, ok := tr.cores[m].leases.due(id)
		if !ok || due < sent+3000 || due > tr.now+3000 {
			t.Fatalf("%s counts the lease granted at %d (answered at %d) to %d (%v), want within the grant's apply + 3 s", m, sent, tr.now, due, ok)
		}
	}
	tr.tick(1000)
	// a follower cut off misses the renewal: it goes on counting from the grant
	var behind raftcore.NodeID
	for _, m := range tr.ids {
		if m != l.id {
			behind = m
		}
	}
	before, _ := tr.cores[behind].leases.due(id)
	tr.cut[behind] = true
	sent = tr.now
	if r := tr.ask(l.id, api.Request{Op: api.OpLeaseKeep, Lease: id}); r.Code != 0 {
		t.Fatalf("keep: %+v", r)
	}
	tr.tick(20)
	for _, m := range tr.ids {
		due, _ := tr.cores[m].leases.due(id)
		switch {
		case m == behind && due != before:
			t.Fatalf("%s, cut off, counts to %d, not %d: it applied nothing", m, due, before)
		case m != behind && (due < sent+3000 || due > tr.now+3000):
			t.Fatalf("%s counts the lease kept at %d (answered at %d) to %d", m, sent, tr.now, due)
		}
	}
	tr.cut[behind] = false
	tr.tick(100) // it catches up: it counts from when it applied the renewal, later
	if due, _ := tr.cores[behind].leases.due(id); due < sent+3000 || due > tr.now+3000 {
		t.Fatalf("%s counts to %d after it caught up at %d", behind, due, tr.now)
	}
}

// A new leader resumes each countdown from its own apply of the last renewal: across a
// leader change every 400 ms, a key not kept goes about its ttl after its last renewal,
// never a whole ttl after a change, and never before.
func TestNewLeaderResumesLeaseCountdown(t *testing.T) {
	tr := newTrio(t, nil)
	tr.setTTL("k", 2000)
	set := tr.now
	for tr.now < set+1800 {
		tr.tick(400 - int(tr.now-set)%400)
		tr.transfer()
		if tr.gone(tr.leader().id, "k") {
			t.Fatalf("k gone %d ms after its set (ttl 2 s)", tr.now-set)
		}
	}
	for tr.now < set+2000+200 && !tr.gone(tr.leader().id, "k") {
		tr.tick(10)
	}
	if !tr.gone(tr.leader().id, "k") {
		t.Fatalf("k still there %d ms after its set (ttl 2 s, the leader changed every 400 ms)", tr.now-set)
	}
	if tr.now < set+2000 {
		t.Fatalf("k gone %d ms after its set (ttl 2 s)", tr.now-set)
	}
}

// Across 120 leader changes, half of them transfers and half a leader cut off (as dead)
// until another is elected, a key with a 30 s ttl, renewed once after 5 s, goes within
// its bound: never before its renewal + ttl, and no later than + 2 election timeouts
// (here 100-200 ms each) + 1 s. A new leader that gave each lease its whole ttl again
// would keep it until 30 s after the last change, past 60 s.
func TestLeaseBoundAcrossAHundredLeaderChanges(t *testing.T) {
	if err := leaseBoundAcrossLeaderChanges(t, bugs{}); err != "" {
		t.Fatal(err)
	}
	// planted: a new leader gives every lease its whole ttl again; the test must see it
	if err := leaseBoundAcrossLeaderChanges(t, bugs{leaseRestart: true}); !strings.Contains(err, "still there") {
		t.Fatalf("with a new leader restarting every lease: %q, want the key still there", err)
	}
}

// leaseBoundAcrossLeaderChanges runs the test above with b planted in every member and
// says what it saw wrong ("" if nothing).
func leaseBoundAcrossLeaderChanges(t *testing.T, b bugs) string {
	tr := newTrio(t, nil)
	for _, c := range tr.cores {
		c.bugs = b
	}
	lease := tr.setTTL("k", 30000)
	set := tr.now
	tr.tick(5000)
	if r := tr.ask(tr.leader().id, api.Request{Op: api.OpLeaseKeep, Lease: lease}); r.Code != 0 {
		t.Fatalf("lease keep: %+v", r)
	}
	kept := tr.now
	changes := 0
	for changes < 120 {
		tr.tick(100)
		if changes%2 == 0 {
			tr.transfer()
		} else {
			dead := tr.leader().id
			tr.cut[dead] = true
			for i := 0; i < 100 && tr.leader() == nil; i++ {
				tr.tick(10)
			}
			if tr.leader() == nil {
				return fmt.Sprintf("no leader %d ms after %s was cut off", tr.now-set, dead)
			}
			tr.cut[dead] = false
		}
		changes++
		if tr.gone(tr.leader().id, "k") {
			return fmt.Sprintf("k gone %d ms after its keep (ttl 30 s), after %d leader changes", tr.now-kept, changes)
		}
	}
	t.Logf("%d leader changes in %d ms; the last %d ms after the keep", changes, tr.now-set, tr.now-kept)
	for tr.now < kept+30000+2*200+1000 && !tr.gone(tr.leader().id, "k") {
		tr.tick(10)
	}
	if !tr.gone(tr.leader().id, "k") {
		return fmt.Sprintf("k still there %d ms after its keep (ttl 30 s, %d leader changes)", tr.now-kept, changes)
	}
	if tr.now < kept+30000 {
		return fmt.Sprintf("k gone %d ms after its keep (ttl 30 s)", tr.now-kept)
	}
	return ""
}

// With a member older than version 6, keeps renew on the leader's clock, answered at
// once, and a new leader gives every lease its whole ttl again, as before.
func TestLeaseKeepsWithAnOlderMember(t *testing.T) {
	tr := newTrio(t, map[raftcore.NodeID]int{"a": 5, "b": 5, "c": 5}) // each hears version 5 from the others
	id := tr.setTTL("k", 2000)
	l := tr.leader()
	last := l.node.Status().LastIndex
	if r := tr.ask(l.id, api.Request{Op: api.OpLeaseKeep, Lease: id}); r.Code != 0 {
		t.Fatalf("keep: %+v", r)
	}
	if got := l.node.Status().LastIndex; got != last || len(l.keepBatches) != 0 {
		t.Fatalf("a keep with a member at version 5 appended %d entries", got-last)
	}
	tr.tick(1000)
	took := tr.now
	nl := tr.transfer()
	for tr.now < took+1900 {
		tr.tick(100)
		if tr.gone(nl.id, "k") {
			t.Fatalf("k gone %d ms after the new leader took over: it gives the whole ttl", tr.now-took)
		}
	}
	tr.tick(400)
	if !tr.gone(nl.id, "k") {
		t.Fatalf("k still there %d ms after the new leader took over (ttl 2 s)", tr.now-took)
	}
}
