package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
