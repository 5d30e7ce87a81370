package core

import (
	"math/rand/v2"
	"testing"

	"lite-raft/api"
	"lite-raft/raftcore"
)

// The leader stamps each client's command with its wall clock (when the core was made,
// plus its time since), which becomes the state's time; a request from a client the
// table does not hold, first sent longer than the horizon before that time, is answered
// 2 and not applied, while one first sent within it is a new client.
func TestLeaderStampsAndLateRetriesAreAnswered2(t *testing.T) {
	const startedMs = 1_765_000_000_000
	boot := raftcore.Snapshot{Meta: raftcore.SnapshotMeta{Members: raftcore.Membership{Voters: []raftcore.NodeID{"a"}}}}
	disk := &memDisk{store: raftcore.NewMemoryStorage(boot, nil)}
	s := bootSolo(t, Config{Raft: raftcore.Config{ID: "a", ElectionTicks: 2, HeartbeatTicks: 1,
		Rand: rand.New(rand.NewPCG(1, 2)), Storage: disk.store}, StartedAtNs: startedMs * 1_000_000}, disk, 0)
	at := uint64(startedMs + int64(s.now))
	if r := s.ask(api.Request{Op: api.OpSet, Key: "k", Value: []byte("1"), ClientID: 5, Seq: 1, FirstSentMs: at - 1000}); r.Code != 0 {
		t.Fatalf("a new client: %+v", r)
	}
	if got := s.c.kv.Time(); got < at || got > at+1000 {
		t.Fatalf("state time %d, want the leader's clock %d", got, at)
	}
	late := api.Request{Op: api.OpSet, Key: "k", Value: []byte("2"), ClientID: 6, Seq: 1, FirstSentMs: s.c.kv.Time() - api.SessionHorizonMs - 1}
	if r := s.ask(late); r.Code != api.CodeTimeout {
		t.Fatalf("a late retry: %+v, want 2", r)
	}
	if v, _ := s.c.kv.Get("k"); string(v) != "1" {
		t.Fatalf("k = %q after a late retry", v)
	}
}
