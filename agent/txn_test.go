package agent

import (
	"reflect"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/raftcore"
)

// TestMemClusterTxnOnceAllUpgraded: with a member on command version 4, a txn is refused
// (14) and nothing is appended; once it says 5, the txn is applied alike on every
// member, its retry (same client and sequence) gets the same answer, and list --values
// from any member reads the folder's keys and counter at one index (issue 25).
func TestMemClusterTxnOnceAllUpgraded(t *testing.T) {
	ids := []raftcore.NodeID{"m1", "m2", "m3"}
	c := startMemMembers(t, systemClock{}, ids, ids, map[raftcore.NodeID]bool{"m3": true})
	if c.leader() == "m3" {
		if r := c.do("m3", api.Request{Op: api.OpTransfer, Member: "m1", TimeoutMs: 5000}); r.Code != 0 {
			t.Fatalf("transfer-leader m1: exit %d %s", r.Code, r.Msg)
		}
	}
	c.sayVersion("m3", 4)
	txn := api.Txn{
		If: []api.TxnCond{{Key: "packages/p/owner", Test: api.TestMissing}, {Key: "packages/p/generation", Test: api.TestCounter}},
		Then: []api.TxnAction{{Do: api.DoSet, Key: "packages/p/owner", Value: []byte("h2")}, {Do: api.DoSet, Key: "packages/p/state", Value: []byte("starting")},
			{Do: api.DoRaise, Key: "packages/p/generation"}},
	}
	req := api.Request{Op: api.OpTxn, Txn: txn, ClientID: 77, Seq: 1, TimeoutMs: 3000}
	var r api.Response
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) { // polling: the hello travels
		if r = c.do("m1", req); r.Code == api.CodeUpgrade {
			break
		}
	}
	if r.Code != api.CodeUpgrade {
		t.Fatalf("txn with m3 on command version 4: exit %d %s, want 14", r.Code, r.Msg)
	}
	if r := c.do("m2", api.Request{Op: api.OpListValues, Key: "packages/p", TimeoutMs: 3000}); r.Code != api.CodeNoDir {
		t.Fatalf("list --values after a refused txn: exit %d %s, want 8", r.Code, r.Msg)
	}
	c.sayVersion("m3", 0)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if r = c.do("m2", req); r.Code != api.CodeUpgrade || time.Now().After(deadline) {
			break
		}
	}
	res, err := api.DecodeTxnResult(r.Value)
	if r.Code != 0 || err != nil || len(res.Raised) != 1 {
		t.Fatalf("txn once m3 says 5: exit %d %s %+v %v", r.Code, r.Msg, res, err)
	}
	again := c.do("m3", req)
	if again.Code != 0 || string(again.Value) != string(r.Value) {
		t.Fatalf("the retry: exit %d %s %q, want the first answer %q", again.Code, again.Msg, again.Value, r.Value)
	}
	want := []api.DirKey{{Key: "packages/p/owner", Value: []byte("h2")}, {Key: "packages/p/state", Value: []byte("starting")}}
	for _, id := range ids {
		r := c.do(id, api.Request{Op: api.OpListValues, Key: "packages/p", TimeoutMs: 3000})
		d, err := api.DecodeDirEntries(r.JSON)
		if r.Code != 0 || err != nil || !reflect.DeepEqual(d.Keys, want) || d.Counter("packages/p/generation") != res.Raised[0] || d.Index < res.Raised[0] {
			t.Fatalf("list --values on %s: exit %d %s %+v %v", id, r.Code, r.Msg, d, err)
		}
	}
	// the condition is false now: nothing done, the answer names it
	r = c.do("m3", api.Request{Op: api.OpTxn, Txn: txn, ClientID: 77, Seq: 2, TimeoutMs: 3000})
	if res, _ := api.DecodeTxnResult(r.Value); r.Code != api.CodeCondFalse || res.Failed != 1 {
		t.Fatalf("txn again: exit %d %s %+v, want 6 naming condition 1", r.Code, r.Msg, res)
	}
}
