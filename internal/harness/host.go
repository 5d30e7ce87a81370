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
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"lite-raft/internal/sshcmd"
)

// Host is one simulated machine of a Cluster.
type Host struct {
	// Name is the host name, hostI; every host resolves it through its /etc/hosts.
	Name string
	// Addr is the host's IPv4 address, 10.213.K.I.
	Addr string
	// Dir is the real path of the host's own lite-raft directory, which the host sees at
	// RemoteDir.
	Dir string
	// SSHDir is the real path of the host's ~/.ssh (its home directory is mounted over
	// root's).
	SSHDir string
	// HostKeyPub is the host's public host key, "ssh-ed25519 AAAA... hostI".
	HostKeyPub string
	// LogFile is the real path of the host's sshd log.
	LogFile string

	c     *Cluster
	index int
	netns string // name under /run/netns
	root  string // real path of everything of this host

	mu   sync.Mutex // serialises power, sshd and key changes
	init *daemon    // holds the host's mount and UTS namespaces
	sshd *daemon    // the listening sshd
}

// Proc is a process running on a host.
type Proc struct {
	Pid int
	// Cmdline is the process's arguments joined by spaces.
	Cmdline string
}

// ErrPoweredOff is returned for operations that need a running host.
var ErrPoweredOff = errors.New("host is powered off")

type daemon struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startDaemon(cmd *exec.Cmd) (*daemon, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

func (d *daemon) running() bool {
	if d == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

func (d *daemon) wait(timeout time.Duration) bool {
	if d == nil {
		return true
	}
	select {
	case <-d.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// newHost makes host i's files, keys, namespace and link; boot starts it. c.mu is held.
func (c *Cluster) newHost(i int) (*Host, error) {
	name := fmt.Sprintf("host%d", i)
	root := filepath.Join(c.Dir, name)
	h := &Host{
		Name:    name,
		Addr:    fmt.Sprintf("10.213.%d.%d", c.slot, i),
		Dir:     filepath.Join(root, "lite-raft"),
		SSHDir:  filepath.Join(root, "home", ".ssh"),
		LogFile: filepath.Join(root, "log", "sshd.log"),
		c:       c,
		index:   i,
		netns:   fmt.Sprintf("%s-%s", c.prefix, name),
		root:    root,
	}
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{root, 0o755},
		{h.Dir, 0o755},
		{filepath.Join(root, "home"), 0o700},
		{h.SSHDir, 0o700},
		{filepath.Join(root, "tmp"), 0o777 | os.ModeSticky},
		{filepath.Join(root, "etc"), 0o755},
		{filepath.Join(root, "etc", "ssh"), 0o755},
		{filepath.Join(root, "log"), 0o755},
	}
	for _, d := range dirs {
		if err := os.Mkdir(d.path, 0o700); err != nil {
			return nil, fmt.Errorf("harness: %w", err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("harness: %w", err)
		}
	}
	if c.opt.Template != "" {
		if err := copyTree(c.opt.Template, h.Dir); err != nil {
			return nil, fmt.Errorf("harness: copying template to %s: %w", h.Name, err)
		}
	}
	etc := filepath.Join(root, "etc")
	if err := writeFile(filepath.Join(etc, "hostname"), name+"\n", 0o644); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(etc, "hosts"), "", 0o644); err != nil {
		return nil, err
	}
	if err := h.writeEtcSSH(); err != nil {
		return nil, err
	}
	if err := h.writeDotSSH(); err != nil {
		return nil, err
	}
	if err := writeFile(h.LogFile, "", 0o644); err != nil {
		return nil, err
	}
	if err := h.makeNetns(); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Host) hostKeyFile() string {
	return filepath.Join(h.root, "etc", "ssh", "ssh_host_ed25519_key")
}

// writeEtcSSH fills the host's /etc/ssh: the system's client configuration and moduli, a
// host key of its own and its sshd_config.
func (h *Host) writeEtcSSH() error {
	dst := filepath.Join(h.root, "etc", "ssh")
	for _, name := range []string{"ssh_config", "ssh_config.d", "moduli"} {
		src := filepath.Join("/etc/ssh", name)
		if st, err := os.Stat(src); err == nil {
			var err error
			if st.IsDir() {
				if err = os.Mkdir(filepath.Join(dst, name), 0o755); err == nil {
					err = copyTree(src, filepath.Join(dst, name))
				}
			} else {
				err = copyFile(src, filepath.Join(dst, name), 0o644)
			}
			if err != nil {
				return fmt.Errorf("harness: %w", err)
			}
		}
	}
	if err := sshKeygen(h.hostKeyFile(), h.Name); err != nil {
		return err
	}
	pub, err := os.ReadFile(h.hostKeyFile() + ".pub")
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	h.HostKeyPub = strings.TrimSpace(string(pub))

	var cfg strings.Builder
	fmt.Fprintf(&cfg, "# Written by lite-raft's test harness for %s.\n", h.Name)
	fmt.Fprintf(&cfg, "ListenAddress %s\nPort 22\nAddressFamily inet\n", h.Addr)
	cfg.WriteString("HostKey /etc/ssh/ssh_host_ed25519_key\nPidFile /run/sshd.pid\n")
	cfg.WriteString("PermitRootLogin prohibit-password\nPubkeyAuthentication yes\n")
	cfg.WriteString("AuthorizedKeysFile %h/.ssh/authorized_keys\n")
	cfg.WriteString("PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n")
	cfg.WriteString("StrictModes yes\nMaxStartups 100:30:200\nMaxSessions 100\nLogLevel VERBOSE\n")
	cfg.WriteString("PrintMotd no\nPrintLastLog no\nUseDNS no\nX11Forwarding no\n")
	if exists(sftpServerPath) {
		fmt.Fprintf(&cfg, "Subsystem sftp %s\n", sftpServerPath)
	}
	return writeFile(filepath.Join(dst, "sshd_config"), cfg.String(), 0o644)
}

// writeDotSSH fills the host's ~/.ssh with the cluster key (as its identity and as the key
// authorized to log in) and its client config. known_hosts is written by the cluster.
func (h *Host) writeDotSSH() error {
	c := h.c
	if err := copyFile(c.KeyFile, filepath.Join(h.SSHDir, "id_ed25519"), 0o600); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	if err := copyFile(c.KeyFile+".pub", filepath.Join(h.SSHDir, "id_ed25519.pub"), 0o644); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	if err := copyFile(c.KeyFile+".pub", filepath.Join(h.SSHDir, "authorized_keys"), 0o600); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	cfg := "Host *\n" +
		"    StrictHostKeyChecking accept-new\n" +
		"    UserKnownHostsFile ~/.ssh/known_hosts\n" +
		"    BatchMode yes\n" +
		"    ConnectTimeout 5\n"
	return writeFile(filepath.Join(h.SSHDir, "config"), cfg, 0o644)
}

// makeNetns creates the host's network namespace, plugs it into the bridge and installs
// the (empty) partition chain.
func (h *Host) makeNetns() error {
	c := h.c
	port := fmt.Sprintf("h%d", h.index)
	steps := [][]string{
		{"ip", "netns", "add", h.netns},
		{"ip", "netns", "exec", h.netns, "sh", "-c", disableIPv6},
		{"ip", "-n", h.netns, "link", "set", "lo", "up"},
		{"ip", "-n", c.swNS, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.netns},
		{"ip", "-n", c.swNS, "link", "set", port, "master", "br0", "up"},
		{"ip", "-n", h.netns, "addr", "add", h.Addr + "/24", "dev", "eth0"},
	}
	for _, s := range steps {
		if err := admin(s...); err != nil {
			return err
		}
	}
	// The partition chain (filled by Partition, flushed by Heal), and a guard: the host may
	// answer the test process but never open a connection to it.
	rules := fmt.Sprintf("*filter\n:%[1]s - [0:0]\n-A INPUT -j %[1]s\n"+
		":%[2]s - [0:0]\n-A OUTPUT -j %[2]s\n-A %[2]s -d %[3]s/32 -m conntrack --ctstate NEW -j DROP\nCOMMIT\n",
		partitionChain, guardChain, c.Gateway)
	return h.iptablesRestore(rules)
}

func (h *Host) iptablesRestore(rules string) error {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	cmd := command(ctx, "ip", "netns", "exec", h.netns, "iptables-restore", "--noflush")
	cmd.Stdin = strings.NewReader(rules)
	cmd.Env = hostEnv(h.c.home)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("harness: %s: iptables-restore: %v: %s", h.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func hostEnv(home string) []string {
	return []string{"PATH=" + hostPath, "HOME=" + home, "USER=root", "LOGNAME=root"}
}

// boot starts a host that is off: link up, init process (namespaces and mounts), sshd.
func (h *Host) boot() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c.isClosed() {
		return errors.New("harness: cluster is closed")
	}
	if h.init.running() {
		return nil
	}
	if err := admin("ip", "-n", h.netns, "link", "set", "eth0", "up"); err != nil {
		return err
	}
	if err := h.startInit(); err != nil {
		return err
	}
	return h.startSSHD()
}

// startInit starts the process that owns the host's mount and UTS namespaces: it sets the
// host name, mounts the host's files, says "ready" and sleeps until killed.
func (h *Host) startInit() error {
	c := h.c
	type mnt struct{ target, cmds string }
	bind := func(src, target string) mnt {
		return mnt{target, fmt.Sprintf("mount --bind %s %s\n", sshcmd.Quote(src), sshcmd.Quote(target))}
	}
	mounts := []mnt{
		bind(h.Dir, RemoteDir),
		bind(filepath.Join(h.root, "etc", "ssh"), "/etc/ssh"),
		bind(filepath.Join(h.root, "etc", "hosts"), "/etc/hosts"),
		bind(filepath.Join(h.root, "etc", "hostname"), "/etc/hostname"),
		{"/run", "mount -t tmpfs -o mode=0755,size=64m lrh-run /run\nmkdir -m 0755 /run/sshd\n"},
		bind(filepath.Join(h.root, "home"), c.home),
		bind(filepath.Join(h.root, "tmp"), "/tmp"),
	}
	// A mount over a directory that holds the harness's own directory hides the sources of
	// the mounts after it, so such a mount goes last (there is at most one: the targets are
	// disjoint trees).
	var script strings.Builder
	script.WriteString("set -e\n")
	fmt.Fprintf(&script, "echo %s > /proc/sys/kernel/hostname\n", sshcmd.Quote(h.Name))
	// Copies of other namespaces' /run/netns mounts would keep those namespaces alive.
	script.WriteString("umount -R -l /run/netns 2>/dev/null || true\n")
	var last []mnt
	for _, m := range mounts {
		if isWithin(c.Dir, m.target) {
			last = append(last, m)
			continue
		}
		script.WriteString(m.cmds)
	}
	for _, m := range last {
		script.WriteString(m.cmds)
	}
	script.WriteString("cd /\necho ready\nexec sleep infinity\n")

	logf, err := os.OpenFile(filepath.Join(h.root, "log", "init.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	defer r.Close()
	cmd := command(context.Background(), "ip", "netns", "exec", h.netns,
		"unshare", "--mount", "--uts", "--propagation", "private", "--",
		"sh", "-c", script.String(), "lrh-init-"+h.Name)
	cmd.Env = hostEnv(c.home)
	cmd.Stdout = w
	cmd.Stderr = logf
	cmd.SysProcAttr = daemonAttr()
	d, err := startDaemon(cmd)
	w.Close()
	if err != nil {
		return fmt.Errorf("harness: %s: starting init: %w", h.Name, err)
	}
	h.init = d
	_ = r.SetReadDeadline(time.Now().Add(bootTimeout))
	line, rerr := bufio.NewReader(r).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		_ = cmd.Process.Kill()
		d.wait(5 * time.Second)
		return fmt.Errorf("harness: %s: init did not come up (%v; exit %v): %s", h.Name, rerr, d.err,
			tailFile(filepath.Join(h.root, "log", "init.log"), 20))
	}
	return nil
}

// nsenterArgs returns the nsenter arguments that run argv inside the host.
func (h *Host) nsenterArgs(argv ...string) ([]string, error) {
	if !h.init.running() {
		return nil, fmt.Errorf("harness: %s: %w", h.Name, ErrPoweredOff)
	}
	args := []string{"-t", strconv.Itoa(h.init.cmd.Process.Pid), "-n", "-m", "-u", "-r", "-w", "--"}
	return append(args, argv...), nil
}

// startSSHD starts the host's sshd and waits until it accepts connections. h.mu is held.
func (h *Host) startSSHD() error {
	args, err := h.nsenterArgs(sshdPath, "-D", "-e", "-f", "/etc/ssh/sshd_config")
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(h.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	defer logf.Close()
	cmd := command(context.Background(), "nsenter", args...)
	cmd.Env = hostEnv(h.c.home)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = daemonAttr()
	d, err := startDaemon(cmd)
	if err != nil {
		return fmt.Errorf("harness: %s: starting sshd: %w", h.Name, err)
	}
	h.sshd = d
	if err := waitPort(net.JoinHostPort(h.Addr, "22"), bootTimeout, d.done); err != nil {
		_ = cmd.Process.Kill()
		d.wait(5 * time.Second)
		return fmt.Errorf("harness: %s: sshd did not come up (%v; exit %v): %s", h.Name, err, d.err, h.logTail(20))
	}
	return nil
}

// waitPort polls until a TCP connection to addr is accepted, the deadline passes or dead
// is closed.
func waitPort(addr string, timeout time.Duration, dead <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-dead:
			return errors.New("process exited")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting after %v: %v", addr, timeout, err)
		}
		select {
		case <-dead:
			return errors.New("process exited")
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func (h *Host) logTail(n int) string { return tailFile(h.LogFile, n) }

// SSHCommand returns the command that runs cmd on h over ssh from the test process (the
// system ssh client with the cluster's ssh_config). The caller sets Stdin, Stdout, ... and
// runs it.
func (h *Host) SSHCommand(ctx context.Context, cmd string) *exec.Cmd {
	return command(ctx, "ssh", "-F", h.c.SSHConfigFile, "--", h.Name, cmd)
}

// ExecCommand returns the command that runs argv directly inside h's namespaces (nsenter,
// no ssh), with the environment PATH, HOME=/root, USER=root, LOGNAME=root and working
// directory /. It fails if h is powered off.
func (h *Host) ExecCommand(ctx context.Context, argv ...string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, errors.New("harness: Exec: no command")
	}
	h.mu.Lock()
	args, err := h.nsenterArgs(argv...)
	h.mu.Unlock()
	if err != nil {
		return nil, err
	}
	cmd := command(ctx, "nsenter", args...)
	cmd.Env = hostEnv(h.c.home)
	return cmd, nil
}

// Run runs cmd on h as root over ssh from the test process, within Options.Timeout. exit is
// the command's exit status (255 when ssh itself failed, with the reason in stderr; 128+N
// when killed by signal N); err is set only if ssh could not be run or timed out.
func (h *Host) Run(cmd string) (stdout, stderr string, exit int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), h.c.opt.Timeout)
	defer cancel()
	return h.c.capture(ctx, h.Name+": ssh "+cmd, h.SSHCommand(ctx, cmd))
}

// RunFrom runs cmd on h by running `ssh hostI cmd` inside from, with from's ~/.ssh. Results
// as for Run.
func (h *Host) RunFrom(from *Host, cmd string) (stdout, stderr string, exit int, err error) {
	return from.Exec("ssh", "--", h.Name, cmd)
}

// Exec runs argv directly inside h's namespaces (see ExecCommand), within Options.Timeout.
// Results as for Run. Output is collected through files, so processes left running in the
// background do not delay it.
func (h *Host) Exec(argv ...string) (stdout, stderr string, exit int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), h.c.opt.Timeout)
	defer cancel()
	cmd, err := h.ExecCommand(ctx, argv...)
	if err != nil {
		return "", "", -1, err
	}
	return h.c.capture(ctx, h.Name+": "+strings.Join(argv, " "), cmd)
}

// capture runs cmd with stdout and stderr in temporary files and returns them.
func (c *Cluster) capture(ctx context.Context, what string, cmd *exec.Cmd) (stdout, stderr string, exit int, err error) {
	outf, err := os.CreateTemp(c.Dir, "out-")
	if err != nil {
		return "", "", -1, fmt.Errorf("harness: %w", err)
	}
	defer os.Remove(outf.Name())
	defer outf.Close()
	errf, err := os.CreateTemp(c.Dir, "err-")
	if err != nil {
		return "", "", -1, fmt.Errorf("harness: %w", err)
	}
	defer os.Remove(errf.Name())
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = outf, errf
	runErr := cmd.Run()
	o, _ := os.ReadFile(outf.Name())
	e, _ := os.ReadFile(errf.Name())
	stdout, stderr = string(o), string(e)
	if ctx.Err() != nil {
		return stdout, stderr, -1, fmt.Errorf("harness: %s: timed out (%v)", what, ctx.Err())
	}
	var ee *exec.ExitError
	switch {
	case runErr == nil:
		return stdout, stderr, 0, nil
	case errors.As(runErr, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return stdout, stderr, 128 + int(ws.Signal()), nil
		}
		return stdout, stderr, ee.ExitCode(), nil
	default:
		return stdout, stderr, -1, fmt.Errorf("harness: %s: %w", what, runErr)
	}
}

// Procs lists the processes running on h (every process in its network namespace, except
// the harness's own init process that holds the host's namespaces).
func (h *Host) Procs() ([]Proc, error) {
	h.mu.Lock()
	initPid := 0
	if h.init.running() {
		initPid = h.init.cmd.Process.Pid
	}
	h.mu.Unlock()
	procs, err := netnsProcs(filepath.Join(netnsDir, h.netns))
	if err != nil {
		return nil, fmt.Errorf("harness: %s: %w", h.Name, err)
	}
	out := procs[:0]
	for _, p := range procs {
		if p.Pid != initPid {
			out = append(out, p)
		}
	}
	return out, nil
}

// netnsProcs lists the user-space processes whose network namespace is the one bound at
// nsPath.
func netnsProcs(nsPath string) ([]Proc, error) {
	dev, ino, err := fileID(nsPath)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var procs []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		d, i, err := fileID(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil || d != dev || i != ino {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(raw) == 0 {
			continue // gone, or a kernel thread
		}
		cmdline := strings.TrimRight(strings.ReplaceAll(string(raw), "\x00", " "), " ")
		procs = append(procs, Proc{Pid: pid, Cmdline: cmdline})
	}
	return procs, nil
}

// killNetns SIGKILLs every process in the network namespace bound at nsPath until none is
// left or the timeout passes. A namespace that does not exist has no processes.
func killNetns(nsPath string, timeout time.Duration) error {
	if !exists(nsPath) {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		procs, err := netnsProcs(nsPath)
		if err != nil {
			if !exists(nsPath) {
				return nil
			}
			return err
		}
		if len(procs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("harness: processes still alive in %s after %v: %v", nsPath, timeout, procs)
		}
		for _, p := range procs {
			_ = kill(p.Pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, bounded by the deadline
	}
}

// Signal sends sig to every process of h whose command line (arguments joined by spaces)
// matches the regular expression pattern, like pkill -f, and returns how many it signalled.
func (h *Host) Signal(pattern string, sig syscall.Signal) (int, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return 0, fmt.Errorf("harness: Signal: %w", err)
	}
	procs, err := h.Procs()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range procs {
		if !re.MatchString(p.Cmdline) {
			continue
		}
		if err := kill(p.Pid, sig); err == nil {
			n++
		} else if !errors.Is(err, syscall.ESRCH) {
			return n, fmt.Errorf("harness: %s: kill %d: %w", h.Name, p.Pid, err)
		}
	}
	return n, nil
}

// PowerOff takes h's link down, then kills every process of h with SIGKILL (sshd
// included). The host's files are kept; PowerOn starts it again.
func (h *Host) PowerOff() error { return h.halt(true) }

// halt kills everything of h; with linkDown it first takes the link down so that no FIN or
// RST escapes, as with a real power cut.
func (h *Host) halt(linkDown bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	if linkDown {
		errs = append(errs, admin("ip", "-n", h.netns, "link", "set", "eth0", "down"))
	}
	errs = append(errs, killNetns(filepath.Join(netnsDir, h.netns), 15*time.Second))
	for _, d := range []*daemon{h.init, h.sshd} {
		if d != nil && !d.wait(10*time.Second) {
			errs = append(errs, fmt.Errorf("harness: %s: process %d did not exit", h.Name, d.cmd.Process.Pid))
		}
	}
	h.init, h.sshd = nil, nil
	return errors.Join(errs...)
}

// PowerOn starts a host that was powered off: link up, fresh mount and UTS namespaces with
// its files mounted, sshd. It does nothing if the host is running.
func (h *Host) PowerOn() error { return h.boot() }

// StopSSHD stops h's listening sshd (SIGTERM) like `systemctl stop ssh`: sessions already
// open keep running, new connections are refused.
func (h *Host) StopSSHD() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stopSSHD()
}

func (h *Host) stopSSHD() error {
	d := h.sshd
	if !d.running() {
		return nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if !d.wait(10 * time.Second) {
		_ = d.cmd.Process.Kill()
		if !d.wait(10 * time.Second) {
			return fmt.Errorf("harness: %s: sshd (pid %d) does not exit", h.Name, d.cmd.Process.Pid)
		}
	}
	h.sshd = nil
	return nil
}

// StartSSHD starts h's sshd if it is not running and waits until it accepts connections.
func (h *Host) StartSSHD() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sshd.running() {
		return nil
	}
	return h.startSSHD()
}

// RegenerateHostKey gives h a new host key and restarts its sshd if it was running. The
// cluster's KnownHostsFile (the test process's) is updated; the hosts' known_hosts are not,
// so their ssh now refuses h (see ResetKnownHosts).
func (h *Host) RegenerateHostKey() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := sshKeygen(h.hostKeyFile(), h.Name); err != nil {
		return err
	}
	pub, err := os.ReadFile(h.hostKeyFile() + ".pub")
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	c := h.c
	c.mu.Lock()
	h.HostKeyPub = strings.TrimSpace(string(pub))
	err = c.writeSharedFiles()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if !h.sshd.running() {
		return nil
	}
	if err := h.stopSSHD(); err != nil {
		return err
	}
	return h.startSSHD()
}

// command is exec.CommandContext with name looked up by lookPath, so that commands in sbin
// directories are found even when the test process's PATH lacks them.
func command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if p, err := lookPath(name); err == nil {
		name = p
	}
	return exec.CommandContext(ctx, name, args...)
}

// admin runs an administrative command in the root namespace.
func admin(argv ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	cmd := command(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "PATH="+hostPath+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("harness: %s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// sshKeygen makes a new ed25519 key pair at path (replacing one that is there).
func sshKeygen(path, comment string) error {
	for _, p := range []string{path, path + ".pub"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("harness: %w", err)
		}
	}
	return admin("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path)
}

func writeFile(path, data string, mode os.FileMode) error {
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	return nil
}

// rewriteInPlace replaces the contents of path keeping its inode (it may be bind-mounted).
func rewriteInPlace(path, data string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(data), 0); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	return nil
}

func appendFile(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// copyTree copies the contents of directory src into the existing directory dst, keeping
// permissions and symbolic links. Other special files are skipped.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil || rel == "." {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			return os.Chmod(target, info.Mode().Perm())
		case info.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		}
		return nil
	})
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// isWithin reports whether path is dir or inside it.
func isWithin(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// tailFile returns the last n lines of a file, or a note that it cannot be read.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
