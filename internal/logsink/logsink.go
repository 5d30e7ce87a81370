package logsink

import (
	"bytes"
	"fmt"
	"io"
	"log/syslog"
	"os"
	"strings"
	"sync"
)

// MaxLine bounds one line written (the rest is cut, and the cut said).
const MaxLine = 8 << 10

// Setting is a parsed conf/log value.
type Setting struct {
	Kind string // "file", "stderr" or "syslog"
	// Addr is syslog's: "" the local socket, a path a unix socket, udp:HOST:PORT.
	Addr string
}

// Parse reads a conf/log value: file, stderr, syslog, syslog PATH or syslog udp:HOST:PORT
// ("" is file).
func Parse(v string) (Setting, error) {
	f := strings.Fields(v)
	switch {
	case len(f) == 0 || (len(f) == 1 && f[0] == "file"):
		return Setting{Kind: "file"}, nil
	case len(f) == 1 && f[0] == "stderr":
		return Setting{Kind: "stderr"}, nil
	case f[0] == "syslog" && len(f) <= 2:
		s := Setting{Kind: "syslog"}
		if len(f) == 2 {
			s.Addr = f[1]
			if !strings.HasPrefix(s.Addr, "/") && !strings.HasPrefix(s.Addr, "udp:") {
				return s, fmt.Errorf("log %q: syslog takes a socket path or udp:HOST:PORT", v)
			}
		}
		return s, nil
	}
	return Setting{}, fmt.Errorf("log %q: want file, stderr, syslog, syslog PATH or syslog udp:HOST:PORT", v)
}

// Sink is an io.Writer for a log.Logger. It is safe for concurrent use.
type Sink struct {
	mu   sync.Mutex
	set  Setting
	path string
	f    *os.File
	sys  *syslog.Writer
	w    io.Writer
}

// Open opens the sink s names: path is the file's (kind file), tag syslog's.
func Open(s Setting, path, tag string) (*Sink, error) {
	k := &Sink{set: s, path: path}
	switch s.Kind {
	case "stderr":
		k.w = os.Stderr
	case "syslog":
		var err error
		switch {
		case s.Addr == "":
			k.sys, err = syslog.New(syslog.LOG_INFO|syslog.LOG_DAEMON, tag)
		case strings.HasPrefix(s.Addr, "udp:"):
			k.sys, err = syslog.Dial("udp", strings.TrimPrefix(s.Addr, "udp:"), syslog.LOG_INFO|syslog.LOG_DAEMON, tag)
		default:
			k.sys, err = syslog.Dial("unixgram", s.Addr, syslog.LOG_INFO|syslog.LOG_DAEMON, tag)
		}
		if err != nil {
			return nil, fmt.Errorf("open syslog %s: %w", orLocal(s.Addr), err)
		}
		k.w = k.sys
	default:
		if err := k.Reopen(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func orLocal(addr string) string {
	if addr == "" {
		return "(the local socket)"
	}
	return addr
}

// Reopen opens the file again (SIGHUP, after logrotate moved it aside); for the
// other kinds it does nothing.
func (k *Sink) Reopen() error {
	if k.set.Kind != "file" && k.set.Kind != "" {
		return nil
	}
	f, err := os.OpenFile(k.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open log %s: %w", k.path, err)
	}
	k.mu.Lock()
	old := k.f
	k.f, k.w = f, f
	k.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// Write writes one log line (the log package writes a line a call), cut at MaxLine.
func (k *Sink) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > MaxLine {
		cut := fmt.Appendf(nil, "... (%d bytes cut)\n", len(p)-MaxLine)
		p = append(bytes.Clone(p[:MaxLine]), cut...)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := k.w.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}

// Close closes the file or the syslog connection.
func (k *Sink) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.sys != nil:
		return k.sys.Close()
	case k.f != nil:
		return k.f.Close()
	}
	return nil
}
