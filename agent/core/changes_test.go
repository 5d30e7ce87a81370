package core

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"lite-raft/api"
)

func changesOf(t *testing.T, r api.Response) []string {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("watch: exit %d %s", r.Code, r.Msg)
	}
	chs, err := api.DecodeChanges(r.Value)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ch := range chs {
		if ch.Deleted {
			out = append(out, "del "+ch.Key)
		} else {
			out = append(out, ch.Key+"="+string(ch.Value))
		}
	}
	return out
}

// A watch reports what the state machine changed, in order: not a conditional write
// that did not hold, not an unset of a missing key, and the keys a lease took with it;
// a folder watch sees only what is below it; a watch with nothing to report waits for
// the next change; one from before what is kept is refused with 17.
func TestWatchChanges(t *testing.T) {
	s := newSoloCore(t, 1000)
	start := s.c.Applied()
	for _, r := range []api.Request{
		{Op: api.OpSet, Key: "d/a", Value: []byte("1")},
		{Op: api.OpIfSet, Key: "d/a", Cond: "=", CondValue: []byte("9"), Value: []byte("2")}, // false: nothing
		{Op: api.OpSet, Key: "other", Value: []byte("x")},
		{Op: api.OpUnset, Key: "d/none"}, // missing: nothing
		{Op: api.OpIfSet, Key: "d/a", Cond: "=", CondValue: []byte("1"), Value: []byte("3")},
		{Op: api.OpCreate, Key: "d/b", Value: []byte("4")},
		{Op: api.OpIfUnset, Key: "d/b", Cond: "=", CondValue: []byte("4")},
		{Op: api.OpSetLease, Key: "d/t", Value: []byte("5"), TTLMs: 1000},
	} {
		if resp := s.ask(r); resp.Code != 0 && resp.Code != api.CodeCondFalse {
			t.Fatalf("%s %s: %+v", r.Op, r.Key, resp)
		}
	}
	s.tick(1500) // d/t's lease runs out
	from := start
	got := changesOf(t, s.ask(api.Request{Op: api.OpWatchLog, Key: "d/", From: from, FromSet: true}))
	want := "d/a=1 d/a=3 d/b=4 del d/b d/t=5 del d/t"
	if strings.Join(got, " ") != want {
		t.Fatalf("watch d/ from %d: %q, want %q", from, got, want)
	}
	if got := changesOf(t, s.ask(api.Request{Op: api.OpWatchLog, Key: "other", From: from, FromSet: true})); strings.Join(got, " ") != "other=x" {
		t.Fatalf("watch other: %q", got)
	}
	// nothing after now: it waits, and the next change answers it
	s.next++
	to := s.next
	s.c.Request(s.now, to, api.Request{Op: api.OpWatchLog, Key: "d/a", TimeoutMs: 5000})
	s.tick(200)
	if r, ok := s.replies[to]; ok {
		t.Fatalf("watch with nothing new answered at once: %+v", r)
	}
	s.ask(api.Request{Op: api.OpSet, Key: "d/a", Value: []byte("6")})
	s.pump()
	if r, ok := s.replies[to]; !ok || strings.Join(changesOf(t, r), " ") != "d/a=6" {
		t.Fatalf("parked watch after a change: %+v %v", r, ok)
	}
	// nothing until its time runs out: no changes, and where to ask from next
	s.next++
	to = s.next
	s.c.Request(s.now, to, api.Request{Op: api.OpWatchLog, Key: "d/a", TimeoutMs: 500})
	s.tick(600)
	if r, ok := s.replies[to]; !ok || len(changesOf(t, r)) != 0 || r.Msg != strconv.FormatUint(s.c.Applied(), 10) {
		t.Fatalf("watch with nothing new when its time ran out: %+v %v, want no changes from %d", r, ok, s.c.Applied())
	}
	// nothing kept from before: 17
	for i := 0; i < maxChanges+10; i++ {
		s.c.changes.add(api.Change{Index: s.c.Applied() + 1, Key: "filler"})
	}
	if r := s.ask(api.Request{Op: api.OpWatchLog, Key: "d/", From: from, FromSet: true}); r.Code != api.CodeCompacted {
		t.Fatalf("watch from %d after %d more changes: %+v, want 17", from, maxChanges+10, r)
	}
}

// The ring keeps at most maxChanges changes and maxChangeBytes of values (one change of
// any size always), and says from where it holds them all.
func TestChangeRingBounds(t *testing.T) {
	var r changeRing
	for i := uint64(1); i <= maxChanges+5; i++ {
		r.add(api.Change{Index: i, Key: fmt.Sprint(i)})
	}
	if len(r.ch) != maxChanges || r.since != 5 || r.ch[0].Index != 6 {
		t.Fatalf("%d changes from %d (since %d), want %d from 6 (since 5)", len(r.ch), r.ch[0].Index, r.since, maxChanges)
	}
	big := make([]byte, maxChangeBytes/3+1)
	for i := uint64(1); i <= 4; i++ {
		r.add(api.Change{Index: maxChanges + 5 + i, Key: "b", Value: big})
	}
	if r.bytes > maxChangeBytes || len(r.ch) < 2 {
		t.Fatalf("%d bytes in %d changes, bound %d", r.bytes, len(r.ch), maxChangeBytes)
	}
}

// Parked watches are found by the changed key and its folders: a change costs the watches
// it concerns and nothing for the others, however many wait and however long they have
// waited (no rescan from where each asked). And each watch still sees every change it
// asked for once, in order, whatever woke it.
func TestParkedWatchesCostNothingUntilConcerned(t *testing.T) {
	s := newSoloCore(t, 1_000_000)
	park := func(key string, from uint64) ReplyTo {
		s.next++
		s.c.Request(s.now, s.next, api.Request{Op: api.OpWatchLog, Key: key, From: from, FromSet: true, TimeoutMs: 3_600_000})
		return s.next
	}
	start := s.c.Applied()
	// watches that nothing below touches: 200 keys and 100 folders
	var idle []ReplyTo
	for i := 0; i < 200; i++ {
		idle = append(idle, park(fmt.Sprintf("idle/k%d", i), start))
	}
	for i := 0; i < 100; i++ {
		idle = append(idle, park(fmt.Sprintf("idle/d%d/", i), start))
	}
	s.pump()
	scanned := func(writes int) uint64 {
		before := s.c.watchScanned
		for i := 0; i < writes; i++ {
			s.ask(api.Request{Op: api.OpSet, Key: fmt.Sprintf("busy/k%d", i%7), Value: []byte("v")})
		}
		return s.c.watchScanned - before
	}
	if n := scanned(500); n != 0 {
		t.Fatalf("500 changes no parked watch asked for cost %d change looks, want 0", n)
	}
	for _, to := range idle {
		if r, ok := s.replies[to]; ok {
			t.Fatalf("a watch on nothing that changed was answered: %+v", r)
		}
	}
	// watches that are concerned, parked after a long wait of the others: one on a key,
	// one on its folder, one on everything; each change costs each of them the change
	// itself, not the 500 before it
	type watcher struct {
		key  string
		to   ReplyTo
		from uint64
		seen []string
	}
	var ws []*watcher
	for _, k := range []string{"w/a", "w/", "/", "w/a/"} {
		from := s.c.Applied()
		ws = append(ws, &watcher{key: k, to: park(k, from), from: from})
	}
	s.pump()
	want := map[string][]string{}
	for i := 0; i < 50; i++ {
		before := s.c.watchScanned
		key := []string{"w/a", "w/b", "x"}[i%3]
		v := strconv.Itoa(i)
		s.ask(api.Request{Op: api.OpSet, Key: key, Value: []byte(v)})
		concerned := 0
		for _, w := range ws {
			if matches(w.key, key) {
				want[w.key] = append(want[w.key], key+"="+v)
				concerned++
			}
		}
		if n := s.c.watchScanned - before; n > uint64(concerned) {
			t.Fatalf("change %d (%s) cost %d change looks with %d watches concerned and %d idle", i, key, n, concerned, len(idle))
		}
		// answered watches ask again from where their answer left off, as a client does
		for _, w := range ws {
			r, ok := s.replies[w.to]
			if !ok {
				continue
			}
			w.seen = append(w.seen, changesOf(t, r)...)
			n, err := strconv.ParseUint(r.Msg, 10, 64)
			if err != nil {
				t.Fatalf("watch %s: answer through %q", w.key, r.Msg)
			}
			w.from = n
			delete(s.replies, w.to)
			w.to = park(w.key, w.from)
		}
	}
	for _, w := range ws {
		if strings.Join(w.seen, " ") != strings.Join(want[w.key], " ") {
			t.Errorf("watch %s saw %q, want %q", w.key, w.seen, want[w.key])
		}
	}
	if s.c.logWatches.n != len(idle)+len(ws) {
		t.Errorf("%d watches parked, want %d", s.c.logWatches.n, len(idle)+len(ws))
	}
}

// A value watch parked on a key is woken when unset --prefix deletes the folder the key
// is in (one change of the folder, not one of the key): deterministic, on one core, where
// the e2e test cannot tell a parked watch from a late one.
func TestValueWatchWokenByUnsetPrefix(t *testing.T) {
	s := newSoloCore(t, 1_000_000)
	if r := s.ask(api.Request{Op: api.OpSet, Key: "d/e/k", Value: []byte("v")}); r.Code != 0 {
		t.Fatalf("set: %+v", r)
	}
	s.next++
	to := s.next
	s.c.Request(s.now, to, api.Request{Op: api.OpWatch, Key: "d/e/k", CondValue: []byte("v"), TimeoutMs: 3_600_000})
	s.pump()
	if r, ok := s.replies[to]; ok {
		t.Fatalf("a watch of a value that has not changed was answered: %+v", r)
	}
	if r := s.ask(api.Request{Op: api.OpUnsetPrefix, Key: "d"}); r.Code != 0 {
		t.Fatalf("unset --prefix d: %+v", r)
	}
	r, ok := s.replies[to]
	if !ok || r.Code != 0 {
		t.Fatalf("the value watch of d/e/k after unset --prefix d: %+v %v, want answered", r, ok)
	}
}
