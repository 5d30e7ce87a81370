package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
	"lite-raft/failover"
)

// evacuateHost is the HOST argument of evacuate and unevacuate.
func evacuateHost(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", usageError(c, "want HOST")
	}
	h := c.Args().First()
	return h, checkHost(c, h)
}

func pkgEvacuateCommand() *cli.Command {
	return &cli.Command{Name: "evacuate", Usage: "hand every package on HOST over, and let HOST take none until pkg unevacuate", ArgsUsage: "HOST",
		Description: "For patching a host: every package HOST owns is stopped there and started on a stand-by\n" +
			"(fenced as usual), and no package starts on HOST, by failover, pkg move or failback, until\n" +
			"pkg unevacuate HOST. It applies to the packages in the cluster now (a package created later\n" +
			"is not evacuated). Recorded in each package's history; pkg status shows evacuated hosts.\n" +
			"--wait D waits until HOST owns none (exit 2 if it still does after D: see pkg status).",
		Flags: []cli.Flag{&cli.DurationFlag{Name: "wait", Usage: "wait up to this long for HOST to own no package"}},
		Action: func(c *cli.Context) error {
			h, err := evacuateHost(c)
			if err != nil {
				return err
			}
			return pkgEvacuate(c, h, true, c.Duration("wait"))
		}}
}

func pkgUnevacuateCommand() *cli.Command {
	return &cli.Command{Name: "unevacuate", Usage: "let HOST run packages again (after pkg evacuate)", ArgsUsage: "HOST",
		Description: "HOST stands by again for every package; a preferred owner with failback=auto takes its\n" +
			"packages back. Recorded in each package's history.",
		Action: func(c *cli.Context) error {
			h, err := evacuateHost(c)
			if err != nil {
				return err
			}
			return pkgEvacuate(c, h, false, 0)
		}}
}

// pkgEvacuate adds host to (evacuate) or removes it from every package's evacuated hosts,
// with a conditional write each (monitors and other operators write beside it), and
// records the change in the history of each package it changed.
func pkgEvacuate(c *cli.Context, host string, evacuate bool, wait time.Duration) error {
	verb := map[bool]string{true: "evacuate", false: "unevacuate"}[evacuate]
	return withStoreWithin(c, wait+30*time.Second, func(ctx context.Context, s *failover.Store) error {
		names, err := s.List(ctx, "packages")
		if err != nil {
			return err
		}
		if len(names) == 0 {
			fmt.Fprintln(c.App.Writer, "no package in the cluster: nothing to do")
			return nil
		}
		var owned []string
		for _, p := range names {
			changed, err := editHosts(ctx, s, failover.Key(p, "evacuated"), host, evacuate)
			if err != nil {
				return fmt.Errorf("%s %s for package %s: %w", verb, host, p, err)
			}
			if changed {
				failover.Record(ctx, s, p, thisHost(), time.Now(), fmt.Sprintf("%s %sd (pkg %s)", host, verb, verb))
			}
			owner, err := s.Get(ctx, failover.Key(p, "owner"))
			if err != nil {
				return err
			}
			switch {
			case evacuate && owner == host:
				owned = append(owned, p)
				fmt.Fprintf(c.App.Writer, "%s: handed over from %s\n", p, host)
			case evacuate:
				fmt.Fprintf(c.App.Writer, "%s: %s takes it no more (owner %s)\n", p, host, orNobody(owner))
			default:
				fmt.Fprintf(c.App.Writer, "%s: %s may run it again (owner %s)\n", p, host, orNobody(owner))
			}
		}
		if !evacuate || wait <= 0 || len(owned) == 0 {
			return nil
		}
		for deadline := time.Now().Add(wait); ; {
			still := owned[:0:0]
			for _, p := range owned {
				owner, err := s.Get(ctx, failover.Key(p, "owner"))
				if err != nil || owner == host {
					still = append(still, p)
				}
			}
			if len(still) == 0 {
				fmt.Fprintf(c.App.Writer, "%s owns no package\n", host)
				return nil
			}
			if time.Now().After(deadline) {
				return cli.Exit(fmt.Sprintf("%s still owns %s after %v: see pkg status", host, strings.Join(still, ", "), wait), api.CodeTimeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond): // polling with a deadline
			}
		}
	})
}

// editHosts adds host to, or removes it from, the space-separated list at key, by a
// conditional write retried while others change it. It reports whether it changed it.
func editHosts(ctx context.Context, s *failover.Store, key, host string, add bool) (bool, error) {
	for i := 0; i < 20; i++ {
		old, err := s.Get(ctx, key)
		if err != nil {
			return false, err
		}
		hosts := strings.Fields(old)
		has := slices.Contains(hosts, host)
		switch {
		case add && has, !add && !has:
			return false, nil
		case add:
			hosts = append(hosts, host)
		default:
			hosts = slices.DeleteFunc(hosts, func(h string) bool { return h == host })
		}
		value := strings.Join(hosts, " ")
		won, err := s.Swap(ctx, key, old, value)
		if err == nil && !won && old == "" {
			// a missing key matches no value: create it (packages from before evacuate
			// have none)
			_, won, err = s.Txn(ctx, api.Txn{If: []api.TxnCond{{Key: key, Test: api.TestMissing}},
				Then: []api.TxnAction{{Do: api.DoSet, Key: key, Value: []byte(value)}}})
		}
		if err != nil || won {
			return won, err
		}
	}
	return false, fmt.Errorf("%s kept changing under 20 conditional writes", key)
}
