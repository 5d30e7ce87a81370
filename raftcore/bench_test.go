package raftcore

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkCommit3Nodes measures proposals committed per second through three Nodes in
// memory: the leader takes proposals in batches of 64; each round every node's Ready is
// handled (its entries count as durable at once, its messages are delivered in order)
// until the leader has applied the whole batch. One op is one proposal, so ns/op is the
// cost of one committed proposal; commits/s is b.N over the measured time. The driver's
// checker (cluster_test.go) is left out: it would dominate the cost. Logs are compacted
// every 4096 entries, as lite-raft's snapshot_period does, so memory stays flat.
//
// full-cache: entries of 1 KiB, compacted every 65536 (64 MiB), so the logs' caches stay
// at MaxCacheBytes and give up entries at every Ready, as a leader's does at scale (each
// Ready once copied the whole cache: 1.6 MB a Ready).
func BenchmarkCommit3Nodes(b *testing.B) {
	b.Run("128B", func(b *testing.B) { benchCommit3Nodes(b, 128, 4096) })
	b.Run("full-cache", func(b *testing.B) { benchCommit3Nodes(b, 1024, 65536) })
}

func benchCommit3Nodes(b *testing.B, size, compactEvery int) {
	const batch = 64
	ids := []NodeID{"n1", "n2", "n3"}
	nodes := map[NodeID]*Node{}
	stores := map[NodeID]*MemoryStorage{}
	for i, id := range ids {
		boot := Snapshot{Meta: SnapshotMeta{Members: Membership{Voters: ids}}}
		stores[id] = NewMemoryStorage(boot, nil)
		n, err := NewNode(Config{ID: id, ElectionTicks: 10, HeartbeatTicks: 1, Rand: rand.New(rand.NewPCG(uint64(i), 1)),
			Storage: stores[id]}, State{Snapshot: boot})
		if err != nil {
			b.Fatal(err)
		}
		nodes[id] = n
	}
	leader := nodes["n1"]
	var queue, inflight []Message
	applied := 0 // non-empty entries applied on the leader
	pump := func() {
		for {
			for _, id := range ids {
				n := nodes[id]
				for n.HasReady() {
					rd := n.Ready()
					queue = append(queue, rd.Messages...)
					queue = append(queue, rd.PersistedMessages...) // in memory, persisting is instant
					if n == leader {
						for _, e := range rd.CommittedEntries {
							if len(e.Data) > 0 {
								applied++
							}
						}
					}
					n.Advance(rd)
				}
			}
			if len(queue) == 0 {
				return
			}
			queue, inflight = inflight[:0], queue
			for _, m := range inflight {
				if err := nodes[m.To].Step(m); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	for i := 0; leader.Status().Role != Leader; i++ {
		if i > 100 {
			b.Fatal("n1 was not elected")
		}
		leader.Tick()
		pump()
	}
	data := make([]byte, size)
	b.ReportAllocs()
	b.ResetTimer()
	proposed, compacted := 0, 0
	for proposed < b.N {
		k := min(batch, b.N-proposed)
		for i := 0; i < k; i++ {
			if _, _, err := leader.Propose(data); err != nil {
				b.Fatal(err)
			}
		}
		proposed += k
		pump()
		if applied != proposed {
			b.Fatalf("applied %d of %d proposals after the network went quiet", applied, proposed)
		}
		if applied-compacted >= compactEvery {
			for _, n := range nodes {
				if a := n.log.applied; a > n.log.snap.Meta.Index {
					meta, err := n.SnapshotMetaAt(a)
					if err != nil {
						b.Fatal(err)
					}
					s := SnapshotOf(meta, nil)
					keepFrom, err := n.Compact(s)
					if err != nil {
						b.Fatal(err)
					}
					stores[n.id].TakeSnapshot(s, nil)
					stores[n.id].CompactLog(keepFrom)
				}
			}
			compacted = applied
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}
