package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/internal/harness"
)

// TestRestrictedKeys: with the cluster's key limited to `lite-raft ssh-command` in every
// authorized_keys, the cluster works (replication, forwarding, add-member's boot over
// ssh) and a shell is refused.
func TestRestrictedKeys(t *testing.T) {
	c := newCluster(t, 4, 3, "0.5", 1000)
	c.viaExec = true
	for _, h := range c.Hosts {
		p := filepath.Join(h.SSHDir, "authorized_keys")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			out = append(out, `command="`+harness.RemoteDir+`/lite-raft ssh-command",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding `+line)
		}
		if err := os.WriteFile(p, []byte(strings.Join(out, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// a shell is refused, for the test process and between hosts alike
	if _, errOut, code, _ := c.Hosts[0].Run("id"); code == 0 || !strings.Contains(errOut, "ssh-command: refused") {
		t.Fatalf("a shell over the restricted key: exit %d %q", code, errOut)
	}
	if _, errOut, code, _ := c.Hosts[1].RunFrom(c.Hosts[0], "cat /etc/shadow"); code == 0 || !strings.Contains(errOut, "refused") {
		t.Fatalf("host1 → host2 shell: exit %d %q", code, errOut)
	}
	lr := func(h *harness.Host, args ...string) (string, int) { return lr(t, h, args...) }
	for _, h := range c.Hosts[:3] {
		if out, code := lr(h, "first-boot"); code != 0 {
			t.Fatalf("first-boot on %s: %s", h.Name, out)
		}
	}
	lead := c.leader(c.Hosts[:3], 30*time.Second)
	follower := others(c.Hosts[:3], lead)[0]
	if out, code := lr(follower, "client", "set", "through", "restricted"); code != 0 {
		t.Fatalf("a write forwarded over a restricted key: %s", out)
	}
	if out, code := lr(c.Hosts[2], "client", "get", "through"); code != 0 || strings.TrimSpace(out) != "restricted" {
		t.Fatalf("read back: %d %q", code, out)
	}
	// the client verbs over ssh, as a script on another host would run them
	if out, _, code, _ := c.Hosts[0].Run("lite-raft-client get through"); code != 0 || strings.TrimSpace(out) != "restricted" {
		t.Fatalf("lite-raft-client over the restricted key: %d %q", code, out)
	}
	// add-member boots host4 with first-boot --join over the restricted key
	if out, code := lr(lead, "client", "add-member", "host4"); code != 0 {
		t.Fatalf("add-member over restricted keys: %s", out)
	}
	if out, code := lr(c.Hosts[3], "client", "get", "through"); code != 0 || strings.TrimSpace(out) != "restricted" {
		t.Fatalf("host4 after add-member: %d %q", code, out)
	}
	readOnlyKey(t, c)
}

// readOnlyKey (issue 29): a monitoring host's key, restricted with ssh-command --allow
// read in every authorized_keys, runs get, status and check, directly and through
// lite-raft-remote, and is refused set (exit 19, nothing written), a snapshot and the
// members' own verbs.
func readOnlyKey(t *testing.T, c *cluster) {
	key := filepath.Join(t.TempDir(), "monitor")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "monitor", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range c.Hosts {
		f, err := os.OpenFile(filepath.Join(h.SSHDir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "command=\"%s/lite-raft ssh-command --allow read\",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding %s", harness.RemoteDir, pub)
		f.Close()
	}
	// the test process's ssh configuration with the monitoring key in place of the cluster's
	cfg, err := os.ReadFile(c.SSHConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	monCfg := filepath.Join(filepath.Dir(key), "config")
	if err := os.WriteFile(monCfg, []byte(strings.ReplaceAll(string(cfg), c.KeyFile, key)), 0o600); err != nil {
		t.Fatal(err)
	}
	ssh := func(h *harness.Host, cmd string) (string, int) {
		out, err := exec.Command("ssh", "-F", monCfg, h.Name, cmd).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("ssh %s %q: %v", h.Name, cmd, err)
		}
		return string(out), code
	}
	h := c.Hosts[1]
	before, _ := lr(t, h, "client", "--stale", "--json", "status")
	for _, step := range []struct {
		cmd  string
		code int
		out  string
	}{
		{"lite-raft-client get through", 0, "restricted"},
		{"lite-raft-client set through monitored", api.CodeDenied, "may run only read"},
		{"lite-raft-client --json unset through", api.CodeDenied, `"exit":19`},
		{"lite-raft-client snapshot save /tmp/all.snap", api.CodeDenied, "not snapshot"},
		// what a verb would do on the host itself: a shell, a file written anywhere
		{"lite-raft-client watch / --from 0 --once -- touch " + harness.RemoteDir + "/pwned", api.CodeDenied, "not a COMMAND"},
		{"lite-raft-client check --prom " + harness.RemoteDir + "/pwned", api.CodeDenied, "not --prom"},
		{"lite-raft status", 0, "leader"},
		{"lite-raft-client check", 0, "OK"},
		{"lite-raft stop", api.CodeDenied, "may run only read"},
		{"lite-raft first-boot --join", api.CodeDenied, "may run only read"},
	} {
		out, code := ssh(h, step.cmd)
		if code != step.code || !strings.Contains(out, step.out) {
			t.Errorf("over the read-only key, %q: exit %d, want %d with %q\n%s", step.cmd, code, step.code, step.out, out)
		}
	}
	if _, err := os.Stat(filepath.Join(h.Dir, "pwned")); err == nil {
		t.Error("a read-only key ran a COMMAND or wrote a file on the host")
	}
	// lite-raft-remote on host4, with the monitoring key as its user's: rpc streams
	mon := filepath.Join(c.Hosts[3].Dir, "monitor")
	files := map[string]string{
		"conf/remote_hosts": "host1 host2 host3",
		"conf/remote_path":  harness.RemoteDir,
		"home/.ssh/config": "Host *\n  IdentityFile " + harness.RemoteDir + "/monitor/home/.ssh/id_ed25519\n  IdentitiesOnly yes\n" +
			"  UserKnownHostsFile /root/.ssh/known_hosts\n  BatchMode yes\n",
	}
	for name, v := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(mon, name)), 0o700)
		if err := os.WriteFile(filepath.Join(mon, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for src, dst := range map[string]string{key: "home/.ssh/id_ed25519", filepath.Join(c.Hosts[3].Dir, "lite-raft"): "lite-raft-remote"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mon, dst), b, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	remote := func(args ...string) (string, int) {
		out, errOut, code, err := c.Hosts[3].Exec(append([]string{"env", "HOME=" + harness.RemoteDir + "/monitor/home", harness.RemoteDir + "/monitor/lite-raft-remote"}, args...)...)
		if err != nil {
			t.Fatalf("lite-raft-remote %v: %v", args, err)
		}
		return out + errOut, code
	}
	if out, code := remote("get", "through"); code != 0 || strings.TrimSpace(out) != "restricted" {
		t.Errorf("lite-raft-remote get over the read-only key: exit %d\n%s", code, out)
	}
	if out, code := remote("status"); code != 0 || !strings.Contains(out, "leader") {
		t.Errorf("lite-raft-remote status over the read-only key: exit %d\n%s", code, out)
	}
	if out, code := remote("set", "through", "remote"); code != api.CodeDenied || !strings.Contains(out, "not set") {
		t.Errorf("lite-raft-remote set over the read-only key: exit %d, want %d\n%s", code, api.CodeDenied, out)
	}
	if out, code := remote("del-member", "host4"); code != api.CodeDenied {
		t.Errorf("lite-raft-remote del-member over the read-only key: exit %d, want %d\n%s", code, api.CodeDenied, out)
	}
	// nothing of it was written
	after, _ := lr(t, h, "client", "--stale", "--json", "status")
	var b, a api.Status
	json.Unmarshal([]byte(before), &b)
	json.Unmarshal([]byte(after), &a)
	if a.LastIndex != b.LastIndex || b.LastIndex == 0 {
		t.Errorf("the refused writes reached the log: last index %d, then %d", b.LastIndex, a.LastIndex)
	}
	if out, _ := lr(t, h, "client", "get", "through"); strings.TrimSpace(out) != "restricted" {
		t.Errorf("the key changed: %q", out)
	}
}

// lr runs lite-raft on h directly (not over ssh), with what it printed on both outputs.
func lr(t *testing.T, h *harness.Host, args ...string) (string, int) {
	t.Helper()
	out, errOut, code, err := h.Exec(append([]string{harness.RemoteDir + "/lite-raft", "--dir", harness.RemoteDir}, args...)...)
	if err != nil {
		t.Fatalf("%s: %v: %v", h.Name, args, err)
	}
	return out + errOut, code
}
