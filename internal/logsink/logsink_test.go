package logsink

import (
	"log"
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
	lg := log.New(k, "", log.LstdFlags)
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
	log.New(k, "", log.LstdFlags).Printf("hello syslog")
	l.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := l.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); !strings.Contains(got, "lite-raft") || !strings.Contains(got, "hello syslog") {
		t.Fatalf("syslog got %q", got)
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
	log.New(k, "", log.LstdFlags).Printf("to stderr")
	w.Close()
	b := make([]byte, 200)
	n, _ := r.Read(b)
	if !strings.Contains(string(b[:n]), "to stderr") {
		t.Fatalf("stderr got %q", b[:n])
	}
}
