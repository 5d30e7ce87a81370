package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/sshrpc"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "is the server running here, and what does it think (role, term, leader, commit)",
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError(c, "status takes no arguments (the cluster's view: lite-raft-client status)")
			}
			dir, err := liteRaftDir(c)
			if err != nil {
				return cli.Exit(err, 1)
			}
			ok, pid := running(dir)
			if !ok {
				return cli.Exit(fmt.Sprintf("lite-raft is not running on %s", thisHost()), api.CodeNoServer)
			}
			conn, err := dialAgent(dir, sshrpc.ConnOptions{})
			if err != nil {
				return cli.Exit(fmt.Sprintf("lite-raft runs on %s (pid %d) but does not answer: %v", thisHost(), pid, err), 1)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := client.New(conn).Do(ctx, api.Request{Op: api.OpStatus, Stale: true})
			if err != nil {
				return cli.Exit(fmt.Sprintf("status: %v", err), 1)
			}
			fmt.Fprintf(c.App.Writer, "lite-raft is running on %s (pid %d)\n", thisHost(), pid)
			return printResponse(c.App.Writer, clientOpts{}, api.Request{Op: api.OpStatus}, resp)
		},
	}
}
