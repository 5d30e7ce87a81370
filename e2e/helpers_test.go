package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/internal/harness"
)

// tmpl is a fresh copy of the lite-raft directory: the binary, its links and the
// control-script template, and an empty conf/.
var tmpl = harness.Template{
	Binaries: map[string]string{"lite-raft": "lite-raft/cmd/lite-raft"},
	Files:    map[string]string{"control-script-template": "../scripts/control-script-template"},
	Links:    map[string]string{"lite-raft-client": "lite-raft", "lite-raft-remote": "lite-raft", "pkg": "lite-raft"},
	Dirs:     []string{"conf"},
}

func TestMain(m *testing.M) {
	code := m.Run()
	tmpl.Remove()
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
	c := &cluster{t: t, Cluster: harness.New(t, n, harness.Options{Template: tmpl.Dir(t), Timeout: 90 * time.Second})}
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
	showLogsOnFailure(c)
	return c
}

// showLogsOnFailure prints the end of every host's agent log when the test has failed.
func showLogsOnFailure(c *cluster) {
	t := c.t
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range c.Hosts {
				b, err := os.ReadFile(filepath.Join(h.Dir, "message-log", "lite-raft-server.log"))
				if err != nil {
					// a lazyfs host's log went with its mount; the lazy cluster printed it
					t.Logf("--- %s: no lite-raft-server.log to show: %v", h.Name, err)
					continue
				}
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("--- %s: end of lite-raft-server.log\n%s", h.Name, strings.Join(lines[max(0, len(lines)-25):], "\n"))
			}
		}
	})
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

func (c *cluster) status(h *harness.Host) (api.Status, bool) {
	o, _, code := c.lr(h, "./lite-raft-client --json --stale status")
	var st api.Status
	if code != 0 || json.Unmarshal([]byte(o), &st) != nil {
		return st, false
	}
	return st, true
}

// leader waits until the given hosts agree on a leader that is one of them, and returns it.
func (c *cluster) leader(hosts []*harness.Host, within time.Duration) *harness.Host {
	c.t.Helper()
	var found *harness.Host
	c.eventually(within, fmt.Sprintf("a leader agreed on by %d hosts", len(hosts)), func() (bool, string) {
		var lead string
		for _, h := range hosts {
			st, ok := c.status(h)
			if !ok || st.Leader == "" || (lead != "" && st.Leader != lead) {
				return false, fmt.Sprintf("%s names %q", h.Name, st.Leader)
			}
			lead = st.Leader
		}
		for _, h := range hosts {
			if h.Name == lead {
				found = h
				return true, ""
			}
		}
		return false, "leader " + lead + " is not among them"
	})
	return found
}

// eventually polls cond until it reports true, and fails the test if that takes longer
// than within, with what cond saw last.
func (c *cluster) eventually(within time.Duration, what string, cond func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not within %v (last seen: %s)", what, within, seen)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

// remoteOn sets h up to run lite-raft-remote against hosts (names, space-separated),
// asking first, if set, the host the remote is told last led.
func (c *cluster) remoteOn(h *harness.Host, hosts string, first *harness.Host) {
	c.t.Helper()
	files := map[string]string{"conf/remote_hosts": hosts}
	if first != nil {
		files["temp/remote_leader"] = first.Name
	}
	for name, v := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(h.Dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(h.Dir, name), []byte(v+"\n"), 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(h.Dir, "conf", "cluster_nodes"))
}

// runUntilHeld runs cmd (which touches "held" in h's folder once it runs) on h in the
// background, waits for that, and hands out "stdout|stderr|exit|error" when cmd ends.
// The goroutine never touches t: the test may have ended before cmd does.
func (c *cluster) runUntilHeld(h *harness.Host, cmd string) <-chan string {
	c.t.Helper()
	done := make(chan string, 1)
	go func() {
		out, e, code, err := h.Run("cd " + harness.RemoteDir + " && " + cmd)
		done <- fmt.Sprintf("%s|%s|%d|%v", out, e, code, err)
	}()
	c.eventually(10*time.Second, h.Name+"'s command running", func() (bool, string) {
		_, err := os.Stat(filepath.Join(h.Dir, "held"))
		return err == nil, fmt.Sprint(err)
	})
	return done
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
