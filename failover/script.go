package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// SetEnv sets the LITE_RAFT_PKG_* variables of the calls that follow.
func (s *Script) SetEnv(env []string) { s.Env = env }

// Run runs `SCRIPT verb` and returns its exit code and output (standard output and
// error together). A timeout kills the process group and returns an error.
func (s *Script) Run(ctx context.Context, verb string, timeout time.Duration) (int, string, error) {
	var out bytes.Buffer
	code, err := s.run(ctx, timeout, &out, &out, verb)
	return code, strings.TrimSpace(out.String()), err
}

// Shell runs command with sh -c, in a process group of its own like the script's verbs,
// with env added to ours.
func (s *Script) Shell(ctx context.Context, command string, env []string, timeout time.Duration) (int, string, error) {
	sh := &Script{Path: "/bin/sh", Env: env}
	var out bytes.Buffer
	code, err := sh.run(ctx, timeout, &out, &out, "-c", command)
	return code, strings.TrimSpace(out.String()), err
}

// run runs the script with args in its own process group, killing the group if it
// overruns timeout.
func (s *Script) run(ctx context.Context, timeout time.Duration, stdout, stderr io.Writer, args ...string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.Command(s.Path, args...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	what := s.Path + " " + strings.Join(args, " ")
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("%s: %w", what, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), nil
		}
		if err != nil {
			return -1, fmt.Errorf("%s: %w", what, err)
		}
		return 0, nil
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return -1, fmt.Errorf("%s: no answer within %v: killed", what, timeout)
	}
}

// ReadConfig asks the script for every setting (`SCRIPT echo VAR`, two arguments, as the
// original called it). A setting the script does not know (non-zero exit) keeps its
// default; only standard output is the value.
func (s *Script) ReadConfig() (Config, error) {
	c := DefaultConfig()
	for _, name := range Settings {
		var out bytes.Buffer
		code, err := s.run(context.Background(), 10*time.Second, &out, io.Discard, "echo", name)
		if err != nil {
			return c, err
		}
		if code != 0 {
			continue
		}
		if err := c.Set(name, strings.TrimSpace(out.String())); err != nil {
			return c, fmt.Errorf("%s: %w", s.Path, err)
		}
	}
	return c, c.Check()
}
