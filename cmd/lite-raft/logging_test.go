package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"lite-raft/conf"
	"lite-raft/raftcore"
	"lite-raft/statefile"
)

// lockedBuffer is a bytes.Buffer a process writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// runAgentProcess starts `lite-raft agent --foreground` on a one-member state in dir as a
// process of its own, with conf/log set to logConf ("" none), and stops it at the end.
func runAgentProcess(t *testing.T, dir, logConf string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	files := map[string]string{}
	if logConf != "" {
		files["log"] = logConf
	}
	return runAgentWith(t, dir, files)
}

// runAgentWith starts an agent as runAgentProcess does, with these conf/ files; the
// members are this host and those named in peers (a file of files, not in conf/: "a b").
func runAgentWith(t *testing.T, dir string, files map[string]string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	me, _ := conf.ShortHostname()
	voters := []raftcore.NodeID{raftcore.NodeID(me)}
	for _, p := range strings.Fields(files["peers"]) {
		voters = append(voters, raftcore.NodeID(p))
	}
	os.MkdirAll(filepath.Join(dir, "conf"), 0o755)
	for name, v := range files {
		if name != "peers" {
			os.WriteFile(filepath.Join(dir, "conf", name), []byte(v+"\n"), 0o644)
		}
	}
	if err := statefile.Bootstrap(dir, raftcore.Membership{Voters: voters}); err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "--dir", dir, "agent", "--foreground")
	cmd.Env = append(os.Environ(), "LITE_RAFT_TEST_AS_MAIN=1")
	var stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	return cmd, &stderr
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// TestAgentLogDestinations (issue 28): the agent's lines go to message-log/ by default
// and move to a new file on SIGHUP, which no longer ends the agent; with conf/log stderr
// they go to its standard error, with syslog PATH to that socket.
func TestAgentLogDestinations(t *testing.T) {
	dir := t.TempDir()
	cmd, _ := runAgentProcess(t, dir, "")
	path := filepath.Join(dir, "message-log", "lite-raft-server.log")
	has := func(p, s string) func() bool {
		return func() bool { b, _ := os.ReadFile(p); return strings.Contains(string(b), s) }
	}
	waitFor(t, "the agent's start in its log", has(path, " started: "))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "SIGHUP: log reopened in a new file", has(path, "SIGHUP: log reopened"))
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the agent ended on SIGHUP: %v", err)
	}
	if has(path, " started: ")() || !has(path+".1", " started: ")() {
		t.Fatal("lines before the SIGHUP are not all in the rotated file")
	}

	_, stderr := runAgentProcess(t, t.TempDir(), "stderr")
	waitFor(t, "the agent's start on its standard error", func() bool { return strings.Contains(stderr.String(), " started: ") })

	sock := filepath.Join(t.TempDir(), "log.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	runAgentProcess(t, t.TempDir(), "syslog "+sock)
	l.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 8192)
	for {
		n, err := l.Read(buf)
		if err != nil {
			t.Fatalf("no start line on the syslog socket: %v", err)
		}
		if got := string(buf[:n]); strings.Contains(got, "lite-raft") && strings.Contains(got, " started: ") {
			break
		}
	}
}

// TestAgentLogLevel (issue 28): conf/log_level drops the lines less severe than it. An
// agent whose other member cannot be reached logs a warning ("cannot reach"), the link's
// state at debug and its start at info: warn keeps only the first, debug all three, each
// line stamped and saying its level. Under systemd (JOURNAL_STREAM set), each line also
// starts with its syslog priority, which journald takes and strips.
func TestAgentLogLevel(t *testing.T) {
	const peer = "lite-raft-test-no-such-host.invalid"
	for _, tc := range []struct {
		level, journal string
		want, not      []string
	}{
		{"warn", "", []string{"warning: cannot reach " + peer}, []string{" started: ", "debug: "}},
		{"debug", "", []string{" started: ", "warning: cannot reach " + peer, `debug: request get "some/key"`}, nil},
		{"info", "8:9", []string{"<6>" + time.Now().Format("2006/01/02"), "<4>" + time.Now().Format("2006/01/02")}, []string{"<7>", "debug: "}},
	} {
		t.Run(tc.level, func(t *testing.T) {
			if tc.journal != "" {
				t.Setenv("JOURNAL_STREAM", tc.journal)
			}
			dir := t.TempDir()
			cmd, stderr := runAgentWith(t, dir, map[string]string{"log": "stderr", "log_level": tc.level, "peers": peer, "election_timeout": "0.3"})
			if tc.level == "debug" {
				waitFor(t, "the agent's start", func() bool { return strings.Contains(stderr.String(), " started: ") })
				// no leader: the get is refused, but the agent saw it
				out, err := exec.Command("sh", "-c", asMain(t)+" --dir "+dir+" client --timeout 1 get some/key 2>&1").CombinedOutput()
				t.Logf("get: %v %s", err, out)
			}
			waitFor(t, "a line of "+tc.want[len(tc.want)-1], func() bool { return strings.Contains(stderr.String(), tc.want[len(tc.want)-1]) })
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			out := stderr.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("log_level %s: no %q in:\n%s", tc.level, w, out)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("log_level %s: %q in:\n%s", tc.level, n, out)
				}
			}
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if len(l) > 3 && l[0] == '<' && l[2] == '>' {
					l = l[3:]
				}
				if !strings.HasPrefix(l, time.Now().Format("2006/01/")) {
					t.Errorf("a line without its timestamp: %q", l)
				}
			}
		})
	}
}
