package failover

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"lite-raft/api"
	"lite-raft/failover/decide"
	"lite-raft/internal/logsink"
)

// Keys of a package in the store.
func Key(name, field string) string { return "packages/" + name + "/" + field }

// Fencer stops a package on another host, whatever that host's monitor is doing (dead,
// frozen, cut off from the cluster).
type Fencer interface {
	// FenceHost makes sure the package does not run on host: FenceStopped when it found
	// it stopped there; FenceUnreachable only when no connection could be made (nothing
	// ran there); FenceUnknown when the session broke after fence-stop was sent;
	// FenceStillUp when the host answered that it still runs it. err says why, for the
	// logs, whatever the result but FenceStopped.
	// onlyIfDead: fence only a monitor that is dead or frozen (and whose supervisor is
	// not restarting it); FenceAlive when it runs, nothing done.
	FenceHost(ctx context.Context, host string, onlyIfDead bool) (decide.FenceResult, error)
	// Prepare gets ready to fence host soon (a stand-by calls it with the owner it
	// watches; "" when there is none), so that a takeover does not wait on a dial.
	Prepare(host string)
}

// Monitor watches one package on one host: a stand-by waits to take it over, the active
// one runs it. Control-script calls are made by Run's goroutine only, so they never
// overlap; the heartbeat runs beside them, so a long start does not stop the ticks.
type Monitor struct {
	Name   string
	Host   string
	Store  KV
	Script Runner
	Log    *log.Logger
	// Clock is the monitor's time (nil: the system's).
	Clock Clock
	// Lease is the package's ownership (nil: conditional sets on Store).
	Lease Lease
	// Fence stops the package on the previous owner before this host starts it (nil:
	// only the control script's fence runs).
	Fence Fencer

	cfg    Config
	cfgRaw string // as stored: a change is picked up as it is read
	// seenConfig is the settings as the last read found them
	seenConfig string
	// lastCleanup is packages/NAME/cleanup as last read: a host that gives the package
	// up waits for a newer one (or failure_timeout)
	lastCleanup string
	// claimSeen is the notifier claim this monitor last saw held by another, and
	// claimSince when it first saw it (notify.go)
	claimSeen  string
	claimSince time.Duration
	// notifyCfg is the settings as the notifier goroutine reads them (m.cfg is the
	// monitor loop's, changed by pkg init --update)
	notifyCfg atomic.Pointer[Config]
	epoch     time.Duration // the deadlines' clock (Clock.Uptime) when Run began

	// observations as a stand-by
	watch      decide.Watch
	seenAtWall time.Time
	published  time.Duration // when packages/NAME/standby/HOST was last written
	// selfFenced is how this host's stop ended when it fenced itself as owner, out of
	// reach of the store: released or recorded once the store answers
	selfFenced decide.Ending
}

func (m *Monitor) lease() Lease {
	if m.Lease == nil {
		m.Lease = &storeLease{s: m.Store, name: m.Name, host: m.Host}
	}
	return m.Lease
}

func (m *Monitor) clock() Clock {
	if m.Clock == nil {
		m.Clock = systemClock{}
	}
	return m.Clock
}

// now is the time on the deadlines' clock (Clock.Uptime), counting suspend.
func (m *Monitor) now() time.Duration { return m.clock().Uptime() - m.epoch }

func (m *Monitor) key(f string) string { return Key(m.Name, f) }

// shareConfig hands a copy of the settings to the notifier goroutine.
func (m *Monitor) shareConfig() {
	c := m.cfg
	m.notifyCfg.Store(&c)
}

// Run monitors until ctx ends (pkg stop: an active monitor stops the package and gives it
// up first) or the package fails here.
func (m *Monitor) Run(ctx context.Context) error {
	m.epoch = m.clock().Uptime()
	raw, err := m.Store.Get(ctx, m.key("config"))
	if err != nil {
		return err
	}
	if raw == "" {
		return fmt.Errorf("package %s is not in the store: run `pkg init %s` first", m.Name, m.Name)
	}
	if m.cfg, err = DecodeConfig(raw); err != nil {
		return fmt.Errorf("package %s: %w", m.Name, err)
	}
	m.cfgRaw = raw
	m.shareConfig()
	m.Log.Printf("%s: monitoring on %s (pace %v, timeout %v)", m.Name, m.Host, m.cfg.Pace, m.cfg.Timeout)
	m.stopStray(ctx)
	// always: notify may be set later (pkg init --update). Not under ctx: it goes on
	// while an ending monitor stops the package, and flushes what that recorded once
	// Run returns
	nctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.notifyLoop(nctx) }()
	defer func() { stop(); <-done }()
	t := m.clock().NewTimer(m.cfg.Pace)
	t.Stop() // armed only while this loop waits on it
	defer t.Stop()
	for {
		if done, err := m.standbyStep(ctx); done || err != nil {
			return err
		}
		// Wait a pace, but wake as soon as the owner changes (a release, a move): the
		// store answers a watch when the key no longer holds what we saw.
		if _, err := m.Store.Watch(ctx, m.key("owner"), m.watch.Owner, m.cfg.Pace); err != nil {
			t.Reset(m.cfg.Pace)
			select {
			case <-ctx.Done():
			case <-t.C():
			}
		}
		if ctx.Err() != nil {
			m.Log.Printf("%s: monitor stopped (standing by)", m.Name)
			// no longer standing by: say so at once, not when the report goes stale
			bg, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			m.Store.Set(bg, m.key("standby/"+m.Host), "")
			cancel()
			return nil
		}
	}
}

// stopStray trusts nothing this host remembers: a monitor that starts (after a crash, a
// kill, a reboot) and finds the package running here while another host owns it, or
// nobody does, stops it before anything else.
func (m *Monitor) stopStray(ctx context.Context) {
	owner, err := m.Store.Get(ctx, m.key("owner"))
	if err != nil || owner == m.Host {
		return // unknown (the heartbeat's rules decide), or ours to adopt
	}
	m.Script.SetEnv([]string{"LITE_RAFT_PKG_NAME=" + m.Name, "LITE_RAFT_PKG_OWNER=" + orNone(owner)})
	code, _, err := m.Script.Run(ctx, "status", m.cfg.StartTimeout)
	if err == nil && (code == 0 || code == 2) {
		m.Log.Printf("%s: it runs here while %s owns it: stopping it first", m.Name, orNone(owner))
		m.stopScript()
		m.record(ctx, "stopped a copy left running here ("+orNone(owner)+" owns it)")
	}
}

// viewFields are the keys of packages/NAME/ a decision reads.
var viewFields = []string{"owner", "tick", "state", "enabled", "halt", "move", "previous", "wait", "config", "evacuated", "cleanup"}

// readView reads what a decision needs of the package's state: one read of
// packages/NAME/ at one index; on a cluster with a member from before that read, key by
// key.
func (m *Monitor) readView(ctx context.Context) (decide.View, error) {
	vals := make(map[string]string, len(viewFields))
	d, err := m.Store.ReadDir(ctx, "packages/"+m.Name)
	switch {
	case errors.Is(err, ErrOlder):
		for _, f := range viewFields {
			v, err := m.Store.Get(ctx, m.key(f))
			if err != nil {
				return decide.View{}, err
			}
			vals[f] = v
		}
	case err != nil:
		return decide.View{}, err
	default:
		for _, f := range viewFields {
			v, _ := d.Value(m.key(f))
			vals[f] = string(v)
		}
	}
	m.seenConfig = vals["config"]
	waitMs, _ := strconv.ParseInt(vals["wait"], 10, 64)
	v := decide.View{Owner: vals["owner"], Tick: vals["tick"], State: decide.State(vals["state"]),
		Enabled: vals["enabled"] != "no", Halt: vals["halt"] == "yes", Move: vals["move"],
		Previous: decide.ParsePrevious(vals["previous"]), OwnerWait: time.Duration(max(waitMs, 0)) * time.Millisecond,
		Evacuated: vals["evacuated"], Cleanup: vals["cleanup"]}
	m.lastCleanup = v.Cleanup
	if v.Move != "" && v.Move != m.Host {
		// a second read, only while a move to another host is pending: whether its
		// target still reports (the one read holds no subfolder)
		report, err := m.Store.Get(ctx, m.key("standby/"+v.Move))
		if err != nil {
			return decide.View{}, err
		}
		v.MoveReport = report
	}
	return v, nil
}

// newSettings are the package's settings as this pace's read found them, if they
// changed (pkg init --update) and are valid; nil otherwise.
func (m *Monitor) newSettings() *Config {
	if m.seenConfig == "" || m.seenConfig == m.cfgRaw {
		return nil
	}
	raw := m.seenConfig
	m.cfgRaw = raw // a bad one is said once, not every pace
	cfg, err := DecodeConfig(raw)
	if err != nil {
		m.Log.Printf(logsink.Warn+"%s: the package's settings changed, but %v: keeping the ones before", m.Name, err)
		return nil
	}
	return &cfg
}

// waitOf is how long a stand-by must wait after the tick of an owner with settings c.
func waitOf(c Config) time.Duration { return c.Timeout + 3*c.Pace }

// rules are this monitor's settings as decisions use them.
func (m *Monitor) rules() decide.Rules {
	allowed, rank := m.cfg.Allowed(m.Host)
	return decide.Rules{Pace: m.cfg.Pace, Timeout: m.cfg.Timeout, StopTimeout: m.cfg.StopTimeout,
		Allowed: allowed, Rank: rank, Preferred: m.cfg.PreferredOwner == m.Host, Failback: m.cfg.Failback,
		ReportEvery: m.standbyEvery(), Fall: m.cfg.Fall, Rise: m.cfg.Rise, Restarts: m.cfg.Restarts,
		FailureTimeout: m.cfg.FailureTimeout, EarlyFence: m.Fence != nil}
}

// standbyStep looks at the store and does what decide.Standby says: wait, take the
// package over (fencing whom it names first), ask for it back, or settle what this host
// left when it fenced itself. It returns done when the monitor should exit.
func (m *Monitor) standbyStep(ctx context.Context) (bool, error) {
	v, err := m.readView(ctx)
	if err != nil {
		return false, nil // the store is out of reach: nothing can be decided
	}
	if c := m.newSettings(); c != nil {
		// a stand-by takes new settings at once: Watch keeps the longest wait since the
		// owner changed, whatever they say
		m.cfg = *c
		m.shareConfig()
		m.Log.Printf("%s: new settings (pace %v, timeout %v)", m.Name, c.Pace, c.Timeout)
	}
	now := m.now()
	seen := m.watch
	d := decide.Standby(m.rules(), m.Host, v, &m.watch, now, m.selfFenced)
	m.Log.Printf(logsink.Debug+"%s: stand-by: owner %s, state %s, tick %s (unchanged for %v): %s %s",
		m.Name, orNone(v.Owner), v.State, v.Tick, (now - m.watch.Since).Round(time.Millisecond), d.Action, d.Reason)
	if m.watch.Since != seen.Since {
		m.seenAtWall = m.clock().Now()
	}
	if !m.watch.GaveUp {
		m.publishStandby(ctx, now)
	}
	if m.Fence != nil {
		if v.Owner != m.Host {
			m.Fence.Prepare(v.Owner)
		} else {
			m.Fence.Prepare("")
		}
	}
	switch d.Action {
	case decide.Release:
		if won, err := m.releaseAs(ctx, decide.Previous{Host: m.Host, Ending: decide.Stopped}); err == nil {
			m.selfFenced = ""
			if won {
				m.record(ctx, "gave the package up after fencing itself (stopped cleanly)")
			}
		}
	case decide.MarkStopFailed:
		if won, err := m.Store.Swap(ctx, m.key("state"), string(v.State), string(decide.StopFailed)); err == nil {
			m.selfFenced = ""
			if won {
				m.record(ctx, "state stop-failed: its stop failed when it fenced itself; it stays here until this host is fenced")
			}
		}
	case decide.AskBack:
		m.Store.Set(ctx, m.key("move"), m.Host)
		m.record(ctx, "asks for the package back (failback)")
	case decide.StandByAgain:
		m.record(ctx, "stands by again: "+d.Reason.String())
	case decide.LapseMove:
		if won, err := m.Store.Swap(ctx, m.key("move"), v.Move, ""); err == nil && won {
			m.record(ctx, fmt.Sprintf("the move to %s lapsed: its monitor has not reported for %.1f s", v.Move, (now-m.watch.MoveSince).Seconds()))
		}
	case decide.TakeOver:
		if d.Reason == decide.OwnerStopFailed || d.Early {
			// fenced before the race: its monitor has given up (or is dead or frozen),
			// and a fence that fails leaves the package where it is, with nothing to
			// undo
			env := []string{"LITE_RAFT_PKG_NAME=" + m.Name, "LITE_RAFT_PKG_OWNER=" + m.Host, "LITE_RAFT_PKG_PREVIOUS_OWNER=" + v.Owner}
			if !m.fence(ctx, ctx, d, env) {
				decide.FenceFailed(m.rules(), &m.watch, now)
				return false, nil
			}
			d.Fence, d.FenceOnly = "", false
		}
		return m.takeOver(ctx, v, d)
	}
	return false, nil
}

// takeOver races for the package and runs it as the active owner, fencing first whom d
// names. The race is one conditional write: if the tick and the owner are still what
// this host read, raise the tick, name this host owner, record whom it took the package
// from and how that ended, and raise the generation, all at once. (On a cluster with a
// member from before that write: the tick first, so a live owner's next heartbeat makes
// this lose, then the owner, the previous owner and the generation, one by one.)
func (m *Monitor) takeOver(ctx context.Context, v decide.View, d decide.Decision) (bool, error) {
	var prev *decide.Previous
	switch {
	case d.Reason == decide.OwnerStopFailed || d.Early:
		prev = &decide.Previous{Host: v.Owner, Ending: decide.Fenced} // fenced before the race
	case d.Reason != decide.Adopt && v.Owner != "":
		// whoever comes next, should this start not happen, fences the host it came from
		prev = &decide.Previous{Host: v.Owner, Ending: decide.TakenOver}
	}
	sent := m.now()
	newTick, gen, won, err := m.race(ctx, v, prev)
	if err != nil || !won {
		if err != nil {
			m.Log.Printf(logsink.Warn+"%s: take over: %v", m.Name, err)
		}
		return false, nil
	}
	if v.Move == m.Host {
		m.Store.Swap(ctx, m.key("move"), m.Host, "")
	}
	// (adopting, it takes over from itself, as the history has always said)
	m.record(ctx, fmt.Sprintf("takes over from %s (generation %d): %s", orNone(v.Owner), gen, d.Reason))
	return m.active(ctx, v.Owner, gen, newTick, sent, d)
}

// race is the takeover's write: it reports whether this host won, with the new tick and
// generation.
func (m *Monitor) race(ctx context.Context, v decide.View, prev *decide.Previous) (tick, gen int64, won bool, err error) {
	t, _ := strconv.ParseInt(v.Tick, 10, 64)
	txn := api.Txn{
		If: []api.TxnCond{{Key: m.key("tick"), Test: api.TestEquals, Value: []byte(v.Tick)},
			{Key: m.key("owner"), Test: api.TestEquals, Value: []byte(v.Owner)}},
		// the state moves with the owner: a stand-by that read the new owner beside the old
		// owner's stop-failed took the new owner for one whose stop failed, and fenced it
		Then: []api.TxnAction{{Do: api.DoSet, Key: m.key("tick"), Value: []byte(strconv.FormatInt(t+1, 10))},
			{Do: api.DoSet, Key: m.key("owner"), Value: []byte(m.Host)},
			{Do: api.DoSet, Key: m.key("state"), Value: []byte(decide.Starting)}},
	}
	if prev != nil {
		txn.Then = append(txn.Then, api.TxnAction{Do: api.DoSet, Key: m.key("previous"), Value: []byte(prev.String())})
	}
	txn.Then = append(txn.Then, api.TxnAction{Do: api.DoRaise, Key: m.key("generation")})
	res, won, err := m.Store.Txn(ctx, txn)
	switch {
	case errors.Is(err, ErrOlder):
		return m.raceByKeys(ctx, v, prev)
	case err != nil || !won:
		return 0, 0, false, err
	case len(res.Raised) != 1:
		return 0, 0, false, fmt.Errorf("the takeover's answer has %d generations, not 1", len(res.Raised))
	}
	return t + 1, int64(res.Raised[0]), true, nil
}

// raceByKeys is the takeover on a cluster with a member from before txn.
func (m *Monitor) raceByKeys(ctx context.Context, v decide.View, prev *decide.Previous) (tick, gen int64, won bool, err error) {
	tick, won, err = m.lease().Acquire(ctx, v.Tick, v.Owner)
	if err != nil || !won {
		return 0, 0, false, err
	}
	if prev != nil {
		m.setPrevious(ctx, *prev)
	}
	if gen, err = m.nextGeneration(ctx); err != nil {
		// no fencing token, no start: a token reissued or invalid is worth nothing. The
		// previous owner stays recorded, to be fenced by whoever takes it next
		m.lease().Release(ctx)
		m.record(ctx, fmt.Sprintf("could not raise the generation (%v): not started", err))
		return 0, 0, false, nil
	}
	return tick, gen, true, nil
}

// setPrevious records who held the package before and how that ended.
func (m *Monitor) setPrevious(ctx context.Context, p decide.Previous) {
	if err := m.Store.Set(ctx, m.key("previous"), p.String()); err != nil {
		m.Log.Printf(logsink.Warn+"%s: record the previous owner %s: %v", m.Name, p, err)
	}
}

func orNone(s string) string {
	if s == "" {
		return "nobody"
	}
	return s
}

// nextGeneration raises the fencing token, a store counter (key "generation" among the
// counters, which no plain set reaches), so it only grows and no two owners ever get the
// same one, not even after a restore of the store. It fails when it cannot (the store
// out of reach): the takeover must then not start. On a cluster with a member from
// before counters it raises the plain key "generation" by a conditional set, as before;
// the counter's first value is above that key's last (it is at least the index of its
// entry, and each raise of the key took an entry of its own).
func (m *Monitor) nextGeneration(ctx context.Context) (int64, error) {
	var last error
	for i := 0; i < 5; i++ {
		g, err := m.Store.Counter(ctx, m.key("generation"))
		if errors.Is(err, ErrNoCounters) {
			return m.nextPlainGeneration(ctx)
		}
		if err != nil {
			last = err
			continue
		}
		n, won, err := m.Store.RaiseCounter(ctx, m.key("generation"), g)
		if errors.Is(err, ErrNoCounters) {
			return m.nextPlainGeneration(ctx)
		}
		if err == nil && won {
			return n, nil
		}
		last = err
		if err == nil {
			last = errors.New("another host raised it first")
		}
	}
	return 0, last
}

// nextPlainGeneration raises the plain key "generation" by a conditional set: the
// fencing token on a cluster with a member from before counters.
func (m *Monitor) nextPlainGeneration(ctx context.Context) (int64, error) {
	var last error
	for i := 0; i < 5; i++ {
		g, err := m.Store.Get(ctx, m.key("generation"))
		if err != nil {
			last = err
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(g), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("generation %q is not a count", g)
		}
		won, err := m.Store.Swap(ctx, m.key("generation"), g, strconv.FormatInt(n+1, 10))
		if err == nil && won {
			return n + 1, nil
		}
		last = err
		if err == nil {
			last = errors.New("another host raised it first")
		}
	}
	return 0, last
}

// Generation is package p's fencing token as it stands: the counter, or the plain key
// of the builds before counters while the counter was never raised (or a member does
// not know counters).
func Generation(ctx context.Context, s KV, p string) (string, error) {
	n, err := s.Counter(ctx, Key(p, "generation"))
	switch {
	case err == nil && n > 0:
		return strconv.FormatInt(n, 10), nil
	case err != nil && !errors.Is(err, ErrNoCounters):
		return "", err
	}
	return s.Get(ctx, Key(p, "generation"))
}

// heartbeat raises tick every pace while the package is ours, publishing with each tick
// how long a stand-by must wait after it (packages/NAME/wait). lost receives why we must
// stop: another host took the tick, or no tick succeeded for too long (self-fencing).
type heartbeat struct {
	mu        sync.Mutex
	tick      int64
	lastOK    time.Duration
	rules     decide.Rules  // the deadline's: the settings the owner runs on
	publish   time.Duration // the wait to publish with each tick
	published time.Duration // the wait the last confirmed tick published
	lost      chan decide.Why
	stop      chan struct{}
	done      chan struct{}
	watchdog  *watchdog // fed after each tick that reached the store
}

func (hb *heartbeat) wait() { <-hb.done }

// settings moves the heartbeat to new rules, publishing wait from the next tick on.
func (hb *heartbeat) settings(r decide.Rules, wait time.Duration) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	hb.rules, hb.publish = r, wait
}

// willPublish makes the ticks publish wait from now on, and reports whether a confirmed
// tick has published at least wait already.
func (hb *heartbeat) willPublish(wait time.Duration) bool {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	hb.publish = max(hb.publish, wait)
	return hb.published >= wait
}

func (m *Monitor) startHeartbeat(ctx context.Context, tick int64, sent time.Duration) *heartbeat {
	hb := &heartbeat{tick: tick, lastOK: sent, rules: m.rules(), publish: waitOf(m.cfg),
		lost: make(chan decide.Why, 1), stop: make(chan struct{}), done: make(chan struct{})}
	lose := func(why decide.Why) {
		select {
		case hb.lost <- why:
		default:
		}
	}
	go func() {
		defer close(hb.done)
		hb.mu.Lock()
		pace := hb.rules.Pace
		hb.mu.Unlock()
		timer := m.clock().NewTimer(pace)
		defer timer.Stop()
		results := make(chan bool, 1)
		inFlight := false
		nextTick := m.now() + pace
		for {
			hb.mu.Lock()
			fenceAt, pace := hb.rules.SelfFenceAt(hb.lastOK), hb.rules.Pace
			hb.mu.Unlock()
			now := m.now()
			if now >= fenceAt {
				lose(decide.SelfFence)
				return
			}
			wait := fenceAt - now
			if !inFlight {
				wait = min(wait, max(0, nextTick-now))
			}
			timer.Reset(wait)
			select {
			case <-hb.stop:
				return
			case won := <-results:
				inFlight = false
				if !won {
					lose(decide.OtherOwner) // another host raised the tick: it owns the package now
					return
				}
				continue
			case <-timer.C():
			}
			if inFlight || m.now() < nextTick {
				continue // the last heartbeat has not come back yet, or it is not time
			}
			nextTick = m.now() + pace
			inFlight = true
			hb.mu.Lock()
			cur, publish := hb.tick, hb.publish
			hb.mu.Unlock()
			go func() {
				sent := m.now()
				won, err := m.beat(ctx, cur, publish)
				if err != nil {
					results <- true // unknown: not a loss; the deadline decides
					return
				}
				if won {
					hb.mu.Lock()
					hb.tick, hb.lastOK, hb.published = cur+1, sent, publish
					wd, pace := hb.watchdog, hb.rules.Pace
					hb.mu.Unlock()
					// the watchdog counts from the feed, the deadline from the send: an
					// answer that took longer than a pace feeds nothing, so the host still
					// resets within timeout - pace of a send the store confirmed
					if m.now()-sent > pace {
						m.Log.Printf(logsink.Warn+"%s: the tick's answer took %v: the watchdog is not fed for it", m.Name, m.now()-sent)
					} else if err := wd.feed(); err != nil {
						m.Log.Printf(logsink.Warn+"%s: feed the watchdog: %v", m.Name, err)
					}
				}
				results <- won
			}()
		}
	}()
	return hb
}

// beat raises the tick from tick while this host owns the package, and publishes wait
// with it, in one write (on a cluster with a member from before txn: the tick alone).
func (m *Monitor) beat(ctx context.Context, tick int64, wait time.Duration) (bool, error) {
	_, won, err := m.Store.Txn(ctx, api.Txn{
		If: []api.TxnCond{{Key: m.key("tick"), Test: api.TestEquals, Value: []byte(strconv.FormatInt(tick, 10))},
			{Key: m.key("owner"), Test: api.TestEquals, Value: []byte(m.Host)}},
		Then: []api.TxnAction{{Do: api.DoSet, Key: m.key("tick"), Value: []byte(strconv.FormatInt(tick+1, 10))},
			{Do: api.DoSet, Key: m.key("wait"), Value: []byte(strconv.FormatInt(wait.Milliseconds(), 10))}},
	})
	if errors.Is(err, ErrOlder) {
		return m.lease().Renew(ctx, tick)
	}
	return won, err
}

// lastConfirmed is the send time of the last tick the store confirmed.
func (hb *heartbeat) lastConfirmed() time.Duration {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	return hb.lastOK
}

// active runs the package until it must stop: it fences whom d names, runs the script's
// fence and start (or, adopting its own package, its status), then does each pace what
// decide.ActiveStep says. It returns done when the monitor exits.
func (m *Monitor) active(ctx context.Context, previous string, gen, tick int64, sent time.Duration, d decide.Decision) (bool, error) {
	wd, wdErr := m.armWatchdog(ctx) // watchdog.go: recorded there why it could not be had
	if wdErr != nil {
		// promised protection that cannot be had: do not run without it
		return m.giveUp(ctx, "failing")
	}
	hb := m.startHeartbeat(ctx, tick, sent)
	hb.watchdog = wd
	defer func() {
		close(hb.stop)
		hb.wait()
	}()
	// scripts run under runCtx: losing the package cancels whatever runs
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	lost := make(chan decide.Why, 1)
	go func() {
		select {
		case why := <-hb.lost:
			lost <- why
			cancel()
		case <-runCtx.Done():
		}
	}()
	env := []string{"LITE_RAFT_PKG_NAME=" + m.Name, "LITE_RAFT_PKG_OWNER=" + m.Host,
		"LITE_RAFT_PKG_PREVIOUS_OWNER=" + previous, "LITE_RAFT_PKG_GENERATION=" + strconv.FormatInt(gen, 10)}
	m.Script.SetEnv(env)
	// the store calls while it runs go under runCtx too: a deadline that passes while one
	// waits on a store cut off cancels it, and the stop begins at once, not when the
	// call gives up
	m.setState(runCtx, "starting")
	if d.Fence != "" && d.Fence != m.Host {
		if !m.fence(runCtx, ctx, d, env) {
			wd.disarm() // nothing was started here
			return m.notStarted(ctx, d)
		}
	}
	up := false
	if d.Reason == decide.Adopt {
		code, _, err := m.Script.Run(runCtx, "status", m.cfg.StartTimeout)
		up = err == nil && code == 0
	} else if code, out, err := m.Script.Run(runCtx, "fence", m.cfg.StartTimeout); err != nil || code != 0 {
		m.Log.Printf(logsink.Warn+"%s: fence failed (exit %d, %v): %s; not starting", m.Name, code, err, out)
		m.record(ctx, "fence failed: not started")
		wd.disarm()
		return m.giveUp(ctx, "failing")
	}
	stopFor := func(why decide.Why) (bool, error) {
		if ctx.Err() != nil && why != decide.SelfFence && why != decide.OtherOwner {
			why = decide.Asked
		}
		return m.stopFor(why, wd)
	}
	if !up {
		if code, out, err := m.Script.Run(runCtx, "start", m.cfg.StartTimeout); err != nil || code != 0 {
			if why, ok := lostWhy(lost); ok {
				return stopFor(why)
			}
			m.Log.Printf(logsink.Warn+"%s: start failed (exit %d, %v): %s", m.Name, code, err, out)
			m.setState(runCtx, "failing")
			return stopFor(decide.Down)
		}
	}
	m.setState(runCtx, "running")
	var health decide.Health
	cleanup := m.lastCleanup // a pkg cleanup from here on resets health
	t := m.clock().NewTimer(m.cfg.Pace)
	defer t.Stop()
	rules := m.rules()
	var pending *Config // new settings, until a tick has published their wait
	for {
		t.Reset(m.cfg.Pace)
		select {
		case <-runCtx.Done():
			if why, ok := lostWhy(lost); ok {
				return stopFor(why)
			}
			return stopFor(decide.Asked)
		case <-t.C():
		}
		// the deadline before anything else: after a freeze the package stops first
		if step, why := decide.ActiveStep(rules, m.Host, nil, hb.lastConfirmed(), m.now()); step == decide.Stop {
			return stopFor(why)
		}
		var vp *decide.View
		if v, err := m.readView(runCtx); err == nil {
			vp = &v
			if c := m.newSettings(); c != nil {
				m.Log.Printf("%s: new settings (pace %v, timeout %v): taken once a tick has published their wait", m.Name, c.Pace, c.Timeout)
				pending = c
			}
		}
		if pending != nil && hb.willPublish(max(waitOf(m.cfg), waitOf(*pending))) {
			// the stand-bys wait for both settings' waits now: the deadline, the stop's
			// time limit and the pace move together, here
			m.cfg, pending = *pending, nil
			m.shareConfig()
			rules = m.rules()
			hb.settings(rules, waitOf(m.cfg))
			m.Log.Printf("%s: new settings in force", m.Name)
		}
		step, why := decide.ActiveStep(rules, m.Host, vp, hb.lastConfirmed(), m.now())
		switch step {
		case decide.Keep:
			continue
		case decide.Stop:
			switch why {
			case decide.Moved:
				m.record(runCtx, "handing over to "+vp.Move+" (pkg move)")
			case decide.Evacuated:
				m.record(runCtx, "handing over: this host is evacuated (pkg evacuate)")
			}
			return stopFor(why)
		}
		if vp != nil && vp.Cleanup != cleanup {
			cleanup = vp.Cleanup
			if decide.CleanupFor(cleanup, m.Host) {
				health.Reset()
				m.record(runCtx, "failures and restarts forgotten (pkg cleanup)")
			}
		}
		code, _, err := m.Script.Run(runCtx, "status", m.cfg.StartTimeout)
		if runCtx.Err() != nil {
			continue
		}
		ok := err == nil && (code == 0 || code == 2)
		if ok && code == 2 {
			m.Log.Printf(logsink.Warn+"%s: status says degraded", m.Name)
		}
		switch health.Observe(rules, ok, m.now()) {
		case decide.Healthy:
		case decide.Suspect:
			m.Log.Printf(logsink.Warn+"%s: status %d (%v): failed, fewer than %d times in a row: looking again next pace", m.Name, code, err, max(m.cfg.Fall, 1))
		case decide.Restart:
			m.record(runCtx, fmt.Sprintf("status %d: local restart %d of %d", code, health.Used(), m.cfg.Restarts))
			if m.stopScript() {
				if c, _, err := m.Script.Run(runCtx, "start", m.cfg.StartTimeout); err == nil && c == 0 {
					continue
				}
			}
			m.setState(runCtx, "failing")
			return stopFor(decide.Down)
		case decide.GiveUp:
			m.setState(runCtx, "failing")
			return stopFor(decide.Down)
		}
	}
}

// lostWhy is why the heartbeat lost the package, if it did.
func lostWhy(lost chan decide.Why) (decide.Why, bool) {
	select {
	case why := <-lost:
		return why, true
	default:
		return 0, false
	}
}

// fence makes sure the package does not run on the host d names before this one starts
// it: fence-stop there over ssh, then, if the host cannot be reached, fence_command.
// Whether that allows the start is decide.AfterFence's to say; it records what happened.
func (m *Monitor) fence(runCtx, ctx context.Context, d decide.Decision, env []string) bool {
	res, err := decide.FenceUnreachable, errors.New("no fencing over ssh here")
	if m.Fence != nil {
		res, err = m.Fence.FenceHost(runCtx, d.Fence, d.Early)
	}
	if d.Early && res != decide.FenceStopped {
		// routine (a slow store, a host that does not answer): the timeout decides
		m.Log.Printf("%s: %s's tick stood for two paces; fencing it early: %s (%v): waiting", m.Name, d.Fence, res, err)
		return false
	}
	switch decide.AfterFence(res, d.FenceOnly, m.cfg.FenceCommand != "" && !d.Early) {
	case decide.Start:
		if res == decide.FenceStopped {
			m.record(ctx, "fenced "+d.Fence+": stopped there")
			m.setPrevious(ctx, decide.Previous{Host: d.Fence, Ending: decide.Fenced})
		} else {
			m.record(ctx, fmt.Sprintf("could not reach %s to fence it (%v): its monitor, if alive, has stopped it (timeout)", d.Fence, err))
		}
		return true
	case decide.RunFenceCommand:
		// the last resort for a host ssh cannot reach: a power switch, a reservation
		code, out, ferr := m.Script.Shell(runCtx, m.cfg.FenceCommand, env, m.cfg.StartTimeout)
		if ferr != nil || code != 0 {
			m.Log.Printf(logsink.Warn+"%s: fence_command for %s failed (exit %d, %v): %s; not starting", m.Name, d.Fence, code, ferr, out)
			m.record(ctx, fmt.Sprintf("%s unreachable (%v) and fence_command failed: not started", d.Fence, err))
			return false
		}
		m.record(ctx, fmt.Sprintf("%s unreachable (%v): fenced by fence_command", d.Fence, err))
		m.setPrevious(ctx, decide.Previous{Host: d.Fence, Ending: decide.Fenced})
		return true
	}
	m.Log.Printf(logsink.Warn+"%s: fencing %s: %s (%v); not starting", m.Name, d.Fence, res, err)
	m.record(ctx, fmt.Sprintf("fencing %s: %s: not started", d.Fence, res))
	return false
}

// notStarted gives up a takeover whose fencing did not allow the start. It does not
// release to nobody, which would tell the next owner there is no one to fence: the
// package goes back to the host it may still run on, as stop-failed, so that whoever
// comes next (this host included, after a backoff) must fence that host first.
func (m *Monitor) notStarted(ctx context.Context, d decide.Decision) (bool, error) {
	m.setPrevious(ctx, decide.Previous{Host: d.Fence, Ending: decide.StopFailedEnding})
	m.setState(ctx, string(decide.StopFailed))
	if won, err := m.Store.Swap(ctx, m.key("owner"), m.Host, d.Fence); err != nil || !won {
		m.Log.Printf("%s: give the package back to %s: won %v, %v", m.Name, d.Fence, won, err)
	} else {
		m.record(ctx, "gave the package back to "+d.Fence+", which must be fenced before it starts elsewhere")
	}
	decide.FenceFailed(m.rules(), &m.watch, m.now())
	return false, nil
}

// stopFor stops the package for why and does what decide.AfterStop says of the result:
// a failed stop keeps the package here as stop-failed (never released), and leaves the
// watchdog armed, so the host resets unless someone fences it.
func (m *Monitor) stopFor(why decide.Why, wd *watchdog) (bool, error) {
	m.Log.Printf("%s: stopping: %s", m.Name, why)
	switch why {
	case decide.Halt, decide.Moved, decide.Asked, decide.Evacuated:
		// asked to: say so first (bounded; a self-fence waits for no store call)
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Pace)
		m.setState(ctx, string(decide.Halting))
		cancel()
	}
	stopped := m.stopScript()
	a := decide.AfterStop(m.Host, why, stopped)
	if stopped {
		wd.disarm()
	} else {
		wd.abandon()
	}
	// the stop is done: what records it comes after, bounded
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Pace+5*time.Second)
	defer cancel()
	if a.State == decide.StopFailed {
		if ok, host := m.everyHostUnderstands(ctx); !ok {
			// a rolling upgrade: an older monitor knows nothing of stop-failed. Give the
			// package up as before, naming this host as one to fence for the newer ones
			m.Log.Printf("%s: %s runs a monitor from before stop-failed: released as older builds do", m.Name, host)
			a.State, a.Release, a.Previous = decide.Failed, true, decide.Previous{Host: m.Host, Ending: decide.StopFailedEnding}
		}
	}
	how := "stopped"
	if !stopped {
		how = "stop FAILED"
	}
	m.record(ctx, fmt.Sprintf("%s: %s", how, why))
	if a.State != "" {
		m.setState(ctx, string(a.State))
	}
	if a.Release {
		m.releaseAs(ctx, a.Previous)
	}
	if a.Pending != "" {
		m.selfFenced = a.Pending
	}
	if a.GiveUp {
		m.gaveUp(ctx)
	}
	if a.Escalate {
		m.Log.Printf(logsink.Warn+"%s: the package may still run here: no other host starts it until this one is fenced", m.Name)
		m.failFast(ctx, wd) // on_stop_failure, if set: failfast.go
	}
	switch {
	case !a.Exit:
		return false, nil
	case why == decide.Asked && stopped:
		return true, nil
	case !stopped:
		return true, fmt.Errorf("package %s: stop failed on %s: it stays here (stop-failed) until this host is fenced or pkg confirm-stopped", m.Name, m.Host)
	}
	return true, fmt.Errorf("package %s %s on %s", m.Name, a.State, m.Host)
}

// stopScript stops the package, bounded by stop_timeout, and reports whether the stop
// succeeded.
func (m *Monitor) stopScript() bool {
	code, out, err := m.Script.Run(context.Background(), "stop", m.cfg.StopTimeout)
	if err != nil || code != 0 {
		m.Log.Printf(logsink.Warn+"%s: stop failed (exit %d, %v): %s", m.Name, code, err, out)
		return false
	}
	return true
}

// gaveUp makes this host's monitor a stand-by that takes the package no more, until pkg
// cleanup names it or failure_timeout passes (decide.Watch.GiveUp). It stays: it goes on
// notifying (the last host to give up is the one that sends "down everywhere"), and a
// cleanup needs no one at the host.
func (m *Monitor) gaveUp(ctx context.Context) {
	m.watch.GiveUp(m.now(), m.lastCleanup)
	m.Store.Set(ctx, m.key("standby/"+m.Host), "") // standing by no more: say so at once
	how := "pkg cleanup " + m.Name + " " + m.Host
	if m.cfg.FailureTimeout > 0 {
		how += fmt.Sprintf(" or failure_timeout (%v)", m.cfg.FailureTimeout)
	}
	m.record(ctx, "gave up here: takes the package no more until "+how)
}

// giveUp records a final state and gives the package up, so a stand-by takes over, and
// this host takes it no more (gaveUp). Only for a package that never started here: who
// held it before stays recorded.
func (m *Monitor) giveUp(ctx context.Context, state string) (bool, error) {
	m.setState(ctx, state)
	m.lease().Release(ctx)
	m.record(ctx, "gave up: "+state)
	m.gaveUp(ctx)
	return false, nil
}

// releaseAs gives the package up, recording this host as its previous owner and how its
// time ended.
func (m *Monitor) releaseAs(ctx context.Context, p decide.Previous) (bool, error) {
	m.setPrevious(ctx, p)
	won, err := m.lease().Release(ctx)
	if err == nil && won {
		m.record(ctx, "released (previous: "+p.String()+")")
	}
	return won, err
}

func (m *Monitor) setState(ctx context.Context, s string) {
	if err := m.Store.Set(ctx, m.key("state"), s); err != nil {
		m.Log.Printf(logsink.Warn+"%s: record state %s: %v", m.Name, s, err)
	}
	m.record(ctx, "state "+s)
}

// historyLines is how many transitions packages/NAME/history keeps.
const historyLines = 30

// record logs a transition and appends it to packages/NAME/history (who, what, when).
func (m *Monitor) record(ctx context.Context, what string) {
	m.Log.Printf("%s: %s", m.Name, what)
	Record(ctx, m.Store, m.Name, m.Host, m.clock().Now(), what)
}

// Record appends a transition of package name, seen on host at when, to its history,
// keeping the last historyLines.
func Record(ctx context.Context, s KV, name, host string, when time.Time, what string) {
	line := fmt.Sprintf("%s %s %s", when.UTC().Format("2006-01-02T15:04:05.000Z"), host, what)
	for i := 0; i < 3; i++ {
		old, err := s.Get(ctx, Key(name, "history"))
		if err != nil {
			return
		}
		lines := append(strings.Split(strings.TrimSpace(old), "\n"), line)
		if lines[0] == "" {
			lines = lines[1:]
		}
		lines = lines[max(0, len(lines)-historyLines):]
		if won, err := s.Swap(ctx, Key(name, "history"), old, strings.Join(lines, "\n")); err != nil || won {
			return
		}
	}
}

// standbyEvery is how often a stand-by says it is there (and when it last saw the tick
// move), for `pkg status`.
func (m *Monitor) standbyEvery() time.Duration { return max(2*time.Second, 5*m.cfg.Pace) }

func (m *Monitor) publishStandby(ctx context.Context, now time.Duration) {
	if m.published != 0 && now-m.published < m.standbyEvery() {
		return
	}
	m.published = now
	v := fmt.Sprintf("%d %s %d %d", m.clock().Now().UnixMilli(), m.watch.Tick, m.seenAtWall.UnixMilli(), m.standbyEvery().Milliseconds())
	m.Store.Set(ctx, m.key("standby/"+m.Host), v)
	// what this build understands, beside the report (whose four fields older builds
	// parse exactly)
	m.Store.Set(ctx, m.key("level/"+m.Host), strconv.Itoa(Level))
}

// Level is what this build's monitor understands of a package's state: 2 is stop-failed
// and previous (issue 25); builds before it said nothing (1). A monitor keeps a failed
// stop's package as stop-failed only once every package host says 2 or more: an older
// monitor would take it over from a stop-failed owner by the timing rule alone.
const Level = 2

// everyHostUnderstands reports whether every host that runs or ran a monitor of the
// package (a stand-by report, or allowed_hosts) says it understands Level.
func (m *Monitor) everyHostUnderstands(ctx context.Context) (bool, string) {
	hosts, err := m.Store.List(ctx, m.key("standby"))
	if err != nil {
		return false, "the store could not say"
	}
	hosts = append(hosts, m.cfg.AllowedHosts...)
	for _, h := range hosts {
		if h == m.Host {
			continue
		}
		v, err := m.Store.Get(ctx, m.key("level/"+h))
		if n, _ := strconv.Atoi(v); err != nil || n < Level {
			return false, h
		}
	}
	return true, ""
}

// Standby is what `pkg status` shows of one stand-by host.
type Standby struct {
	Host       string
	Fresh      bool      // it reported within three of its intervals
	Tick       string    // the tick it saw
	TickSeen   time.Time // when it saw that tick first
	ReportedAt time.Time
}

// ParseStandby reads a packages/NAME/standby/HOST value.
func ParseStandby(host, v string, now time.Time) (Standby, bool) {
	f := strings.Fields(v)
	if len(f) != 4 {
		return Standby{}, false
	}
	at, err1 := strconv.ParseInt(f[0], 10, 64)
	seen, err2 := strconv.ParseInt(f[2], 10, 64)
	every, err3 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Standby{}, false
	}
	return Standby{Host: host, Tick: f[1], TickSeen: time.UnixMilli(seen), ReportedAt: time.UnixMilli(at),
		Fresh: now.Sub(time.UnixMilli(at)) < 3*time.Duration(every)*time.Millisecond+time.Second}, true
}
