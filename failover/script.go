package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Script runs a package's control script. The script runs in its own process group so
// that a verb that overruns its timeout is killed with everything it started.
type Script struct {
	Path string
	Env  []string // LITE_RAFT_PKG_* set by the monitor
}

// Run runs `SCRIPT verb` and returns its exit code and output. A timeout kills the
// process group and returns an error.
func (s *Script) Run(ctx context.Context, verb string, timeout time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.Command(s.Path, verb)
	cmd.Env = append(os.Environ(), s.Env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return -1, "", fmt.Errorf("%s %s: %w", s.Path, verb, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), strings.TrimSpace(out.String()), nil
		}
		if err != nil {
			return -1, strings.TrimSpace(out.String()), err
		}
		return 0, strings.TrimSpace(out.String()), nil
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return -1, strings.TrimSpace(out.String()), fmt.Errorf("%s %s: no answer within %v: killed", s.Path, verb, timeout)
	}
}

// ReadConfig asks the script for every setting.
func (s *Script) ReadConfig() (Config, error) {
	c := DefaultConfig()
	for _, name := range Settings {
		v, err := s.echo(name)
		if err != nil {
			return c, err
		}
		if err := c.Set(name, v); err != nil {
			return c, fmt.Errorf("%s: %w", s.Path, err)
		}
	}
	return c, c.Check()
}

func (s *Script) echo(name string) (string, error) {
	// the original's scripts take "echo VAR" as two arguments
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.Path, "echo", name)
	cmd.Env = append(os.Environ(), s.Env...)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s echo %s: %w", s.Path, name, err)
	}
	return strings.TrimSpace(string(out)), nil
}
