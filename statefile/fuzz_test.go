package statefile

// Fuzz targets for the three decoders that read what is on disk. Run one with e.g.
//
//	go test -run XXX -fuzz FuzzDecodeRecord -fuzztime 20s ./statefile/
//
// The seed corpora are the f.Add calls below plus testdata/fuzz/<FuzzName>/.

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"lite-raft/raftcore"
)

func fuzzRecordSeeds() [][]byte {
	valid := appendRecord(nil, raftcore.Entry{Index: 7, Term: 3, Data: []byte("set k v")})
	empty := appendRecord(nil, raftcore.Entry{Index: 1, Term: 1})
	member := appendRecord(nil, raftcore.Entry{Index: 1 << 40, Term: 1<<64 - 1, Type: raftcore.EntryMembership,
		Data: raftcore.EncodeMembership(raftcore.Membership{Voters: []raftcore.NodeID{"a", "b"}})})
	flipped := bytes.Clone(valid)
	flipped[36] ^= 4
	two := appendRecord(bytes.Clone(valid), raftcore.Entry{Index: 8, Term: 3, Data: []byte("second")})
	// headers whose checksum holds but whose fields are wrong
	withHeader := func(mod func(h []byte)) []byte {
		b := bytes.Clone(valid)
		mod(b)
		putHeaderCRC(b)
		return b
	}
	return [][]byte{
		nil, {0}, make([]byte, 31), make([]byte, 32), make([]byte, 100),
		valid, empty, member, two, flipped,
		valid[:31], valid[:32], valid[:len(valid)-1], append(bytes.Clone(valid[:35]), make([]byte, 10)...),
		withHeader(func(h []byte) { h[4], h[5], h[6], h[7] = 0xff, 0xff, 0xff, 0xff }), // length 4 GiB
		withHeader(func(h []byte) { h[4], h[5], h[6], h[7] = 0, 0, 0, 4 }),             // 64 MiB: allowed, cut short
		withHeader(func(h []byte) { h[24] = 2 }),                                       // unknown type
		withHeader(func(h []byte) { h[26] = 1 }),                                       // reserved byte
		withHeader(func(h []byte) { h[4] = 0 }),                                        // shorter: data checksum fails
		[]byte(segmentMagic),
	}
}

// putHeaderCRC recomputes a record header's checksum after a test changed its fields.
func putHeaderCRC(b []byte) {
	sum := checksum(b[4:recordHeaderSize])
	b[0], b[1], b[2], b[3] = byte(sum), byte(sum>>8), byte(sum>>16), byte(sum>>24)
}

// FuzzDecodeRecord: decodeRecord never panics; a record it accepts re-encodes to the same
// bytes; and every proper prefix of an accepted record reads as cut short, never as damage
// (that is what lets recovery tell a torn append from a damaged log).
func FuzzDecodeRecord(f *testing.F) {
	for _, s := range fuzzRecordSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, n, st, reason := decodeRecord(b)
		switch st {
		case recordOK:
			if n < recordHeaderSize || n > len(b) || reason != "" {
				t.Fatalf("recordOK with n=%d of %d bytes, reason %q", n, len(b), reason)
			}
			if re := appendRecord(nil, e); !bytes.Equal(re, b[:n]) {
				t.Fatalf("re-encoding %s gives\n%x\nwant\n%x", entryString(e), re, b[:n])
			}
			if len(e.Data) != n-recordHeaderSize {
				t.Fatalf("data of %d bytes in a record of %d", len(e.Data), n)
			}
			step := 1
			if n > 2048 {
				step = n / 512
			}
			for p := 0; p < n; p += step {
				if _, _, pst, preason := decodeRecord(b[:p]); pst != recordShort {
					t.Fatalf("the first %d bytes of a %d-byte record decode as %d (%s), want cut short", p, n, pst, preason)
				}
			}
		case recordShort, recordBad:
			if n != 0 || reason == "" {
				t.Fatalf("status %d with n=%d, reason %q", st, n, reason)
			}
			if st == recordShort && len(b) >= recordHeaderSize && checksum(b[4:recordHeaderSize]) != uint32(b[0])|uint32(b[1])<<8|uint32(b[2])<<16|uint32(b[3])<<24 {
				t.Fatalf("a header with a bad checksum read as cut short (%s)", reason)
			}
		default:
			t.Fatalf("unknown status %d", st)
		}
	})
}

// FuzzDecodeHardState: decodeHardState never panics, and what it accepts is a valid hard
// state that survives encoding and decoding again.
func FuzzDecodeHardState(f *testing.F) {
	for _, s := range []string{
		"term 7\nvote host2\n", "term 0\nvote -\n", "vote a\nterm 1\n", "term 7\nvote host2",
		"term 18446744073709551615\nvote x\n", "term 18446744073709551616\nvote x\n",
		"", "\n", "term 1\n", "vote a\n", "term 1\nvote a\nterm 2\n", "term 1\nvote a,b\n",
		"term 1\nvote \n", "term 1 \nvote a\n", "term -1\nvote a\n", "term 1\r\nvote a\r\n",
		"term 1\nvote a\nfoo bar\n", "term\nvote\n", "\x00\xff\xfe", "term 1\nvote a\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := decodeHardState(b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if hs.Vote != raftcore.None {
			if err := raftcore.ValidateID(hs.Vote); err != nil {
				t.Fatalf("accepted an invalid vote %q: %v", hs.Vote, err)
			}
		}
		again, err := decodeHardState(encodeHardState(hs))
		if err != nil || again != hs {
			t.Fatalf("%+v encodes as %q, which decodes as %+v, %v", hs, encodeHardState(hs), again, err)
		}
	})
}

// FuzzHardStateRoundTrip: every hard state a node can have (no vote, or a vote for a
// valid member name) is read back as written.
func FuzzHardStateRoundTrip(f *testing.F) {
	f.Add(uint64(0), "")
	f.Add(uint64(7), "host2")
	f.Add(uint64(1<<64-1), "a.b-c_d:22")
	f.Add(uint64(3), "+")
	f.Fuzz(func(t *testing.T, term uint64, vote string) {
		hs := raftcore.HardState{Term: term, Vote: raftcore.NodeID(vote)}
		if vote != "" && raftcore.ValidateID(hs.Vote) != nil {
			return
		}
		got, err := decodeHardState(encodeHardState(hs))
		if err != nil || got != hs {
			t.Fatalf("%+v is written as %q and read back as %+v, %v", hs, encodeHardState(hs), got, err)
		}
	})
}

func fuzzSnapshotSeeds() []string {
	meta := raftcore.SnapshotMeta{Index: 1200, Term: 3, Members: raftcore.Membership{
		Voters: []raftcore.NodeID{"a", "b", "c"}, Learners: []raftcore.NodeID{"d"}}}
	valid := string(snapshotHeader(meta, 5, checksum([]byte("hello")))) + "hello"
	joint := string(snapshotHeader(raftcore.SnapshotMeta{Index: 1, Term: 1, Members: raftcore.Membership{
		Voters: []raftcore.NodeID{"a", "b"}, Outgoing: []raftcore.NodeID{"a"}}}, 0, 0))
	return []string{
		valid, joint, valid[:10], valid[:len(valid)-7],
		strings.Replace(valid, "index 1200", "index 1200\nindex 1200", 1),
		strings.Replace(valid, "term 3", "colour blue", 1),
		strings.Replace(valid, "size 5", "size -5", 1),
		strings.Replace(valid, "size 5", "size 99999999999999999999", 1),
		strings.Replace(valid, "crc32c ", "crc32c 0x", 1),
		strings.Replace(valid, "voters=a,b,c", "voters=a,a", 1),
		strings.Replace(valid, "members voters=a,b,c outgoing= learners=d", "members", 1),
		strings.Replace(valid, "lite-raft snapshot v1", "lite-raft snapshot v2", 1),
		strings.Replace(valid, "\n\n", "\n", 1),
		"", "\n", "\n\n", "lite-raft snapshot v1", "lite-raft snapshot v1\n\n",
	}
}

// FuzzParseSnapshotHeader: parseSnapshotHeader never panics; a header it accepts is valid,
// ends with the empty line, and the header the store would write for the same values
// parses back to them.
func FuzzParseSnapshotHeader(f *testing.F) {
	for _, s := range fuzzSnapshotSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		meta, size, sum, hlen, err := parseSnapshotHeader(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		if hlen < len(snapshotMagic)+2 || hlen > len(b) || !bytes.HasSuffix(b[:hlen], []byte("\n\n")) {
			t.Fatalf("accepted a header of %d bytes in %d: %q", hlen, len(b), b[:min(hlen, len(b))])
		}
		if size < 0 {
			t.Fatalf("negative size %d accepted", size)
		}
		if err := meta.Members.Validate(); err != nil {
			t.Fatalf("invalid members accepted: %v", err)
		}
		// the header alone parses the same
		m2, s2, c2, h2, err := parseSnapshotHeader(bufio.NewReader(bytes.NewReader(b[:hlen])))
		if err != nil || h2 != hlen || s2 != size || c2 != sum || !sameMeta(m2, meta) {
			t.Fatalf("the header alone parses differently: %v", err)
		}
		// what the store writes for these values reads back as them
		h := snapshotHeader(meta, size, sum)
		m3, s3, c3, h3, err := parseSnapshotHeader(bufio.NewReader(bytes.NewReader(h)))
		if err != nil || h3 != len(h) || s3 != size || c3 != sum || !sameMeta(m3, meta) {
			t.Fatalf("re-encoded header %q parses as %+v %d %08x %d, %v", h, m3, s3, c3, h3, err)
		}
	})
}

func sameMeta(a, b raftcore.SnapshotMeta) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Members.Equal(b.Members)
}

// TestParseSnapshotHeaderTooLong: a header longer than maxHeader is refused (kept out of
// the fuzz seeds: minimizing inputs that large stalls the fuzzer).
func TestParseSnapshotHeaderTooLong(t *testing.T) {
	for _, s := range []string{
		"lite-raft snapshot v1\n" + strings.Repeat("x", maxHeader) + "\n\n",
		"lite-raft snapshot v1\nmembers voters=" + strings.Repeat("a", maxHeader) + " outgoing= learners=\n\n",
	} {
		_, _, _, _, err := parseSnapshotHeader(bufio.NewReader(strings.NewReader(s)))
		if err == nil || !strings.Contains(err.Error(), "longer than") {
			t.Fatalf("a %d-byte header: %v", len(s), err)
		}
	}
}

// TestDecodeHardStateLongLine: a line longer than bufio.Scanner's 64 KiB limit stops the
// scan with an error that decodeHardState ignores, so a file with valid term and vote
// lines followed by garbage is accepted.
func TestDecodeHardStateLongLine(t *testing.T) {
	data := "term 5\nvote a\n" + strings.Repeat("x", 70<<10) + "\nterm 6\n"
	if hs, err := decodeHardState([]byte(data)); err == nil {
		t.Fatalf("accepted %d bytes of garbage after the fields as %+v", len(data)-14, hs)
	}
}

// TestHardStateVoteDash: "-" is how "no vote" is written, so no member may be named
// "-" (or anything starting with a dash): a vote for it would be forgotten at restart.
func TestHardStateVoteDash(t *testing.T) {
	for _, id := range []raftcore.NodeID{"-", "-x"} {
		if err := raftcore.ValidateID(id); err == nil {
			t.Fatalf("member name %q accepted: a vote for it reads back as no vote", id)
		}
	}
}

// TestFuzzSeedsDecode makes sure the record seeds cover each status.
func TestFuzzSeedsDecode(t *testing.T) {
	seen := map[recordStatus]int{}
	for _, s := range fuzzRecordSeeds() {
		_, _, st, _ := decodeRecord(s)
		seen[st]++
	}
	if seen[recordOK] == 0 || seen[recordShort] == 0 || seen[recordBad] == 0 {
		t.Fatalf("record seeds by status: %v", seen)
	}
	ok := 0
	for _, s := range fuzzSnapshotSeeds() {
		if _, _, _, _, err := parseSnapshotHeader(bufio.NewReader(strings.NewReader(s))); err == nil {
			ok++
		}
	}
	if ok < 2 || ok == len(fuzzSnapshotSeeds()) {
		t.Fatalf("%d of %d snapshot seeds parse", ok, len(fuzzSnapshotSeeds()))
	}
}
