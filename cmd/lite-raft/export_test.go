package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lite-raft/api"
)

// TestExportImport (issue 29): export | import copies a folder from one cluster to
// another byte for byte (a value that is not UTF-8, one of 1 MiB, 300 keys in several
// batches), compared by an export of each; a key under a lease is exported with its
// ttl_ms and not imported; keys beside the folder are not exported; bad input writes
// nothing and exits 10.
func TestExportImport(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	startAgent(t, src)
	startAgent(t, dst)
	seq := uint64(0)
	set := func(dir, k string, v []byte) {
		t.Helper()
		seq++
		if r := do(t, dir, api.Request{Op: api.OpSet, Key: k, Value: v, ClientID: 4242, Seq: seq}); r.Code != 0 {
			t.Fatalf("set %s: %d %s", k, r.Code, r.Msg)
		}
	}
	set(src, "cfg/a", []byte("plain text"))
	set(src, "cfg/b/c", []byte{0, 0xff, 0xfe, '\n', '"'})
	set(src, "cfg/big", bytes.Repeat([]byte{7}, api.MaxValueLen))
	for i := 0; i < 300; i++ {
		set(src, fmt.Sprintf("cfg/many/k%03d", i), []byte(fmt.Sprint(i)))
	}
	set(src, "cfgx", []byte("beside"))
	set(src, "other/y", []byte("beside"))
	set(dst, "cfg/a", []byte("overwritten by the import"))
	set(dst, "cfg/only-here", []byte("left alone"))
	if out, code := runApp(t, "--dir", src, "client", "set", "--ttl", "30s", "cfg/ttl", "leased"); code != 0 {
		t.Fatalf("set --ttl: %s", out)
	}

	exported, code := runAppStdout(t, "--dir", src, "client", "export", "cfg")
	if code != 0 {
		t.Fatalf("export cfg: exit %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(exported, "\n"), "\n")
	if len(lines) != 304 {
		t.Fatalf("export cfg: %d lines, want 304", len(lines))
	}
	var withoutTTL []string
	for _, l := range lines {
		var e exportLine
		if err := json.Unmarshal([]byte(l), &e); err != nil || !strings.HasPrefix(e.Key, "cfg/") {
			t.Fatalf("export line %q: %v", l, err)
		}
		if e.Key == "cfg/ttl" {
			if e.TTLMs != 30000 || string(e.Base64) != "leased" {
				t.Errorf("the leased key: %q", l)
			}
			continue
		}
		withoutTTL = append(withoutTTL, l)
	}

	file := filepath.Join(t.TempDir(), "cfg.jsonl")
	os.WriteFile(file, []byte(exported), 0o600)
	if out, code := importFrom(t, dst, file); code != 0 || !strings.Contains(out, "303 keys imported, 1 under a lease not imported") {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	again, code := runAppStdout(t, "--dir", dst, "client", "export", "cfg")
	want := strings.Join(withoutTTL, "\n") + "\n"
	if code != 0 {
		t.Fatalf("export of the copy: exit %d", code)
	}
	// the destination's own key is left alone, among the copied ones
	only := `{"key":"cfg/only-here","value_base64":"` + "bGVmdCBhbG9uZQ==" + `"}` + "\n"
	if got := strings.Replace(again, only, "", 1); got != want {
		t.Fatalf("the copy differs from the original:\n%.600s\nwant\n%.600s", got, want)
	}

	// the bytes themselves, not only two exports that agree
	for k, v := range map[string][]byte{"cfg/b/c": {0, 0xff, 0xfe, '\n', '"'}, "cfg/big": bytes.Repeat([]byte{7}, api.MaxValueLen)} {
		if r := do(t, dst, api.Request{Op: api.OpGet, Key: k}); r.Code != 0 || !bytes.Equal(r.Value, v) {
			t.Errorf("get %s from the copy: %d, %d bytes", k, r.Code, len(r.Value))
		}
	}

	// bad input: nothing written
	before := lastIndex(t, dst)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte(`{"key":"cfg/new","value":"v"}`+"\n"+`{"key":"../x","value":"v"}`+"\n"), 0o600)
	if out, code := importFrom(t, dst, bad); code != api.CodeUsage || !strings.Contains(out, "line 2") {
		t.Fatalf("import of a bad line: exit %d\n%s", code, out)
	}
	if after := lastIndex(t, dst); after != before {
		t.Fatalf("a refused import wrote: last index %d, then %d", before, after)
	}
}

// importFrom runs import on dir's agent with file as its standard input.
func importFrom(t *testing.T, dir, file string) (string, int) {
	t.Helper()
	return runWithStdin(t, file, runApp, "--dir", dir, "client", "import")
}

// runWithStdin runs the app through run with file as its standard input.
func runWithStdin(t *testing.T, file string, run func(*testing.T, ...string) (string, int), args ...string) (string, int) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	saved := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = saved }()
	return run(t, args...)
}
