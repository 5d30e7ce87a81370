//go:build unix

package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mustRun returns a function that takes the results of Run, RunFrom or Exec, fails the test
// unless the command exited 0, and returns stdout without surrounding white space.
func mustRun(t *testing.T, what string) func(stdout, stderr string, exit int, err error) string {
	return func(stdout, stderr string, exit int, err error) string {
		t.Helper()
		if err != nil || exit != 0 {
			t.Fatalf("%s: exit %d, err %v, stderr %q, stdout %q", what, exit, err, stderr, stdout)
		}
		return strings.TrimSpace(stdout)
	}
}

// procState returns the state letter of /proc/PID/stat ("" if the process is gone).
func procState(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCluster(t *testing.T) {
	tmpl := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmpl, "lite-raft"), []byte("#!/bin/sh\necho fake lite-raft on $(hostname)\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(tmpl, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmpl, "conf", "cluster_nodes"), []byte("host1\nhost2\nhost3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := New(t, 3, Options{Template: tmpl})
	if len(c.Hosts) != 3 {
		t.Fatalf("%d hosts, want 3", len(c.Hosts))
	}
	h1, h2, h3 := c.Hosts[0], c.Hosts[1], c.Hosts[2]

	t.Run("Identity", func(t *testing.T) {
		for i, h := range c.Hosts {
			want := fmt.Sprintf("host%d", i+1)
			if h.Name != want {
				t.Errorf("host %d is named %q", i+1, h.Name)
			}
			if got := mustRun(t, "hostname")(h.Run("hostname; whoami")); got != want+"\nroot" {
				t.Errorf("%s: hostname and user over ssh: %q, want %s and root", h.Name, got, want)
			}
			if got := mustRun(t, "cat /etc/hostname")(h.Exec("cat", "/etc/hostname")); got != want {
				t.Errorf("%s: /etc/hostname says %q", h.Name, got)
			}
			addrs := mustRun(t, "ip addr")(h.Exec("ip", "-4", "-o", "addr", "show", "dev", "eth0"))
			if !strings.Contains(addrs, " "+h.Addr+"/24 ") {
				t.Errorf("%s: eth0 has %q, want %s", h.Name, addrs, h.Addr)
			}
			// No route out of the cluster's subnet, and the kernel says so without sending anything.
			routes := mustRun(t, "ip route")(h.Exec("ip", "-4", "route"))
			if strings.Contains(routes, "default") || strings.Count(routes, "\n") != 0 {
				t.Errorf("%s: routes %q, want only the subnet", h.Name, routes)
			}
			if _, stderr, exit, err := h.Exec("ip", "route", "get", "192.0.2.1"); err != nil || exit == 0 || !strings.Contains(stderr, "unreachable") {
				t.Errorf("%s: route to 192.0.2.1: exit %d, err %v, %q", h.Name, exit, err, stderr)
			}

		}
	})

	t.Run("NoConnectionToTestProcess", func(t *testing.T) {
		// A host cannot open a connection to the test process's address (its SYN is dropped).
		_, stderr, exit, err := h1.Exec("ssh", "-o", "ConnectTimeout=1", c.Gateway, "true")
		if err != nil || exit != 255 || !strings.Contains(stderr, "timed out") {
			t.Errorf("ssh from host1 to the gateway: exit %d, err %v, %q; want a time-out", exit, err, stderr)
		}
	})

	t.Run("OwnDirectory", func(t *testing.T) {
		for _, h := range c.Hosts {
			want := "fake lite-raft on " + h.Name + "\nhost1\nhost2\nhost3"
			if got := mustRun(t, "template")(h.Run("cd " + RemoteDir + " && ./lite-raft && cat conf/cluster_nodes")); got != want {
				t.Errorf("%s: template binary and conf say %q, want %q", h.Name, got, want)
			}
		}
		// Also ~/.ssh and /tmp are per host.
		mustRun(t, "write")(h1.Run("echo written on host1 > " + RemoteDir + "/only-here && touch /tmp/h1-tmp ~/.ssh/h1-mark"))
		data, err := os.ReadFile(filepath.Join(h1.Dir, "only-here"))
		if err != nil || string(data) != "written on host1\n" {
			t.Errorf("host1's Dir holds %q, %v", data, err)
		}
		for _, h := range []*Host{h2, h3} {
			if out, _, exit, err := h.Run("ls " + RemoteDir + "/only-here /tmp/h1-tmp ~/.ssh/h1-mark 2>/dev/null"); err != nil || exit == 0 || out != "" {
				t.Errorf("%s sees host1's files: %q (exit %d, err %v)", h.Name, out, exit, err)
			}
			if exists(filepath.Join(h.Dir, "only-here")) {
				t.Errorf("%s's Dir holds host1's file", h.Name)
			}
		}
		if !exists(filepath.Join(h1.SSHDir, "h1-mark")) {
			t.Errorf("host1's ~/.ssh is not %s", h1.SSHDir)
		}
		k1 := mustRun(t, "host key")(h1.Exec("cat", "/etc/ssh/ssh_host_ed25519_key.pub"))
		k2 := mustRun(t, "host key")(h2.Exec("cat", "/etc/ssh/ssh_host_ed25519_key.pub"))
		if k1 == k2 || k1 != h1.HostKeyPub {
			t.Errorf("host keys: host1 %q, host2 %q, HostKeyPub %q", k1, k2, h1.HostKeyPub)
		}
	})

	t.Run("ByName", func(t *testing.T) {
		for _, pair := range [][2]*Host{{h1, h2}, {h2, h3}, {h3, h1}} {
			from, to := pair[0], pair[1]
			if got := mustRun(t, from.Name+"→"+to.Name)(to.RunFrom(from, "hostname")); got != to.Name {
				t.Errorf("ssh %s from %s reached %q", to.Name, from.Name, got)
			}
		}
		hosts := mustRun(t, "getent")(h1.Exec("getent", "hosts", "host3"))
		if !strings.HasPrefix(hosts, h3.Addr+" ") {
			t.Errorf("host1 resolves host3 as %q, want %s", hosts, h3.Addr)
		}
	})

	t.Run("Partition", func(t *testing.T) {
		if err := c.Partition([]*Host{h1}, []*Host{h2}); err != nil {
			t.Fatal(err)
		}
		_, stderr, exit, err := h2.RunFrom(h1, "hostname")
		if err != nil || exit != 255 || !strings.Contains(stderr, "timed out") {
			t.Errorf("host1→host2 across the cut: exit %d, err %v, stderr %q; want an ssh connect time-out", exit, err, stderr)
		}
		// The other direction too (with a shorter time-out, to keep the test quick).
		_, stderr, exit, err = h2.Exec("ssh", "-o", "ConnectTimeout=2", "host1", "hostname")
		if err != nil || exit != 255 || !strings.Contains(stderr, "timed out") {
			t.Errorf("host2→host1 across the cut: exit %d, err %v, stderr %q; want an ssh connect time-out", exit, err, stderr)
		}
		if got := mustRun(t, "host1→host3")(h3.RunFrom(h1, "hostname")); got != "host3" {
			t.Errorf("host1→host3 reached %q", got)
		}
		if got := mustRun(t, "test→host2")(h2.Run("hostname")); got != "host2" {
			t.Errorf("test process → host2 reached %q", got)
		}
		if err := c.Heal(); err != nil {
			t.Fatal(err)
		}
		if got := mustRun(t, "host1→host2 healed")(h2.RunFrom(h1, "hostname")); got != "host2" {
			t.Errorf("after Heal host1→host2 reached %q", got)
		}
	})

	t.Run("PartitionStopsEstablishedConnection", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd, err := h1.ExecCommand(ctx, "ssh", "host2", "cat > /tmp/stream")
		if err != nil {
			t.Fatal(err)
		}
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer in.Close()
		received := func() string {
			out, _, _, _ := h2.Exec("cat", "/tmp/stream")
			return out
		}
		io.WriteString(in, "before\n")
		waitFor(t, "host2 to receive a line over ssh", 10*time.Second, func() bool { return received() == "before\n" })
		if err := c.Isolate(h2); err != nil {
			t.Fatal(err)
		}
		io.WriteString(in, "during\n")
		// Nothing arrives while the cut lasts (checked for one second).
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			if got := received(); got != "before\n" {
				t.Fatalf("host2 received %q across the cut", got)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := c.Heal(); err != nil {
			t.Fatal(err)
		}
		// TCP retransmits once the cut is healed.
		waitFor(t, "the line sent during the cut to arrive after Heal", 20*time.Second, func() bool { return received() == "before\nduring\n" })
	})

	t.Run("Signal", func(t *testing.T) {
		mustRun(t, "start sleep")(h2.Exec("sh", "-c", "sleep 1000 >/dev/null 2>&1 &"))
		// The shell's child may not have executed sleep yet.
		var pid int
		var procs []Proc
		waitFor(t, "sleep 1000 among host2's processes", 5*time.Second, func() bool {
			var err error
			if procs, err = h2.Procs(); err != nil {
				t.Fatal(err)
			}
			for _, p := range procs {
				if p.Cmdline == "sleep 1000" {
					pid = p.Pid
				}
			}
			return pid != 0
		})
		if others, _ := h1.Procs(); len(others) == 0 {
			t.Errorf("host1 has no processes (sshd?)")
		} else {
			for _, p := range others {
				if p.Pid == pid {
					t.Errorf("host2's sleep listed on host1")
				}
			}
		}
		if n, err := h1.Signal(`^sleep 1000$`, syscall.SIGSTOP); err != nil || n != 0 {
			t.Errorf("Signal on host1 matched %d processes (%v), want 0", n, err)
		}
		if n, err := h2.Signal(`^sleep 1000$`, syscall.SIGSTOP); err != nil || n != 1 {
			t.Fatalf("SIGSTOP signalled %d (%v), want 1", n, err)
		}
		waitFor(t, "sleep to stop", 5*time.Second, func() bool { return procState(pid) == "T" })
		if n, err := h2.Signal(`^sleep 1000$`, syscall.SIGCONT); err != nil || n != 1 {
			t.Fatalf("SIGCONT signalled %d (%v), want 1", n, err)
		}
		waitFor(t, "sleep to continue", 5*time.Second, func() bool { return procState(pid) == "S" })
		if n, err := h2.Signal(`^sleep 1000$`, syscall.SIGKILL); err != nil || n != 1 {
			t.Fatalf("SIGKILL signalled %d (%v), want 1", n, err)
		}
		waitFor(t, "sleep to die", 5*time.Second, func() bool { s := procState(pid); return s == "" || s == "Z" })
		if got := mustRun(t, "hostname")(h2.Run("hostname")); got != "host2" {
			t.Errorf("host2 after the signals: %q", got)
		}
	})

	t.Run("StopSSHD", func(t *testing.T) {
		if err := h3.StopSSHD(); err != nil {
			t.Fatal(err)
		}
		_, stderr, exit, err := h3.RunFrom(h1, "true")
		if err != nil || exit != 255 || !strings.Contains(stderr, "refused") {
			t.Errorf("ssh to a host without sshd: exit %d, err %v, stderr %q; want connection refused", exit, err, stderr)
		}
		if err := h3.StartSSHD(); err != nil {
			t.Fatal(err)
		}
		mustRun(t, "after StartSSHD")(h3.RunFrom(h1, "true"))
	})

	t.Run("PowerOff", func(t *testing.T) {
		mustRun(t, "write")(h3.Run("echo kept > " + RemoteDir + "/state"))
		if err := h3.PowerOff(); err != nil {
			t.Fatal(err)
		}
		if procs, err := h3.Procs(); err != nil || len(procs) != 0 {
			t.Errorf("after PowerOff host3 runs %v (%v)", procs, err)
		}
		if conn, err := net.DialTimeout("tcp", net.JoinHostPort(h3.Addr, "22"), time.Second); err == nil {
			conn.Close()
			t.Errorf("host3's port 22 accepts connections after PowerOff")
		}
		if _, _, _, err := h3.Exec("true"); !errors.Is(err, ErrPoweredOff) {
			t.Errorf("Exec on a powered-off host: %v", err)
		}
		// Silence, as from a machine without power: no answer, not even to ARP.
		if _, stderr, exit, err := h3.RunFrom(h1, "true"); err != nil || exit != 255 ||
			!(strings.Contains(stderr, "No route to host") || strings.Contains(stderr, "timed out")) {
			t.Errorf("host1→powered-off host3: exit %d, err %v, %q; want no route to host or a time-out", exit, err, stderr)
		}
		if err := h3.PowerOn(); err != nil {
			t.Fatal(err)
		}
		if got := mustRun(t, "after PowerOn")(h3.Run("hostname && cat " + RemoteDir + "/state")); got != "host3\nkept" {
			t.Errorf("after PowerOn: %q", got)
		}
		if got := mustRun(t, "host1→host3")(h3.RunFrom(h1, "hostname")); got != "host3" {
			t.Errorf("host1→host3 after PowerOn: %q", got)
		}
	})

	t.Run("AddHost", func(t *testing.T) {
		h4, err := c.AddHost()
		if err != nil {
			t.Fatal(err)
		}
		if h4.Name != "host4" || len(c.Hosts) != 4 || c.Host("host4") != h4 {
			t.Fatalf("added %q, hosts %d", h4.Name, len(c.Hosts))
		}
		if got := mustRun(t, "host1→host4")(h4.RunFrom(h1, "hostname")); got != "host4" {
			t.Errorf("host1→host4 reached %q", got)
		}
		if got := mustRun(t, "host4→host2")(h2.RunFrom(h4, "hostname")); got != "host2" {
			t.Errorf("host4→host2 reached %q", got)
		}
		if got := mustRun(t, "fake binary")(h4.Run(RemoteDir + "/lite-raft")); got != "fake lite-raft on host4" {
			t.Errorf("host4's template copy: %q", got)
		}
	})

	t.Run("RegenerateHostKey", func(t *testing.T) {
		oldKnown := filepath.Join(t.TempDir(), "known_hosts")
		if err := copyFile(c.KnownHostsFile, oldKnown, 0o644); err != nil {
			t.Fatal(err)
		}
		oldKey := h2.HostKeyPub
		if err := h2.RegenerateHostKey(); err != nil {
			t.Fatal(err)
		}
		if h2.HostKeyPub == oldKey {
			t.Fatal("host key unchanged")
		}
		if got := mustRun(t, "cat key")(h2.Exec("cat", "/etc/ssh/ssh_host_ed25519_key.pub")); got != h2.HostKeyPub {
			t.Errorf("host2 serves %q, HostKeyPub %q", got, h2.HostKeyPub)
		}
		// The test process's files follow the new key.
		mustRun(t, "ssh with the cluster's known_hosts")(h2.Run("true"))
		// A client that knew the old key refuses.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := command(ctx, "ssh", "-F", c.SSHConfigFile, "-o", "UserKnownHostsFile="+oldKnown, "-o", "LogLevel=ERROR", "host2", "true").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "REMOTE HOST IDENTIFICATION HAS CHANGED") {
			t.Errorf("ssh with the old known_hosts: %v, %q; want a changed-host-key refusal", err, out)
		}
		// So does host1, whose known_hosts has the old key, even with accept-new.
		_, stderr, exit, err := h2.RunFrom(h1, "true")
		if err != nil || exit != 255 || !strings.Contains(stderr, "Host key verification failed") {
			t.Errorf("host1→host2 with a changed key: exit %d, err %v, %q", exit, err, stderr)
		}
		if err := c.ResetKnownHosts(); err != nil {
			t.Fatal(err)
		}
		mustRun(t, "host1→host2 after ResetKnownHosts")(h2.RunFrom(h1, "true"))
	})

	// last: the delay stays in the links made after it
	t.Run("Delay", func(t *testing.T) {
		const d = 60 * time.Millisecond
		if err := c.SetLinkDelay(h1, h2, d, 5*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		// the time until sshd's banner comes back: one way of the link, once
		banner := func(to *Host) time.Duration {
			t.Helper()
			out := mustRun(t, "banner of "+to.Name)(h1.Exec("bash", "-c",
				"s=$(date +%s%N); exec 3<>/dev/tcp/"+to.Name+"/22; head -c 7 <&3 >/dev/null; echo $(( $(date +%s%N) - s ))"))
			ns, err := strconv.ParseInt(out, 10, 64)
			if err != nil {
				t.Fatalf("banner time %q: %v", out, err)
			}
			return time.Duration(ns)
		}
		// lower bounds and comparisons in one run, no ceilings: the machine is shared
		delayed := banner(h2)
		if delayed < d {
			t.Errorf("host1→host2 at %v each way: the banner came after %v", d, delayed)
		}
		if got := banner(h3); got >= delayed {
			t.Errorf("host1→host3, not delayed: the banner came after %v, host2's after %v", got, delayed)
		}
		// 14 MB through it, jittered, in order: the same bytes as made on host2 itself
		want := mustRun(t, "seq on host2")(h2.Exec("sh", "-c", "seq 1 2000000 | md5sum"))
		if got := mustRun(t, "seq through the link")(h1.Exec("sh", "-c", "ssh host2 'seq 1 2000000' | md5sum")); got != want {
			t.Errorf("through the delayed link: %q, made on host2: %q", got, want)
		}
		if err := c.SetLinkDelay(h1, h2, 0, 0); err != nil {
			t.Fatal(err)
		}
		if got := banner(h2); got >= delayed {
			t.Errorf("host1→host2 with the delay off: the banner came after %v, %v with it", got, delayed)
		}
	})

	// another port than ssh's (etcd's, in the benchmark): a proxy of its own, and ssh's
	// link keeps its own delay (0 since the subtest above)
	t.Run("DelayPorts", func(t *testing.T) {
		const d, port = 60 * time.Millisecond, 7000
		for _, h := range []*Host{h2, h3} {
			serveEcho(t, h, port)
		}
		if err := c.SetLinkDelayPorts(h1, h2, d, 0, port); err != nil {
			t.Fatal(err)
		}
		// a line sent and echoed back: a round trip of the link
		echoTime := func(to *Host) time.Duration {
			t.Helper()
			out := mustRun(t, "echo through "+to.Name)(h1.Exec("bash", "-c",
				"exec 3<>/dev/tcp/"+to.Name+"/"+strconv.Itoa(port)+"; s=$(date +%s%N); echo hi >&3; head -c 3 <&3 >/dev/null; echo $(( $(date +%s%N) - s ))"))
			ns, err := strconv.ParseInt(out, 10, 64)
			if err != nil {
				t.Fatalf("echo time %q: %v", out, err)
			}
			return time.Duration(ns)
		}
		delayed := echoTime(h2)
		if delayed < 2*d {
			t.Errorf("host1→host2:%d at %v each way: echoed after %v", port, d, delayed)
		}
		if got := echoTime(h3); got >= delayed {
			t.Errorf("host1→host3:%d, not delayed: echoed after %v, host2's after %v", port, got, delayed)
		}
		// ssh's link to the same host is a link of its own: still undelayed
		out := mustRun(t, "banner of host2")(h1.Exec("bash", "-c",
			"s=$(date +%s%N); exec 3<>/dev/tcp/host2/22; head -c 7 <&3 >/dev/null; echo $(( $(date +%s%N) - s ))"))
		if ns, err := strconv.ParseInt(out, 10, 64); err != nil || time.Duration(ns) >= delayed {
			t.Errorf("host1→host2:22 with only port %d delayed: the banner came after %q ns (%v), the echo after %v", port, out, err, delayed)
		}
	})
}

// TestNoKnownHosts: with empty known_hosts, hosts accept new keys and record them.
func TestNoKnownHosts(t *testing.T) {
	t.Parallel()
	c := New(t, 2, Options{NoKnownHosts: true})
	h1, h2 := c.Hosts[0], c.Hosts[1]
	kh := filepath.Join(h1.SSHDir, "known_hosts")
	if data, err := os.ReadFile(kh); err != nil || len(data) != 0 {
		t.Fatalf("known_hosts of host1: %q, %v; want empty", data, err)
	}
	if got := mustRun(t, "host1→host2")(h2.RunFrom(h1, "hostname")); got != "host2" {
		t.Errorf("reached %q", got)
	}
	if got := mustRun(t, "ssh-keygen -F")(h1.Exec("ssh-keygen", "-F", "host2")); !strings.Contains(got, strings.Fields(h2.HostKeyPub)[1]) {
		t.Errorf("host1 did not record host2's key: %q", got)
	}
}

// TestClose: Close leaves no namespace, link, process, directory or lock behind, and a
// second Close is harmless.
func TestClose(t *testing.T) {
	t.Parallel()
	if err := CheckPrerequisites(); err != nil {
		New(t, 0, Options{}) // skips, or fails under CI
	}
	c, err := Start(2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustRun(t, "background")(c.Hosts[0].Exec("sh", "-c", "sleep 1000 >/dev/null 2>&1 &"))
	var pids []int
	var nss []string
	for _, h := range c.Hosts {
		procs, err := h.Procs()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range procs {
			pids = append(pids, p.Pid)
		}
		pids = append(pids, h.init.cmd.Process.Pid)
		nss = append(nss, h.netns)
	}
	nss = append(nss, c.swNS)
	if len(pids) < 5 {
		t.Fatalf("only %d processes on the hosts: %v", len(pids), pids)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	list, err := command(context.Background(), "ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss {
		if strings.Contains(string(list)+"\n", ns+" ") || strings.Contains(string(list)+"\n", ns+"\n") {
			t.Errorf("namespace %s left: %s", ns, list)
		}
	}
	links, err := command(context.Background(), "ip", "-o", "link").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(links), ": "+c.rootDev+"@") || strings.Contains(string(links), ": "+c.rootDev+":") {
		t.Errorf("link %s left: %s", c.rootDev, links)
	}
	for _, pid := range pids {
		if s := procState(pid); s != "" && s != "Z" {
			t.Errorf("process %d still running (state %s)", pid, s)
		}
	}
	if exists(c.Dir) {
		t.Errorf("directory %s left", c.Dir)
	}
	f, err := os.OpenFile(slotLockPath(c.slot), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ok, err := tryLock(f); err != nil || !ok {
		t.Errorf("slot %d still locked (%v)", c.slot, err)
	} else {
		unlock(f)
	}
	if _, _, _, err := c.Hosts[0].Exec("true"); err == nil {
		t.Errorf("Exec works after Close")
	}
	if _, err := c.AddHost(); err == nil {
		t.Errorf("AddHost works after Close")
	}
}

// TestLeftoversOfCrashedProcess: a test process killed with SIGKILL leaves namespaces and a
// directory; the next Start removes them.
func TestLeftoversOfCrashedProcess(t *testing.T) {
	if err := CheckPrerequisites(); err != nil {
		New(t, 0, Options{})
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestHelperCrashingProcess$")
	cmd.Env = append(os.Environ(), "LRH_HELPER=crash")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var slot int
	var dir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, _ := fmt.Sscanf(sc.Text(), "started slot=%d dir=%s", &slot, &dir); n == 2 {
			break
		}
	}
	if slot == 0 {
		t.Fatalf("helper did not start a cluster")
	}
	// Record what the helper made while it is alive (its slot lock keeps others off).
	type id struct{ dev, ino uint64 }
	left := map[string]id{}
	for _, name := range []string{"host1", "sw"} {
		p := filepath.Join(netnsDir, fmt.Sprintf("lrh-%d-%s", slot, name))
		dev, ino, err := fileID(p)
		if err != nil {
			t.Fatalf("helper's namespace %s: %v", p, err)
		}
		left[p] = id{dev, ino}
	}
	link, err := net.InterfaceByName(fmt.Sprintf("lrh-%d", slot))
	if err != nil {
		t.Fatalf("helper's link: %v", err)
	}
	procs, err := netnsProcs(filepath.Join(netnsDir, fmt.Sprintf("lrh-%d-host1", slot)))
	if err != nil || len(procs) < 2 {
		t.Fatalf("helper's host processes: %v, %v", procs, err)
	}
	if !exists(dir) {
		t.Fatalf("helper's directory %s missing", dir)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// Its init process and sshd die with it (parent-death signal).
	waitFor(t, "the crashed process's host processes to die", 10*time.Second, func() bool {
		for _, p := range procs {
			if s := procState(p.Pid); s != "" && s != "Z" {
				return false
			}
		}
		return true
	})
	// The namespaces, link and directory stay until the next Start (here, or in any other
	// test process) removes them. The names may be taken again by a new owner of the slot,
	// so leftovers are recognised by identity.
	New(t, 1, Options{})
	for p, was := range left {
		if dev, ino, err := fileID(p); err == nil && (id{dev, ino}) == was {
			t.Errorf("leftover namespace %s survived a new Start", p)
		}
	}
	if now, err := net.InterfaceByName(link.Name); err == nil && now.Index == link.Index {
		t.Errorf("leftover link %s survived a new Start", link.Name)
	}
	if exists(dir) {
		t.Errorf("leftover directory %s survived a new Start", dir)
	}
}

// TestHelperCrashingProcess is run by TestLeftoversOfCrashedProcess in a child process.
func TestHelperCrashingProcess(t *testing.T) {
	if os.Getenv("LRH_HELPER") != "crash" {
		t.Skip("helper process")
	}
	c, err := Start(1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("started slot=%d dir=%s\n", c.slot, c.Dir)
	select {} // killed by the parent
}

// TestSkipWithoutRoot runs this test binary as an unprivileged user: New must skip, and
// fail when CI=true.
func TestSkipWithoutRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to another user")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "lrh-skip-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "harness.test")
	if err := copyFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(bin, "-test.run=^TestHelperUnprivileged$", "-test.v")
		cmd.Dir = dir
		env := []string{"PATH=" + os.Getenv("PATH"), "LRH_HELPER=unprivileged", "CI=" + ci, "HOME=" + dir}
		cred := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		cmd.Env, cmd.SysProcAttr = env, cred
		out, err := cmd.CombinedOutput()
		for i := 0; i < 50 && errors.Is(err, syscall.ETXTBSY); i++ {
			// A child forked elsewhere in this process may still hold the copy open for
			// writing until it executes (golang.org/issue/22315).
			time.Sleep(20 * time.Millisecond)
			cmd = exec.Command(cmd.Path, cmd.Args[1:]...)
			cmd.Dir, cmd.Env, cmd.SysProcAttr = dir, env, cred
			out, err = cmd.CombinedOutput()
		}
		if errors.Is(err, os.ErrPermission) {
			t.Skipf("cannot run a copy of the test binary as an unprivileged user (%v)", err)
		}
		switch ci {
		case "":
			if err != nil || !strings.Contains(string(out), "--- SKIP") || !strings.Contains(string(out), "needs root") {
				t.Errorf("without CI: %v\n%s", err, out)
			}
		default:
			if err == nil || !strings.Contains(string(out), "--- FAIL") || !strings.Contains(string(out), "needs root") {
				t.Errorf("with CI=true: %v\n%s", err, out)
			}
		}
	}
}

// TestHelperUnprivileged is run by TestSkipWithoutRoot as an unprivileged user.
func TestHelperUnprivileged(t *testing.T) {
	if os.Getenv("LRH_HELPER") != "unprivileged" {
		t.Skip("helper process")
	}
	New(t, 1, Options{})
	t.Error("New returned without root")
}

func TestSlotOfName(t *testing.T) {
	for name, want := range map[string]int{"lrh-7": 7, "lrh-12-sw": 12, "lrh-250-host3": 250} {
		if k, ok := slotOfName(name); !ok || k != want {
			t.Errorf("slotOfName(%q) = %d, %v", name, k, ok)
		}
	}
	for _, name := range []string{"lrh-", "lrh-x", "lrh-07", "lrh-1x-sw", "lr-1", "eth0"} {
		if k, ok := slotOfName(name); ok {
			t.Errorf("slotOfName(%q) = %d, want no slot", name, k)
		}
	}
}

// serveEcho echoes every connection to h's address at port, in h's network namespace,
// until the test ends.
func serveEcho(t *testing.T, h *Host, port int) {
	t.Helper()
	var ln net.Listener
	if err := inNetns(h.netns, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(h.Addr, strconv.Itoa(port)))
		return err
	}); err != nil {
		t.Fatalf("listen on %s:%d: %v", h.Name, port, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				io.Copy(conn, conn)
			}()
		}
	}()
}
