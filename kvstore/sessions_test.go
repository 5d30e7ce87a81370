package kvstore

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"lite-raft/api"
)

// t0 is a wall clock in Unix milliseconds, as leaders stamp and clients send.
const t0 = 1_765_000_000_000

// stamped is c as a leader at clock at proposes it for a request first sent at sent.
func stamped(c Command, at, sent uint64) Command {
	c.StampMs, c.FirstSentMs = at, sent
	return c
}

// lateRetryCheck writes with client 1, then lets others clients write, one every gapMs
// (each a CLI call: a new client), and retries the first write (first sent when it
// was): for unset, create and counter raise. The retry must get the first answer, or 2,
// and change nothing. It returns what went wrong.
func lateRetryCheck(bugs Bugs, others int, gapMs uint64) []string {
	var bad []string
	cases := []struct {
		name  string
		write Command
		setup func(s *Store)
		// after: what the other clients did to the key after the write (so that a second
		// application shows); check: whether the state shows a second application
		after func(s *Store, index uint64, at uint64)
		twice func(s *Store) bool
	}{
		{"unset", Command{Op: OpUnset, Key: "k"},
			func(s *Store) { s.Apply(1, stamped(Command{Op: OpSet, Key: "k", Value: []byte("old")}, t0, 0)) },
			func(s *Store, i, at uint64) {
				s.Apply(i, stamped(Command{Op: OpSet, ClientID: 1 << 40, Seq: 1, Key: "k", Value: []byte("new")}, at, at))
			},
			func(s *Store) bool { _, ok := s.Get("k"); return !ok }},
		{"create", Command{Op: OpCreate, Key: "k", Value: []byte("v")}, func(*Store) {}, nil,
			func(s *Store) bool { return false }}, // the answer shows it: 13
		{"counter raise", Command{Op: OpCounterRaise, Key: "g"}, func(*Store) {}, nil,
			func(s *Store) bool { return s.Counter("g") != 2 }},
	}
	for _, tc := range cases {
		s := New()
		s.Plant(bugs)
		tc.setup(s)
		w := stamped(tc.write, t0, t0)
		w.ClientID, w.Seq = 7, 1
		first := s.Apply(2, w)
		index, at := uint64(3), uint64(t0)
		for i := 0; i < others; i++ {
			at += gapMs
			s.Apply(index, stamped(Command{Op: OpSet, ClientID: 1000 + uint64(i), Seq: 1, Key: fmt.Sprintf("o/%d", i%100), Value: []byte("x")}, at, at))
			index++
		}
		if tc.after != nil {
			tc.after(s, index, at)
			index++
		}
		retry := w
		retry.StampMs = at
		r := s.Apply(index, retry)
		switch {
		case r.Code == api.CodeTimeout:
		case r.Code == first.Code && bytes.Equal(r.Value, first.Value):
		default:
			bad = append(bad, fmt.Sprintf("%s: retry after %d clients over %d s answered %d %q %q; the first answer was %d %q",
				tc.name, others, uint64(others)*gapMs/1000, r.Code, r.Msg, r.Value, first.Code, first.Value))
		}
		if tc.twice(s) {
			bad = append(bad, fmt.Sprintf("%s: retry after %d clients over %d s applied a second time", tc.name, others, uint64(others)*gapMs/1000))
		}
	}
	return bad
}

// TestLateRetryAfterManyClients: a retry after 20,000 other clients is answered with its
// first answer (still in the table: 20,000 clients in 20 s) or 2 (forgotten: 20,000 in
// 20 minutes, past the horizon), never applied twice; with sessions evicted by count
// (planted) it is.
func TestLateRetryAfterManyClients(t *testing.T) {
	for _, gap := range []uint64{1, 60} {
		for _, b := range lateRetryCheck(Bugs{}, 20000, gap) {
			t.Error(b)
		}
	}
	// planted, the retry within the horizon is applied again (past it, the first-send
	// time still makes it a 2)
	if bad := lateRetryCheck(Bugs{SessionsEvictedByCount: true}, 20000, 1); len(bad) < 3 {
		t.Errorf("planted sessions evicted by count: caught only %v", bad)
	} else {
		t.Logf("planted sessions evicted by count: %v", bad)
	}
	// the answers: the first one while held, 2 once forgotten
	s := New()
	w := stamped(Command{Op: OpCreate, ClientID: 7, Seq: 1, Key: "k", Value: []byte("v")}, t0, t0)
	s.Apply(1, w)
	s.Apply(2, stamped(Command{Op: OpNoop}, t0+api.SessionKeepMs, 0))
	if r := s.Apply(3, w); r.Code != 0 {
		t.Fatalf("a retry at the end of the keep: %+v, want the first answer", r)
	}
	s.Apply(4, stamped(Command{Op: OpNoop}, t0+api.SessionKeepMs+1, 0))
	if s.Sessions() != 0 {
		t.Fatalf("%d sessions past the keep", s.Sessions())
	}
	if r := s.Apply(5, w); r.Code != api.CodeTimeout {
		t.Fatalf("a retry past the keep: %+v, want 2", r)
	}
	if _, ok := s.Get("k"); !ok || s.Sessions() != 0 {
		t.Fatal("a late retry changed something")
	}
}

// TestSessionsExpireByStateTime: the state's time is the largest stamp, never an older
// one; a session goes once that time is past its keep, whatever the count, the same on
// every replica; a new client (first sent within the horizon) is taken.
func TestSessionsExpireByStateTime(t *testing.T) {
	a, b := New(), New()
	rng := rand.New(rand.NewPCG(3, 4))
	at, largest := uint64(t0), uint64(0)
	for i := uint64(1); i <= 5000; i++ {
		at += uint64(rng.IntN(400))
		// a stamp from a leader whose clock is behind: the state's time does not go back
		stamp := at - uint64(rng.IntN(2))*uint64(rng.IntN(5000))
		largest = max(largest, stamp)
		c := stamped(Command{Op: OpSet, ClientID: uint64(rng.IntN(3000)) + 1, Seq: i, Key: "k", Value: []byte("v")}, stamp, stamp)
		ra, rb := a.Apply(i, c), b.Apply(i, c)
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("replicas disagree at %d", i)
		}
		if a.Time() != largest {
			t.Fatalf("at %d: time %d, want the largest stamp %d", i, a.Time(), largest)
		}
		// every session held is within the keep, and every write within it is held
		min, ok := a.ageTree().Min()
		if ok && min.mark+api.SessionKeepMs < a.Time() {
			t.Fatalf("at %d: a session of %d held at time %d", i, min.mark, a.Time())
		}
	}
	if !bytes.Equal(a.Snapshot(), b.Snapshot()) || a.Sessions() == 0 || a.Sessions() == 3000 {
		t.Fatalf("replicas' tables differ, or none expired, or all did (%d sessions)", a.Sessions())
	}
	// a new client, its request first sent a minute ago: applied
	if r := a.Apply(9000, stamped(Command{Op: OpSet, ClientID: 99999, Seq: 1, Key: "n", Value: []byte("1")}, at, largest-60_000)); r.Code != 0 {
		t.Fatalf("a new client: %+v", r)
	}
	// one without a first-send time (an older client): as before, a new client
	if r := a.Apply(9001, stamped(Command{Op: OpSet, ClientID: 99998, Seq: 1, Key: "n", Value: []byte("2")}, at, 0)); r.Code != 0 {
		t.Fatalf("a client that sent no time: %+v", r)
	}
}

// TestUnstampedKeepsTheCountRule: until the first stamp, sessions are forgotten by the
// rule of the builds before (10,000, oldest first), which a mixed cluster's members all
// apply alike; the first stamp gives the sessions held a whole keep from then.
func TestUnstampedKeepsTheCountRule(t *testing.T) {
	s := New()
	for i := uint64(1); i <= countSessions+1; i++ {
		s.Apply(i, Command{Op: OpSet, ClientID: 1_000_000 - i, Seq: 1, Key: "k", Value: []byte("v")})
	}
	if s.Sessions() != countSessions*9/10 {
		t.Fatalf("%d sessions after %d clients, want %d", s.Sessions(), countSessions+1, countSessions*9/10)
	}
	if _, ok := s.sessions.Get(1_000_000 - (countSessions + 1)); !ok {
		t.Fatal("the newest client was forgotten")
	}
	s.Apply(20000, stamped(Command{Op: OpNoop}, t0, 0))
	s.Apply(20001, stamped(Command{Op: OpNoop}, t0+api.SessionKeepMs, 0))
	if s.Sessions() != countSessions*9/10 {
		t.Fatalf("the first stamp dropped sessions: %d", s.Sessions())
	}
	s.Apply(20002, stamped(Command{Op: OpNoop}, t0+api.SessionKeepMs+1, 0))
	if s.Sessions() != 0 {
		t.Fatalf("%d sessions a keep after the first stamp", s.Sessions())
	}
}

// TestFullTableRefusesNewClients: the memory backstop never forgets a young session:
// a new client is refused (1, nothing written); a known one goes on; once sessions
// expire, new clients are taken again.
func TestFullTableRefusesNewClients(t *testing.T) {
	defer func(n int) { maxSessions = n }(maxSessions)
	maxSessions = 50
	s := New()
	for i := uint64(1); i <= 50; i++ {
		s.Apply(i, stamped(Command{Op: OpSet, ClientID: i, Seq: 1, Key: "k", Value: []byte("v")}, t0+i, t0+i))
	}
	if r := s.Apply(51, stamped(Command{Op: OpSet, ClientID: 51, Seq: 1, Key: "new", Value: []byte("v")}, t0+51, t0+51)); r.Code != api.CodeFailed {
		t.Fatalf("a new client with the table full: %+v, want 1", r)
	}
	if _, ok := s.Get("new"); ok || s.Sessions() != 50 {
		t.Fatal("a refused client wrote, or a session was forgotten")
	}
	if r := s.Apply(52, stamped(Command{Op: OpSet, ClientID: 3, Seq: 2, Key: "k", Value: []byte("w")}, t0+52, t0+52)); r.Code != 0 {
		t.Fatalf("a known client with the table full: %+v", r)
	}
	if r := s.Apply(53, stamped(Command{Op: OpSet, ClientID: 51, Seq: 1, Key: "new", Value: []byte("v")}, t0+api.SessionKeepMs+2, t0+api.SessionKeepMs)); r.Code != 0 {
		t.Fatalf("a new client once sessions expired: %+v", r)
	}
}

// TestStampedCommandEncoding: the stamp travels with any command, flagged in the op's
// byte; a build that does not know the flag reads an op it does not know.
func TestStampedCommandEncoding(t *testing.T) {
	for _, c := range []Command{
		{Op: OpSet, ClientID: 3, Seq: 9, Key: "a/b", Value: []byte("v"), StampMs: t0, FirstSentMs: t0 - 5},
		{Op: OpFenced, Fenced: OpUnset, FenceName: "l", FenceGen: 2, Key: "k", ClientID: 1, Seq: 1, StampMs: t0},
		{Op: OpCounterRaise, Key: "g", Expect: 3, StampMs: 1},
	} {
		got, err := Decode(c.Encode())
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("%s: comes back as %+v, %v", c, got, err)
		}
		if c.Encode()[0]&stampedFlag == 0 {
			t.Errorf("%s: no flag", c)
		}
	}
	b := Command{Op: OpSet, Key: "k"}.Encode()
	b[0] |= stampedFlag
	if _, err := Decode(append([]byte{b[0], 0, 0}, b[1:]...)); err == nil {
		t.Error("a stamped command with a stamp of 0 decoded")
	}
}

// TestSessionSnapshotRoundTrip: a stamped state's snapshot (v4) keeps the time and each
// session's sequence, age, code and value; what a retry is answered and when a session
// expires are the same after a restore.
func TestSessionSnapshotRoundTrip(t *testing.T) {
	s := New()
	at := uint64(t0)
	for i := uint64(1); i <= 300; i++ {
		at += 1000
		c := stamped(Command{Op: OpSet, ClientID: i * 7919, Seq: i % 5, Key: fmt.Sprintf("k%d", i%10), Value: []byte("v")}, at, at)
		switch i % 4 {
		case 1:
			c.Op, c.Value = OpCreate, []byte("c") // 13 once the key is there
		case 2:
			c.Op, c.Value = OpCounterRaise, nil // a value to keep
		case 3:
			c.Op, c.Value, c.Cond, c.CondValue = OpIfSet, []byte("x"), "=", []byte("nope") // 6 or 7
		}
		s.Apply(i, c)
	}
	snap := s.Snapshot()
	if !bytes.HasPrefix(snap, []byte(snapshotMagicV4)) {
		t.Fatalf("a stamped state is written as %q", snap[:16])
	}
	r, err := Restore(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Snapshot(), snap) || !reflect.DeepEqual(contents(r), contents(s)) || r.Time() != s.Time() {
		t.Fatal("restore lost something")
	}
	s.sessions.Scan(func(id uint64, ss session) bool {
		c := Command{Op: OpNoop, ClientID: id, Seq: ss.seq}
		if a, b := s.Clone().Apply(1000, c), r.Clone().Apply(1000, c); !reflect.DeepEqual(a, b) {
			t.Errorf("client %d's retry: %+v before the snapshot, %+v after", id, a, b)
		}
		return true
	})
	later := stamped(Command{Op: OpNoop}, s.Time()+api.SessionKeepMs-100_000, 0)
	s.Apply(2000, later)
	r.Apply(2000, later)
	if s.Sessions() != r.Sessions() || s.Sessions() == 0 || s.Sessions() == 300 {
		t.Fatalf("expiry after a restore: %d sessions, %d before", r.Sessions(), s.Sessions())
	}
	if s.sessionBytes != r.sessionBytes {
		t.Fatalf("value bytes %d, %d after a restore", s.sessionBytes, r.sessionBytes)
	}
	// an unstamped state keeps the older formats, its sessions' marks as their indexes
	u := New()
	u.Apply(5, Command{Op: OpCounterRaise, ClientID: 9, Seq: 1, Key: "g"})
	if snap := u.Snapshot(); !bytes.HasPrefix(snap, []byte(snapshotMagicV3)) {
		t.Fatalf("an unstamped state is written as %q", snap[:16])
	} else if back, err := Restore(bytes.NewReader(snap)); err != nil || !reflect.DeepEqual(contents(back), contents(u)) {
		t.Fatalf("an unstamped state's snapshot: %v", err)
	}
}

// TestSnapshotOf600000Sessions measures what the load puts in every snapshot:
// 1,000 CLI writes a second for 10 minutes, each a new client (a random ID, sequence 1,
// code 0). The README quotes it.
func TestSnapshotOf600000Sessions(t *testing.T) {
	if testing.Short() {
		t.Skip("600,000 applies")
	}
	s := New()
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 600_000
	for i := uint64(1); i <= n; i++ {
		at := t0 + i // one a millisecond: all within the keep
		s.Apply(i, stamped(Command{Op: OpNoop, ClientID: rng.Uint64() | 1, Seq: 1}, at, at))
	}
	if s.Sessions() != n {
		t.Fatalf("%d sessions", s.Sessions())
	}
	size := len(s.Snapshot())
	t.Logf("%d sessions: a snapshot of %d bytes (%.1f MB, %.1f bytes a session)", n, size, float64(size)/1e6, float64(size)/n)
	if size > 13*n {
		t.Fatalf("%d bytes for %d sessions: more than 13 a session", size, n)
	}
}
