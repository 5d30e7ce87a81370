//go:build linux

package lazyfs

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nsShell starts sh -c script in a new private mount namespace, the way internal/harness
// starts a host (unshare --mount --propagation private), and returns once the script has
// printed its first line ("ready"). Writing a line to the returned writer lets a script
// that reads one go on; wait returns everything it printed after "ready".
func nsShell(t *testing.T, script string) (proceed io.WriteCloser, wait func() string) {
	t.Helper()
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	if line, err := r.ReadString('\n'); err != nil || line != "ready\n" {
		rest, _ := io.ReadAll(r)
		cmd.Wait()
		t.Fatalf("%s: %q %v %s", script, line, err, rest)
	}
	return in, func() string {
		in.Close()
		rest, _ := io.ReadAll(r)
		cmd.Wait()
		return strings.TrimSpace(string(rest))
	}
}

// TestMountNamespaces pins down what the end-to-end power-cut test needs to know about
// internal/harness, whose hosts live in private mount namespaces that bind-mount the
// host's directory (mount --bind, not --rbind) at /opt/lite-raft:
//
//   - a mount made on the host's directory itself before the namespace is created is
//     what the host sees;
//   - one made on a subdirectory is not, through a plain bind (only through --rbind);
//   - one made after the namespace exists is not seen at all (no propagation);
//   - Unmount with a namespace still holding its copy waits a little, then aborts the
//     connection: the namespace's processes get ENOTCONN, nothing hangs.
func TestMountNamespaces(t *testing.T) {
	requireFUSE(t)
	if _, err := exec.LookPath("unshare"); err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and unshare (util-linux)")
	}
	base := t.TempDir()
	host, opt := filepath.Join(base, "host"), filepath.Join(base, "opt")
	for _, d := range []string{filepath.Join(host, "sub"), opt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(host, "sub", "underlying"), "")

	t.Run("host directory", func(t *testing.T) {
		f := New()
		dir := mountT2(t, f, host)
		writeFile(t, filepath.Join(dir, "a"), "on lazyfs")
		_, wait := nsShell(t, "echo ready; mount --bind "+host+" "+opt+" && cat "+opt+"/a && echo written > "+opt+"/b")
		if got := wait(); got != "on lazyfs" {
			t.Fatalf("inside the namespace: %q", got)
		}
		if got := content(t, filepath.Join(dir, "b")); got != "written\n" {
			t.Fatalf("written inside the namespace, seen outside: %q", got)
		}
	})
	t.Run("subdirectory", func(t *testing.T) {
		f := New()
		dir := mountT2(t, f, filepath.Join(host, "sub"))
		writeFile(t, filepath.Join(dir, "a"), "on lazyfs")
		_, wait := nsShell(t, "echo ready; mount --bind "+host+" "+opt+" && ls "+opt+"/sub")
		if got := wait(); got != "underlying" {
			t.Fatalf("plain bind: %q, want the directory under the mount", got)
		}
		_, wait = nsShell(t, "echo ready; mount --rbind "+host+" "+opt+" && ls "+opt+"/sub")
		if got := wait(); got != "a" {
			t.Fatalf("recursive bind: %q, want the mount", got)
		}
	})
	t.Run("mounted after the namespace", func(t *testing.T) {
		proceed, wait := nsShell(t, "mount --bind "+host+" "+opt+" && echo ready && read x && ls "+opt)
		f := New()
		dir := mountT2(t, f, host)
		writeFile(t, filepath.Join(dir, "late"), "")
		proceed.Write([]byte("go\n"))
		if got := wait(); got != "sub" {
			t.Fatalf("inside the namespace: %q, want the directory under the mount", got)
		}
	})
	t.Run("unmount while a namespace holds a copy", func(t *testing.T) {
		f := New()
		m, err := f.Mount(host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Unmount() })
		writeFile(t, filepath.Join(host, "a"), "x")
		proceed, wait := nsShell(t, "echo ready; read x; cat "+host+"/a")
		start := time.Now()
		if err := m.Unmount(); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		proceed.Write([]byte("go\n"))
		if got := wait(); !strings.Contains(got, "not connected") {
			t.Fatalf("inside the namespace after Unmount: %q, want ENOTCONN", got)
		}
		if took < releaseWait {
			t.Errorf("Unmount took %v: the namespace's copy should have held it for %v", took, releaseWait)
		}
	})
}

// mountT2 mounts f on dir (an existing directory) for the test's length.
func mountT2(t *testing.T, f *FS, dir string) string {
	t.Helper()
	m, err := f.Mount(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return dir
}
