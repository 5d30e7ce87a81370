package main

import (
	"github.com/urfave/cli/v2"

	"bytes"
	"fmt"
	"strings"
	"testing"

	"lite-raft/raftcore"
	"lite-raft/statefile"
)

// runApp runs the command tree in-process and returns its output and exit code.
func runApp(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &out
	app.ExitErrHandler = func(*cli.Context, error) {}
	code := 0
	if err := app.Run(append([]string{"lite-raft"}, args...)); err != nil {
		code = exitCode(err)
		fmt.Fprintln(&out, err)
	}
	return out.String(), code
}

func TestDebugShowsStateAndLastEntries(t *testing.T) {
	dir := t.TempDir()
	if err := statefile.Bootstrap(dir, raftcore.Membership{Voters: []raftcore.NodeID{"h1", "h2"}}); err != nil {
		t.Fatal(err)
	}
	s, _, err := statefile.Open(dir, statefile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ents []raftcore.Entry
	for i := 1; i <= 30; i++ {
		ents = append(ents, raftcore.Entry{Index: uint64(i), Term: 4, Data: []byte(fmt.Sprintf("set k%d v", i))})
	}
	if err := s.Save(&raftcore.HardState{Term: 4, Vote: "h2"}, nil, ents); err != nil {
		t.Fatal(err)
	}
	s.Close()

	out, code := runApp(t, "--dir", dir, "debug")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, want := range []string{"term:       4", "vote:       h2", "log:        1..30", "last 20 entries:", `"set k30 v"`, "voters=h1,h2"} {
		if !strings.Contains(out, want) {
			t.Errorf("debug output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `"set k10 v"`) {
		t.Errorf("debug printed more than the last 20 entries:\n%s", out)
	}

	out, code = runApp(t, "--dir", dir, "debug", "log", "--from", "3", "--to", "5")
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, `"set k3 v"`) || !strings.Contains(out, `"set k5 v"`) {
		t.Fatalf("debug log 3..5: exit %d\n%s", code, out)
	}
	if _, code = runApp(t, "--dir", dir, "debug", "log", "--from", "9", "--to", "2"); code != exitUsage {
		t.Fatalf("from > to: exit %d, want %d", code, exitUsage)
	}
	if _, code = runApp(t, "--dir", dir, "debug", "extra"); code != exitUsage {
		t.Fatalf("extra argument: exit %d, want %d", code, exitUsage)
	}
}
