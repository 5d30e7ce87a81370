package logsink

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for v, want := range map[string]Setting{"": {Kind: "file"}, "file\n": {Kind: "file"}, "stderr": {Kind: "stderr"},
		"syslog": {Kind: "syslog"}, "syslog /run/x.sock": {Kind: "syslog", Addr: "/run/x.sock"}, "syslog udp:localhost:514": {Kind: "syslog", Addr: "udp:localhost:514"}} {
		if got, err := Parse(v); err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", v, got, err, want)
		}
	}
	for _, v := range []string{"journal", "syslog relative.sock", "file x", "syslog a b"} {
		if _, err := Parse(v); err == nil {
			t.Errorf("Parse(%q) accepted", v)
		}
	}
}

// TestFileReopen: after the file is moved aside (logrotate), Reopen makes lines go to a
// new file at the path; each keeps its timestamp; a line longer than MaxLine is cut.
func TestFileReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	k, err := Open(Setting{Kind: "file"}, path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	lg := Logger(k)
	lg.Printf("before")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	lg.Printf("moved, not reopened")
	if err := k.Reopen(); err != nil {
		t.Fatal(err)
	}
	lg.Printf("after %s", strings.Repeat("x", 2*MaxLine))
	old, _ := os.ReadFile(path + ".1")
	now, _ := os.ReadFile(path)
	if !strings.Contains(string(old), "before") || !strings.Contains(string(old), "moved, not reopened") || strings.Contains(string(old), "after") {
		t.Fatalf("the rotated file: %q", old)
	}
	line := strings.TrimSuffix(string(now), "\n")
	if !strings.Contains(line, "after x") || strings.Count(line, "\n") != 0 || len(line) > MaxLine+100 ||
		!strings.HasSuffix(line, "bytes cut)") || !strings.HasPrefix(line, time.Now().Format("2006/01/02")) {
		t.Fatalf("the new file: %d bytes, %.80q...%q", len(now), now, now[max(0, len(now)-40):])
	}
}

// TestSyslogSocket: with syslog PATH, lines reach that unix datagram socket, tagged.
func TestSyslogSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	k, err := Open(Setting{Kind: "syslog", Addr: sock}, "", "lite-raft")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	lg := Logger(k)
	lg.Printf("hello syslog")
	lg.Printf(Warn + "a warning")
	lg.Printf(Debug + "dropped at info")
	lg.Printf("after the debug line")
	l.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := l.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	// daemon facility (3): info is <30>, warning <28>
	if got := string(buf[:n]); !strings.HasPrefix(got, "<30>") || !strings.Contains(got, "lite-raft") || !strings.Contains(got, "hello syslog") {
		t.Fatalf("syslog got %q", got)
	}
	if n, err = l.Read(buf); err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); !strings.HasPrefix(got, "<28>") || !strings.Contains(got, "warning: a warning") {
		t.Fatalf("syslog got %q for a warning", got)
	}
	// the next datagram is the line after the debug one: the debug line never went
	if n, err = l.Read(buf); err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); !strings.Contains(got, "after the debug line") {
		t.Fatalf("syslog got %q after a warning, want the line after the dropped debug one", got)
	}
	if _, err := Open(Setting{Kind: "syslog", Addr: filepath.Join(t.TempDir(), "none.sock")}, "", "x"); err == nil {
		t.Fatal("a syslog socket that does not exist was opened")
	}
}

// TestStderr: with stderr, lines go to the process's standard error.
func TestStderr(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	k, err := Open(Setting{Kind: "stderr"}, "", "")
	os.Stderr = saved
	if err != nil {
		t.Fatal(err)
	}
	Logger(k).Printf("to stderr")
	w.Close()
	b := make([]byte, 200)
	n, _ := r.Read(b)
	if !strings.Contains(string(b[:n]), "to stderr") {
		t.Fatalf("stderr got %q", b[:n])
	}
}

func TestParseLevel(t *testing.T) {
	for v, want := range map[string]Level{"": LevelInfo, "info\n": LevelInfo, "warn": LevelWarn, "warning": LevelWarn, "error": LevelError, "debug": LevelDebug} {
		if got, err := ParseLevel(v); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"verbose", "3", "info debug"} {
		if _, err := ParseLevel(v); err == nil {
			t.Errorf("ParseLevel(%q) accepted", v)
		}
	}
}

// TestLevels: a line's marker sets its level, which the sink shows as a word after the
// timestamp and drops below its own; a line without one is info; a marker alone in a
// line, or what looks like one later in it, is text.
func TestLevels(t *testing.T) {
	var b strings.Builder
	k := To(&b)
	k.now = func() time.Time { return time.Date(2026, 12, 7, 9, 0, 0, 1000, time.Local) }
	lg := Logger(k)
	lg.Printf("plain <4>")
	lg.Printf(Warn + "careful")
	lg.Printf(Error + "broken")
	lg.Printf(Debug + "detail")
	k.SetLevel(LevelWarn)
	lg.Printf("plain, dropped")
	lg.Printf(Warn + "still careful")
	k.SetLevel(LevelDebug)
	lg.Printf(Debug + "detail, kept")
	want := "2026/12/07 09:00:00.000001 plain <4>\n" +
		"2026/12/07 09:00:00.000001 warning: careful\n" +
		"2026/12/07 09:00:00.000001 error: broken\n" +
		"2026/12/07 09:00:00.000001 warning: still careful\n" +
		"2026/12/07 09:00:00.000001 debug: detail, kept\n"
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
