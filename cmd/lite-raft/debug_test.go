package main

import (
	"io"

	"github.com/urfave/cli/v2"

	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/raftcore"
	"lite-raft/statefile"
)

// runApp runs the command tree in-process and returns its output and exit code.
func runApp(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	return runAppTo(&out, &out, args...)
}

// runAppTo runs the app with its standard output into out and its standard error (the
// error's message at the end included) into errOut, and gives out's text and the exit.
func runAppTo(out *bytes.Buffer, errOut io.Writer, args ...string) (string, int) {
	app := newApp()
	app.Writer, app.ErrWriter = out, errOut
	app.ExitErrHandler = func(*cli.Context, error) {}
	code := 0
	if err := app.Run(append([]string{"lite-raft"}, args...)); err != nil {
		code = exitCode(err)
		fmt.Fprintln(errOut, err)
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
	if err := s.Save(&raftcore.HardState{Term: 4, Vote: "h2"}, nil, nil, ents); err != nil {
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

// TestDebugAsksTheRunningAgent: with an agent running, debug's role, term, commit and
// applied are the agent's own answer, not the hint files, which the agent rewrites at
// most ten times a second (so a burst of writes right after one is not in them yet). The
// on-disk hint is shown apart when it differs.
func TestDebugAsksTheRunningAgent(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	for i := range 5 {
		if out, code := runApp(t, "--dir", dir, "client", "set", fmt.Sprintf("k%d", i), "v"); code != 0 {
			t.Fatalf("set: exit %d: %s", code, out)
		}
	}
	out, code := runApp(t, "--dir", dir, "client", "--json", "--stale", "status")
	var st api.Status
	if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &st) != nil {
		t.Fatalf("status: exit %d: %s", code, out)
	}
	check := func(wants ...string) {
		t.Helper()
		out, code := runApp(t, "--dir", dir, "debug", "--last", "0")
		if code != 0 {
			t.Fatalf("debug: exit %d: %s", code, out)
		}
		for _, want := range wants {
			if !strings.Contains(out, want) {
				t.Errorf("debug output lacks %q (agent says commit %d):\n%s", want, st.Commit, out)
			}
		}
	}
	// right after the burst: the hints may still hold an older index
	check(fmt.Sprintf("commit:     %d (agent)", st.Commit), fmt.Sprintf("applied:    %d (agent)", st.Applied),
		"role:       leader (agent)", fmt.Sprintf("term:       %d\n", st.Term))

	// The same, made certain: once the writer has caught up (it writes only on a change,
	// and nothing more is committed), put the hints back to where a burst after the
	// leader's first entry finds them (state/commit and temp/commit_index both at 1).
	commitFile, indexFile := filepath.Join(dir, "state", "commit"), filepath.Join(dir, "temp", "commit_index")
	want := fmt.Sprint(st.Commit)
	for deadline := time.Now().Add(5 * time.Second); ; {
		a, _ := os.ReadFile(commitFile)
		b, _ := os.ReadFile(indexFile)
		if strings.TrimSpace(string(a)) == want && strings.TrimSpace(string(b)) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hints %q and %q never reached commit %d", a, b, st.Commit)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	for _, f := range []string{commitFile, indexFile} {
		if err := os.WriteFile(f, []byte("1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	check(fmt.Sprintf("commit:     %d (agent); state/commit hint 1\n", st.Commit),
		fmt.Sprintf("applied:    %d (agent)", st.Applied), "role:       leader (agent)")
}

// TestDebugWithoutAgentShowsTheLastHint: with no agent running, debug says so, shows
// state/commit as the last hint written, and ignores the temp/ files that an agent
// killed with SIGKILL leaves behind.
func TestDebugWithoutAgentShowsTheLastHint(t *testing.T) {
	dir := t.TempDir()
	if err := statefile.Bootstrap(dir, raftcore.Membership{Voters: []raftcore.NodeID{"h1"}}); err != nil {
		t.Fatal(err)
	}
	s, _, err := statefile.Open(dir, statefile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ents []raftcore.Entry
	for i := 1; i <= 5; i++ {
		ents = append(ents, raftcore.Entry{Index: uint64(i), Term: 3, Data: []byte(fmt.Sprintf("set k%d v", i))})
	}
	if err := s.Save(&raftcore.HardState{Term: 3, Vote: "h1"}, nil, nil, ents); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCommit(4); err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.MkdirAll(filepath.Join(dir, "temp"), 0o700)
	for name, v := range map[string]string{"server_role": "leader", "current_leader": "h1", "commit_index": "5"} {
		os.WriteFile(filepath.Join(dir, "temp", name), []byte(v+"\n"), 0o644)
	}
	out, code := runApp(t, "--dir", dir, "debug", "--last", "0")
	if code != 0 {
		t.Fatalf("debug: exit %d: %s", code, out)
	}
	for _, want := range []string{"role:       not running\n", "leader:     -\n", "term:       3\n",
		"commit:     4 (state/commit: the last hint written", "did not stop cleanly"} {
		if !strings.Contains(out, want) {
			t.Errorf("debug output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "applied:") {
		t.Errorf("debug shows an applied index with no agent to ask:\n%s", out)
	}
}
