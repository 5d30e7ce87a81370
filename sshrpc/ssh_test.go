package sshrpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"lite-raft/internal/harness"
)

// These tests run against real OpenSSH sshd on harness hosts. Each host runs echoagent
// at /opt/lite-raft and the real `lite-raft rpc` bridge, so every call crosses an SSH
// session exactly as agents' calls do.

// tmpl holds lite-raft (for its rpc bridge) and echoagent, copied to every host.
var tmpl = harness.Template{Binaries: map[string]string{
	"lite-raft": "lite-raft/cmd/lite-raft",
	"echoagent": "./testdata/echoagent",
}}

func TestMain(m *testing.M) {
	code := m.Run()
	tmpl.Remove()
	os.Exit(code)
}

// startEcho runs echoagent on h in the background, as its own process in h's namespaces.
func startEcho(t testing.TB, h *harness.Host) {
	t.Helper()
	out, errOut, code, err := h.Exec("sh", "-c", "mkdir -p -m 700 /opt/lite-raft/temp && "+
		"(setsid /opt/lite-raft/echoagent /opt/lite-raft >/tmp/echo.log 2>&1 &) ; "+
		"for i in $(seq 100); do [ -S /opt/lite-raft/temp/agent.sock ] && exit 0; sleep 0.05; done; cat /tmp/echo.log; exit 1")
	if err != nil || code != 0 {
		t.Fatalf("start echoagent on %s: %v %d %s %s", h.Name, err, code, out, errOut)
	}
}

// sshSetup starts n hosts with the echo agent and returns a dialer configured like a
// member's: the cluster's ssh_config and known_hosts.
func sshSetup(t testing.TB, n int, opt harness.Options) (*harness.Cluster, *Dialer) {
	opt.Template = tmpl.Dir(t)
	c := harness.New(t, n, opt)
	for _, h := range c.Hosts {
		startEcho(t, h)
	}
	d, err := NewDialer(DialerOptions{ConfigFiles: []string{c.SSHConfigFile}, Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return c, d
}

func rpcCommand() string { return "exec " + harness.RemoteDir + "/lite-raft rpc" }

func callOK(t testing.TB, p *Peer, timeout time.Duration, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	f, err := p.Call(ctx, 1, []byte(msg))
	if err != nil || string(f.Payload) != msg {
		t.Fatalf("call %q to %s: %q, %v", msg, p.Name(), f.Payload, err)
	}
}

func TestSSHRoundTripsPipelinedKillAndPartition(t *testing.T) {
	c, d := sshSetup(t, 3, harness.Options{})
	h1 := c.Hosts[0]
	p := NewPeer(h1.Name, d, rpcCommand(), ConnOptions{})
	defer p.Close()
	callOK(t, p, 20*time.Second, "hello over ssh")

	t.Run("pipelined", func(t *testing.T) { echoPipelined(t, p, 64, 20) })

	t.Run("side streams", func(t *testing.T) {
		client := func(p *Peer) *ssh.Client {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.client
		}
		s := p.Side()
		callOK(t, s, 10*time.Second, "on a side stream")
		if client(s) == nil || client(s) != client(p) {
			t.Fatal("the side stream has an ssh connection of its own, not its main stream's")
		}
		if got := cap(s.current().out); got != sideQueue {
			t.Errorf("a side stream queues %d frames, want %d (megabyte frames)", got, sideQueue)
		}
		s.Close()
		callOK(t, p, 10*time.Second, "main stream after its side one closed")
		// the side stream ends with the main stream's connection, and opens on the next one
		s = p.Side()
		defer s.Close()
		callOK(t, s, 10*time.Second, "side")
		old := client(p)
		p.current().Close()
		select {
		case <-s.current().Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the side stream outlived its main stream's connection")
		}
		callOK(t, s, 20*time.Second, "side, again")
		if c := client(s); c == old || c != client(p) {
			t.Fatal("the side stream did not open on the main stream's new connection")
		}
	})

	t.Run("retry ends the backoff", func(t *testing.T) {
		if err := h1.StopSSHD(); err != nil {
			t.Fatal(err)
		}
		q := NewPeer(h1.Name, d, rpcCommand(), ConnOptions{})
		defer q.Close()
		q.MinBackoff, q.MaxBackoff = time.Minute, time.Minute
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := q.Call(ctx, 1, []byte("down"))
		cancel()
		if err == nil {
			t.Fatal("a call to a host whose sshd is stopped was answered")
		}
		if err := h1.StartSSHD(); err != nil {
			t.Fatal(err)
		}
		// one waits out the backoff (a minute), as a link's watch does; Retry ends it
		got := make(chan error, 1)
		ctx, cancel = context.WithCancel(context.Background()) // no deadline, as the watch's
		defer cancel()
		go func() {
			_, err := q.Conn(ctx)
			got <- err
		}()
		for deadline := time.Now().Add(5 * time.Second); ; {
			q.mu.Lock()
			waiting := q.wake != nil
			q.mu.Unlock()
			if waiting {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("Conn is not waiting for the backoff")
			}
			time.Sleep(10 * time.Millisecond) // polling pace
		}
		q.Retry()
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("after Retry: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Retry did not end the wait for the backoff")
		}
		callOK(t, q, 10*time.Second, "after retry")
	})

	t.Run("peer killed and restarted", func(t *testing.T) {
		if n, err := h1.Signal("echoagent", 9); err != nil || n != 1 {
			t.Fatalf("kill echoagent: %d %v", n, err)
		}
		// the bridge ends with the agent's socket, the session with the bridge: calls fail...
		deadline := time.Now().Add(10 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := p.Call(ctx, 1, []byte("x"))
			cancel()
			if err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("calls still answered after the agent was killed")
			}
		}
		// ...and come back once the agent is back, on a new session
		startEcho(t, h1)
		deadline = time.Now().Add(20 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			f, err := p.Call(ctx, 1, []byte("back"))
			cancel()
			if err == nil && string(f.Payload) == "back" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no answer after the agent restarted: %v", err)
			}
			time.Sleep(50 * time.Millisecond) // retry pacing, not synchronisation
		}
	})

	t.Run("partitioned peer", func(t *testing.T) {
		callOK(t, p, 10*time.Second, "before")
		if err := c.CutFromTest(h1); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := p.Call(ctx, 1, []byte("during"))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call to a partitioned peer: %v, want a deadline error", err)
		}
		if err := c.Heal(); err != nil {
			t.Fatal(err)
		}
		callOK(t, p, 20*time.Second, "after heal")
	})
}

func TestSSHHostKeys(t *testing.T) {
	c, _ := sshSetup(t, 2, harness.Options{NoKnownHosts: true})
	h1 := c.Hosts[0]
	home := t.TempDir()
	known := filepath.Join(home, "known_hosts")
	cfg := filepath.Join(home, "config")
	key := c.KeyFile
	os.WriteFile(cfg, []byte(fmt.Sprintf("Host %s\n  HostName %s\n  User root\n  IdentityFile %s\n  UserKnownHostsFile %s\n",
		h1.Name, h1.Addr, key, known)), 0o600)
	d, err := NewDialer(DialerOptions{ConfigFiles: []string{cfg}, Home: home})
	if err != nil {
		t.Fatal(err)
	}

	// unknown: accepted (accept-new is the default) and recorded
	p := NewPeer(h1.Name, d, rpcCommand(), ConnOptions{})
	callOK(t, p, 20*time.Second, "first contact")
	p.Close()
	rec, _ := os.ReadFile(known)
	if !strings.Contains(string(rec), h1.Addr) || !strings.Contains(string(rec), strings.Fields(h1.HostKeyPub)[1]) {
		t.Fatalf("known_hosts after first contact:\n%s\nwant %s's key %s", rec, h1.Addr, h1.HostKeyPub)
	}

	// changed: refused, with host, file and the fix in the message
	if err := h1.RegenerateHostKey(); err != nil {
		t.Fatal(err)
	}
	_, err = d.Dial(context.Background(), h1.Name)
	var hk *HostKeyError
	if !errors.As(err, &hk) {
		t.Fatalf("dial after the host key changed: %v, want a HostKeyError", err)
	}
	for _, want := range []string{h1.Name, known, "CHANGED", "ssh-keygen -R"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("host key error lacks %q: %v", want, err)
		}
	}
	after, _ := os.ReadFile(known)
	if string(after) != string(rec) {
		t.Fatal("a changed host key was written to known_hosts")
	}

	// StrictHostKeyChecking yes: an unknown host is refused, nothing recorded
	os.Remove(known)
	os.WriteFile(cfg, []byte(fmt.Sprintf("Host %s\n  HostName %s\n  User root\n  IdentityFile %s\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n",
		h1.Name, h1.Addr, key, known)), 0o600)
	d2, _ := NewDialer(DialerOptions{ConfigFiles: []string{cfg}, Home: home})
	if _, err := d2.Dial(context.Background(), h1.Name); err == nil || !strings.Contains(err.Error(), "StrictHostKeyChecking is yes") {
		t.Fatalf("strict dial of an unknown host: %v", err)
	}
}

func TestSSHConfigIsHonoured(t *testing.T) {
	c, _ := sshSetup(t, 3, harness.Options{})
	h1, h2 := c.Hosts[0], c.Hosts[1]
	// a second sshd on port 2222 of host1
	if _, e, code, err := h1.Exec("/usr/sbin/sshd", "-p", "2222", "-o", "ListenAddress="+h1.Addr+":2222",
		"-o", "PidFile=/run/sshd2.pid"); err != nil || code != 0 {
		t.Fatalf("second sshd: %v %d %s", err, code, e)
	}
	// sshd detaches before it listens: wait for the port
	for deadline := time.Now().Add(10 * time.Second); ; {
		nc, err := net.DialTimeout("tcp", h1.Addr+":2222", time.Second)
		if err == nil {
			nc.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second sshd does not listen: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	home := t.TempDir()
	cfg := filepath.Join(home, "config")
	write := func(body string) *Dialer {
		t.Helper()
		os.WriteFile(cfg, []byte(body), 0o600)
		d, err := NewDialer(DialerOptions{ConfigFiles: []string{cfg, c.SSHConfigFile}, Home: home})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	dialErr := func(d *Dialer, alias string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cl, err := d.Dial(ctx, alias)
		if err == nil {
			cl.Close()
		}
		return err
	}

	// an alias with HostName, Port, User and IdentityFile: all four are needed to get in
	good := fmt.Sprintf("Host web-primary\n  HostName %s\n  Port 2222\n  User root\n  IdentityFile %s\n  UserKnownHostsFile %s\n  StrictHostKeyChecking no\n",
		h1.Addr, c.KeyFile, filepath.Join(home, "kh"))
	if err := dialErr(write(good), "web-primary"); err != nil {
		t.Fatalf("alias with HostName/Port/User/IdentityFile: %v", err)
	}
	p := NewPeer("web-primary", write(good), rpcCommand(), ConnOptions{})
	callOK(t, p, 20*time.Second, "via an alias on port 2222")
	p.Close()
	if err := dialErr(write(strings.Replace(good, "Port 2222", "Port 2223", 1)), "web-primary"); err == nil || !strings.Contains(err.Error(), "2223") {
		t.Fatalf("Port not honoured: %v", err)
	}
	if err := dialErr(write(strings.Replace(good, "User root", "User nobody", 1)), "web-primary"); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Fatalf("User not honoured: %v", err)
	}
	other := filepath.Join(home, "other_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	if err := dialErr(write(strings.Replace(good, c.KeyFile, other, 1)), "web-primary"); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("IdentityFile not honoured: %v", err)
	}

	// ProxyJump: "host2" resolves only inside the hosts (their /etc/hosts), so reaching it
	// by that name proves the connection went through host1
	jump := fmt.Sprintf("Host behind\n  HostName %s\n  ProxyJump %s\n  User root\n  IdentityFile %s\n  UserKnownHostsFile %s\n  StrictHostKeyChecking no\n",
		h2.Name, h1.Name, c.KeyFile, filepath.Join(home, "kh"))
	p = NewPeer("behind", write(jump), rpcCommand(), ConnOptions{})
	defer p.Close()
	callOK(t, p, 20*time.Second, "through a jump host")
	if out, _, _, _ := h2.Exec("hostname"); strings.TrimSpace(out) != h2.Name {
		t.Fatalf("sanity: %s", out)
	}
}

// TestSSHAgentBindAddressKeepAlive covers the ssh_config settings that the other tests do
// not: keys from a real ssh-agent (IdentityAgent), BindAddress and ServerAliveInterval.
func TestSSHAgentBindAddressKeepAlive(t *testing.T) {
	c, _ := sshSetup(t, 1, harness.Options{})
	h1 := c.Hosts[0]
	home := t.TempDir()
	cfg := filepath.Join(home, "config")
	dialer := func(body string) *Dialer {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := NewDialer(DialerOptions{ConfigFiles: []string{cfg}, Home: home})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	dial := func(d *Dialer) (*ssh.Client, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return d.Dial(ctx, "h")
	}
	// run returns what cmd prints on the far side of cl
	run := func(cl *ssh.Client, cmd string) string {
		t.Helper()
		s, err := cl.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		out, err := s.Output(cmd)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		return strings.TrimSpace(string(out))
	}
	base := fmt.Sprintf("Host h\n  HostName %s\n  User root\n  UserKnownHostsFile %s\n  StrictHostKeyChecking no\n",
		h1.Addr, filepath.Join(home, "kh"))

	t.Run("ssh-agent", func(t *testing.T) {
		sock := filepath.Join(home, "agent.sock")
		agentCmd := exec.Command("ssh-agent", "-D", "-a", sock)
		if err := agentCmd.Start(); err != nil {
			t.Fatalf("ssh-agent: %v", err)
		}
		t.Cleanup(func() { agentCmd.Process.Kill(); agentCmd.Wait() })
		for deadline := time.Now().Add(10 * time.Second); ; {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("ssh-agent made no socket")
			}
			time.Sleep(20 * time.Millisecond) // polling for the socket with a deadline
		}
		add := exec.Command("ssh-add", c.KeyFile)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add: %v %s", err, out)
		}
		// no identity file anywhere (home has no .ssh): only the agent can log in
		t.Setenv("SSH_AUTH_SOCK", sock)
		cl, err := dial(dialer(base))
		if err != nil {
			t.Fatalf("with the key in ssh-agent (SSH_AUTH_SOCK): %v", err)
		}
		cl.Close()
		if _, err := dial(dialer(base + "  IdentityAgent none\n")); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("IdentityAgent none still used the agent: %v", err)
		}
		t.Setenv("SSH_AUTH_SOCK", "")
		if _, err := dial(dialer(base)); err == nil {
			t.Fatal("logged in without an agent or a key")
		}
		cl, err = dial(dialer(base + "  IdentityAgent " + sock + "\n"))
		if err != nil {
			t.Fatalf("with IdentityAgent naming the socket: %v", err)
		}
		cl.Close()
	})

	withKey := base + "  IdentityFile " + c.KeyFile + "\n"
	t.Run("BindAddress", func(t *testing.T) {
		// a second address on the test's side of the bridge; sshd sees it as the source
		out, err := exec.Command("ip", "-o", "-4", "addr", "show", "to", c.Gateway+"/32").Output()
		f := strings.Fields(string(out))
		if err != nil || len(f) < 2 {
			t.Fatalf("the test's interface: %v %q", err, out)
		}
		dev := f[1]
		src := strings.TrimSuffix(c.Gateway, ".254") + ".250"
		if out, err := exec.Command("ip", "addr", "add", src+"/32", "dev", dev).CombinedOutput(); err != nil {
			t.Fatalf("ip addr add: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "addr", "del", src+"/32", "dev", dev).Run() })
		for _, want := range []string{c.Gateway, src} {
			body := withKey
			if want == src {
				body += "  BindAddress " + src + "\n"
			}
			cl, err := dial(dialer(body))
			if err != nil {
				t.Fatalf("BindAddress %s: %v", want, err)
			}
			got := run(cl, "echo $SSH_CLIENT")
			cl.Close()
			if !strings.HasPrefix(got, want+" ") {
				t.Errorf("sshd saw the connection from %q, want %s", got, want)
			}
		}
		if _, err := dial(dialer(withKey + "  BindAddress 192.0.2.1\n")); err == nil {
			t.Error("BindAddress of an address this machine does not have was ignored")
		}
	})

	t.Run("ServerAliveInterval", func(t *testing.T) {
		plain, err := dial(dialer(withKey))
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		alive, err := dial(dialer(withKey + "  ServerAliveInterval 1\n  ServerAliveCountMax 2\n"))
		if err != nil {
			t.Fatal(err)
		}
		defer alive.Close()
		ended := func(cl *ssh.Client) chan struct{} {
			ch := make(chan struct{})
			go func() { cl.Wait(); close(ch) }()
			return ch
		}
		plainEnded, aliveEnded := ended(plain), ended(alive)
		if err := c.CutFromTest(h1); err != nil {
			t.Fatal(err)
		}
		defer c.Heal()
		start := time.Now()
		select {
		case <-aliveEnded:
			t.Logf("the connection with keep-alives closed %v after the cut", time.Since(start).Round(time.Millisecond))
		case <-time.After(30 * time.Second):
			t.Fatal("ServerAliveInterval 1, ServerAliveCountMax 2: the connection to a cut-off host stayed open 30 s")
		}
		select {
		case <-plainEnded:
			t.Fatal("the connection without keep-alives closed too: the cut, not the keep-alives, ended it")
		default:
		}
	})

	// an agent's dialer (DialerOptions.Liveness, its election timeout) gives up a stalled
	// connection without ServerAliveInterval in ssh_config
	t.Run("Liveness", func(t *testing.T) {
		if err := c.Heal(); err != nil {
			t.Fatal(err)
		}
		dialer(withKey)
		d, err := NewDialer(DialerOptions{ConfigFiles: []string{cfg}, Home: home, Liveness: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		cl, err := dial(d)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ended := make(chan struct{})
		go func() { cl.Wait(); close(ended) }()
		select {
		case <-ended:
			t.Fatal("a healthy connection with a liveness of 1 s closed within 3 s")
		case <-time.After(3 * time.Second):
		}
		if err := c.CutFromTest(h1); err != nil {
			t.Fatal(err)
		}
		defer c.Heal()
		start := time.Now()
		select {
		case <-ended:
			t.Logf("closed %v after the cut", time.Since(start).Round(time.Millisecond))
		case <-time.After(10 * time.Second):
			t.Fatal("a liveness of 1 s: the connection to a cut-off host stayed open 10 s")
		}
		// and a dial to it gives up its TCP connect after half of it, not ConnectTimeout
		start = time.Now()
		if _, err := dial(d); err == nil {
			t.Fatal("a dial to a cut-off host succeeded")
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("a dial to a cut-off host took %v with a liveness of 1 s", took)
		}
	})
}
