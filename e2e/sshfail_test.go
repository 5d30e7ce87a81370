package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lite-raft/agent"
	"lite-raft/internal/harness"
	"lite-raft/internal/lockfile"
)

// waitLog waits until h's server log contains want.
func (c *cluster) waitLog(h *harness.Host, want string, within time.Duration) {
	c.t.Helper()
	c.eventually(within, fmt.Sprintf("%s's log saying %q", h.Name, want), func() (bool, string) {
		b, _ := os.ReadFile(filepath.Join(h.Dir, "message-log", "lite-raft-server.log"))
		return strings.Contains(string(b), want), "(the log is printed below if the test fails)"
	})
}

// restartAgent kills h's agent (which ends every session bridged to it, so peers must
// reconnect) and starts it again without ssh.
func (c *cluster) restartAgent(h *harness.Host) {
	c.t.Helper()
	h.Signal(`lite-raft .*agent --foreground`, 9)
	// the signal is sent, the process not yet gone: its lock on the directory says a server
	// still runs until it is, and that lock is what `start` asks, so wait for it
	c.eventually(10*time.Second, h.Name+"'s killed agent gone", func() (bool, string) {
		pid, held := lockfile.Holder(agent.LockPath(h.Dir))
		return !held, fmt.Sprintf("pid %d holds %s", pid, agent.LockPath(h.Dir))
	})
	if out, e, code, err := h.Exec("sh", "-c", "cd "+harness.RemoteDir+" && ./lite-raft start"); err != nil || code != 0 {
		c.t.Fatalf("restart %s's agent: %v %d %s%s", h.Name, err, code, out, e)
	}
}

// TestPeerSSHFailures: sshd down on a peer, a changed host key, and a key the peer's
// authorized_keys rejects. Each time the others keep serving (exit 0), the reason is in
// the log in plain words, nothing is lost, and the peer catches up once repaired.
func TestPeerSSHFailures(t *testing.T) {
	c := newCluster(t, 3, 3, "0.5", 1000)
	for _, h := range c.Hosts {
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(c.Hosts, 20*time.Second)
	peer := others(c.Hosts, lead)[0]
	n := 0
	write := func(h *harness.Host) {
		n++
		c.expect(h, fmt.Sprintf("./lite-raft-client set f%d v%d", n, n), 0, "")
	}
	caughtUp := func() {
		t.Helper()
		c.eventually(30*time.Second, fmt.Sprintf("%s catching up to f%d", peer.Name, n), func() (bool, string) {
			o, _, _, _ := peer.Exec("sh", "-c", fmt.Sprintf("cd %s && ./lite-raft-client --stale get f%d", harness.RemoteDir, n))
			return strings.TrimSpace(o) == fmt.Sprintf("v%d", n), o
		})
	}

	// sshd down on the peer
	if err := peer.StopSSHD(); err != nil {
		t.Fatal(err)
	}
	c.restartAgent(peer)
	write(lead)
	c.waitLog(lead, "cannot reach "+peer.Name, 20*time.Second)
	c.waitLog(lead, "connection refused", 20*time.Second)
	if err := peer.StartSSHD(); err != nil {
		t.Fatal(err)
	}
	write(lead)
	caughtUp()

	// a changed host key: refused, with the fix in the message, and known_hosts untouched
	kh, _ := os.ReadFile(filepath.Join(lead.SSHDir, "known_hosts"))
	if err := peer.RegenerateHostKey(); err != nil {
		t.Fatal(err)
	}
	c.restartAgent(peer)
	write(lead)
	c.waitLog(lead, "has CHANGED", 20*time.Second)
	c.waitLog(lead, "ssh-keygen -R", 20*time.Second)
	if after, _ := os.ReadFile(filepath.Join(lead.SSHDir, "known_hosts")); string(after) != string(kh) {
		t.Fatal("a changed host key was written to known_hosts")
	}
	if err := c.ResetKnownHosts(); err != nil {
		t.Fatal(err)
	}
	write(lead)
	caughtUp()

	// the peer's authorized_keys rejects the key
	ak := filepath.Join(peer.SSHDir, "authorized_keys")
	keep, _ := os.ReadFile(ak)
	os.WriteFile(ak, nil, 0o600)
	c.restartAgent(peer)
	write(lead)
	c.waitLog(lead, "unable to authenticate", 20*time.Second)
	os.WriteFile(ak, keep, 0o600)
	write(lead)
	caughtUp()
	for i := 1; i <= n; i++ {
		c.expect(peer, fmt.Sprintf("./lite-raft-client get f%d", i), 0, fmt.Sprintf("v%d", i))
	}
}
