package api

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

// TestGoldenEncodings: the bytes of requests, answers and versions as the builds before
// the catalogue wrote them (captured from that build): a member on either build reads
// the other's. A change here breaks rolling upgrades.
func TestGoldenEncodings(t *testing.T) {
	reqs := []struct {
		r   Request
		hex string
	}{
		{Request{Op: OpGet, Key: "a/b", Stale: true, ClientID: 9, Seq: 3, TimeoutMs: 1500}, "0100010903dc0b03612f620000000000"},
		{Request{Op: OpSet, Key: "k", Value: []byte("v"), ClientID: 1<<63 | 5, Seq: 300, TimeoutMs: 9800, Hops: 1}, "03010085808080808080808001ac02c84c016b017600000000"},
		{Request{Op: OpIfSet, Key: "n", Cond: "-lt", CondValue: []byte("3"), Value: []byte("-5"), Hops: 2}, "050200000000016e022d35032d6c7401330000"},
		{Request{Op: OpIfUnset, Key: "n", Cond: "=", CondValue: []byte("x")}, "0f0000000000016e00013d01780000"},
		{Request{Op: OpChangeWait, Member: "host4", Steps: 3}, "0900000000000000000005686f7374340133"},
		{Request{Op: OpAddMember, Member: "host4"}, "0800000000000000000005686f73743400"},
		{Request{Op: OpSetLease, Key: "t", Value: []byte("v"), TTLMs: 2000}, "100000000000017401760000000432303030"},
		{Request{Op: OpLockAcquire, Key: "job", TTLMs: 3000, Holder: "root@h1 pid 42"}, "130000000000036a6f620000000e726f6f74406831207069642034320433303030"},
		{Request{Op: OpLockWait, Key: "job", Lease: 17, TimeoutMs: 500}, "1400000000f403036a6f6200000000023137"},
		{Request{Op: OpLeaseKeep, Lease: 17}, "1100000000000000000000023137"},
		{Request{Op: OpLeaseKeep, Key: "t"}, "11000000000001740000000000"},
		{Request{Op: OpRevoke, Lease: 17}, "1200000000000000000000023137"},
		// request version 4: flag 4, the token after the args (new in this build)
		{Request{Op: OpRevoke, Lease: 17, Token: 300}, "1200040000000000000000023137ac02"},
		{Request{Op: OpCounterRaise, Key: "p/generation", Expect: 7}, "1a00000000000c702f67656e65726174696f6e000000000137"},
		// request version 5: list --values, and txn with flag 8 and the transaction
		// after the args (new in this build)
		{Request{Op: OpListValues, Key: "packages/p", Stale: true}, "1c00010000000a7061636b616765732f700000000000"},
		{Request{Op: OpTxn, ClientID: 3, Seq: 4, Txn: Txn{
			If:   []TxnCond{{Key: "o", Test: TestEquals, Value: []byte("h1")}, {Key: "m", Test: TestMissing}, {Key: "g", Test: TestCounter, Counter: 7}},
			Then: []TxnAction{{Do: DoSet, Key: "o", Value: []byte("h2")}, {Do: DoUnset, Key: "m"}, {Do: DoRaise, Key: "g"}},
		}}, "1d00080304000000000000000301016f0268310003016d000005016700070301016f02683202016d0003016700"},
		// request version 7: flag 16, the first-send time (Unix ms) after the
		// transaction (new in this build; a client sets it on every request)
		{Request{Op: OpSet, Key: "k", Value: []byte("v"), ClientID: 3, Seq: 1, FirstSentMs: 1765000000000}, "030010030100016b01760000000080e4ca91af33"},
		{Request{Op: OpWatchLog, Key: "d/", From: 120, FromSet: true}, "16000000000002642f0000000003313230"},
		{Request{Op: OpWatchLog, Key: "d/"}, "16000000000002642f0000000000"},
		{Request{Op: OpWatch, Key: "k", CondValue: []byte("old")}, "0d0000000000016b0000036f6c640000"},
		{Request{Op: OpSnapshot}, "170000000000000000000000"},
		{Request{Op: OpSnapshotRead, Member: "h2", Backup: "7.1", Offset: 1048576}, "180000000000000000000268320b372e312031303438353736"},
		{Request{Op: OpSnapshotRead, Member: "h2", Backup: "7.1", Describe: true}, "1800000000000000000002683203372e31"},
		{Request{Op: OpStatus, Stale: true}, "070001000000000000000000"},
		{Request{Op: OpLocks}, "150000000000000000000000"},
		{Request{Op: OpNoop}, "060000000000000000000000"},
		{Request{Op: OpList, Key: "d"}, "02000000000001640000000000"},
		{Request{Op: OpCreate, Key: "c", Value: []byte{0, 1}}, "0e0000000000016302000100000000"},
		{Request{Op: OpUnset, Key: "u"}, "04000000000001750000000000"},
		{Request{Op: OpDelMember, Member: "h3"}, "0a00000000000000000002683300"},
		{Request{Op: OpTransfer, Member: "h1"}, "0b00000000000000000002683100"},
	}
	seen := map[Op]bool{}
	for _, tc := range reqs {
		seen[tc.r.Op] = true
		if got := hex.EncodeToString(tc.r.Encode()); got != tc.hex {
			t.Errorf("%s encodes as %s; the older builds wrote %s", tc.r.Op, got, tc.hex)
		}
		b, _ := hex.DecodeString(tc.hex)
		got, err := DecodeRequest(b)
		if err != nil || !reflect.DeepEqual(normal(got), normal(tc.r)) {
			t.Errorf("%s decodes as %+v, %v; want %+v", tc.r.Op, got, err, tc.r)
		}
	}
	for _, info := range Ops() {
		if !seen[info.Op] && info.Requests == 1 {
			t.Errorf("%s: no golden encoding", info.Op)
		}
	}
	resps := []struct {
		r   Response
		hex string
	}{
		{Response{}, "000000000000"},
		{Response{Code: 9, Msg: "key x not found", Leader: "host2"}, "090f6b65792078206e6f7420666f756e64000005686f73743200"},
		{Response{Names: []string{"a", "b"}, JSON: []byte(`{}`), Value: []byte{0, 1}}, "0000020001020161016200027b7d"},
	}
	for _, tc := range resps {
		if got := hex.EncodeToString(tc.r.Encode()); got != tc.hex {
			t.Errorf("%+v encodes as %s; the older builds wrote %s", tc.r, got, tc.hex)
		}
		b, _ := hex.DecodeString(tc.hex)
		if got, err := DecodeResponse(b); err != nil || !reflect.DeepEqual(normalResp(got), normalResp(tc.r)) {
			t.Errorf("%s decodes as %+v, %v", tc.hex, got, err)
		}
	}
	// a version as the builds before request versions wrote it: read as requests 1; a
	// version now is that, then the request version (which those builds ignore)
	old, _ := hex.DecodeString("020268310476312e32")
	if v, err := DecodeVersion(old); err != nil || v != (Version{ID: "h1", Commands: 2, Build: "v1.2"}) || v.RequestsOr1() != 1 {
		t.Errorf("an older build's version reads as %+v, %v", v, err)
	}
	v := Version{ID: "h1", Commands: 2, Build: "v1.2", Requests: RequestVersion, DataBytes: 1 << 40, DiskBytes: 3 << 30}
	if got := v.Encode(); !bytes.HasPrefix(got, old) {
		t.Errorf("version encodes as %x: not what older builds read, then more", got)
	} else if back, err := DecodeVersion(got); err != nil || back != v {
		t.Errorf("version round trip: %+v, %v", back, err)
	}
	// a build with request versions but before sizes: no sizes
	noSizes := append(old, byte(RequestVersion))
	if back, err := DecodeVersion(noSizes); err != nil || back != v.WithoutSizes() {
		t.Errorf("a version without sizes reads as %+v, %v", back, err)
	}
}

// normal makes empty byte slices nil, as a decoded request has them.
func normal(r Request) Request {
	for _, b := range []*[]byte{&r.Value, &r.CondValue} {
		if len(*b) == 0 {
			*b = nil
		}
	}
	return r
}

func normalResp(r Response) Response {
	for _, b := range []*[]byte{&r.Value, &r.JSON} {
		if len(*b) == 0 {
			*b = nil
		}
	}
	return r
}

// TestUnknownOpOrFieldAsksForAnUpgrade: what a later build may send, this one refuses as
// "upgrade me" (ErrUnknownOp, ErrUnknownField), not as malformed.
func TestUnknownOpOrFieldAsksForAnUpgrade(t *testing.T) {
	get := Request{Op: OpGet, Key: "k"}.Encode()
	op := bytes.Clone(get)
	op[0] = 200
	if _, err := DecodeRequest(op); !errors.Is(err, ErrUnknownOp) {
		t.Errorf("op 200: %v", err)
	}
	flag := bytes.Clone(get)
	flag[2] |= 64 // 32 is the atomic batch's (request version 9)
	if _, err := DecodeRequest(flag); !errors.Is(err, ErrUnknownField) {
		t.Errorf("unknown flag: %v", err)
	}
	if _, err := DecodeRequest(append(bytes.Clone(get), 1, 'x')); !errors.Is(err, ErrUnknownField) {
		t.Errorf("trailing field: %v", err)
	}
	fenceOnGet := Request{Op: OpSet, Key: "k", FenceName: "l", FenceGen: 1}.Encode()
	fenceOnGet[0] = byte(OpGet)
	if _, err := DecodeRequest(fenceOnGet); !errors.Is(err, ErrUnknownField) {
		t.Errorf("a fence on get: %v", err)
	}
	tokenOnGet := Request{Op: OpRevoke, Lease: 3, Token: 5}.Encode()
	tokenOnGet[0] = byte(OpGet)
	if _, err := DecodeRequest(tokenOnGet); !errors.Is(err, ErrUnknownField) {
		t.Errorf("a token on get: %v", err)
	}
	txnOnGet := Request{Op: OpTxn, Txn: Txn{Then: []TxnAction{{Do: DoUnset, Key: "k"}}}}.Encode()
	txnOnGet[0] = byte(OpGet)
	if _, err := DecodeRequest(txnOnGet); !errors.Is(err, ErrUnknownField) {
		t.Errorf("a txn on get: %v", err)
	}
	hostOnGet := Request{Op: OpAddMember, Member: "h1"}.Encode()
	hostOnGet[0] = byte(OpGet)
	if _, err := DecodeRequest(hostOnGet); !errors.Is(err, ErrUnknownField) {
		t.Errorf("a host on get: %v", err)
	}
	for _, b := range [][]byte{get[:len(get)-1], {}, {byte(OpGet)}} {
		if _, err := DecodeRequest(b); err == nil || errors.Is(err, ErrUnknownField) || errors.Is(err, ErrUnknownOp) {
			t.Errorf("%x: %v; want malformed", b, err)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(Request{Op: OpSet, Key: "k", Value: []byte("v"), ClientID: 1, Seq: 1}.Encode())
	f.Add(Request{Op: OpWatch, Key: "k", CondValue: []byte("v"), TimeoutMs: 100}.Encode())
	f.Add(Request{Op: OpSnapshotRead, Member: "h", Backup: "1.2", Offset: 9}.Encode())
	f.Add(Request{Op: OpTxn, Txn: Txn{If: []TxnCond{{Key: "a", Test: TestEquals, Value: []byte("1")}, {Key: "g", Test: TestCounter, Counter: 2}},
		Then: []TxnAction{{Do: DoSet, Key: "a", Value: []byte("2")}, {Do: DoRaise, Key: "g"}}}}.Encode())
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

// TestBadArgumentsDoNotDecode: typed arguments that arrive as text that is not theirs
// are malformed requests (10), not an upgrade's (14).
func TestBadArgumentsDoNotDecode(t *testing.T) {
	enc := func(op Op, host, args string) []byte {
		b := []byte{byte(op), 0, 0, 0, 0, 0, 0, 0, 0, 0}
		b = append(b, byte(len(host)))
		b = append(b, host...)
		b = append(b, byte(len(args)))
		return append(b, args...)
	}
	for _, tc := range []struct {
		op         Op
		host, args string
	}{
		{OpSnapshotRead, "a", "1.1 2 3"}, {OpSnapshotRead, "a", "1.1 -3"}, {OpSnapshotRead, "a", "1.1 0 0"},
		{OpSetLease, "", "x"}, {OpSetLease, "", ""}, {OpLockWait, "", "-1"}, {OpWatchLog, "", "1e3"}, {OpChangeWait, "h", "two"},
	} {
		_, err := DecodeRequest(enc(tc.op, tc.host, tc.args))
		if err == nil || errors.Is(err, ErrUnknownField) || errors.Is(err, ErrUnknownOp) {
			t.Errorf("%s host %q args %q: %v; want malformed", tc.op, tc.host, tc.args, err)
		}
	}
	if r, err := DecodeRequest(enc(OpSnapshotRead, "a", "1.1 5")); err != nil || r.Backup != "1.1" || r.Offset != 5 || r.Member != "a" {
		t.Errorf("the encoder above is wrong: %+v %v", r, err)
	}
}
