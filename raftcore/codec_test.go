package raftcore

import (
	"reflect"
	"testing"
)

func codecSamples() []Message {
	return []Message{
		{Type: MsgHeartbeat, From: "host1", To: "host2", Term: 3, Commit: 9, Context: 4},
		{Type: MsgApp, From: "a", To: "b", Term: 7, LogTerm: 6, Index: 100, Commit: 99, Entries: []Entry{
			{Index: 101, Term: 7, Data: []byte("set k v")},
			{Index: 102, Term: 7, Type: EntryMembership, Data: EncodeMembership(Membership{Voters: []NodeID{"a", "b"}})},
		}},
		{Type: MsgAppResp, From: "b", To: "a", Term: 7, Index: 100, Reject: true, RejectHint: 50, LogTerm: 5},
		{Type: MsgSnap, From: "a", To: "c", Term: 7, Snapshot: &SnapshotChunk{
			Meta:   SnapshotMeta{Index: 90, Term: 6, Members: Membership{Voters: []NodeID{"a", "b", "c"}, Learners: []NodeID{"d"}}},
			Offset: 1 << 20, Data: []byte{0, 1, 2}, Done: true, Total: 1<<20 + 3, Checksum: 0xdeadbeef}},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, m := range codecSamples() {
		got, err := DecodeMessage(EncodeMessage(nil, m))
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip of %v:\n got %+v, %v", m, got, err)
		}
	}
	b := EncodeMessage(nil, codecSamples()[1])
	for cut := 0; cut < len(b); cut++ {
		if _, err := DecodeMessage(b[:cut]); err == nil {
			t.Fatalf("message cut at %d of %d accepted", cut, len(b))
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, m := range codecSamples() {
		f.Add(EncodeMessage(nil, m))
	}
	f.Add([]byte{1, 1, 'a', 1, 'b', 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		again, err := DecodeMessage(EncodeMessage(nil, m))
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("message does not survive re-encoding: %v", err)
		}
		// whatever decodes must be safe to hand to a node
		boot := Snapshot{Meta: SnapshotMeta{Members: Membership{Voters: []NodeID{"a", "b", "c"}}}}
		n, _ := NewNode(Config{ID: "b", ElectionTicks: 10, HeartbeatTicks: 1, Rand: zeroRand{},
			Storage: NewMemoryStorage(boot, nil)}, State{Snapshot: boot})
		n.Step(m)
		n.Ready()
	})
}

type zeroRand struct{}

func (zeroRand) IntN(int) int { return 0 }
