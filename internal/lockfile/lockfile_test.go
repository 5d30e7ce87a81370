package lockfile

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The lock is per process, so the test holds it from a child process: this test binary
// run again with LOCKFILE_HOLD set, which takes the lock and waits for its stdin to close.
func TestMain(m *testing.M) {
	if p := os.Getenv("LOCKFILE_HOLD"); p != "" {
		f, err := TryLock(p)
		if err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("held\n")
		buf := make([]byte, 1)
		os.Stdin.Read(buf)
		f.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestLockAndHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	if pid, held := Holder(path); held || pid != 0 {
		t.Fatalf("missing file reported held by %d", pid)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOCKFILE_HOLD="+path)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf) != "held\n" {
		t.Fatalf("child did not take the lock: %q %v", buf, err)
	}
	if pid, held := Holder(path); !held || pid != cmd.Process.Pid {
		t.Fatalf("Holder = %d %v, want %d", pid, held, cmd.Process.Pid)
	}
	if _, err := TryLock(path); !errors.Is(err, ErrHeld) {
		t.Fatalf("second lock: %v", err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	f, err := TryLock(path)
	if err != nil {
		t.Fatalf("lock after the holder exited: %v", err)
	}
	f.Close()
}
