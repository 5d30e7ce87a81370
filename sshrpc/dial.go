package sshrpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Dialer opens SSH connections to hosts named as the user names them: aliases are
// resolved through ssh_config (~/.ssh/config, then /etc/ssh/ssh_config), keys come from
// ssh-agent and the identity files, host keys are checked against known_hosts.
type Dialer struct {
	cfg      *sshConfigs
	user     string
	logf     func(string, ...any)
	liveness time.Duration
	onRTT    func(alias string, rtt time.Duration)

	mu    sync.Mutex
	links map[string]*linkTiming // by alias, for the links Liveness governs
}

// linkTiming is what a Dialer remembers of a host between connections.
type linkTiming struct {
	rtt      time.Duration // the last keep-alive's round trip
	timeouts int           // TCP connects in a row that timed out
}

// DialerOptions configure a Dialer. The zero value means the user's usual set-up.
type DialerOptions struct {
	// ConfigFiles replaces the ssh_config files consulted (in order).
	ConfigFiles []string
	// Home replaces the home folder used for ~ and the default key and known_hosts files.
	Home string
	// User, if set, logs in as this user whatever ssh_config says.
	User string
	Logf func(format string, args ...any)
	// Liveness, if set, is how long a connection may go without answering before it is
	// given up: where ssh_config sets no ServerAliveInterval, a keep-alive goes every
	// Liveness/2 and the connection is closed when one is not answered within Liveness;
	// and a TCP connect waits Liveness/2 at most (ConnectTimeout still bounds the rest of
	// the dial). An agent's links use its election timeout: a connection that stalled
	// while its packets were dropped is redialled, a fresh SYN at once, rather than left
	// to TCP's retransmission backoff, which outlasts the partition by seconds. On a link
	// whose round trip was measured long, both waits stretch to a few round trips, and a
	// connect that timed out waits twice as long the next time: a link whose round trip
	// nears Liveness/2 must still connect.
	Liveness time.Duration
	// OnRTT, if set, is told the round trip of each keep-alive answered on a connection
	// to alias (as Dial was given it): the link's round trip as ssh sees it, sshd
	// answering at once.
	OnRTT func(alias string, rtt time.Duration)
}

// NewDialer reads the ssh_config files.
func NewDialer(opt DialerOptions) (*Dialer, error) {
	home := opt.Home
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return nil, fmt.Errorf("find home folder: %w", err)
		}
	}
	files := opt.ConfigFiles
	if files == nil {
		files = []string{filepath.Join(home, ".ssh", "config"), "/etc/ssh/ssh_config"}
	}
	cfg, err := loadSSHConfigs(files, home)
	if err != nil {
		return nil, err
	}
	return &Dialer{cfg: cfg, user: opt.User, logf: opt.Logf, liveness: opt.Liveness, onRTT: opt.OnRTT}, nil
}

// HostKeyError is a host key that does not match known_hosts: possibly an attack.
type HostKeyError struct {
	Host, Addr string
	File       string
	Line       int
	Err        error
}

func (e *HostKeyError) Error() string {
	return fmt.Sprintf("REFUSED: the host key of %s (%s) has CHANGED since it was recorded in %s line %d. "+
		"Someone may be intercepting the connection, or the host was reinstalled. If you know it was "+
		"reinstalled, remove the old key with `ssh-keygen -R %s -f %s` and connect again.",
		e.Host, e.Addr, e.File, e.Line, knownhosts.Normalize(e.Addr), e.File)
}

func (e *HostKeyError) Unwrap() error { return e.Err }

// knownHostsMu serializes appends to known_hosts files within this process.
var knownHostsMu sync.Mutex

// hostKeyCallback checks host keys as OpenSSH does under the resolved
// StrictHostKeyChecking: accept-new records an unknown key and refuses a changed one.
func (d *Dialer) hostKeyCallback(h hostSettings) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if h.strict == "no" {
			return nil
		}
		knownHostsMu.Lock()
		defer knownHostsMu.Unlock()
		var existing []string
		for _, f := range h.knownHosts {
			if _, err := os.Stat(f); err == nil {
				existing = append(existing, f)
			}
		}
		if len(existing) > 0 {
			check, err := knownhosts.New(existing...)
			if err != nil {
				return fmt.Errorf("read known hosts: %w", err)
			}
			err = check(hostname, remote, key)
			var ke *knownhosts.KeyError
			var re *knownhosts.RevokedError
			switch {
			case err == nil:
				return nil
			case errors.As(err, &re):
				return fmt.Errorf("REFUSED: the host key of %s is marked revoked in %s line %d", h.alias, re.Revoked.Filename, re.Revoked.Line)
			case errors.As(err, &ke) && len(ke.Want) > 0:
				w := ke.Want[0]
				return &HostKeyError{Host: h.alias, Addr: hostname, File: w.Filename, Line: w.Line, Err: err}
			case errors.As(err, &ke):
				// unknown: fall through
			default:
				return err
			}
		}
		if h.strict == "yes" || len(h.knownHosts) == 0 {
			return fmt.Errorf("REFUSED: the host key of %s (%s) is not in known_hosts and StrictHostKeyChecking is yes; "+
				"add it first, e.g. `ssh-keyscan -H %s >> ~/.ssh/known_hosts` after checking its fingerprint %s",
				h.alias, hostname, h.hostname, ssh.FingerprintSHA256(key))
		}
		file := h.knownHosts[0]
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return fmt.Errorf("record host key of %s: %w", h.alias, err)
		}
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("record host key of %s: %w", h.alias, err)
		}
		defer f.Close()
		if _, err := fmt.Fprintln(f, knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key)); err != nil {
			return fmt.Errorf("record host key of %s in %s: %w", h.alias, file, err)
		}
		if d.logf != nil {
			d.logf("recorded the new host key of %s (%s) in %s", h.alias, ssh.FingerprintSHA256(key), file)
		}
		return nil
	}
}

// authMethods offers the keys of a running ssh-agent (IdentityAgent, by default
// SSH_AUTH_SOCK), then the identity files.
func (d *Dialer) authMethods(h hostSettings) ([]ssh.AuthMethod, func()) {
	var signers []ssh.Signer
	cleanup := func() {}
	if sock := h.identityAgent; sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			if s, err := agent.NewClient(c).Signers(); err == nil {
				signers = append(signers, s...)
			}
			cleanup = func() { c.Close() }
		}
	}
	for _, f := range h.identityFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // the default files need not exist
		}
		s, err := ssh.ParsePrivateKey(data)
		if err != nil {
			if d.logf != nil {
				d.logf("skipping identity file %s: %v (keys with a passphrase must be loaded into ssh-agent)", f, err)
			}
			continue
		}
		signers = append(signers, s)
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, cleanup
}

// Dial connects to alias, through its ProxyJump host if it has one.
func (d *Dialer) Dial(ctx context.Context, alias string) (*ssh.Client, error) {
	return d.dial(ctx, alias, 0)
}

func (d *Dialer) dial(ctx context.Context, alias string, depth int) (*ssh.Client, error) {
	if depth > 4 {
		return nil, fmt.Errorf("ssh to %s: ProxyJump chain too long", alias)
	}
	h, err := d.cfg.resolve(alias)
	if err != nil {
		return nil, err
	}
	if d.user != "" && depth == 0 {
		h.user = d.user
	}
	auth, cleanup := d.authMethods(h)
	defer cleanup()
	cc := &ssh.ClientConfig{
		User:            h.user,
		Auth:            auth,
		HostKeyCallback: d.hostKeyCallback(h),
		Timeout:         h.connectTimeout,
	}
	ctx, cancel := context.WithTimeout(ctx, h.connectTimeout)
	defer cancel()

	var nc net.Conn
	if h.proxyJump != "" {
		jumps := strings.Split(h.proxyJump, ",")
		jump, err := d.dial(ctx, parseJump(jumps[len(jumps)-1]), depth+1)
		if err != nil {
			return nil, fmt.Errorf("ssh to %s via %s: %w", alias, h.proxyJump, err)
		}
		nc, err = dialContextVia(ctx, jump, h.addr())
		if err != nil {
			jump.Close()
			return nil, fmt.Errorf("ssh to %s via %s: %w", alias, h.proxyJump, err)
		}
	} else {
		nd := net.Dialer{}
		if h.bindAddress != "" {
			nd.LocalAddr = &net.TCPAddr{IP: net.ParseIP(h.bindAddress)}
			if nd.LocalAddr.(*net.TCPAddr).IP == nil {
				return nil, fmt.Errorf("ssh config for %s: BindAddress %q is not an address", alias, h.bindAddress)
			}
		}
		tctx := ctx
		if d.liveness > 0 && depth == 0 {
			var tcancel context.CancelFunc
			tctx, tcancel = context.WithTimeout(ctx, d.connectWait(alias, h.connectTimeout))
			defer tcancel()
		}
		nc, err = nd.DialContext(tctx, "tcp", h.addr())
		if d.liveness > 0 && depth == 0 {
			d.connected(alias, err == nil || ctx.Err() != nil || tctx.Err() == nil)
		}
		if err != nil {
			return nil, fmt.Errorf("ssh to %s (%s): %w", alias, h.addr(), err)
		}
	}
	// the handshake honours ctx too: a host that accepts TCP but never speaks SSH
	counted := &countingConn{Conn: nc}
	nc = counted
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	conn, chans, reqs, err := ssh.NewClientConn(nc, h.addr(), cc)
	stop()
	if err != nil {
		nc.Close()
		var hk *HostKeyError
		if errors.As(err, &hk) {
			return nil, hk
		}
		return nil, fmt.Errorf("ssh to %s (%s as %s): %w", alias, h.addr(), h.user, err)
	}
	nc.SetDeadline(time.Time{})
	client := ssh.NewClient(conn, chans, reqs)
	var rtt func(time.Duration)
	if depth == 0 && (d.onRTT != nil || d.liveness > 0) {
		rtt = func(r time.Duration) {
			d.measured(alias, r)
			if d.onRTT != nil {
				d.onRTT(alias, r)
			}
		}
	}
	switch {
	case h.aliveInterval > 0:
		go keepAlive(client, h.aliveInterval, h.aliveInterval, h.aliveCountMax, rtt, counted.read.Load)
	case d.liveness > 0 && depth == 0:
		go keepAlive(client, d.liveness/2, max(d.liveness, 3*d.link(alias).rtt), 1, rtt, counted.read.Load)
	}
	return client, nil
}

// link is what the Dialer remembers of alias (a copy).
func (d *Dialer) link(alias string) linkTiming {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l := d.links[alias]; l != nil {
		return *l
	}
	return linkTiming{}
}

func (d *Dialer) update(alias string, f func(*linkTiming)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.links == nil {
		d.links = map[string]*linkTiming{}
	}
	l := d.links[alias]
	if l == nil {
		if len(d.links) >= 1024 {
			clear(d.links) // bounded, whatever the aliases dialled
		}
		l = &linkTiming{}
		d.links[alias] = l
	}
	f(l)
}

func (d *Dialer) measured(alias string, rtt time.Duration) {
	d.update(alias, func(l *linkTiming) { l.rtt = rtt })
}

// connected records how a TCP connect to alias ended: ok, or timed out.
func (d *Dialer) connected(alias string, ok bool) {
	d.update(alias, func(l *linkTiming) {
		if ok {
			l.timeouts = 0
		} else {
			l.timeouts = min(l.timeouts+1, 16)
		}
	})
}

func (d *Dialer) connectWait(alias string, limit time.Duration) time.Duration {
	l := d.link(alias)
	return connectWait(d.liveness, l.rtt, l.timeouts, limit)
}

// connectWait is how long a TCP connect may take on a link governed by liveness whose
// last round trip was rtt, after timeouts connects in a row that timed out: half the
// liveness (a fresh SYN sooner than TCP's own retry), at least 4 round trips, doubled for
// each timeout, never more than limit (ConnectTimeout).
func connectWait(liveness, rtt time.Duration, timeouts int, limit time.Duration) time.Duration {
	w := max(liveness/2, 200*time.Millisecond, 4*rtt)
	for range timeouts {
		if w >= limit {
			break
		}
		w *= 2
	}
	return min(w, limit)
}

// parseJump turns a ProxyJump element ([user@]host[:port]) into something resolve takes;
// user and port in the element are only honoured through the jump host's own config.
func parseJump(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "@"); i >= 0 {
		s = s[i+1:]
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		return host
	}
	return s
}

func dialContextVia(ctx context.Context, jump *ssh.Client, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := jump.Dial("tcp", addr)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return &jumpConn{Conn: r.c, jump: jump}, nil
	case <-ctx.Done():
		jump.Close()
		return nil, ctx.Err()
	}
}

// jumpConn closes the jump host's connection with the tunnelled one.
type jumpConn struct {
	net.Conn
	jump *ssh.Client
}

func (c *jumpConn) Close() error {
	err := c.Conn.Close()
	c.jump.Close()
	return err
}

// countingConn counts the bytes read from a connection: keepAlive's sign of life.
type countingConn struct {
	net.Conn
	read atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

// keepAlive sends OpenSSH keep-alives every interval and closes the connection after
// countMax in a row not answered within wait (ServerAliveInterval/ServerAliveCountMax:
// wait is the interval), unless bytes came in meanwhile (read counts them): a keep-alive
// queued behind megabytes of a snapshot on a slow link is answered late, while the other
// end's window adjustments show the link alive. rtt, if set, is told each answered one's
// round trip.
func keepAlive(c *ssh.Client, interval, wait time.Duration, countMax int, rtt func(time.Duration), read func() int64) {
	missed := 0
	t := time.NewTicker(interval)
	defer t.Stop()
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		answered := make(chan struct{})
		sent, before := time.Now(), read()
		go func() {
			if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err == nil {
				close(answered)
			}
		}()
		select {
		case <-answered:
			missed = 0
			if rtt != nil {
				rtt(time.Since(sent))
			}
		case <-time.After(wait):
			if read() != before {
				missed = 0 // late, but the link carries bytes in
				continue
			}
			missed++
			if missed >= countMax {
				c.Close()
				return
			}
		case <-done:
			return
		}
	}
}
