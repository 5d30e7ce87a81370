package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/failover"
)

// pkgHalt records the halt, then checks that the owner's monitor is there to obey it: a
// halt is carried out by that monitor (it stops the package and gives it up), so with its
// monitor dead or frozen the package keeps running where it is, and saying only "done"
// would mislead. The check is a warning on standard error, and the exit code stays 0: the
// halt was recorded and will be obeyed when the monitor returns (no stand-by takes the
// package over meanwhile). api/codes.go has no code for "recorded, not yet obeyed":
// CodeFailed would tell a script the halt did not happen and invite a retry that changes
// nothing, and CodeTimeout is for a write whose outcome is unknown, which this is not.
func pkgHalt(c *cli.Context, p string) error {
	var warning string
	err := withStore(c, func(ctx context.Context, s *failover.Store) error {
		if err := s.Set(ctx, failover.Key(p, "halt"), "yes"); err != nil {
			return err
		}
		warning = ownerAbsent(ctx, s, p)
		return nil
	})
	if warning != "" {
		fmt.Fprintln(c.App.ErrWriter, "warning: "+warning)
	}
	return err
}

// ownerAbsent says why p's owner's monitor does not seem to run: its tick has not moved
// for more than three paces (the margin a stand-by allows it too). "" when it moved, when
// there is no owner, or when the store would not tell (the halt is recorded either way).
// The stand-bys' reports tell the tick's age at once when one of them vouches for it;
// otherwise the tick is watched, at most three paces.
func ownerAbsent(ctx context.Context, s *failover.Store, p string) string {
	owner, err := s.Get(ctx, failover.Key(p, "owner"))
	if err != nil || owner == "" {
		return ""
	}
	pace := failover.DefaultConfig().Pace
	if raw, err := s.Get(ctx, failover.Key(p, "config")); err == nil {
		if cfg, err := failover.DecodeConfig(raw); err == nil {
			pace = cfg.Pace
		}
	}
	limit := 3 * pace
	absent := func(age time.Duration) string {
		return fmt.Sprintf("the owner %s's monitor does not seem to run (tick unchanged for %.1f s): "+
			"the package may keep running there until it is fenced or its monitor returns", owner, age.Seconds())
	}
	if info, err := collectPkg(ctx, s, p, false); err == nil && info.TickAge != nil {
		age := time.Duration(*info.TickAge * float64(time.Second))
		switch {
		case info.TickAgeExact && age > limit:
			return absent(age)
		case age <= limit:
			return "" // exact or an upper bound: it moved that recently
		}
	}
	// nobody vouches: watch the tick (and the owner and state, which the monitor changes as
	// it obeys) for three paces
	read := func() (string, bool) {
		var v string
		for _, k := range []string{"tick", "owner", "state"} {
			x, err := s.Get(ctx, failover.Key(p, k))
			if err != nil {
				return "", false
			}
			v += x + "\x00"
		}
		return v, true
	}
	first, ok := read()
	if !ok {
		return ""
	}
	start := time.Now()
	for time.Since(start) <= limit {
		select {
		case <-ctx.Done():
			return ""
		case <-time.After(min(pace/2, time.Second)): // polling the store, bounded by limit
		}
		now, ok := read()
		if !ok || now != first {
			return ""
		}
	}
	return absent(time.Since(start))
}
