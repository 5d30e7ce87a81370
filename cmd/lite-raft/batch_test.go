package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runBatch runs lite-raft-client batch on dir's agent with input as its standard input,
// and gives its standard output and exit code.
func runBatch(t *testing.T, dir, input string, args ...string) (string, int) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "input")
	if err := os.WriteFile(file, []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	return runWithStdin(t, file, runAppStdout, append([]string{"--dir", dir, "client"}, args...)...)
}

// TestBatch: one result line per command, in input order, each with the exit code and
// output of the single call (a bad line refused alone, before anything is sent); the
// batch exits with the highest code; -0 carries values with line breaks and any byte but
// NUL; --json says the same in objects.
func TestBatch(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	in := strings.Join([]string{
		"set b/1 one",
		"get b/1",
		"# a comment, and a blank line: skipped",
		"",
		"create b/1 x",
		"if b/1 = one set two",
		"if b/1 = one set three",
		"get b/none",
		"exists b/1",
		"exists b/none",
		`set b/q 'it'\''s "quoted"'`,
		"get b/q",
		"set a//b v",
		"frob",
		"set b/x -",
		"set b/unterminated 'v",
		"  list   b  ",
		"unset --prefix b/none",
		"noop",
		"status",
		"get b/1",
	}, "\n")
	out, code := runBatch(t, dir, in, "batch")
	want := []string{
		"0",
		"0 one",
		"13 ",
		"0",
		"6 ",
		"9 ",
		"0",
		"9",
		"0",
		`0 it's "quoted"`,
		"10 set: key \"a//b\"",
		"10 unknown verb \"frob\"",
		`10 a VALUE of "-"`,
		"10 unterminated quote",
		"0 1 q",
		"0 0",
		"0",
		"10 status: not in a batch",
		"0 two",
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 13 || len(lines) != len(want) {
		t.Fatalf("batch: exit %d, %d lines, want 13 and %d:\n%s", code, len(lines), len(want), out)
	}
	for i, w := range want {
		prefix := strings.HasSuffix(w, " ") || strings.HasPrefix(w, "10 ") // a message follows
		if (prefix && !strings.HasPrefix(lines[i], w)) || (!prefix && lines[i] != w) {
			t.Errorf("result %d: %q, want %q", i+1, lines[i], w)
		}
	}

	// -0: a command ends with NUL, so a quoted value may hold line breaks and any byte
	values := []string{"two\nlines", "tab\there", "\x01\x7f\xfe\xff", " spaced ", `back\slash "and" quotes`}
	var b strings.Builder
	for i, v := range values {
		fmt.Fprintf(&b, "set bin/%d '%s'\x00", i, strings.ReplaceAll(v, "'", `'\''`))
	}
	for i := range values {
		fmt.Fprintf(&b, "get bin/%d\x00", i)
	}
	out, code = runBatch(t, dir, b.String(), "--json", "batch", "-0")
	lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != 2*len(values) {
		t.Fatalf("batch -0 --json: exit %d:\n%s", code, out)
	}
	for i, v := range values {
		var r struct {
			Line        int
			Verb, Key   string
			Exit        int
			Value       *string
			ValueBase64 []byte `json:"value_base64"`
		}
		if err := json.Unmarshal([]byte(lines[len(values)+i]), &r); err != nil {
			t.Fatalf("line %q: %v", lines[len(values)+i], err)
		}
		got := string(r.ValueBase64)
		if r.Value != nil {
			got = *r.Value
		}
		if r.Exit != 0 || r.Verb != "get" || r.Key != fmt.Sprintf("bin/%d", i) || r.Line != len(values)+i+1 || got != v {
			t.Errorf("get bin/%d: %+v (value %q), want %q", i, r, got, v)
		}
		// what the single call reads back is the same bytes
		if out, code := runAppStdout(t, "--dir", dir, "client", "get", fmt.Sprintf("bin/%d", i)); code != 0 || out != v+"\n" {
			t.Errorf("get bin/%d: exit %d %q, want %q", i, code, out, v)
		}
	}

	// many commands, pipelined: every set done, and the gets after them in input order
	b.Reset()
	const n = 20000
	for i := range n {
		fmt.Fprintf(&b, "set many/%d v%d\n", i, i)
	}
	start := time.Now()
	out, code = runBatch(t, dir, b.String(), "batch", "--window", "500")
	t.Logf("%d sets in %v", n, time.Since(start))
	if code != 0 || out != strings.Repeat("0\n", n) {
		t.Fatalf("%d sets: exit %d, %d bytes of output", n, code, len(out))
	}
	b.Reset()
	var wantOut strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "get many/%d\n", i)
		fmt.Fprintf(&wantOut, "0 v%d\n", i)
	}
	if out, code = runBatch(t, dir, b.String(), "batch"); code != 0 || out != wantOut.String() {
		t.Fatalf("%d gets: exit %d, output in order: %v", n, code, out == wantOut.String())
	}
	if out, code = runBatch(t, dir, "noop\n", "batch", "--window", "0"); code != 10 {
		t.Fatalf("--window 0: exit %d %q, want 10", code, out)
	}

}

// TestBatchAtomic: batch --atomic applies its writes in order, each seeing the ones
// before it, or none: a failing line says why, the others that nothing was done, and
// the store is as it was; a line refused before sending sends nothing at all.
func TestBatchAtomic(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	get := func(k string) (string, int) {
		return runAppStdout(t, "--dir", dir, "client", "get", k)
	}
	out, code := runBatch(t, dir, "set at/a 1\ncreate at/b 2\nif at/a = 1 set 3\nif at/b -lt 5 set 2\nunset at/none\n", "batch", "--atomic")
	if code != 5 || out != "0\n0\n0\n5 at/b already holds the new value\n0\n" {
		t.Fatalf("an atomic batch that holds: exit %d\n%s", code, out)
	}
	if v, code := get("at/a"); code != 0 || v != "3\n" {
		t.Fatalf("at/a after the batch: %d %q, want 3 (its if saw the set before it)", code, v)
	}
	before := lastIndex(t, dir)
	out, code = runBatch(t, dir, "set at/x 1\ncreate at/a z\nset at/y 2\n", "batch", "--atomic")
	want := "6 nothing was done: line 2 failed\n13 key at/a already exists: nothing was done\n6 nothing was done: line 2 failed\n"
	if code != 13 || out != want {
		t.Fatalf("an atomic batch with a failing line: exit %d\n%s\nwant 13\n%s", code, out, want)
	}
	for _, k := range []string{"at/x", "at/y"} {
		if _, code := get(k); code != 9 {
			t.Fatalf("%s after a failed atomic batch: exit %d, want 9 (nothing done)", k, code)
		}
	}
	if got := lastIndex(t, dir); got != before+1 {
		t.Fatalf("last index %d, want %d: the failed batch is one entry", got, before+1)
	}
	out, code = runBatch(t, dir, "set at/x 1\nget at/a\n", "--json", "batch", "--atomic")
	if code != 10 || !strings.Contains(out, `"error":"nothing was sent: line 2 is refused"`) || !strings.Contains(out, "not in batch --atomic") {
		t.Fatalf("an atomic batch with a get: exit %d\n%s", code, out)
	}
	if got := lastIndex(t, dir); got != before+1 {
		t.Fatalf("a refused atomic batch appended: last index %d, want %d", got, before+1)
	}
	// past 4 MiB of values it stops reading and sends nothing
	big := strings.Repeat("set at/big v"+strings.Repeat("x", 1<<20-100)+"\n", 6)
	if out, code := runBatch(t, dir, big, "batch", "--atomic"); code != 10 || lastIndex(t, dir) != before+1 {
		t.Fatalf("an atomic batch of 6 MiB: exit %d %q, want 10 and nothing appended", code, out)
	}
}
