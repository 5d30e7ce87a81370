package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/failover"
)

func pkgCleanupCommand() *cli.Command {
	return &cli.Command{Name: "cleanup", Usage: "forget a package's failures: restarts used, and hosts that gave it up", ArgsUsage: "NAME [HOST]",
		Description: "The owner forgets the failed status checks and local restarts it counted, and a host that\n" +
			"gave the package up (its start or status failed beyond its restarts, or its fence did) stands\n" +
			"by again: on HOST only, or on every host without one. Its monitor stays running after giving\n" +
			"up, so nothing needs starting there. failure_timeout does the same by itself after that long\n" +
			"without a failure. Recorded in the history.",
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usageError(c, "cleanup wants NAME [HOST]")
			}
			p, host := c.Args().Get(0), c.Args().Get(1)
			if err := checkPkgName(c, p); err != nil {
				return err
			}
			if c.NArg() == 2 {
				if err := checkHost(c, host); err != nil {
					return err
				}
			}
			return pkgCleanup(c, p, host)
		}}
}

// pkgCleanup writes a new packages/NAME/cleanup ("MS HOST", * for every host): the
// monitors compare it with the one they saw when they gave up or took the package, so
// each cleanup counts once, whenever they read it.
func pkgCleanup(c *cli.Context, p, host string) error {
	return withStore(c, func(ctx context.Context, s *failover.Store) error {
		raw, err := s.Get(ctx, failover.Key(p, "config"))
		if err != nil {
			return err
		}
		if raw == "" {
			return fmt.Errorf("package %s is not in the store: run `pkg init %s` first", p, p)
		}
		who, target := host, host
		if host == "" {
			who, target = "every host", "*"
		}
		if err := s.Set(ctx, failover.Key(p, "cleanup"), fmt.Sprintf("%d %s", time.Now().UnixMilli(), target)); err != nil {
			return err
		}
		failover.Record(ctx, s, p, thisHost(), time.Now(), "cleanup of "+who+" (pkg cleanup): failures forgotten, stands by again")
		fmt.Fprintf(c.App.Writer, "%s: failures forgotten on %s; a host that gave it up stands by again within a pace\n", p, who)
		return nil
	})
}
