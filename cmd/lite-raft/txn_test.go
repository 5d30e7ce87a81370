package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// TestListValuesAndTxn: list --values and txn through a real agent: a takeover as one
// transaction (owner, state, generation), its refusal when a condition is false (exit 6,
// nothing written), the folder read back in text and JSON, and bad input refused (10)
// before anything is appended.
func TestListValuesAndTxn(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	client := func(args ...string) (string, int) {
		return runApp(t, append([]string{"--dir", dir, "client"}, args...)...)
	}
	out, code := client("txn", "--if", "packages/web/owner", "missing", "--if-counter", "packages/web/generation", "0",
		"--set", "packages/web/owner", "h1", "--set", "packages/web/state", "two\nlines", "--set", "packages/web/tick", "-5",
		"--set", "packages/web/sub/x", "y", "--raise", "packages/web/generation")
	name, genText, _ := strings.Cut(strings.TrimSpace(out), " ")
	gen, err := strconv.ParseUint(genText, 10, 64)
	if code != 0 || name != "packages/web/generation" || err != nil || gen == 0 {
		t.Fatalf("txn: exit %d %q", code, out)
	}
	before := lastIndex(t, dir)
	out, code = client("txn", "--if", "packages/web/owner", "=", "h1", "--if", "packages/web/state", "!=", "two\nlines",
		"--set", "packages/web/owner", "h2", "--raise", "packages/web/generation")
	if code != 6 || !strings.Contains(out, "condition 2 of 2 is false") {
		t.Fatalf("txn with a false condition: exit %d %q, want 6 naming condition 2", code, out)
	}
	out, code = client("--json", "txn", "--if", "packages/web/tick", "present", "--set", "packages/web/owner", "h2", "--raise", "packages/web/generation")
	var res struct {
		Done   bool
		Raised []struct {
			Name  string
			Value uint64
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !res.Done || len(res.Raised) != 1 || res.Raised[0].Value <= gen {
		t.Fatalf("txn --json: exit %d %q", code, out)
	}
	gen = res.Raised[0].Value
	if lastIndex(t, dir) != before+2 { // the false one is an entry too, applied as nothing
		t.Fatalf("last index %d, want %d", lastIndex(t, dir), before+2)
	}
	out, code = client("list", "--values", "packages/web")
	want := "packages/web/owner h2\npackages/web/state \"two\\nlines\"\npackages/web/tick -5\n"
	if code != 0 || out != want {
		t.Fatalf("list --values: exit %d %q, want %q", code, out, want)
	}
	out, code = client("--json", "--stale", "list", "--values", "packages/web/")
	var d struct {
		Dir  string
		Keys []struct {
			Key   string
			Value string
		}
		Dirs     []string
		Counters []struct {
			Name  string
			Value uint64
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil || len(d.Keys) != 3 || d.Keys[1].Value != "two\nlines" ||
		strings.Join(d.Dirs, ",") != "sub" || len(d.Counters) != 1 || d.Counters[0].Value != gen {
		t.Fatalf("list --values --json: exit %d %q", code, out)
	}
	before = lastIndex(t, dir)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"list", "--values", "nothing/here"}, 8, "no such folder"},
		{[]string{"list", "--values", "a", "b"}, 10, "at most one DIR"},
		{[]string{"list", "--values", "a//b"}, 10, "empty path segment"},
		{[]string{"txn", "--set", "k", "1", "--unset", "k"}, 10, "one action per key"},
		{[]string{"txn", "--if", "k", "missing"}, 10, "no action"},
		{[]string{"txn", "--if", "k", "~", "1", "--set", "k", "1"}, 10, "want = VALUE, != VALUE, missing or present"},
		{[]string{"txn", "--set", "a/../b", "1"}, 10, `".." segments`},
		{[]string{"txn", "--set", "k"}, 10, "want 2 more arguments"},
		{[]string{"txn", "--if-counter", "g", "x", "--raise", "g"}, 10, "not a count"},
		{[]string{"txn", "--frob"}, 10, `unknown argument "--frob"`},
	} {
		if out, code := client(tc.args...); code != tc.code || !strings.Contains(out, tc.msg) {
			t.Errorf("client %q: exit %d, output %q; want exit %d and %q", tc.args, code, out, tc.code, tc.msg)
		}
	}
	if got := lastIndex(t, dir); got != before {
		t.Errorf("bad input appended entries %d..%d", before+1, got)
	}
	if out, code := client("txn", "--help"); code != 0 || !strings.Contains(out, "--if KEY missing") {
		t.Errorf("txn --help: exit %d %q", code, out)
	}
}

// TestQuoteValue: a "KEY VALUE" line's value reads back whole.
func TestQuoteValue(t *testing.T) {
	for v, want := range map[string]string{
		"plain value": "plain value", "-5": "-5", "": `""`, "a\nb": `"a\nb"`, "tab\t": `"tab\t"`,
		" lead": `" lead"`, `"q"`: `"\"q\""`, "\xff": `"\xff"`, "é": "é",
	} {
		if got := quoteValue([]byte(v)); got != want {
			t.Errorf("quoteValue(%q) = %s, want %s", v, got, want)
		}
	}
}
