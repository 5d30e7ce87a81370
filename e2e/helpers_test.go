package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"lite-raft/agent"
	"lite-raft/internal/harness"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// template builds lite-raft into a folder laid out like a fresh copy of the directory.
func template(t testing.TB) string {
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "e2e-template")
		if buildErr != nil {
			return
		}
		root, _ := filepath.Abs("..")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", filepath.Join(buildDir, "lite-raft"), "./cmd/lite-raft")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
			return
		}
		for _, f := range []string{"scripts/lite-raft-client", "scripts/lite-raft-remote", "scripts/pkg", "scripts/control-script-template"} {
			b, err := os.ReadFile(filepath.Join(root, f))
			if err != nil {
				buildErr = err
				return
			}
			os.WriteFile(filepath.Join(buildDir, filepath.Base(f)), b, 0o755)
		}
		os.MkdirAll(filepath.Join(buildDir, "conf"), 0o755)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// cluster is a harness cluster whose hosts hold lite-raft at harness.RemoteDir.
type cluster struct {
	t *testing.T
	*harness.Cluster
	// viaExec runs the test's commands in the hosts' namespaces instead of over ssh (for
	// tests that restrict what ssh may run)
	viaExec bool
}

// newCluster starts n hosts; the first `members` are named in conf/cluster_nodes.
func newCluster(t *testing.T, n, members int, electionTimeout string, snapshotPeriod int) *cluster {
	c := &cluster{t: t, Cluster: harness.New(t, n, harness.Options{Template: template(t), Timeout: 90 * time.Second})}
	var names []string
	for _, h := range c.Hosts[:members] {
		names = append(names, h.Name)
	}
	for _, h := range c.Hosts {
		for name, v := range map[string]string{"cluster_nodes": strings.Join(names, " "),
			"election_timeout": electionTimeout, "snapshot_period": fmt.Sprint(snapshotPeriod)} {
			if err := os.WriteFile(filepath.Join(h.Dir, "conf", name), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range c.Hosts {
				b, _ := os.ReadFile(filepath.Join(h.Dir, "message-log", "lite-raft-server.log"))
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("--- %s: end of lite-raft-server.log\n%s", h.Name, strings.Join(lines[max(0, len(lines)-25):], "\n"))
			}
		}
	})
	return c
}

// lr runs `cd DIR && ./CMD` on h over ssh and returns stdout, stderr and the exit code.
func (c *cluster) lr(h *harness.Host, cmd string) (string, string, int) {
	c.t.Helper()
	run := h.Run
	if c.viaExec {
		run = func(cmd string) (string, string, int, error) { return h.Exec("sh", "-c", cmd) }
	}
	out, errOut, code, err := run("cd " + harness.RemoteDir + " && " + cmd)
	if err != nil {
		c.t.Fatalf("%s: %s: %v", h.Name, cmd, err)
	}
	return out, errOut, code
}

// must runs a command that has to succeed.
func (c *cluster) must(h *harness.Host, cmd string) string {
	c.t.Helper()
	out, errOut, code := c.lr(h, cmd)
	if code != 0 {
		c.t.Fatalf("%s: %s: exit %d\n%s%s", h.Name, cmd, code, out, errOut)
	}
	return out
}

// expect runs a command and checks its exit code and, if given, its output.
func (c *cluster) expect(h *harness.Host, cmd string, code int, out string) {
	c.t.Helper()
	o, e, got := c.lr(h, cmd)
	if got != code || (out != "" && strings.TrimSpace(o) != out) {
		c.t.Fatalf("%s: %s: exit %d, output %q (stderr %q); want exit %d, output %q", h.Name, cmd, got, o, e, code, out)
	}
}

func (c *cluster) status(h *harness.Host) (agent.Status, bool) {
	o, _, code := c.lr(h, "./lite-raft-client --json --stale status")
	var st agent.Status
	if code != 0 || json.Unmarshal([]byte(o), &st) != nil {
		return st, false
	}
	return st, true
}

// leader waits until the given hosts agree on a leader that is one of them, and returns it.
func (c *cluster) leader(hosts []*harness.Host, within time.Duration) *harness.Host {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var lead string
		agree := true
		for _, h := range hosts {
			st, ok := c.status(h)
			if !ok || st.Leader == "" || (lead != "" && st.Leader != lead) {
				agree = false
				break
			}
			lead = st.Leader
		}
		if agree && lead != "" {
			for _, h := range hosts {
				if h.Name == lead {
					return h
				}
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no leader agreed on by %d hosts within %v", len(hosts), within)
		}
		time.Sleep(100 * time.Millisecond) // polling the cluster's state with a deadline
	}
}

func others(all []*harness.Host, not ...*harness.Host) []*harness.Host {
	var out []*harness.Host
outer:
	for _, h := range all {
		for _, n := range not {
			if h == n {
				continue outer
			}
		}
		out = append(out, h)
	}
	return out
}
