package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	lr := func(h *harness.Host, args ...string) (string, int) {
		out, errOut, code, err := h.Exec(append([]string{harness.RemoteDir + "/lite-raft", "--dir", harness.RemoteDir}, args...)...)
		if err != nil {
			t.Fatalf("%s: %v: %v", h.Name, args, err)
		}
		return out + errOut, code
	}
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
}
