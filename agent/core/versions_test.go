package core

import (
	"fmt"
	"strings"
	"testing"

	"lite-raft/api"
	"lite-raft/kvstore"
)

// An entry this build cannot decode (a command of a newer lite-raft) stops the core
// with a message that says to upgrade, and is left unapplied: skipping it, as builds
// before versions did, would make this member's state differ from the others'. An answer
// handed out in the batch that stops it still reaches its client (the driver answers
// before it advances).
func TestUndecodableEntryStops(t *testing.T) {
	if msg := undecodableEntryStops(newSoloCore(t, 1000)); msg != "" {
		t.Fatal(msg)
	}
}

// undecodableEntryStops is TestUndecodableEntryStops on s; it says what went wrong, if
// anything (TestDriverContractIsChecked runs it with a driver that breaks the contract).
func undecodableEntryStops(s *soloCore) string {
	before := s.c.Applied()
	newer := kvstore.Command{Op: kvstore.OpIfUnset + 40, Key: "k"}.Encode()
	if _, _, err := s.c.Node().Propose(newer); err != nil {
		return err.Error()
	}
	s.d.fail = nil        // the error is kept in s.d.err
	s.d.step(s.c.Ready()) // the entry is durable: it commits, to be applied next batch
	// a request answered at once: its answer goes out in the batch that applies the entry
	s.next++
	bad := s.next
	s.c.Request(s.now, bad, api.Request{Op: api.OpSnapshotRead, Member: "a"})
	s.pump()
	err := s.d.err
	if err == nil || !strings.Contains(err.Error(), "upgrade this host") || !strings.Contains(err.Error(), "unknown operation") {
		return fmt.Sprintf("Advance over an entry of an unknown operation: %v, want an error that says to upgrade", err)
	}
	if got := s.c.Applied(); got != before || s.c.Node().Commit() <= before {
		return fmt.Sprintf("applied %d, commit %d: want the undecodable entry committed and not applied (applied stays %d)", got, s.c.Node().Commit(), before)
	}
	if r, ok := s.replies[bad]; !ok || r.Code != api.CodeUsage {
		return fmt.Sprintf("the answer handed out with the batch whose Advance failed: %+v %v; want it delivered (code %d)", r, ok, api.CodeUsage)
	}
	return ""
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
