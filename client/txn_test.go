package client

import (
	"context"
	"reflect"
	"testing"

	"lite-raft/api"
	"lite-raft/sshrpc"
)

// TestTxnAndReadDirAnswers: what Txn and ReadDir make of each kind of answer, and bad
// input refused before anything is sent.
func TestTxnAndReadDirAnswers(t *testing.T) {
	txn := api.Txn{Then: []api.TxnAction{{Do: api.DoRaise, Key: "g"}}}
	for _, tc := range []struct {
		resp    api.Response
		want    api.TxnResult
		code    int
		isFalse bool
	}{
		{api.Response{Value: []byte(`{"raised":[42]}`)}, api.TxnResult{Raised: []uint64{42}}, 0, false},
		{api.Response{Code: api.CodeCondFalse, Msg: "condition 2 of 2 is false", Value: []byte(`{"failed":2}`)}, api.TxnResult{Failed: 2}, 6, true},
		{api.Response{Code: api.CodeUpgrade, Msg: "upgrade m3"}, api.TxnResult{}, 14, false},
	} {
		// twice: a 14 is asked again once without the first-send time (firstsent_test.go)
		cl := New(&scripted{results: []func(context.Context) (sshrpc.Frame, error){answers(tc.resp), answers(tc.resp)}})
		got, err := cl.Txn(context.Background(), txn)
		if !reflect.DeepEqual(got, tc.want) || ExitCodeOf(err) != tc.code || IsCondFalse(err) != tc.isFalse {
			t.Errorf("answer %+v: %+v, %v (exit %d)", tc.resp, got, err, ExitCodeOf(err))
		}
	}
	never := &scripted{}
	cl := New(never)
	if _, err := cl.Txn(context.Background(), api.Txn{Then: []api.TxnAction{{Do: api.DoSet, Key: "../x"}}}); ExitCodeOf(err) != api.CodeUsage {
		t.Errorf("a bad key: %v", err)
	}
	if _, err := cl.ReadDir(context.Background(), "a//b"); ExitCodeOf(err) != api.CodeUsage {
		t.Errorf("a bad folder: %v", err)
	}
	if never.calls != 0 {
		t.Errorf("bad input was sent (%d calls)", never.calls)
	}
	d := api.DirEntries{Dir: "p", Keys: []api.DirKey{{Key: "p/a", Value: []byte("1")}}}
	js, _ := api.EncodeDirEntries(d)
	cl = New(&scripted{results: []func(context.Context) (sshrpc.Frame, error){answers(api.Response{JSON: js}), answers(api.Response{Code: api.CodeNoDir, Msg: "p: no such folder"})}})
	if got, err := cl.ReadDir(context.Background(), "p"); err != nil || !reflect.DeepEqual(got, d) {
		t.Errorf("ReadDir: %+v %v", got, err)
	}
	if _, err := cl.ReadDir(context.Background(), "p"); ExitCodeOf(err) != api.CodeNoDir {
		t.Errorf("ReadDir of no folder: %v", err)
	}
}
