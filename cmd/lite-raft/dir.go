package main

import (
	"fmt"
	"os"
	"path/filepath"

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
