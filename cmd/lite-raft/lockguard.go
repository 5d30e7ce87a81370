package main

import (
	"lite-raft/internal/guard"

	"github.com/urfave/cli/v2"
)

// lockGuardCommand is the hidden verb the lock command re-executes this binary as, to
// run COMMAND under a guard process (package guard, issue 24): guard.Start with
// GuardPath os.Executable() and GuardArgs {"lite-raft", "lock-guard"}. argv[0] is plain
// lite-raft whatever name the lock ran under, so that main's programArgs leaves the
// arguments alone. Its arguments are the guard's own, read by guard.Serve, hence no
// flag parsing here.
func lockGuardCommand() *cli.Command {
	return &cli.Command{
		Name:            "lock-guard",
		Hidden:          true,
		SkipFlagParsing: true,
		Usage:           "run a locked COMMAND for lite-raft-client lock (internal)",
		Action: func(c *cli.Context) error {
			if code := guard.Serve(c.Args().Slice()); code != 0 {
				return cli.Exit("", code)
			}
			return nil
		},
	}
}
