package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"lite-raft/api"
)

// TestGenDocs (issue 28): gen-docs writes a page per program that man renders (groff
// says nothing is wrong with it), naming every command, client verb and pkg verb, with
// the exit-code table; and completions that offer the verbs and run nothing.
func TestGenDocs(t *testing.T) {
	dir := t.TempDir()
	if out, code := runApp(t, "gen-docs", dir); code != 0 {
		t.Fatalf("gen-docs: exit %d %s", code, out)
	}
	app := newApp()
	want := map[string][]string{
		"lite-raft.1":        append(commandNames(app.Commands), "EXIT STATUS", "FILES", "EXAMPLES", "leader is not available."),
		"lite-raft-client.1": append(clientVerbs(), "EXIT STATUS", "lite-raft-remote"),
		"pkg.1":              append(commandNames(app.Command("pkg").Subcommands), "EXIT STATUS", "control-scripts/NAME"),
	}
	for page, words := range want {
		path := filepath.Join(dir, "man", "man1", page)
		if _, err := exec.LookPath("groff"); err == nil {
			if out, err := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", path).CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("groff on %s: %v\n%s", page, err, out)
			}
		}
		if _, err := exec.LookPath("man"); err != nil {
			t.Logf("no man here: %s checked with groff only", page)
			continue
		}
		cmd := exec.Command("man", "-l", "-P", "cat", path)
		cmd.Env = append(os.Environ(), "MANWIDTH=100", "LC_ALL=C")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("man -l %s: %v", page, err)
		}
		text := strings.Join(strings.Fields(string(out)), " ")
		for _, w := range words {
			if !strings.Contains(text, w) {
				t.Errorf("man %s does not mention %q", page, w)
			}
		}
	}
	for _, v := range []string{"get", "set", "if", "lock", "watch", "txn", "add-member", "check", "snapshot"} {
		if !strings.Contains(strings.Join(clientVerbs(), " "), v) {
			t.Errorf("the client verbs %v lack %s", clientVerbs(), v)
		}
	}
	// bash: with no command reachable (PATH empty), completing "lite-raft-client wa"
	// offers watch, "./lite-raft p" pkg, "pkg ev" evacuate
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	for _, tc := range []struct{ words, want string }{
		{"lite-raft-client wa", "watch"}, {"./lite-raft p", "pkg"}, {"pkg ev", "evacuate"}, {"lite-raft client ad", "add-member"}, {"lite-raft pkg mo", "move"},
	} {
		script := `PATH=/nonexistent; source "$1"; COMP_WORDS=(` + tc.words + `); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _lite_raft; echo "${COMPREPLY[@]}"`
		out, err := exec.Command(bash, "--norc", "-c", script, "bash", filepath.Join(dir, "completion", "lite-raft.bash")).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("completing %q: %q %v, want %q", tc.words, out, err, tc.want)
		}
	}
	if zsh, err := exec.LookPath("zsh"); err == nil {
		if out, err := exec.Command(zsh, "-n", filepath.Join(dir, "completion", "_lite-raft")).CombinedOutput(); err != nil {
			t.Errorf("zsh -n: %v %s", err, out)
		}
	}
}

// TestExitCodeTableMatchesREADME: the table the man pages print is the README's.
func TestExitCodeTableMatchesREADME(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile(`(?m)^\| (\d+) \| (.*) \|$`).FindAllStringSubmatch(string(b), -1)
	got := map[int]string{}
	for _, r := range rows {
		code, _ := strconv.Atoi(r[1])
		if _, dup := got[code]; !dup {
			text := strings.NewReplacer("`", "", "**", "").Replace(r[2])
			got[code] = strings.TrimSuffix(text, " (new)")
		}
	}
	for i, c := range api.CodeMeanings {
		if c.Code != i {
			t.Fatalf("CodeMeanings[%d] is code %d: out of order", i, c.Code)
		}
		if got[c.Code] != c.Meaning {
			t.Errorf("code %d: README %q, api.CodeMeanings %q", c.Code, got[c.Code], c.Meaning)
		}
	}
	if len(api.CodeMeanings) != api.CodeDenied+1 {
		t.Errorf("%d meanings for codes 0..%d", len(api.CodeMeanings), api.CodeDenied)
	}
}

// TestBootEntries (issue 28): the boot entries for FreeBSD, OpenBSD, AIX (sh -n) and
// Solaris (xmllint --noout, without the DTD, which is not here) parse; each names the
// agent's or the monitor's command line as this binary takes it.
func TestBootEntries(t *testing.T) {
	files, _ := filepath.Glob("../../scripts/boot/*/*")
	if len(files) < 7 {
		t.Fatalf("%d boot entries, want the 7 shipped: %v", len(files), files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(f, ".xml"):
			if _, err := exec.LookPath("xmllint"); err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("no xmllint to check %s (make test-deps installs libxml2-utils)", f)
				}
				t.Logf("no xmllint: %s not checked", f)
				continue
			}
			if out, err := exec.Command("xmllint", "--noout", "--nonet", f).CombinedOutput(); err != nil {
				t.Errorf("xmllint %s: %v\n%s", f, err, out)
			}
		default:
			if out, err := exec.Command("sh", "-n", f).CombinedOutput(); err != nil {
				t.Errorf("sh -n %s: %v\n%s", f, err, out)
			}
		}
		if s := string(b); !strings.Contains(s, "agent --foreground") && !strings.Contains(s, "pkg monitor") && !strings.Contains(s, "pkg $1") {
			t.Errorf("%s runs neither the agent nor a monitor", f)
		}
	}
}

// TestSystemdUnits (issue 28): the systemd units in scripts/ (the agent's, a package
// monitor's, the metrics' service and its timer) pass systemd-analyze verify without a
// word, with /opt/lite-raft pointed at a directory holding an executable (verify checks
// the commands exist), each service runs this binary's command line, and the timer
// names its service.
func TestSystemdUnits(t *testing.T) {
	units, _ := filepath.Glob("../../scripts/*@.service")
	timers, _ := filepath.Glob("../../scripts/*@.timer")
	if len(units) < 3 || len(timers) < 1 {
		t.Fatalf("units %v, timers %v: want the agent's, the monitor's, the metrics' and its timer", units, timers)
	}
	for _, f := range units {
		b, _ := os.ReadFile(f)
		if s := string(b); !strings.Contains(s, "agent --foreground") && !strings.Contains(s, "pkg monitor %i") &&
			!strings.Contains(s, "client check --prom /var/lib/node_exporter/textfile_collector/lite_raft.prom") {
			t.Errorf("%s runs neither the agent, a monitor nor check --prom", f)
		}
	}
	for _, f := range timers {
		b, _ := os.ReadFile(f)
		svc := strings.TrimSuffix(filepath.Base(f), ".timer") + ".service"
		if !strings.Contains(string(b), "Unit="+strings.Replace(svc, "@.", "@%i.", 1)) || !slices.Contains(units, filepath.Join("../../scripts", svc)) {
			t.Errorf("%s does not run %s", f, svc)
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skipf("no systemd-analyze: the units are not verified")
	}
	tmp := t.TempDir()
	opt := filepath.Join(tmp, "opt")
	for _, d := range []string{opt, filepath.Join(opt, "pkg")} {
		os.MkdirAll(d, 0o755)
		if err := os.WriteFile(filepath.Join(d, "lite-raft"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var args []string
	for _, f := range append(units, timers...) {
		b, _ := os.ReadFile(f)
		// an instance for each template: root, whom every host has
		name := strings.Replace(filepath.Base(f), "@.", "@root.", 1)
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(strings.ReplaceAll(string(b), "/opt/lite-raft", opt)), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, filepath.Join(tmp, name))
	}
	cmd := exec.Command("systemd-analyze", append([]string{"verify"}, args...)...)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
