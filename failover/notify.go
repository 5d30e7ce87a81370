package failover

import (
	"context"
	"strings"
	"time"
)

// The notify setting is a command run once per transition of the package, in the order
// of packages/NAME/history, with NAME, EVENT, HOST (where it happened), TIME and the
// current GENERATION in its environment: a mail, a ticket, a log shipper. Every monitor
// of the package takes part, so notifications go on whoever owns the package (or nobody
// does), one at a time: a monitor claims the next line by moving packages/NAME/notified
// to it with a conditional set, and only the winner runs the command. A line is thus
// never notified twice; one claimed by a monitor that dies before running the command
// is lost (and its log says so when it claimed it). Lines rotated out of the history
// before anyone claimed them (more than historyLines transitions with no monitor
// running) are not notified.

// notifyLoop claims and runs notifications until ctx ends.
func (m *Monitor) notifyLoop(ctx context.Context) {
	t := m.clock().NewTimer(m.cfg.Pace)
	t.Stop()
	defer t.Stop()
	for {
		for m.notifyNext(ctx) {
		}
		t.Reset(m.cfg.Pace)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// notifyNext claims the first history line after the last one notified and runs the
// command for it; it reports whether it did (so that the next can follow at once).
func (m *Monitor) notifyNext(ctx context.Context) bool {
	hist, err1 := m.Store.Get(ctx, m.key("history"))
	last, err2 := m.Store.Get(ctx, m.key("notified"))
	if err1 != nil || err2 != nil || strings.TrimSpace(hist) == "" {
		return false
	}
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	next := ""
	for i, l := range lines {
		if l == last {
			if i+1 < len(lines) {
				next = lines[i+1]
			}
			break
		}
	}
	if next == "" && !containsLine(lines, last) {
		// the last one notified rotated out (or none was yet): the first line newer than it
		for _, l := range lines {
			if l > last { // lines begin with their UTC time, so they sort by time
				next = l
				break
			}
		}
	}
	if next == "" {
		return false
	}
	// the claim (pkg init creates the key; a conditional set never creates one, so two
	// monitors can never both win)
	won, err := m.Store.Swap(ctx, m.key("notified"), last, next)
	if err != nil || !won {
		return false
	}
	when, rest, _ := strings.Cut(next, " ")
	host, event, _ := strings.Cut(rest, " ")
	gen, _ := m.Store.Get(ctx, m.key("generation"))
	sh := &Script{Path: "/bin/sh", Env: []string{"LITE_RAFT_PKG_NAME=" + m.Name, "LITE_RAFT_PKG_EVENT=" + event,
		"LITE_RAFT_PKG_HOST=" + host, "LITE_RAFT_PKG_TIME=" + when, "LITE_RAFT_PKG_GENERATION=" + gen}}
	var out strings.Builder
	code, err := sh.run(ctx, max(m.cfg.StartTimeout, 10*time.Second), &out, &out, "-c", m.cfg.Notify)
	if err != nil || code != 0 {
		m.Log.Printf("%s: notify %q: exit %d %v: %s", m.Name, next, code, err, strings.TrimSpace(out.String()))
	}
	return true
}

func containsLine(lines []string, l string) bool {
	for _, x := range lines {
		if x == l {
			return true
		}
	}
	return false
}
