package failover

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"lite-raft/internal/logsink"
)

// The notify setting is a command run once per transition of the package, in the order
// of packages/NAME/history, with NAME, EVENT, HOST (where it happened), TIME, the
// current GENERATION and the EVENT_NUMBER in its environment: a mail, a ticket, a log
// shipper. Every monitor of the package takes part, so notifications go on whoever owns
// the package (or when nobody does, a host that gave it up included: its monitor stays),
// and a monitor that ends flushes what is pending first.
//
// The store's order decides who notifies, not the hosts' clocks. packages/NAME/notified
// holds "N LINE": the number and line of the last transition notified. To notify the
// next one, N+1, a monitor claims it in packages/NAME/notifier ("N+1 HOST") by a
// conditional set from a claim of an event already notified (or none), runs the command,
// and moves notified on by a conditional set from what it read. So transitions are run
// in order, and each at least once: a claim for N+1 whose holder died is taken over once
// it has stood unchanged for notifyStale on the taker's own monotonic clock, and that
// event may then run twice, with the same EVENT_NUMBER, which lets the command drop the
// repeat. Lines rotated out of the history before anyone notified them (more than
// historyLines transitions while no monitor ran) are skipped.

// notifyStale is how long a claim may stand unchanged before another monitor takes it.
const notifyStale = 5 * time.Minute

// notifyFlush bounds the notifications a monitor that ends still runs.
const notifyFlush = 30 * time.Second

// notifyLoop notifies what is pending, every pace, until ctx ends; then what its own
// last transitions left pending, bounded by notifyFlush.
func (m *Monitor) notifyLoop(ctx context.Context) {
	t := m.clock().NewTimer(m.notifyCfg.Load().Pace)
	t.Stop()
	defer t.Stop()
	for {
		m.notifyPending(ctx)
		t.Reset(m.notifyCfg.Load().Pace)
		select {
		case <-ctx.Done():
			flush, cancel := context.WithTimeout(context.Background(), notifyFlush)
			defer cancel()
			m.notifyPending(flush)
			return
		case <-t.C():
		}
	}
}

// parseNotified reads packages/NAME/notified: "N LINE", or a bare LINE as builds before
// event numbers wrote it (numbered 0: the numbering starts again from there).
func parseNotified(v string) (uint64, string) {
	num, line, ok := strings.Cut(v, " ")
	if n, err := strconv.ParseUint(num, 10, 64); ok && err == nil {
		return n, line
	}
	return 0, v
}

// parseClaim reads packages/NAME/notifier: "N HOST" (ok false for anything else, as an
// older build's "HOST UNIXMILLI").
func parseClaim(v string) (uint64, string, bool) {
	num, host, ok := strings.Cut(v, " ")
	n, err := strconv.ParseUint(num, 10, 64)
	return n, host, ok && err == nil && !strings.Contains(host, " ")
}

// notifyPending runs the command for every transition not notified yet, if this monitor
// can claim them.
func (m *Monitor) notifyPending(ctx context.Context) {
	if m.notifyCfg.Load().Notify == "" {
		return
	}
	claim := ""
	defer func() {
		if claim != "" {
			m.Store.Swap(context.Background(), m.key("notifier"), claim, "")
		}
	}()
	for ctx.Err() == nil {
		notified, err := m.Store.Get(ctx, m.key("notified"))
		if err != nil {
			return
		}
		n, last := parseNotified(notified)
		next, err := m.nextToNotify(ctx, last)
		if err != nil || next == "" {
			return // nothing to do: no claim taken
		}
		current, err := m.Store.Get(ctx, m.key("notifier"))
		if err != nil {
			return
		}
		if current != claim && !m.claimable(current, n) {
			return // someone else is at it
		}
		mine := fmt.Sprintf("%d %s", n+1, m.Host)
		if won, err := m.Store.Swap(ctx, m.key("notifier"), current, mine); err != nil || !won {
			return
		}
		claim = mine
		if !m.notify(ctx, next, n+1) {
			return // cut short by ctx (the monitor ending): the flush runs it again
		}
		if won, err := m.Store.Swap(ctx, m.key("notified"), notified, fmt.Sprintf("%d %s", n+1, next)); err != nil || !won {
			return // another monitor moved it on (it took our claim as stale): it goes on
		}
	}
}

// claimable reports whether the notifier claim current may be taken to notify event
// n+1: none, one for an event already notified, one of this host's (a monitor is alone on
// its host, by its lock: an earlier attempt of its own, whose release or whose move of
// notified a store that was out of reach refused, or of a monitor before it here), or one
// that has stood unchanged for notifyStale as this monitor saw it (its holder died or
// froze).
func (m *Monitor) claimable(current string, n uint64) bool {
	if current == "" {
		return true
	}
	if k, host, ok := parseClaim(current); ok && (k <= n || host == m.Host) {
		return true
	}
	now := m.now()
	if current != m.claimSeen {
		m.claimSeen, m.claimSince = current, now
		return false
	}
	if now-m.claimSince < notifyStale {
		return false
	}
	m.Log.Printf("%s: the notifier claim %q has stood for %v: taking over", m.Name, current, now-m.claimSince)
	return true
}

// nextToNotify is the first history line after last, the last one notified.
func (m *Monitor) nextToNotify(ctx context.Context, last string) (string, error) {
	hist, err := m.Store.Get(ctx, m.key("history"))
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

// notify runs the command for one transition. It reports false when ctx ended while
// it ran and the command was killed for it (not done): that transition is still to
// notify. A command that ended on its own is done, even if ctx ended just after (else
// the flush ran it a second time); one that fails on its own is logged and not run again.
func (m *Monitor) notify(ctx context.Context, line string, number uint64) bool {
	when, rest, _ := strings.Cut(line, " ")
	host, event, _ := strings.Cut(rest, " ")
	gen, _ := Generation(ctx, m.Store, m.Name)
	env := []string{"LITE_RAFT_PKG_NAME=" + m.Name, "LITE_RAFT_PKG_EVENT=" + event,
		"LITE_RAFT_PKG_HOST=" + host, "LITE_RAFT_PKG_TIME=" + when, "LITE_RAFT_PKG_GENERATION=" + gen,
		"LITE_RAFT_PKG_EVENT_NUMBER=" + strconv.FormatUint(number, 10)}
	cfg := m.notifyCfg.Load()
	code, out, err := m.Script.Shell(ctx, cfg.Notify, env, max(cfg.StartTimeout, 10*time.Second))
	if err != nil && ctx.Err() != nil {
		return false
	}
	if err != nil || code != 0 {
		m.Log.Printf(logsink.Warn+"%s: notify %q: exit %d %v: %s", m.Name, line, code, err, out)
	}
	return true
}
