package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RemoteDir is where every host sees its own lite-raft directory (Host.Dir).
const RemoteDir = "/opt/lite-raft"

const (
	lockDir        = "/run/lite-raft-harness"
	netnsDir       = "/run/netns"
	sshdPath       = "/usr/sbin/sshd"
	sftpServerPath = "/usr/lib/openssh/sftp-server"
	partitionChain = "LRH-PARTITION"
	guardChain     = "LRH-GUARD"
	firstSlot      = 1
	lastSlot       = 250
	maxHosts       = 253
	defaultTimeout = 60 * time.Second
	bootTimeout    = 20 * time.Second
	adminTimeout   = 20 * time.Second
)

// hostPath is the PATH of commands run with Exec and of the harness's own processes.
const hostPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Options adjust a cluster. The zero value is a good default.
type Options struct {
	// Template is a folder copied into each host's own lite-raft directory (for example one
	// holding a built ./lite-raft binary and conf/). Empty: the directories start empty.
	Template string
	// NoKnownHosts leaves every host's ~/.ssh/known_hosts empty instead of listing every
	// host's key, so tests can watch accept-new at work.
	NoKnownHosts bool
	// Timeout bounds Run, RunFrom and Exec. Zero means 60 seconds.
	Timeout time.Duration
}

// Cluster is a set of simulated hosts sharing one bridge. Create it with New (tests) or
// Start, and release it with Close.
type Cluster struct {
	// Hosts are host1..hostN in order; AddHost appends.
	Hosts []*Host
	// Subnet is the bridge's subnet, 10.213.K.0/24.
	Subnet string
	// Gateway is the test process's address on the bridge, 10.213.K.254 (no host routes
	// through it; it only lets the test process reach the hosts).
	Gateway string
	// Dir is the harness's temporary directory holding everything of this cluster.
	Dir string
	// KeyFile is the private key that logs into every host as root (also every host's own
	// ~/.ssh/id_ed25519).
	KeyFile string
	// KnownHostsFile lists every host's current key, for the test process.
	KnownHostsFile string
	// SSHConfigFile is an ssh_config for the test process (ssh -F): "Host hostI 10.213.K.I"
	// with HostName, User root, IdentityFile KeyFile, UserKnownHostsFile KnownHostsFile.
	SSHConfigFile string

	opt     Options
	slot    int
	prefix  string // "lrh-K"
	swNS    string
	rootDev string
	home    string // root's home directory, where each host's home is mounted
	lock    *os.File

	mu   sync.Mutex // guards Hosts, cuts and the files written for all hosts
	cuts map[[2]int]bool
	// wan: the delay proxies, by {from, to} host index and destination port (wan.go)
	wan map[wanKey]*wanLink

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

// PrerequisiteError says what this machine lacks to run a cluster.
type PrerequisiteError struct{ Missing []string }

func (e *PrerequisiteError) Error() string {
	return "harness: cannot run simulated hosts here: " + strings.Join(e.Missing, "; ")
}

// inCI reports whether a missing prerequisite must fail instead of skip.
func inCI() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv("CI")))
	return v == "true" || v == "1"
}

// CheckPrerequisites reports (as a *PrerequisiteError) what is missing to run clusters: Linux,
// root, the commands the harness runs, sshd's privilege separation user, and the right to
// create namespaces.
func CheckPrerequisites() error {
	var missing []string
	if runtime.GOOS != "linux" || !supported {
		return &PrerequisiteError{Missing: []string{"needs Linux (this is " + runtime.GOOS + ")"}}
	}
	if os.Geteuid() != 0 {
		missing = append(missing, fmt.Sprintf("needs root (euid is %d)", os.Geteuid()))
	}
	pkgs := map[string]string{
		"ip": "iproute2", "iptables": "iptables", "iptables-restore": "iptables",
		"ssh": "openssh-client", "ssh-keygen": "openssh-client",
		"nsenter": "util-linux", "unshare": "util-linux", "mount": "mount", "umount": "mount",
		"sh": "dash", "sleep": "coreutils",
	}
	names := make([]string, 0, len(pkgs))
	for name := range pkgs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := lookPath(name); err != nil {
			missing = append(missing, fmt.Sprintf("command %s not found (package %s)", name, pkgs[name]))
		}
	}
	if st, err := os.Stat(sshdPath); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		missing = append(missing, sshdPath+" not found (package openssh-server)")
	} else if _, err := user.Lookup("sshd"); err != nil {
		missing = append(missing, "user sshd (sshd's privilege separation user) not found (package openssh-server)")
	}
	if len(missing) == 0 {
		// Creating namespaces can be forbidden even to root (containers, seccomp).
		out, err := command(context.Background(), "unshare", "--net", "--mount", "--uts", "true").CombinedOutput()
		if err != nil {
			missing = append(missing, fmt.Sprintf("cannot create namespaces (unshare: %v %s)", err, strings.TrimSpace(string(out))))
		}
	}
	if len(missing) > 0 {
		return &PrerequisiteError{Missing: missing}
	}
	return nil
}

// lookPath finds a command in PATH or in the sbin directories that root's PATH usually has.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range strings.Split(hostPath, ":") {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// New starts n hosts named host1..hostN and registers Close with t.Cleanup. If this machine
// cannot run them (not Linux, not root, a command missing) it calls t.Skip with the reason,
// or t.Fatal when CI is "true" or "1". Any other failure is fatal.
func New(t testing.TB, n int, opt Options) *Cluster {
	t.Helper()
	if err := CheckPrerequisites(); err != nil {
		if inCI() {
			t.Fatalf("%v (CI is set, so this fails instead of skipping)", err)
		}
		t.Skipf("%v (skipping; with CI=true this would fail)", err)
	}
	c, err := Start(n, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range c.snapshotHosts() {
				if tail := h.logTail(20); tail != "" {
					t.Logf("harness: last lines of %s's sshd log (%s):\n%s", h.Name, h.LogFile, tail)
				}
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("harness: cleanup: %v", err)
		}
	})
	return c
}

// Start is New without a testing.TB: it returns a *PrerequisiteError when the machine
// cannot run hosts. The caller must Close the cluster.
func Start(n int, opt Options) (_ *Cluster, err error) {
	if n < 0 || n > maxHosts {
		return nil, fmt.Errorf("harness: %d hosts requested, want 0..%d", n, maxHosts)
	}
	if err := CheckPrerequisites(); err != nil {
		return nil, err
	}
	if opt.Template != "" {
		if st, err := os.Stat(opt.Template); err != nil {
			return nil, fmt.Errorf("harness: template: %w", err)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("harness: template %s is not a directory", opt.Template)
		}
	}
	if opt.Timeout <= 0 {
		opt.Timeout = defaultTimeout
	}
	c := &Cluster{opt: opt, cuts: map[[2]int]bool{}, wan: map[wanKey]*wanLink{}, closed: make(chan struct{})}
	defer func() {
		if err != nil {
			if cerr := c.Close(); cerr != nil {
				err = fmt.Errorf("%w (and cleaning up: %v)", err, cerr)
			}
		}
	}()

	c.home = "/root"
	if u, err := user.LookupId("0"); err == nil && u.HomeDir != "" && u.HomeDir != "/" {
		c.home = u.HomeDir
	}
	if err := os.MkdirAll(RemoteDir, 0o755); err != nil {
		return nil, fmt.Errorf("harness: mount point: %w", err)
	}
	if err := c.takeSlot(); err != nil {
		return nil, err
	}
	sweepStaleSlots(c.slot)

	c.Subnet = fmt.Sprintf("10.213.%d.0/24", c.slot)
	c.Gateway = fmt.Sprintf("10.213.%d.254", c.slot)
	c.prefix = fmt.Sprintf("lrh-%d", c.slot)
	c.swNS = c.prefix + "-sw"
	c.rootDev = c.prefix

	c.Dir, err = os.MkdirTemp("", c.prefix+"-")
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	if err := c.recordOwner(); err != nil {
		return nil, err
	}
	c.KeyFile = filepath.Join(c.Dir, "id_ed25519")
	c.KnownHostsFile = filepath.Join(c.Dir, "known_hosts")
	c.SSHConfigFile = filepath.Join(c.Dir, "ssh_config")
	if err := sshKeygen(c.KeyFile, "lite-raft-harness"); err != nil {
		return nil, err
	}
	if err := c.makeBridge(); err != nil {
		return nil, err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for i := 1; i <= n; i++ {
		h, err := c.newHost(i)
		if err != nil {
			return nil, err
		}
		c.Hosts = append(c.Hosts, h)
	}
	if err := c.writeSharedFiles(); err != nil {
		return nil, err
	}
	for _, h := range c.Hosts {
		if err := c.writeKnownHosts(h); err != nil {
			return nil, err
		}
	}
	if err := forEach(c.Hosts, (*Host).boot); err != nil {
		return nil, err
	}
	return c, nil
}

// takeSlot locks the first free slot whose subnet is unused in the root namespace and
// removes whatever an earlier owner of that slot left.
func (c *Cluster) takeSlot() error {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	used := usedSubnets()
	for k := firstSlot; k <= lastSlot; k++ {
		if used[k] {
			continue
		}
		f, err := os.OpenFile(slotLockPath(k), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("harness: %w", err)
		}
		ok, err := tryLock(f)
		if err != nil || !ok {
			f.Close()
			if err != nil {
				return fmt.Errorf("harness: lock %s: %w", f.Name(), err)
			}
			continue
		}
		if err := cleanSlot(k, f); err != nil {
			unlock(f)
			f.Close()
			return fmt.Errorf("harness: removing leftovers of slot %d: %w", k, err)
		}
		c.slot, c.lock = k, f
		return nil
	}
	return errors.New("harness: no free slot (all of 10.213.1-250.0/24 in use)")
}

func slotLockPath(k int) string { return filepath.Join(lockDir, fmt.Sprintf("slot-%d.lock", k)) }

// usedSubnets returns the slots K whose 10.213.K.0/24 already has an address in the root
// namespace.
func usedSubnets() map[int]bool {
	used := map[int]bool{}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ip4 := ipn.IP.To4(); ip4 != nil && ip4[0] == 10 && ip4[1] == 213 {
			used[int(ip4[2])] = true
		}
	}
	return used
}

// recordOwner writes this process's pid and temporary directory into the slot's lock file,
// for the cleanup of a later owner if this process dies without Close.
func (c *Cluster) recordOwner() error {
	rec := fmt.Sprintf("pid=%d\ndir=%s\n", os.Getpid(), c.Dir)
	if err := c.lock.Truncate(0); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	if _, err := c.lock.WriteAt([]byte(rec), 0); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	return nil
}

// sweepStaleSlots cleans every slot other than own that has leftovers and no owner.
func sweepStaleSlots(own int) {
	slots := map[int]bool{}
	if ents, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range ents {
			if k, ok := slotOfName(e.Name()); ok {
				slots[k] = true
			}
		}
	}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			if k, ok := slotOfName(i.Name); ok && i.Name == fmt.Sprintf("lrh-%d", k) {
				slots[k] = true
			}
		}
	}
	if ents, err := os.ReadDir(lockDir); err == nil {
		for _, e := range ents {
			var k int
			if _, err := fmt.Sscanf(e.Name(), "slot-%d.lock", &k); err == nil && e.Name() == fmt.Sprintf("slot-%d.lock", k) {
				if st, err := e.Info(); err == nil && st.Size() > 0 {
					slots[k] = true
				}
			}
		}
	}
	for k := range slots {
		if k == own || k < firstSlot || k > lastSlot {
			continue
		}
		f, err := os.OpenFile(slotLockPath(k), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			continue
		}
		if ok, err := tryLock(f); err == nil && ok {
			_ = cleanSlot(k, f) // best effort; the next owner of k tries again and must succeed
			unlock(f)
		}
		f.Close()
	}
}

// slotOfName parses "lrh-K" or "lrh-K-..." names.
func slotOfName(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "lrh-")
	if !ok {
		return 0, false
	}
	digits, _, _ := strings.Cut(rest, "-")
	k, err := strconv.Atoi(digits)
	if err != nil || strconv.Itoa(k) != digits {
		return 0, false
	}
	return k, true
}

// cleanSlot removes what an earlier owner of slot k left: processes in its namespaces, the
// namespaces, its root-side link and its temporary directory. The caller holds k's lock.
func cleanSlot(k int, lock *os.File) error {
	prefix := fmt.Sprintf("lrh-%d-", k)
	var errs []error
	var nss []string
	if ents, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) {
				nss = append(nss, e.Name())
			}
		}
	}
	for _, ns := range nss {
		if err := killNetns(filepath.Join(netnsDir, ns), 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := net.InterfaceByName(fmt.Sprintf("lrh-%d", k)); err == nil {
		if err := admin("ip", "link", "del", fmt.Sprintf("lrh-%d", k)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range nss {
		if err := admin("ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	buf := make([]byte, 4096)
	n, _ := lock.ReadAt(buf, 0)
	for _, line := range strings.Split(string(buf[:n]), "\n") {
		dir, ok := strings.CutPrefix(line, "dir=")
		if ok && filepath.IsAbs(dir) && strings.HasPrefix(filepath.Base(dir), prefix) {
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := lock.Truncate(0); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// makeBridge creates the switch namespace with its bridge and the root namespace's veth.
func (c *Cluster) makeBridge() error {
	steps := [][]string{
		{"ip", "netns", "add", c.swNS},
		{"ip", "netns", "exec", c.swNS, "sh", "-c", disableIPv6},
		{"ip", "-n", c.swNS, "link", "set", "lo", "up"},
		{"ip", "-n", c.swNS, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", c.swNS, "link", "set", "br0", "up"},
		{"ip", "link", "add", c.rootDev, "type", "veth", "peer", "name", "uplink", "netns", c.swNS},
	}
	for _, s := range steps {
		if err := admin(s...); err != nil {
			return err
		}
	}
	// No IPv6 on the root-side end: nothing but the IPv4 address below crosses it.
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+c.rootDev+"/disable_ipv6", []byte("1\n"), 0o644)
	steps = [][]string{
		{"ip", "-n", c.swNS, "link", "set", "uplink", "master", "br0", "up"},
		{"ip", "addr", "add", c.Gateway + "/24", "dev", c.rootDev},
		{"ip", "link", "set", c.rootDev, "up"},
	}
	for _, s := range steps {
		if err := admin(s...); err != nil {
			return err
		}
	}
	return nil
}

// disableIPv6 runs inside a fresh network namespace before its interfaces exist.
const disableIPv6 = `for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6; do [ -w "$f" ] && echo 1 > "$f"; done; true`

// Host returns the host with the given name, or nil.
func (c *Cluster) Host(name string) *Host {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

func (c *Cluster) snapshotHosts() []*Host {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Host(nil), c.Hosts...)
}

// AddHost starts one more host, host(N+1), reachable by name from every host (all hosts'
// /etc/hosts are rewritten in place) and, unless NoKnownHosts, listed in every host's
// known_hosts. Partitions in force do not affect it.
func (c *Cluster) AddHost() (*Host, error) {
	if c.isClosed() {
		return nil, errors.New("harness: cluster is closed")
	}
	c.mu.Lock()
	i := len(c.Hosts) + 1
	if i > maxHosts {
		c.mu.Unlock()
		return nil, fmt.Errorf("harness: at most %d hosts", maxHosts)
	}
	h, err := c.newHost(i)
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	c.Hosts = append(c.Hosts, h)
	err = c.writeSharedFiles()
	if err == nil {
		err = c.writeKnownHosts(h)
	}
	if err == nil && !c.opt.NoKnownHosts {
		for _, o := range c.Hosts[:i-1] {
			if err = appendFile(filepath.Join(o.SSHDir, "known_hosts"), knownHostsLine(h)); err != nil {
				break
			}
		}
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := h.boot(); err != nil {
		return nil, err
	}
	return h, nil
}

// writeSharedFiles rewrites, for the current host list, every host's /etc/hosts (in place:
// it is bind-mounted), the test process's known_hosts and its ssh_config. c.mu is held.
func (c *Cluster) writeSharedFiles() error {
	var hosts, kh, cfg strings.Builder
	hosts.WriteString("127.0.0.1\tlocalhost\n")
	for _, h := range c.Hosts {
		fmt.Fprintf(&hosts, "%s\t%s\n", h.Addr, h.Name)
		kh.WriteString(knownHostsLine(h))
		fmt.Fprintf(&cfg, "Host %s %s\n", h.Name, h.Addr)
		fmt.Fprintf(&cfg, "    HostName %s\n    Port 22\n    User root\n", h.Addr)
		fmt.Fprintf(&cfg, "    IdentityFile %s\n    IdentitiesOnly yes\n    IdentityAgent none\n", c.KeyFile)
		fmt.Fprintf(&cfg, "    UserKnownHostsFile %s\n    GlobalKnownHostsFile /dev/null\n", c.KnownHostsFile)
		cfg.WriteString("    StrictHostKeyChecking yes\n    CheckHostIP no\n    BatchMode yes\n    ConnectTimeout 5\n")
		cfg.WriteString("    PasswordAuthentication no\n    KbdInteractiveAuthentication no\n    GSSAPIAuthentication no\n")
		cfg.WriteString("    ControlMaster no\n    ControlPath none\n    LogLevel ERROR\n\n")
	}
	for _, h := range c.Hosts {
		if err := rewriteInPlace(filepath.Join(h.root, "etc", "hosts"), hosts.String()); err != nil {
			return err
		}
	}
	if err := writeFile(c.KnownHostsFile, kh.String(), 0o644); err != nil {
		return err
	}
	return writeFile(c.SSHConfigFile, cfg.String(), 0o644)
}

// writeKnownHosts writes h's ~/.ssh/known_hosts as Options say: every host's key, or empty.
func (c *Cluster) writeKnownHosts(h *Host) error {
	var kh strings.Builder
	if !c.opt.NoKnownHosts {
		for _, o := range c.Hosts {
			kh.WriteString(knownHostsLine(o))
		}
	}
	return writeFile(filepath.Join(h.SSHDir, "known_hosts"), kh.String(), 0o644)
}

// ResetKnownHosts rewrites every host's ~/.ssh/known_hosts to its initial state with the
// current host keys: all hosts listed, or empty with Options.NoKnownHosts.
func (c *Cluster) ResetKnownHosts() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.Hosts {
		if err := c.writeKnownHosts(h); err != nil {
			return err
		}
	}
	return c.writeSharedFiles()
}

func knownHostsLine(h *Host) string {
	f := strings.Fields(h.HostKeyPub)
	if len(f) < 2 {
		return ""
	}
	return fmt.Sprintf("%s,%s %s %s\n", h.Name, h.Addr, f[0], f[1])
}

// Partition drops all traffic between hosts of different groups, in both directions. Hosts
// in no group are unaffected, and so is the test process. Cuts add up until Heal.
func (c *Cluster) Partition(groups ...[]*Host) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	group := map[*Host]int{}
	for gi, g := range groups {
		for _, h := range g {
			if h == nil || h.c != c {
				return errors.New("harness: Partition: host of another cluster")
			}
			if prev, ok := group[h]; ok && prev != gi {
				return fmt.Errorf("harness: Partition: %s is in two groups", h.Name)
			}
			group[h] = gi
		}
	}
	drops := map[*Host][]*Host{} // host → peers whose packets it must drop
	for a, ga := range group {
		for b, gb := range group {
			if ga == gb || a == b {
				continue
			}
			key := [2]int{a.index, b.index}
			if c.cuts[key] {
				continue
			}
			c.cuts[key] = true
			drops[a] = append(drops[a], b)
		}
	}
	var hosts []*Host
	for h := range drops {
		hosts = append(hosts, h)
	}
	return forEach(hosts, func(h *Host) error {
		var rules strings.Builder
		rules.WriteString("*filter\n")
		for _, p := range drops[h] {
			fmt.Fprintf(&rules, "-A %s -s %s/32 -j DROP\n", partitionChain, p.Addr)
		}
		rules.WriteString("COMMIT\n")
		return h.iptablesRestore(rules.String())
	})
}

// forEach runs f for every host concurrently and joins the errors.
func forEach(hosts []*Host, f func(*Host) error) error {
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(h)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Isolate cuts h off from every other host of the cluster (not from the test process).
func (c *Cluster) Isolate(h *Host) error {
	var others []*Host
	for _, o := range c.snapshotHosts() {
		if o != h {
			others = append(others, o)
		}
	}
	return c.Partition([]*Host{h}, others)
}

// CutFromTest drops, in h, every packet from the test process (Cluster.Gateway), so that
// connections the test process holds to h stall as in a network partition. Heal undoes it.
func (c *Cluster) CutFromTest(h *Host) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h == nil || h.c != c {
		return errors.New("harness: CutFromTest: host of another cluster")
	}
	return h.iptablesRestore(fmt.Sprintf("*filter\n-A %s -s %s/32 -j DROP\nCOMMIT\n", partitionChain, c.Gateway))
}

// RefuseSSH makes to refuse, with a TCP reset, every ssh connection from from, open or
// new, while to's own ssh connections to from still work: a one-way link, as a wrong
// host key or authorized_keys on one side makes it. Heal undoes it.
func (c *Cluster) RefuseSSH(from, to *Host) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if from == nil || to == nil || from.c != c || to.c != c {
		return errors.New("harness: RefuseSSH: host of another cluster")
	}
	return to.iptablesRestore(fmt.Sprintf("*filter\n-A %s -s %s/32 -p tcp --dport 22 -j REJECT --reject-with tcp-reset\nCOMMIT\n",
		partitionChain, from.Addr))
}

// Heal removes every cut made by Partition, Isolate, CutFromTest and RefuseSSH.
func (c *Cluster) Heal() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := forEach(c.Hosts, func(h *Host) error {
		return admin("ip", "netns", "exec", h.netns, "iptables", "-w", "-F", partitionChain)
	})
	clear(c.cuts)
	return err
}

func (c *Cluster) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// Close kills every process of every host, deletes the namespaces, the veth and the
// temporary directory, and releases the slot. It may be called more than once; later calls
// return the first call's result.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.closeErr = c.close()
	})
	return c.closeErr
}

func (c *Cluster) close() error {
	c.closeWAN()
	hosts := c.snapshotHosts()
	errs := []error{forEach(hosts, func(h *Host) error { return h.halt(false) })}
	if c.lock == nil {
		return errors.Join(errs...)
	}
	if c.rootDev != "" {
		if _, err := net.InterfaceByName(c.rootDev); err == nil {
			errs = append(errs, admin("ip", "link", "del", c.rootDev))
		}
	}
	for _, h := range hosts {
		if exists(filepath.Join(netnsDir, h.netns)) {
			errs = append(errs, admin("ip", "netns", "del", h.netns))
		}
	}
	if c.swNS != "" && exists(filepath.Join(netnsDir, c.swNS)) {
		errs = append(errs, admin("ip", "netns", "del", c.swNS))
	}
	// Whatever is left under this slot's names (a host whose setup failed half way).
	errs = append(errs, cleanSlot(c.slot, c.lock))
	if c.Dir != "" {
		errs = append(errs, os.RemoveAll(c.Dir))
	}
	_ = c.lock.Truncate(0)
	errs = append(errs, unlock(c.lock))
	errs = append(errs, c.lock.Close())
	return errors.Join(errs...)
}
