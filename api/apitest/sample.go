// Package apitest makes requests for tests: one of each op of the catalogue, with every
// field its shape names, so that a test can walk the catalogue without a list of its own.
package apitest

import "lite-raft/api"

// Sample is a request of info's op with every field its shape names set to a valid
// value (member "h2", key "a/b", a 3 s ttl, lease 9, ...).
func Sample(info api.OpInfo) api.Request {
	r := api.Request{Op: info.Op, ClientID: 7, Seq: 2, TimeoutMs: 1000}
	switch info.Key {
	case api.KeyRequired, api.KeyDir, api.KeyOrLease:
		r.Key = "a/b"
	case api.KeyPattern:
		r.Key = "a/"
	}
	if info.Value {
		r.Value = []byte("v")
	}
	if info.Cond {
		r.Cond, r.CondValue = "-lt", []byte("3")
	}
	if info.CondValue {
		r.CondValue = []byte("old")
	}
	switch info.Host {
	case api.HostMember:
		r.Member = "h2"
	case api.HostHolder:
		r.Holder = "root@h1 pid 1"
	}
	switch info.Arg {
	case api.ArgSteps:
		r.Steps = 4
	case api.ArgTTL:
		r.TTLMs = 3000
	case api.ArgLease:
		r.Lease = 9
	case api.ArgFrom:
		r.From, r.FromSet = 0, true
	case api.ArgPiece:
		r.Backup, r.Offset = "3.1", 1<<20
	case api.ArgExpect:
		r.Expect = 5
	case api.ArgAfter:
		r.After = "a/b/c"
	}
	if info.Txn {
		r.Txn = api.Txn{
			If: []api.TxnCond{{Key: "a/b", Test: api.TestEquals, Value: []byte("2")}, {Key: "a/c", Test: api.TestMissing},
				{Key: "a/gen", Test: api.TestCounter, Counter: 3}},
			Then: []api.TxnAction{{Do: api.DoSet, Key: "a/b", Value: []byte("3")}, {Do: api.DoUnset, Key: "a/d"},
				{Do: api.DoRaise, Key: "a/gen"}},
		}
	}
	if info.Batch {
		r.Batch = []api.BatchOp{{Op: api.OpSet, Key: "a/b", Value: []byte("3")}, {Op: api.OpCreate, Key: "a/c", Value: []byte("x")},
			{Op: api.OpIfSet, Key: "a/b", Cond: "-lt", CondValue: []byte("4"), Value: []byte("5"), FenceName: "l", FenceGen: 2},
			{Op: api.OpUnset, Key: "a/d"}}
	}
	return r
}
