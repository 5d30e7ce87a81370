package core

import (
	"testing"

	"lite-raft/api"
	"lite-raft/api/apitest"
)

// TestEveryOpIsServed: each op of the catalogue is served, by propose (it names a
// command) or by an entry of serving, and serving holds nothing else.
func TestEveryOpIsServed(t *testing.T) {
	for _, info := range api.Ops() {
		_, served := serving[info.Op]
		if (info.Command != 0) == served {
			t.Errorf("%s: command %d, in serving %v: want exactly one way to serve it", info.Name, info.Command, served)
		}
	}
	for op := range serving {
		if !op.Known() {
			t.Errorf("serving has op %d, which the catalogue does not know", op)
		}
	}
}

// TestOpKindsMatchWhatTheyDo: an op the catalogue does not call a write never appends
// to the log or starts a membership change, as served by a leader; if one did, an unknown outcome of it would exit 1
// or 11 and a script would retry a write that happened. Every op that names a command
// appends one. (The exit code table's kinds come from the same entries: this is what
// keeps them true.) A lease keep is the one read that may lead to an append: the leader
// batches the tick's renewals into one entry of its own (api.LeaseKeepCommand), which
// renews only and so is safe to repeat; the sample's lease does not exist, so nothing is
// batched here, and leaselog_test.go shows the batch.
func TestOpKindsMatchWhatTheyDo(t *testing.T) {
	for _, info := range api.Ops() {
		s := newSoloCore(t, 1000)
		s.set("a/b", []byte("2")) // a key for the ops that need one
		before, runs := s.c.Node().Status().LastIndex, len(s.runs)
		req := apitest.Sample(info)
		s.next++
		s.c.Request(s.now, s.next, req)
		s.pump()
		s.tick(1500) // past the requests' time: held ones answer
		after := s.c.Node().Status().LastIndex
		switch {
		case info.Kind != api.Write && after != before:
			t.Errorf("%s (a %s) appended entries %d..%d", info.Name, info.Kind, before+1, after)
		case info.Kind != api.Write && len(s.runs) != runs:
			t.Errorf("%s (a %s) started a membership change: %+v", info.Name, info.Kind, s.runs[runs:])
		case info.Command != 0 && after == before:
			t.Errorf("%s proposes command %d, yet appended nothing (answer %+v)", info.Name, info.Command, s.replies[s.next])
		}
	}
}
