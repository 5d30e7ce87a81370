package client

import (
	"reflect"
	"testing"
)

func TestProtocolRoundTrip(t *testing.T) {
	reqs := []Request{
		{Op: OpGet, Key: "a/b", Stale: true, ClientID: 9, Seq: 3, TimeoutMs: 1500},
		{Op: OpIfSet, Key: "n", Cond: "-lt", CondValue: []byte("3"), Value: []byte("-5"), Hops: 2},
		{Op: OpChangeWait, Host: "host4", Args: "3"},
	}
	for _, r := range reqs {
		got, err := DecodeRequest(r.Encode())
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("request round trip: %+v → %+v, %v", r, got, err)
		}
	}
	resps := []Response{{}, {Code: 9, Msg: "key x not found", Leader: "host2"}, {Names: []string{"a", "b"}, JSON: []byte(`{}`), Value: []byte{0, 1}}}
	for _, r := range resps {
		got, err := DecodeResponse(r.Encode())
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("response round trip: %+v → %+v, %v", r, got, err)
		}
	}
	if _, err := DecodeRequest([]byte{0}); err == nil {
		t.Fatal("op 0 accepted")
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(Request{Op: OpSet, Key: "k", Value: []byte("v"), ClientID: 1, Seq: 1}.Encode())
	f.Add(Request{Op: OpWatch, Key: "k", CondValue: []byte("v"), TimeoutMs: 100}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			return
		}
		if again, err := DecodeRequest(r.Encode()); err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("request does not survive re-encoding: %v", err)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add(Response{Code: 6, Msg: "condition is false", Names: []string{"x"}}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResponse(b)
		if err != nil {
			return
		}
		if again, err := DecodeResponse(r.Encode()); err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("response does not survive re-encoding: %v", err)
		}
	})
}
