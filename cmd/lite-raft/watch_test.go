package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"lite-raft/api"
)

// watch -- COMMAND gives COMMAND each change's value on its standard input, and in
// LITE_RAFT_WATCH_VALUE too when an environment can hold it: a value of 200 KiB, or one
// with a NUL byte, cannot be an environment string (exec would fail, and the watch end).
func TestWatchCommandGetsTheValue(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	out, code := runApp(t, "--dir", dir, "client", "--json", "status")
	var st struct {
		Applied uint64 `json:"applied"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status: exit %d %q", code, out)
	}
	values := map[string][]byte{
		"d/small": []byte("a b"),
		"d/big":   bytes.Repeat([]byte("x"), 200<<10),
		"d/nul":   []byte("a\x00b"),
	}
	for _, k := range []string{"d/small", "d/big", "d/nul"} {
		if out, code := runApp(t, "--dir", dir, "client", "set", k, string(values[k])); code != 0 {
			t.Fatalf("set %s: exit %d %s", k, code, out)
		}
	}
	record := filepath.Join(dir, "record")
	from := strconv.FormatUint(st.Applied, 10)
	for range values {
		// --once: one change a run, each from the last one's index
		script := `cat >"$0.$LITE_RAFT_WATCH_INDEX.stdin"; printf '%s %s %s' "$LITE_RAFT_WATCH_KEY" "${LITE_RAFT_WATCH_VALUE+set}" "$LITE_RAFT_WATCH_VALUE" >"$0.$LITE_RAFT_WATCH_INDEX.env"; echo $LITE_RAFT_WATCH_INDEX >"$0.last"`
		if out, code := runApp(t, "--dir", dir, "client", "watch", "d/", "--from", from, "--once", "--", "sh", "-c", script, record); code != 0 {
			t.Fatalf("watch d/ --from %s --once -- sh: exit %d %s", from, code, out)
		}
		b, err := os.ReadFile(record + ".last")
		if err != nil {
			t.Fatal(err)
		}
		idx := strings.TrimSpace(string(b))
		in, _ := os.ReadFile(record + "." + idx + ".stdin")
		env, _ := os.ReadFile(record + "." + idx + ".env")
		key, _, _ := strings.Cut(string(env), " ")
		if v, ok := values[key]; !ok || !bytes.Equal(in, v) {
			t.Fatalf("change %s: COMMAND read %d bytes on stdin for key %q", idx, len(in), key)
		}
		wantEnv := key + "  "
		if key == "d/small" {
			wantEnv = key + " set a b"
		}
		if string(env) != wantEnv {
			t.Fatalf("change %s: COMMAND saw key, set and value %q, want %q", idx, env, wantEnv)
		}
		from = idx
	}
}

// A change line cannot be forged by a value: one with a newline (or another unprintable
// byte, or a leading double quote) is printed Go-quoted, on one line, and reads back with
// strconv.Unquote; a plain value prints exactly as it is.
func TestWatchLineQuotesValues(t *testing.T) {
	for _, c := range []struct {
		value, want string
	}{
		{"plain value", "7 set k plain value\n"},
		{"é ü", "7 set k é ü\n"},
		{"", "7 set k \n"},
		{"x\n8 set k forged", "7 set k \"x\\n8 set k forged\"\n"},
		{"a\tb", "7 set k \"a\\tb\"\n"},
		{"\x1b[2J", "7 set k \"\\x1b[2J\"\n"},
		{"\xff\xfe", "7 set k \"\\xff\\xfe\"\n"},
		{`"quoted"`, "7 set k \"\\\"quoted\\\"\"\n"},
	} {
		var b bytes.Buffer
		if err := emitChange(&b, false, nil, api.Change{Index: 7, Key: "k", Value: []byte(c.value)}); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("value %q printed as %q, want %q", c.value, b.String(), c.want)
		}
		if strings.Count(b.String(), "\n") != 1 {
			t.Errorf("value %q printed on more than one line: %q", c.value, b.String())
		}
		got := strings.TrimSuffix(strings.TrimPrefix(b.String(), "7 set k "), "\n")
		if strings.HasPrefix(got, `"`) {
			if got, _ = strconv.Unquote(got); got != c.value {
				t.Errorf("value %q reads back as %q", c.value, got)
			}
		} else if got != c.value {
			t.Errorf("plain value %q printed as %q", c.value, got)
		}
	}
}

// --json carries any value exactly: text in "value", bytes that are not UTF-8 in
// "value_base64" (a JSON string would have them replaced); keys likewise.
func TestWatchJSONBinaryRoundTrips(t *testing.T) {
	for _, ch := range []api.Change{
		{Index: 1, Key: "k", Value: []byte("text\nwith newline")},
		{Index: 2, Key: "k", Value: []byte{0xff, 0x00, 0x80, 'a'}},
		{Index: 3, Key: "k\xff", Value: []byte("v")},
		{Index: 4, Key: "k", Deleted: true},
	} {
		var b bytes.Buffer
		if err := emitChange(&b, true, nil, ch); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Index       uint64  `json:"index"`
			Event       string  `json:"event"`
			Key         *string `json:"key"`
			KeyBase64   []byte  `json:"key_base64"`
			Value       *string `json:"value"`
			ValueBase64 []byte  `json:"value_base64"`
		}
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatalf("change %d: %v in %s", ch.Index, err, b.String())
		}
		key, value := got.KeyBase64, got.ValueBase64
		if got.Key != nil {
			key = []byte(*got.Key)
		}
		if got.Value != nil {
			value = []byte(*got.Value)
		}
		if got.Index != ch.Index || string(key) != ch.Key || !bytes.Equal(value, ch.Value) ||
			(got.Value != nil) == (got.ValueBase64 != nil) || (got.Key != nil) == (got.KeyBase64 != nil) {
			t.Errorf("change %+v printed as %s", ch, b.String())
		}
		if want := map[bool]string{false: "set", true: "deleted"}[ch.Deleted]; got.Event != want {
			t.Errorf("change %d: event %q, want %q", ch.Index, got.Event, want)
		}
	}
}
