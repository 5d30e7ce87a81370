package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"lite-raft/sshrpc"
)

// exitNoServer is the original's exit code when no server runs on this host (SPEC.md).
const exitNoServer = 12

func rpcCommand() *cli.Command {
	return &cli.Command{
		Name:  "rpc",
		Usage: "bridge standard input/output to this host's agent (run by peers over ssh)",
		Description: "Peers and remote clients run `ssh HOST DIR/lite-raft rpc` and speak lite-raft's\n" +
			"framed protocol on the session; this command only copies bytes to and from\n" +
			"DIR/temp/agent.sock. It is not meant to be typed by a person.",
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError(c, "rpc takes no arguments")
			}
			dir, err := liteRaftDir(c)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			host, _ := os.Hostname()
			host, _, _ = strings.Cut(host, ".")
			if err := sshrpc.Bridge(filepath.Join(dir, "temp", "agent.sock"), host, os.Getenv(allowEnv), os.Stdin, os.Stdout); err != nil {
				return cli.Exit(err.Error(), exitNoServer)
			}
			return nil
		},
	}
}
