package main

import (
	"fmt"
	"os"
	"path/filepath"

	"lite-raft/sshrpc"

	"github.com/urfave/cli/v2"
)

// dirFlag names the lite-raft directory. By default it is the folder the binary is in:
// the original is run as ./lite-raft from its own directory, copied to every host.
var dirFlag = &cli.StringFlag{
	Name:    "dir",
	Usage:   "the lite-raft `DIR`ectory (default: the folder holding this binary)",
	EnvVars: []string{"LITE_RAFT_DIR"},
}

func liteRaftDir(c *cli.Context) (string, error) {
	if d := c.String("dir"); d != "" {
		return filepath.Abs(d)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the lite-raft directory: %w (use --dir)", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return filepath.Dir(exe), nil
}

// allowEnv carries ssh-command --allow's list to the verb it runs (sshd lets no client
// set an environment variable: only ssh-command can have put it there).
const allowEnv = "LITE_RAFT_ALLOW"

// dialAgent opens a stream to the agent of dir. Under a key that ssh-command restricts,
// the stream is restricted: the agent holds it to the allowed verbs.
func dialAgent(dir string, opt sshrpc.ConnOptions) (*sshrpc.Conn, error) {
	opt.Allow = os.Getenv(allowEnv)
	return sshrpc.DialUnix(filepath.Join(dir, "temp", "agent.sock"), opt)
}
