package failover

import (
	"context"
	"strconv"
)

// Lease is a package's ownership in the cluster as a monitor uses it. Each operation is
// made of conditional sets, which the cluster evaluates one at a time when they are
// applied, so two monitors can never both hold the lease.
type Lease interface {
	// Acquire takes the package over from owner, whose tick the caller saw last: the
	// tick first (a live owner's next heartbeat then makes this lose), then the owner
	// (skipped when owner is this host: adopting its own package). It returns the new
	// tick and whether both were won.
	Acquire(ctx context.Context, tick, owner string) (newTick int64, won bool, err error)
	// Renew raises the tick from tick: the owner's heartbeat. Losing means another host
	// has taken it.
	Renew(ctx context.Context, tick int64) (won bool, err error)
	// Release gives the package up: owner from this host to nobody.
	Release(ctx context.Context) (won bool, err error)
}

// storeLease is the Lease over packages/NAME/{tick,owner} in the store.
type storeLease struct {
	s          KV
	name, host string
}

func (l *storeLease) Acquire(ctx context.Context, tick, owner string) (int64, bool, error) {
	t, _ := strconv.ParseInt(tick, 10, 64)
	won, err := l.s.Swap(ctx, Key(l.name, "tick"), tick, strconv.FormatInt(t+1, 10))
	if err != nil || !won {
		return 0, false, err
	}
	if owner != l.host {
		if won, err = l.s.Swap(ctx, Key(l.name, "owner"), owner, l.host); err != nil || !won {
			return 0, false, err
		}
	}
	return t + 1, true, nil
}

func (l *storeLease) Renew(ctx context.Context, tick int64) (bool, error) {
	return l.s.Swap(ctx, Key(l.name, "tick"), strconv.FormatInt(tick, 10), strconv.FormatInt(tick+1, 10))
}

func (l *storeLease) Release(ctx context.Context) (bool, error) {
	return l.s.Swap(ctx, Key(l.name, "owner"), l.host, "")
}
