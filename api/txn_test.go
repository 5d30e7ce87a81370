package api

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// TestTxnValidate: what a transaction may hold, and the message of each refusal.
func TestTxnValidate(t *testing.T) {
	set := func(k, v string) TxnAction { return TxnAction{Do: DoSet, Key: k, Value: []byte(v)} }
	ok := Txn{If: []TxnCond{{Key: "a", Test: TestEquals, Value: []byte("1")}, {Key: "g", Test: TestCounter, Counter: 4}},
		Then: []TxnAction{set("a", "2"), {Do: DoUnset, Key: "b"}, {Do: DoRaise, Key: "a"}}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("a whole txn (a key and a counter may share a name): %v", err)
	}
	many := Txn{Then: []TxnAction{set("a", "1")}}
	for i := 0; i <= MaxTxnConds; i++ {
		many.If = append(many.If, TxnCond{Key: "k", Test: TestPresent})
	}
	big := Txn{Then: []TxnAction{set("a", strings.Repeat("x", MaxValueLen/2)), set("b", strings.Repeat("x", MaxValueLen/2))}}
	for name, tc := range map[string]struct {
		txn  Txn
		want string
	}{
		"no action":        {Txn{If: []TxnCond{{Key: "a", Test: TestPresent}}}, "no action"},
		"bad key":          {Txn{Then: []TxnAction{set("a/../b", "1")}}, `".." segments`},
		"bad cond key":     {Txn{If: []TxnCond{{Key: "", Test: TestPresent}}, Then: []TxnAction{set("a", "1")}}, "condition 1: empty key"},
		"unknown test":     {Txn{If: []TxnCond{{Key: "a", Test: 9}}, Then: []TxnAction{set("a", "1")}}, "unknown test"},
		"value on missing": {Txn{If: []TxnCond{{Key: "a", Test: TestMissing, Value: []byte("x")}}, Then: []TxnAction{set("a", "1")}}, "takes no value"},
		"value on unset":   {Txn{Then: []TxnAction{{Do: DoUnset, Key: "a", Value: []byte("x")}}}, "takes no value"},
		"unknown action":   {Txn{Then: []TxnAction{{Do: 7, Key: "a"}}}, "unknown action"},
		"key twice":        {Txn{Then: []TxnAction{set("a", "1"), {Do: DoUnset, Key: "a"}}}, "in an earlier action"},
		"counter twice":    {Txn{Then: []TxnAction{{Do: DoRaise, Key: "g"}, {Do: DoRaise, Key: "g"}}}, "in an earlier action"},
		"too many":         {many, "the limits are 64 and 64"},
		"too large":        {big, "the limit is 1048576"},
		"counter on a key": {Txn{If: []TxnCond{{Key: "a", Test: TestPresent, Counter: 3}}, Then: []TxnAction{set("a", "1")}}, "no counter value"},
	} {
		err := tc.txn.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
		// the request refuses it the same way, before it travels
		if err := (Request{Op: OpTxn, Txn: tc.txn}).Validate(); err == nil {
			t.Errorf("%s: the request passes", name)
		}
	}
	if err := (Request{Op: OpSet, Key: "a", Txn: ok}).Validate(); err == nil {
		t.Error("set with a transaction passes")
	}
}

// TestTxnResultRoundTrip: the answer's payload, and none for a plain success.
func TestTxnResultRoundTrip(t *testing.T) {
	for _, r := range []TxnResult{{}, {Raised: []uint64{7, 1 << 60}}, {Failed: 3}} {
		b := EncodeTxnResult(r)
		if r.Done() && len(r.Raised) == 0 && b != nil {
			t.Errorf("%+v: a payload %q", r, b)
		}
		got, err := DecodeTxnResult(b)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("%+v comes back as %+v, %v", r, got, err)
		}
	}
	if _, err := DecodeTxnResult([]byte("{")); err == nil {
		t.Error("a broken payload decodes")
	}
}

// TestDirEntriesRoundTrip: values are bytes (any, base64 in the JSON).
func TestDirEntriesRoundTrip(t *testing.T) {
	d := DirEntries{Dir: "p", Index: 9, Keys: []DirKey{{Key: "p/a", Value: []byte{0, 1, '\n'}}, {Key: "p/b"}},
		Dirs: []string{"h"}, Counters: []DirCounter{{Name: "p/generation", Value: 12}}}
	b, err := EncodeDirEntries(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeDirEntries(b)
	if err != nil || !reflect.DeepEqual(got, d) {
		t.Fatalf("%+v comes back as %+v, %v", d, got, err)
	}
	if v, ok := got.Value("p/a"); !ok || !bytes.Equal(v, []byte{0, 1, '\n'}) || got.Counter("p/generation") != 12 || got.Counter("x") != 0 {
		t.Errorf("lookups: %q %v %d", v, ok, got.Counter("p/generation"))
	}
	if n := DirAnswerSize("p/a", []byte{0, 1, '\n'}); n < len(`{"key":"p/a","value":"AAEK"},`) {
		t.Errorf("size estimate %d is short", n)
	}
}
