package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/internal/harness"
)

// previousBuild is the last commit before replicated commands carried a version: the
// build a cluster is upgraded from in TestRollingUpgrade. It knows nothing of versions,
// skips entries it cannot decode and ignores the frames in which newer agents say what
// they understand.
const previousBuild = "218843570f4f13c3c2a471d9e63fa9f94644751d"

// buildPrevious builds lite-raft at previousBuild from this repository's history.
func buildPrevious(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := exec.Command("sh", "-c", fmt.Sprintf("git -C .. archive %s | tar -x -C %s", previousBuild, src))
	if out, err := archive.CombinedOutput(); err != nil {
		msg := fmt.Sprintf("the previous build (%s) is not in this checkout's history: %v\n%s", previousBuild[:7], err, out)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	bin := filepath.Join(dir, "lite-raft")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath",
		"-ldflags", "-X main.Version="+previousBuild[:7], "-o", bin, "./cmd/lite-raft")
	build.Dir = src
	build.Env = append(os.Environ(), "GOFLAGS=-tags=urfave_cli_no_docs", "CGO_ENABLED=0", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the previous build: %v\n%s", err, out)
	}
	return bin
}

// replaceBinary puts bin in place of h's lite-raft the way the README says: a new file
// renamed over the old one, so the processes still running the old one keep it.
func replaceBinary(t *testing.T, h *harness.Host, bin string) {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(h.Dir, "lite-raft.new")
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(h.Dir, "lite-raft")); err != nil {
		t.Fatal(err)
	}
}

// TestRollingUpgrade: a cluster with one host on the previous build keeps working (it
// takes writes, even while it leads) and refuses the commands that host would not
// understand, with exit 14 naming it, from every member; status shows each member's
// version; once that host is upgraded the new commands go through, and every member
// holds the same data.
func TestRollingUpgrade(t *testing.T) {
	prev := buildPrevious(t)
	c := newCluster(t, 3, 3, "0.5", 1000)
	h1, h2, old := c.Hosts[0], c.Hosts[1], c.Hosts[2]
	replaceBinary(t, old, prev)
	for _, h := range c.Hosts {
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(c.Hosts, 20*time.Second)
	if lead == old {
		c.must(h1, "./lite-raft-client transfer-leader "+h1.Name)
		lead = c.leader(c.Hosts, 20*time.Second)
	}
	c.must(old, "./lite-raft-client set a 1")
	c.expect(h1, "./lite-raft-client get a", 0, "1")

	refused := func(h *harness.Host, cmd string) {
		t.Helper()
		_, errOut, code := c.lr(h, cmd)
		if code != 14 || !strings.Contains(errOut, old.Name) || !strings.Contains(errOut, "upgrade it first") {
			t.Fatalf("%s: %s with %s on the previous build: exit %d %q, want 14 naming it", h.Name, cmd, old.Name, code, errOut)
		}
	}
	for _, h := range []*harness.Host{h1, h2} {
		refused(h, "./lite-raft-client create b 1")
		refused(h, "./lite-raft-client if a = 1 unset")
	}
	st, ok := c.status(lead)
	if !ok {
		t.Fatal("no status from the leader")
	}
	for _, n := range st.Nodes {
		want := api.CommandVersion
		if n.Name == old.Name {
			want = 1
		}
		if n.Commands != want {
			t.Fatalf("status on %s: %s understands commands %d, want %d (%+v)", lead.Name, n.Name, n.Commands, want, n)
		}
	}

	// the previous build leading: it takes the old commands, and the new ones are refused
	// before they reach it (it could not read them)
	c.must(h1, "./lite-raft-client transfer-leader "+old.Name)
	c.leader(c.Hosts, 20*time.Second)
	c.must(h2, "./lite-raft-client set a 2")
	refused(h1, "./lite-raft-client create b 1")
	// a request it could not read (exists came after it) is not forwarded to it either
	refused(h2, "./lite-raft-client exists a")
	c.must(h1, "./lite-raft-client transfer-leader "+h1.Name)
	c.leader(c.Hosts, 20*time.Second)

	// upgrade it: stop, replace, start
	c.must(old, "./lite-raft stop")
	replaceBinary(t, old, filepath.Join(tmpl.Dir(t), "lite-raft"))
	c.must(old, "./lite-raft start")
	c.eventually(30*time.Second, "create once "+old.Name+" is upgraded", func() (bool, string) {
		_, errOut, code := c.lr(h1, "./lite-raft-client create b 1")
		// 13: an earlier attempt of this loop went through (each is a new request)
		return code == 0 || code == 13, fmt.Sprintf("exit %d %s", code, strings.TrimSpace(errOut))
	})
	c.expect(old, "./lite-raft-client get b", 0, "1")
	c.expect(h2, "./lite-raft-client exists b", 0, "")
	c.expect(h2, "./lite-raft-client create b 2", 13, "")
	// a leader elected since the upgrade (a loaded machine) refuses new commands (exit 14,
	// nothing written) until every member's stream has said what it understands: which
	// comes within a heartbeat or two
	c.eventually(10*time.Second, "if b = 1 unset on the upgraded cluster", func() (bool, string) {
		_, errOut, code := c.lr(old, "./lite-raft-client if b = 1 unset")
		return code == 0, fmt.Sprintf("exit %d %s", code, strings.TrimSpace(errOut))
	})
	for _, h := range c.Hosts {
		c.expect(h, "./lite-raft-client get a", 0, "2")
		c.expect(h, "./lite-raft-client get b", 9, "")
	}
	var st2 api.Status
	c.eventually(10*time.Second, "status shows every member on the new build", func() (bool, string) {
		var ok bool
		if st2, ok = c.status(c.leader(c.Hosts, 20*time.Second)); !ok {
			return false, "no status"
		}
		for _, n := range st2.Nodes {
			if n.Commands != api.CommandVersion {
				return false, fmt.Sprintf("%s: commands %d", n.Name, n.Commands)
			}
		}
		return true, ""
	})
}
