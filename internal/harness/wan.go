package harness

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The kernel here has no netem, so a long link is made in user space: in the source
// host's network namespace, an iptables REDIRECT sends its new connections to a
// destination host's delayed port (ssh's, 22, unless told others) to a proxy listening on
// the source's loopback, which the test process runs there (its sockets made in that
// namespace) and which dials the destination from that namespace too (marked, so the
// redirect lets it through). It holds each chunk it reads, in either direction, until the
// link's delay (plus a jitter drawn each time) has passed since it was read, and never
// releases one before the one read before it: the bytes keep their order and a round trip
// over the connection costs twice the delay. A connection made through a proxy takes a
// later change of its link's delay at once (each chunk reads the delay when it arrives).
//
// It ends TCP itself: a long link's small receive window and slow start are not there;
// each direction holds at most wanBuffered chunks, which is its window.
const (
	wanMark     = 0x2d  // the proxy's own connections, which the redirect leaves alone
	wanPortBase = 20000 // + the destination host's index: the ssh proxy's port on the source
	wanBuffered = 512   // chunks of up to 32 KiB in flight per direction
	sshPort     = 22
)

// wanKey names one delayed link and destination port: {from index, to index, port}.
type wanKey [3]int

// wanLink is the proxy of the connections from one host to one port of another.
type wanLink struct {
	from, to *Host
	port     int // the destination port
	ln       net.Listener
	delay    atomic.Int64 // one way, ns
	jitter   atomic.Int64 // ns, the most added to a chunk's delay
}

// SetLinkDelay delays the ssh connections from from to to by d each way (a round trip:
// 2d), plus up to jitter drawn for each chunk. It applies to connections opened after it
// (set it before the agents start); 0 releases each chunk at once (the proxy stays).
func (c *Cluster) SetLinkDelay(from, to *Host, d, jitter time.Duration) error {
	return c.SetLinkDelayPorts(from, to, d, jitter, sshPort)
}

// SetLinkDelayPorts is SetLinkDelay for the connections from from to the given TCP ports
// of to (etcd's client and peer ports, say; 22 is ssh's): a proxy of its own for each
// port. Ports not named keep the delay they had.
func (c *Cluster) SetLinkDelayPorts(from, to *Host, d, jitter time.Duration, ports ...int) error {
	if from == nil || to == nil || from.c != c || to.c != c || from == to {
		return errors.New("harness: SetLinkDelay: two hosts of this cluster")
	}
	if len(ports) == 0 {
		return errors.New("harness: SetLinkDelayPorts: no port")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, port := range ports {
		if port <= 0 || port > 65535 {
			return fmt.Errorf("harness: SetLinkDelayPorts: port %d", port)
		}
		key := wanKey{from.index, to.index, port}
		l := c.wan[key]
		if l == nil {
			var err error
			if l, err = c.startWANLink(from, to, port); err != nil {
				return err
			}
			c.wan[key] = l
		}
		l.delay.Store(int64(d))
		l.jitter.Store(int64(jitter))
	}
	return nil
}

// SetDelay delays every link between two hosts of the cluster as SetLinkDelay does: a
// round trip between any two costs 2d.
func (c *Cluster) SetDelay(d, jitter time.Duration) error {
	return c.SetDelayPorts(d, jitter, sshPort)
}

// SetDelayPorts is SetDelay for the given destination ports (SetLinkDelayPorts).
func (c *Cluster) SetDelayPorts(d, jitter time.Duration, ports ...int) error {
	var errs []error
	for _, a := range c.snapshotHosts() {
		for _, b := range c.snapshotHosts() {
			if a != b {
				errs = append(errs, c.SetLinkDelayPorts(a, b, d, jitter, ports...))
			}
		}
	}
	return errors.Join(errs...)
}

// startWANLink starts the proxy of from → to:port and redirects from's connections to
// that port into it. ssh's proxy listens on a fixed port (wanPortBase + to's index, as it
// always has); another port's on one the kernel picks, so that no choice of ports collides.
func (c *Cluster) startWANLink(from, to *Host, port int) (*wanLink, error) {
	l := &wanLink{from: from, to: to, port: port}
	listen := 0
	if port == sshPort {
		listen = wanPortBase + to.index
	}
	err := inNetns(from.netns, func() (err error) {
		l.ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", listen))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("harness: %s → %s:%d: listen for the delay: %w", from.Name, to.Name, port, err)
	}
	listen = l.ln.Addr().(*net.TCPAddr).Port
	rules := fmt.Sprintf("*nat\n-A OUTPUT -p tcp -d %s/32 --dport %d -m mark ! --mark %#x -j REDIRECT --to-ports %d\nCOMMIT\n", to.Addr, port, wanMark, listen)
	if err := from.iptablesRestore(rules); err != nil {
		l.ln.Close()
		return nil, err
	}
	go l.serve()
	return l, nil
}

func (l *wanLink) serve() {
	for {
		in, err := l.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer in.Close()
			var out net.Conn
			err := inNetns(l.from.netns, func() (err error) {
				d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
					var serr error
					if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, wanMark) }); err != nil {
						return err
					}
					return serr
				}}
				out, err = d.Dial("tcp", net.JoinHostPort(l.to.Addr, strconv.Itoa(l.port)))
				return err
			})
			if err != nil {
				return // the caller sees its connection closed, as with a host that is down
			}
			defer out.Close()
			done := make(chan struct{}, 2)
			go func() { l.relay(out, in); done <- struct{}{} }()
			go func() { l.relay(in, out); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

// relay copies src to dst, each chunk released its delay after it was read and never
// before the chunk read before it; at src's end it closes dst for writing.
func (l *wanLink) relay(dst, src net.Conn) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	q := make(chan chunk, wanBuffered)
	go func() {
		defer close(q)
		var last time.Time
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				at := time.Now().Add(time.Duration(l.delay.Load()))
				if j := l.jitter.Load(); j > 0 {
					at = at.Add(time.Duration(rand.Int64N(j + 1)))
				}
				if at.Before(last) {
					at = last // never before the chunk before it: the bytes keep their order
				}
				last = at
				q <- chunk{bytes.Clone(buf[:n]), at} // what was read, not the 32 KiB it was read into
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		if d := time.Until(c.at); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	for range q { // drain: the reader ends when src does
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	} else {
		dst.Close()
	}
}

// closeWAN stops every proxy (the namespaces and their rules go with the cluster).
func (c *Cluster) closeWAN() {
	c.mu.Lock()
	links := c.wan
	c.wan = map[wanKey]*wanLink{}
	c.mu.Unlock()
	for _, l := range links {
		l.ln.Close()
	}
}

// inNetns runs f on a thread in network namespace name (under /run/netns): a socket
// made there stays there. The thread goes back to the namespace it was in; if it cannot,
// it is never used again (it stays locked, and the runtime ends it with the goroutine).
func inNetns(name string, f func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join(netnsDir, name))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter %s: %w", name, err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return errors.Join(ferr, fmt.Errorf("leave %s: %w", name, err)) // the thread stays locked: dropped
	}
	runtime.UnlockOSThread()
	return ferr
}
