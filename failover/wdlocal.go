package failover

import (
	"sync"
	"time"
)

// localArmer keeps the Keepers of this process, one per device path.
type localArmer struct {
	mu sync.Mutex
	ks map[string]*Keeper
}

func localKeepers() *localArmer { return &localArmer{ks: map[string]*Keeper{}} }

func (a *localArmer) keeper(path string) *Keeper {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := a.ks[path]
	if k == nil {
		k = &Keeper{Path: path}
		a.ks[path] = k
	}
	return k
}

func (a *localArmer) Arm(path, name string, budget, pace time.Duration) (watchdogLink, int, error) {
	k := a.keeper(path)
	got, id, err := k.Arm(name, budget, pace)
	if err != nil {
		return nil, got, err
	}
	return &localLink{k: k, name: name, id: id}, got, nil
}

// localLink is a monitor's hold on a Keeper in its own process.
type localLink struct {
	k    *Keeper
	name string
	id   uint64
}

func (l *localLink) Feed() error { return l.k.Feed(l.name, l.id) }

func (l *localLink) Close(disarm bool) error {
	if disarm {
		l.k.Disarm(l.name, l.id)
	} else {
		l.k.Abandon(l.name, l.id)
	}
	return nil
}
