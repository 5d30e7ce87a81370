package raftcore

import "testing"

func TestSmokeThreeNodes(t *testing.T) {
	ids := []NodeID{"n1", "n2", "n3"}
	c := newCluster(1, ids, ids)
	l := c.electLeader(200)
	if l == None {
		t.Fatalf("no leader\n%s", c.report())
	}
	for i := 0; i < 10; i++ {
		if !c.propose(l, []byte{byte(i)}) {
			t.Fatal("propose failed")
		}
	}
	c.deliverAll(50)
	for i := 0; i < 3; i++ {
		c.tickAll()
		c.deliverAll(50)
	}
	for _, id := range ids {
		if got := c.nodes[id].appliedIndex; got != 11 {
			t.Errorf("%s applied %d, want 11", id, got)
		}
	}
	if len(c.violations) > 0 {
		t.Fatal(c.report())
	}
}
