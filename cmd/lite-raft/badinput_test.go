package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lite-raft/agent"
	"lite-raft/api"
	"lite-raft/conf"
	"lite-raft/raftcore"
	"lite-raft/sshrpc"
	"lite-raft/statefile"
)

// startAgent runs a one-member agent in-process on dir, named like this host.
func startAgent(t *testing.T, dir string) {
	t.Helper()
	me, _ := conf.ShortHostname()
	os.MkdirAll(filepath.Join(dir, "conf"), 0o755)
	if err := statefile.Bootstrap(dir, raftcore.Membership{Voters: []raftcore.NodeID{raftcore.NodeID(me)}}); err != nil {
		t.Fatal(err)
	}
	runAgentOn(t, dir)
	// wait for it to lead (one member: a few ticks)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if out, code := runApp(t, "--dir", dir, "client", "set", "ready", "yes"); code == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("agent not ready: %s", out)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

func lastIndex(t *testing.T, dir string) uint64 {
	t.Helper()
	out, code := runApp(t, "--dir", dir, "client", "--json", "--stale", "status")
	var st api.Status
	if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &st) != nil {
		t.Fatalf("status: %d %s", code, out)
	}
	return st.LastIndex
}

// TestBadClientInput: every malformed request is refused with its message and exit code,
// and nothing reaches the log.
func TestBadClientInput(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	before := lastIndex(t, dir)
	big := strings.Repeat("x", 1<<20+1)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"set", "a/../b", "v"}, 10, `".." segments are not allowed`},
		{[]string{"set", "../../etc/passwd", "v"}, 10, `".." segments`},
		{[]string{"set", "a//b", "v"}, 10, "empty path segment"},
		{[]string{"set", "/a", "v"}, 10, "empty path segment"},
		{[]string{"set", "a/", "v"}, 10, "empty path segment"},
		{[]string{"set", "tab\there", "v"}, 10, "control characters"},
		{[]string{"set", "new\nline", "v"}, 10, "control characters"},
		{[]string{"get", "bell\a"}, 10, "control characters"},
		{[]string{"set", "k", big}, 10, "1 MiB"},
		{[]string{"set", strings.Repeat("k", 1025), "v"}, 10, "limit is 1024"},
		{[]string{"if", "k", "~", "1", "set", "2"}, 10, "unknown operator"},
		{[]string{"if", "k", "=", "1", "put", "2"}, 10, "want KEY OP X set Y"},
		{[]string{"if", "k", "=", "1"}, 10, "want KEY OP X set Y"},
		{[]string{"if", "k", "=", "1", "unset", "2"}, 10, "or KEY OP X unset"},
		{[]string{"if", "k", "~", "1", "unset"}, 10, "unknown operator"},
		{[]string{"create", "k"}, 10, "want KEY VALUE"},
		{[]string{"create", "a//b", "v"}, 10, "empty path segment"},
		{[]string{"set", "k"}, 10, "want KEY VALUE"},
		{[]string{"unset"}, 10, "want KEY"},
		{[]string{"list", "a", "b"}, 10, "at most one DIR"},
		{[]string{"frobnicate"}, 10, `unknown verb "frobnicate"`},
		{[]string{}, 10, "missing verb"},
		{[]string{"--timeout", "-3", "get", "k"}, 10, "not a positive number"},
		{[]string{"--timeout", "301", "set", "k", "v"}, 10, "at most 300 seconds"},
		{[]string{"--timeout=4300000", "get", "k"}, 10, "at most 300 seconds"},
		{[]string{"add-member"}, 10, "want HOST"},
	} {
		out, code := runApp(t, append([]string{"--dir", dir, "client"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out, tc.msg) {
			t.Errorf("client %q: exit %d, output %q; want exit %d and %q", tc.args, code, out, tc.code, tc.msg)
		}
	}
	// what a newer build may send (an op, a field this one does not know) asks for an
	// upgrade (14); a frame cut short is malformed (10)
	conn, err := sshrpc.DialUnix(filepath.Join(dir, "temp", "agent.sock"), sshrpc.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	get := api.Request{Op: api.OpGet, Key: "k"}.Encode()
	newOp := append([]byte{200}, get[1:]...)
	for _, tc := range []struct {
		what    string
		payload []byte
		code    int
		msg     string
	}{
		{"an unknown op", newOp, api.CodeUpgrade, "upgrade it first"},
		{"a field after the known ones", append(bytes.Clone(get), 1, 'x'), api.CodeUpgrade, "upgrade it first"},
		{"a request cut short", get[:len(get)-2], api.CodeUsage, "cut short"},
	} {
		f, err := conn.Call(context.Background(), api.FrameRequest, tc.payload)
		if err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		r, err := api.DecodeResponse(f.Payload)
		if err != nil || r.Code != tc.code || !strings.Contains(r.Msg, tc.msg) {
			t.Errorf("%s: exit %d %q (%v); want %d and %q", tc.what, r.Code, r.Msg, err, tc.code, tc.msg)
		}
	}
	if after := lastIndex(t, dir); after != before {
		t.Fatalf("refused requests reached the log: last index %d → %d", before, after)
	}
	// binary values are fine: any bytes up to 1 MiB
	bin := string([]byte{0, 1, 2, 0xff, '\n', 0})
	if out, code := runApp(t, "--dir", dir, "client", "set", "bin", bin); code != 0 {
		t.Fatalf("binary value: %d %s", code, out)
	}
	if out, code := runApp(t, "--dir", dir, "client", "get", "bin"); code != 0 || out != bin+"\n" {
		t.Fatalf("binary value read back: %d %q", code, out)
	}
}

// TestBadConfAndState: bad conf/ values and a corrupted state file are refused with the
// file named; first-boot creates nothing when it refuses.
func TestBadConfAndState(t *testing.T) {
	me, _ := conf.ShortHostname()
	for _, tc := range []struct {
		file, value, msg string
	}{
		{"election_timeout", "soon", "not a number of seconds"},
		{"election_timeout", "-2", "outside"},
		{"snapshot_period", "-5", "whole number"},
		{"snapshot_period", "ten", "whole number"},
		{"cluster_nodes", "", "no host names"},
		{"cluster_nodes", me + " h2 h2", "listed twice"},
		{"cluster_nodes", "h2 h3", "is not in conf/cluster_nodes"},
	} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "conf"), 0o755)
		os.WriteFile(filepath.Join(dir, "conf", tc.file), []byte(tc.value+"\n"), 0o644)
		out, code := runApp(t, "--dir", dir, "first-boot")
		if code != 1 || !strings.Contains(out, tc.msg) || (!strings.Contains(out, tc.file) && tc.file != "cluster_nodes") {
			t.Errorf("%s=%q: exit %d %q; want exit 1 naming the file and saying %q", tc.file, tc.value, code, out, tc.msg)
		}
		if _, err := os.Stat(filepath.Join(dir, statefile.StateDir)); err == nil {
			t.Errorf("%s=%q: first-boot created state/ although it refused", tc.file, tc.value)
		}
	}
	// a corrupted state file: refused with the file named, by the agent and by debug
	dir := t.TempDir()
	if err := statefile.Bootstrap(dir, raftcore.Membership{Voters: []raftcore.NodeID{raftcore.NodeID(me)}}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, statefile.StateDir, "current"), []byte("term banana\n"), 0o600)
	err := agent.Run(context.Background(), agent.Options{Dir: dir, ID: raftcore.NodeID(me), Log: log.New(io.Discard, "", 0)})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "state", "current")) {
		t.Fatalf("agent on a corrupted state file: %v", err)
	}
	if out, code := runApp(t, "--dir", dir, "debug"); code != 1 || !strings.Contains(out, "state/current") {
		t.Fatalf("debug on a corrupted state file: %d %s", code, out)
	}
}

// TestCreateAndConditionalUnset: each outcome of create and if ... unset has its own exit
// code, through a real agent.
func TestCreateAndConditionalUnset(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"create", "k", "1"}, 0, ""},
		{[]string{"create", "k", "2"}, 13, "already exists"},
		{[]string{"get", "k"}, 0, "1\n"},
		{[]string{"if", "k", "=", "2", "unset"}, 6, "condition is false"},
		{[]string{"if", "k", "-gt", "0", "unset"}, 0, ""},
		{[]string{"if", "k", "=", "1", "unset"}, 7, "does not exist"},
		{[]string{"get", "k"}, 9, "not found"},
		{[]string{"create", "k", "-5"}, 0, ""},
		{[]string{"get", "k"}, 0, "-5\n"},
	} {
		out, code := runApp(t, append([]string{"--dir", dir, "client"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out, tc.out) {
			t.Errorf("client %q: exit %d, output %q; want exit %d and %q", tc.args, code, out, tc.code, tc.out)
		}
	}
}

// FuzzParseClientArgs: whatever a script passes, the client's argument parsing answers
// with options and arguments or an error, and "--" always ends the options.
func FuzzParseClientArgs(f *testing.F) {
	f.Add("--json get k")
	f.Add("--timeout=0.5 if n -lt 3 set 4")
	f.Add("-- --json")
	f.Add("--timeout")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		o, rest, err := parseClientArgs(args)
		if err != nil {
			return
		}
		if o.timeout <= 0 {
			t.Fatalf("%q: timeout %v", line, o.timeout)
		}
		if len(rest) > len(args) {
			t.Fatalf("%q: more arguments out than in", line)
		}
	})
}

// TestVerbHelp (issue 29): -h or --help right after any verb prints that verb's help and
// exits 0 with nothing sent (unset --help used to delete the key --help); VERB -- ARGS
// takes what follows literally, so a key named --help can still be set, read and unset.
func TestVerbHelp(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	before := lastIndex(t, dir)
	verbs := []string{"get", "exists", "list", "set", "create", "unset", "if", "noop", "no-op", "status", "locks",
		"lease", "add-member", "del-member", "transfer-leader", "lock", "watch", "txn", "check", "snapshot"}
	for _, v := range verbs {
		for _, h := range []string{"--help", "-h"} {
			out, code := runApp(t, "--dir", dir, "client", v, h)
			if code != 0 || !strings.Contains(strings.ToLower(out), "usage") {
				t.Errorf("%s %s: exit %d\n%s", v, h, code, out)
			}
		}
	}
	if after := lastIndex(t, dir); after != before {
		t.Fatalf("asking for help wrote to the log: last index %d, then %d", before, after)
	}
	for _, step := range [][]string{{"set", "--", "--help", "v"}, {"get", "--", "--help"}, {"unset", "--", "--help"}, {"exists", "--", "--help"}} {
		out, code := runApp(t, append([]string{"--dir", dir, "client"}, step...)...)
		want := 0
		if step[0] == "exists" {
			want = api.CodeNotFound // unset just before
		}
		if code != want || (step[0] == "get" && strings.TrimSpace(out) != "v") {
			t.Fatalf("%v: exit %d (want %d)\n%s", step, code, want, out)
		}
	}
	if out, code := runApp(t, "--dir", dir, "client", "bogus", "--help"); code != api.CodeUsage {
		t.Fatalf("bogus --help: exit %d, want %d\n%s", code, api.CodeUsage, out)
	}
}

// TestJSONEveryVerb (issue 29): with --json a verb that prints nothing else ends with
// one object on standard output, {"verb", "exit"} and "error" when it failed, the exit
// code unchanged; a usage error says what was wrong.
func TestJSONEveryVerb(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	for _, tc := range []struct {
		args  []string
		code  int
		error string // part of the error; "" none
	}{
		{[]string{"set", "j", "1"}, 0, ""},
		{[]string{"create", "j", "2"}, api.CodeExists, "exists"},
		{[]string{"get", "nothing-here"}, api.CodeNotFound, "not found"},
		{[]string{"if", "j", "-eq", "1", "set", "2"}, 0, ""},
		{[]string{"if", "nothing-here", "=", "1", "set", "2"}, api.CodeNoKey, "does not exist"},
		{[]string{"if", "j", "=", "5", "unset"}, api.CodeCondFalse, "false"},
		{[]string{"unset"}, api.CodeUsage, "unset: want KEY"},
		{[]string{"unset", "j"}, 0, ""},
		{[]string{"noop"}, 0, ""},
		{[]string{"bogus"}, api.CodeUsage, `unknown verb "bogus"`},
	} {
		out, code := runAppStdout(t, append([]string{"--dir", dir, "client", "--json"}, tc.args...)...)
		first, rest, _ := strings.Cut(out, "\n")
		if rest != "" {
			t.Errorf("%v: more than one line on standard output:\n%s", tc.args, out)
		}
		var got struct {
			Verb  string  `json:"verb"`
			Exit  *int    `json:"exit"`
			Error *string `json:"error"`
		}
		if err := json.Unmarshal([]byte(first), &got); err != nil || got.Exit == nil {
			t.Errorf("%v: the first line is no JSON outcome: %v\n%s", tc.args, err, out)
			continue
		}
		if code != tc.code || *got.Exit != tc.code || got.Verb != tc.args[0] {
			t.Errorf("%v: exit %d, JSON %+v; want %d\n%s", tc.args, code, got, tc.code, out)
		}
		switch {
		case tc.error == "" && got.Error != nil:
			t.Errorf("%v: an error on success: %q", tc.args, *got.Error)
		case tc.error != "" && (got.Error == nil || !strings.Contains(*got.Error, tc.error)):
			t.Errorf("%v: error %v, want one saying %q\n%s", tc.args, got.Error, tc.error, out)
		}
	}
	// a verb with its own JSON prints that alone
	if out, code := runApp(t, "--dir", dir, "client", "--json", "exists", "j"); code != api.CodeNotFound || strings.TrimSpace(out) != `{"exists":false,"key":"j"}` {
		t.Errorf("exists --json: exit %d\n%s", code, out)
	}
}

// runAppStdout runs the app as runApp does, and gives what it printed on standard output
// alone.
func runAppStdout(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	return runAppTo(&out, io.Discard, args...)
}
