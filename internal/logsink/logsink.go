package logsink

import (
	"fmt"
	"io"
	"log"
	"log/syslog"
	"os"
	"strings"
	"sync"
	"time"
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

// Level is a line's severity, numbered as syslog numbers them (lower is more severe).
type Level int

// The levels a message can be logged at, and conf/log_level's words for them.
const (
	LevelError Level = 3
	LevelWarn  Level = 4
	LevelInfo  Level = 6
	LevelDebug Level = 7
)

// A message that starts with one of these markers is logged at that level; one without a
// marker at LevelInfo. The markers are syslog's own "<N>" (and what journald reads at the
// start of a line), so a *log.Logger can carry levels without a logging library:
// lg.Printf(logsink.Warn+"cannot reach %s", host).
const (
	Error = "<3>"
	Warn  = "<4>"
	Debug = "<7>"
)

// ParseLevel reads a conf/log_level value: error, warn (or warning), info or debug ("" is
// info).
func ParseLevel(v string) (Level, error) {
	switch strings.TrimSpace(v) {
	case "", "info":
		return LevelInfo, nil
	case "error":
		return LevelError, nil
	case "warn", "warning":
		return LevelWarn, nil
	case "debug":
		return LevelDebug, nil
	}
	return 0, fmt.Errorf("log_level %q: want error, warn, info or debug", strings.TrimSpace(v))
}

func (l Level) String() string {
	switch l {
	case LevelError:
		return "error"
	case LevelWarn:
		return "warn"
	case LevelDebug:
		return "debug"
	}
	return "info"
}

// word is what a line at this level says after its timestamp in a file or on a terminal.
func (l Level) word() string {
	switch {
	case l <= LevelError:
		return "error: "
	case l == LevelWarn:
		return "warning: "
	case l == LevelDebug:
		return "debug: "
	}
	return ""
}

// Sink is an io.Writer for a log.Logger made by Logger. It stamps each line with the time
// itself (the logger has no flags): it must see a message's level marker first. It is safe
// for concurrent use.
type Sink struct {
	mu   sync.Mutex
	set  Setting
	min  Level
	path string
	f    *os.File
	sys  *syslog.Writer
	w    io.Writer
	// journal: standard error is systemd's journal stream, which takes a leading "<N>" as
	// the line's priority
	journal bool
	now     func() time.Time
}

// Logger is a logger writing to k; its lines are stamped by k.
func Logger(k *Sink) *log.Logger { return log.New(k, "", 0) }

// SetLevel drops, from now on, the lines less severe than min.
func (k *Sink) SetLevel(min Level) {
	k.mu.Lock()
	k.min = min
	k.mu.Unlock()
}

// Open opens the sink s names: path is the file's (kind file), tag syslog's.
func Open(s Setting, path, tag string) (*Sink, error) {
	k := &Sink{set: s, path: path, min: LevelInfo, now: time.Now}
	switch s.Kind {
	case "stderr":
		k.w = os.Stderr
		k.journal = os.Getenv("JOURNAL_STREAM") != ""
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

// To is a sink writing to w, as a file sink would (a monitor's standard output, which
// its supervisor writes to a file).
func To(w io.Writer) *Sink {
	return &Sink{set: Setting{Kind: "writer"}, w: w, min: LevelInfo, now: time.Now}
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

// Write writes one log line (the log package writes a line a call), stamped with the time
// and its level's word, cut at MaxLine; a line less severe than the sink's level is
// dropped.
func (k *Sink) Write(p []byte) (int, error) {
	n := len(p)
	level, msg := LevelInfo, p
	if len(p) >= 3 && p[0] == '<' && p[1] >= '0' && p[1] <= '7' && p[2] == '>' {
		level, msg = Level(p[1]-'0'), p[3:]
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if level > k.min {
		return n, nil
	}
	if len(msg) > 0 && msg[len(msg)-1] == '\n' {
		msg = msg[:len(msg)-1]
	}
	var cut string
	if len(msg) > MaxLine {
		cut = fmt.Sprintf("... (%d bytes cut)", len(msg)-MaxLine)
		msg = msg[:MaxLine]
	}
	line := make([]byte, 0, len(msg)+len(cut)+48)
	if k.journal {
		line = append(line, '<', byte('0'+level), '>')
	}
	line = k.now().AppendFormat(line, "2006/01/02 15:04:05.000000 ")
	line = append(line, level.word()...)
	line = append(line, msg...)
	line = append(line, cut...)
	if k.sys != nil {
		return n, k.toSyslog(level, string(line))
	}
	if _, err := k.w.Write(append(line, '\n')); err != nil {
		return 0, err
	}
	return n, nil
}

// toSyslog sends a line with its level as the syslog severity.
func (k *Sink) toSyslog(level Level, line string) error {
	switch {
	case level <= LevelError:
		return k.sys.Err(line)
	case level == LevelWarn:
		return k.sys.Warning(line)
	case level == LevelDebug:
		return k.sys.Debug(line)
	}
	return k.sys.Info(line)
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
