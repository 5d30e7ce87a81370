package failover

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The notify setting is a command run once per transition of the package, in the order
// of packages/NAME/history, with NAME, EVENT, HOST (where it happened), TIME and the
// current GENERATION in its environment: a mail, a ticket, a log shipper. Every monitor
// of the package takes part, so notifications go on whoever owns the package (or when
// nobody does), but one at a time: a monitor first takes packages/NAME/notifier (from
// nobody, by a conditional set, as "HOST UNIXMILLI"), then runs the command for each line
// after packages/NAME/notified, moving that key on after each, then gives the notifier up.
// So transitions are notified in order and never twice, except after a monitor died in
// the middle of one: its claim goes stale after notifyStale and another monitor takes
// over, running that transition again. Lines rotated out of the history before anyone
// notified them (more than historyLines transitions while no monitor ran) are skipped.

// notifyStale is how long a notifier's claim holds without being given up.
const notifyStale = 5 * time.Minute

// notifyLoop notifies what is pending, every pace, until ctx ends.
func (m *Monitor) notifyLoop(ctx context.Context) {
	t := m.clock().NewTimer(m.cfg.Pace)
	t.Stop()
	defer t.Stop()
	for {
		m.notifyPending(ctx)
		t.Reset(m.cfg.Pace)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// notifyPending runs the command for every transition not notified yet, if this monitor
// can take the notifier's claim.
func (m *Monitor) notifyPending(ctx context.Context) {
	if next, err := m.nextToNotify(ctx); err != nil || next == "" {
		return // nothing to do: do not even take the claim
	}
	claim, err := m.Store.Get(ctx, m.key("notifier"))
	if err != nil {
		return
	}
	if claim != "" {
		f := strings.Fields(claim)
		at, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
		if m.clock().Now().Sub(time.UnixMilli(at)) < notifyStale {
			return // someone else is at it
		}
		m.Log.Printf("%s: the notifier claim %q is stale: taking over", m.Name, claim)
	}
	mine := fmt.Sprintf("%s %d", m.Host, m.clock().Now().UnixMilli())
	if won, err := m.Store.Swap(ctx, m.key("notifier"), claim, mine); err != nil || !won {
		return
	}
	defer m.Store.Swap(context.Background(), m.key("notifier"), mine, "")
	for ctx.Err() == nil {
		next, err := m.nextToNotify(ctx)
		if err != nil || next == "" {
			return
		}
		m.notify(ctx, next)
		if err := m.Store.Set(ctx, m.key("notified"), next); err != nil {
			return
		}
	}
}

// nextToNotify is the first history line after the last one notified.
func (m *Monitor) nextToNotify(ctx context.Context) (string, error) {
	hist, err := m.Store.Get(ctx, m.key("history"))
	if err != nil {
		return "", err
	}
	last, err := m.Store.Get(ctx, m.key("notified"))
	if err != nil || strings.TrimSpace(hist) == "" {
		return "", err
	}
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	for i, l := range lines {
		if l == last {
			if i+1 < len(lines) {
				return lines[i+1], nil
			}
			return "", nil
		}
	}
	// the last one notified rotated out (or none was yet): the first line after it in
	// time (lines begin with their UTC time, so they sort by it)
	lastTime, _, _ := strings.Cut(last, " ")
	for _, l := range lines {
		if t, _, _ := strings.Cut(l, " "); t > lastTime {
			return l, nil
		}
	}
	return "", nil
}

func (m *Monitor) notify(ctx context.Context, line string) {
	when, rest, _ := strings.Cut(line, " ")
	host, event, _ := strings.Cut(rest, " ")
	gen, _ := Generation(ctx, m.Store, m.Name)
	env := []string{"LITE_RAFT_PKG_NAME=" + m.Name, "LITE_RAFT_PKG_EVENT=" + event,
		"LITE_RAFT_PKG_HOST=" + host, "LITE_RAFT_PKG_TIME=" + when, "LITE_RAFT_PKG_GENERATION=" + gen}
	code, out, err := m.Script.Shell(ctx, m.cfg.Notify, env, max(m.cfg.StartTimeout, 10*time.Second))
	if err != nil || code != 0 {
		m.Log.Printf("%s: notify %q: exit %d %v: %s", m.Name, line, code, err, out)
	}
}
