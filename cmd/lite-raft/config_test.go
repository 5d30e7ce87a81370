package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheck: config check exits 0 on a valid conf/ (the source tree's own, with its
// .go files, included), 1 naming each bad value and each unknown file; pkg check reads a
// control script's settings and refuses an unsafe one.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("conf/cluster_nodes", "host1 host2 host3\n")
	write("conf/election_timeout", "0.5\n")
	write("conf/conf.go", "package conf\n")
	write("conf/log_level", "warn\n")
	if out, code := runApp(t, "--dir", dir, "config", "check"); code != 0 || !strings.Contains(out, "conf/ is valid: cluster_nodes host1 host2 host3, election_timeout 500ms") ||
		!strings.Contains(out, "log_level warn") {
		t.Fatalf("a valid conf/: exit %d\n%s", code, out)
	}
	write("conf/log_level", "verbose\n")
	if out, code := runApp(t, "--dir", dir, "config", "check"); code != 1 || !strings.Contains(out, `log_level "verbose": want error, warn, info or debug`) {
		t.Fatalf("a bad log_level: exit %d\n%s", code, out)
	}
	write("conf/log_level", "debug\n")
	write("conf/snapshot_period", "-1\n")
	write("conf/election_timout", "2\n")
	write("conf/remote_hosts", "host1 host1\n")
	out, code := runApp(t, "--dir", dir, "config", "check")
	for _, want := range []string{"snapshot_period: \"-1\" is not a whole number", "election_timout: not a lite-raft setting", "remote_hosts"} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("a bad conf/: exit %d, want 1 saying %q\n%s", code, want, out)
		}
	}
	// pkg check: the template's own settings pass; an unsafe stop_timeout does not
	tpl, err := os.ReadFile("../../scripts/control-script-template")
	if err != nil {
		t.Fatal(err)
	}
	write("control-scripts/web", string(tpl))
	if out, code := runApp(t, "--dir", dir, "pkg", "check", "web"); code != 0 || !strings.Contains(out, "web: settings valid: pace 4s, timeout 1m0s") {
		t.Fatalf("pkg check of the template: exit %d\n%s", code, out)
	}
	write("control-scripts/web", strings.Replace(string(tpl), "stop_timeout=30", "stop_timeout=59", 1))
	if out, code := runApp(t, "--dir", dir, "pkg", "check", "web"); code != 1 || !strings.Contains(out, "unsafe timing") {
		t.Fatalf("pkg check of an unsafe script: exit %d\n%s", code, out)
	}
}
