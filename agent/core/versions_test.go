package core

import (
	"strings"
	"testing"

	"lite-raft/api"
	"lite-raft/kvstore"
)

// An entry this build cannot decode (a command of a newer lite-raft) stops the core
// with a message that says to upgrade, and is left unapplied: skipping it, as builds
// before versions did, would make this member's state differ from the others'.
func TestUndecodableEntryStops(t *testing.T) {
	s := newSoloCore(t, 1000)
	before := s.c.Applied()
	newer := kvstore.Command{Op: kvstore.OpIfUnset + 40, Key: "k"}.Encode()
	if _, _, err := s.c.Node().Propose(newer); err != nil {
		t.Fatal(err)
	}
	var err error
	for i := 0; i < 10 && err == nil && s.c.HasReady(); i++ {
		rd := s.c.Ready()
		if e := s.store.Save(rd.Ready); e != nil {
			t.Fatal(e)
		}
		err = s.c.Advance(s.now, rd)
	}
	if err == nil || !strings.Contains(err.Error(), "upgrade this host") || !strings.Contains(err.Error(), "unknown operation") {
		t.Fatalf("Advance over an entry of an unknown operation: %v, want an error that says to upgrade", err)
	}
	if got := s.c.Applied(); got != before || s.c.Node().Commit() <= before {
		t.Fatalf("applied %d, commit %d: want the undecodable entry committed and not applied (applied stays %d)", got, s.c.Node().Commit(), before)
	}
}

// A host added that never catches up is removed again after catchUpStall; when it never
// said it understands this build's commands (an older build, which stops at the first
// entry it cannot read), the step says so and what to do.
func TestAddMemberThatNeverCatchesUp(t *testing.T) {
	s := newSoloCore(t, 1000)
	s.set("k", []byte("v"))
	s.next++
	s.c.Request(s.now, s.next, api.Request{Op: api.OpAddMember, Member: "b"})
	s.pump()
	if len(s.runs) != 1 || s.runs[0].Host != "b" {
		t.Fatalf("runs %+v, want the join on b", s.runs)
	}
	s.c.RunDone(s.now, s.runs[0].ID, nil, nil) // b booted; nothing it is sent is answered
	s.tick(catchUpStall + 1000)
	ch := s.c.change
	if ch == nil || ch.phase != phaseDone || ch.Code != api.CodeFailed {
		t.Fatalf("change %+v, want failed", ch)
	}
	steps := strings.Join(ch.Steps, "\n")
	for _, want := range []string{"b made no progress for 60 s", "it understands commands up to version 1", "upgrade lite-raft on b"} {
		if !strings.Contains(steps, want) {
			t.Fatalf("steps:\n%s\nwant %q", steps, want)
		}
	}
	if m := s.c.Node().Members(); m.Contains("b") {
		t.Fatalf("members %v after the learner was given up", m)
	}
}
