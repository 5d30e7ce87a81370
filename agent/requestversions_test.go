package agent

import (
	"strings"
	"testing"

	"lite-raft/api"
	"lite-raft/raftcore"
)

// TestMemClusterRequestVersions: a request of a newer request version (exists) goes only
// to members that said they understand it. With m3 on a build from before request
// versions (it says nothing of itself) leading, exists through m1 is answered 14 naming
// m3, and m3 serves it itself; with m1 leading and m2's link to it cut, m2 passes get on
// through m3 but not exists, which waits for its own link instead; and a fenced write, a
// command m3 could not read, is refused while m3 is a member.
func TestMemClusterRequestVersions(t *testing.T) {
	ids := []raftcore.NodeID{"m1", "m2", "m3"}
	old := raftcore.NodeID("m3")
	c := startMemMembers(t, systemClock{}, ids, ids, map[raftcore.NodeID]bool{old: true})
	if lead := c.leader(); lead != old {
		if r := c.do(lead, api.Request{Op: api.OpTransfer, Member: string(old), TimeoutMs: 5000}); r.Code != 0 {
			t.Fatalf("transfer-leader %s: exit %d %s", old, r.Code, r.Msg)
		}
	}
	if c.leader() != old {
		t.Fatalf("%s does not lead", old)
	}
	exists := api.Request{Op: api.OpExists, Key: "k", TimeoutMs: 3000}
	if r := c.do("m1", exists); r.Code != api.CodeUpgrade || !strings.Contains(r.Msg, "member m3") || !strings.Contains(r.Msg, "upgrade it first") {
		t.Fatalf("exists through m1 while m3 leads: exit %d %q, want 14 naming m3", r.Code, r.Msg)
	}
	if r := c.do(old, exists); r.Code != api.CodeNotFound {
		t.Fatalf("exists on m3, which leads: exit %d %q, want 9", r.Code, r.Msg)
	}

	if r := c.do(old, api.Request{Op: api.OpTransfer, Member: "m1", TimeoutMs: 5000}); r.Code != 0 {
		t.Fatalf("transfer-leader m1: exit %d %s", r.Code, r.Msg)
	}
	if c.leader() != "m1" {
		t.Fatal("m1 does not lead")
	}
	if r := c.do("m2", exists); r.Code != api.CodeNotFound {
		t.Fatalf("exists through m2 while m1 leads: exit %d %q, want 9", r.Code, r.Msg)
	}
	c.net.Cut("m2", "m1", true)
	if r := c.do("m2", api.Request{Op: api.OpGet, Key: "k", TimeoutMs: 3000}); r.Code != api.CodeNotFound {
		t.Fatalf("get through m2, its link to m1 cut (relayed by m3): exit %d %q, want 9", r.Code, r.Msg)
	}
	exists.TimeoutMs = 1500
	if r := c.do("m2", exists); r.Code == api.CodeNotFound || r.Code == api.CodeOK {
		t.Fatalf("exists through m2, its link to m1 cut: exit %d %q: relayed by m3, which cannot read it", r.Code, r.Msg)
	}
	c.net.Cut("m2", "m1", false)
	if r := c.do("m2", exists); r.Code != api.CodeNotFound {
		t.Fatalf("exists through m2, its link back: exit %d %q, want 9", r.Code, r.Msg)
	}
	// a fenced write is a command m3 could not read: refused while m3 is a member, whoever leads
	fenced := api.Request{Op: api.OpSet, Key: "k", Value: []byte("v"), FenceName: "job", FenceGen: 1, TimeoutMs: 3000}
	if r := c.do("m2", fenced); r.Code != api.CodeUpgrade || !strings.Contains(r.Msg, "member m3") {
		t.Fatalf("set --fence with m3 on an old build: exit %d %q, want 14 naming m3", r.Code, r.Msg)
	}
}
