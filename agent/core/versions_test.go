package core

import (
	"strings"
	"testing"

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
