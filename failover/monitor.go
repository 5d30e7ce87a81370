package failover

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Keys of a package in the store.
func Key(name, field string) string { return "packages/" + name + "/" + field }

// Fencer stops a package on another host, whatever that host's monitor is doing (dead,
// frozen, cut off from the cluster).
type Fencer interface {
	// FenceHost makes sure the package does not run on host. reached is false when the
	// host could not be reached at all: then the timing rule covers it (a live monitor
	// there has stopped it). An error with reached true means the host answered and the
	// package may still run there: it must not start elsewhere.
	FenceHost(ctx context.Context, host string) (reached bool, err error)
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
	Store  *Store
	Script Runner
	Log    *log.Logger
	// Clock is the monitor's time (nil: the system's).
	Clock Clock
	// Lease is the package's ownership (nil: conditional sets on Store).
	Lease Lease
	// Fence stops the package on the previous owner before this host starts it (nil:
	// only the control script's fence runs).
	Fence Fencer

	cfg   Config
	epoch time.Time // monotonic clock origin

	// observations as a stand-by
	seenTick, seenOwner string
	seenAt              time.Duration
	seenAtWall          time.Time
	published           time.Duration // when packages/NAME/standby/HOST was last written
	releasePending      bool          // fenced ourselves while owner: give it up once we can
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

func (m *Monitor) now() time.Duration { return m.clock().Now().Sub(m.epoch) } // monotonic

func (m *Monitor) key(f string) string { return Key(m.Name, f) }

// Run monitors until ctx ends (pkg stop: an active monitor stops the package and gives it
// up first) or the package fails here.
func (m *Monitor) Run(ctx context.Context) error {
	m.epoch = m.clock().Now()
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
	m.Log.Printf("%s: monitoring on %s (pace %v, timeout %v)", m.Name, m.Host, m.cfg.Pace, m.cfg.Timeout)
	m.stopStray(ctx)
	if m.cfg.Notify != "" {
		nctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); m.notifyLoop(nctx) }()
		defer func() { stop(); <-done }()
	}
	t := m.clock().NewTimer(m.cfg.Pace)
	t.Stop() // armed only while this loop waits on it
	defer t.Stop()
	for {
		if done, err := m.standbyStep(ctx); done || err != nil {
			return err
		}
		// Wait a pace, but wake as soon as the owner changes (a release, a move): the
		// store answers a watch when the key no longer holds what we saw.
		if _, err := m.Store.Watch(ctx, m.key("owner"), m.seenOwner, m.cfg.Pace); err != nil {
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

// standbyStep looks at the store and takes the package over when the rules allow.
// It returns done when the monitor should exit.
func (m *Monitor) standbyStep(ctx context.Context) (bool, error) {
	get := func(f string) (string, bool) {
		v, err := m.Store.Get(ctx, m.key(f))
		return v, err == nil
	}
	owner, ok1 := get("owner")
	tick, ok2 := get("tick")
	halt, ok3 := get("halt")
	enabled, ok4 := get("enabled")
	move, ok5 := get("move")
	if !(ok1 && ok2 && ok3 && ok4 && ok5) {
		return false, nil // the store is out of reach: nothing can be decided
	}
	now := m.now()
	if m.releasePending && owner == m.Host {
		if won, err := m.lease().Release(ctx); err == nil {
			m.releasePending = false
			if won {
				m.record(ctx, "gave the package up after fencing itself")
				owner = ""
			}
		}
	}
	if tick != m.seenTick || owner != m.seenOwner {
		m.seenTick, m.seenOwner, m.seenAt, m.seenAtWall = tick, owner, now, m.clock().Now()
	}
	m.publishStandby(ctx, now)
	if m.Fence != nil {
		if owner != m.Host {
			m.Fence.Prepare(owner)
		} else {
			m.Fence.Prepare("")
		}
	}
	if halt == "yes" || enabled == "no" {
		m.seenAt = now // no countdown while halted or in maintenance
		return false, nil
	}
	allowed, rank := m.cfg.Allowed(m.Host)
	if !allowed || (move != "" && move != m.Host) {
		return false, nil
	}
	if move == m.Host {
		rank = 0
	}
	if m.cfg.Failback && m.cfg.PreferredOwner == m.Host && owner != "" && owner != m.Host && move == "" {
		m.Store.Set(ctx, m.key("move"), m.Host)
		m.record(ctx, "asks for the package back (failback)")
		return false, nil
	}
	adopt := owner == m.Host // our own package, from before this monitor started
	switch {
	case adopt:
	case owner == "":
		if now-m.seenAt < time.Duration(rank)*m.cfg.Pace {
			return false, nil // the hosts listed first get the first chance
		}
	case now-m.seenAt <= m.cfg.Timeout+3*m.cfg.Pace:
		return false, nil // the owner may still be alive: wait out its fencing deadline
	}
	// the race: the tick first (so a live owner's next heartbeat makes us lose), then owner
	sent := m.now()
	newTick, won, err := m.lease().Acquire(ctx, tick, owner)
	if err != nil || !won {
		return false, nil
	}
	gen, err := m.nextGeneration(ctx)
	if err != nil {
		// no fencing token, no start: a token reissued or invalid is worth nothing
		m.release(ctx, fmt.Sprintf("could not raise the generation (%v): not started", err))
		return false, nil
	}
	if move == m.Host {
		m.Store.Swap(ctx, m.key("move"), m.Host, "")
	}
	m.record(ctx, fmt.Sprintf("takes over from %s (generation %d)", orNone(owner), gen))
	return m.active(ctx, owner, gen, newTick, sent, adopt)
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
func Generation(ctx context.Context, s *Store, p string) (string, error) {
	n, err := s.Counter(ctx, Key(p, "generation"))
	switch {
	case err == nil && n > 0:
		return strconv.FormatInt(n, 10), nil
	case err != nil && !errors.Is(err, ErrNoCounters):
		return "", err
	}
	return s.Get(ctx, Key(p, "generation"))
}

// heartbeat raises tick every pace while the package is ours. lost receives why we must
// stop: another host took the tick, or no tick succeeded for too long (self-fencing).
type heartbeat struct {
	mu       sync.Mutex
	tick     int64
	lastOK   time.Duration
	lost     chan string
	stop     chan struct{}
	done     chan struct{}
	watchdog *watchdog // fed after each tick that reached the store
}

func (hb *heartbeat) wait() { <-hb.done }

func (m *Monitor) startHeartbeat(ctx context.Context, tick int64, sent time.Duration) *heartbeat {
	hb := &heartbeat{tick: tick, lastOK: sent, lost: make(chan string, 1), stop: make(chan struct{}), done: make(chan struct{})}
	// The package must be stopped by lastOK + timeout; start stopping a pace of margin
	// before stop_timeout runs out.
	budget := m.cfg.Timeout - m.cfg.StopTimeout - m.cfg.Pace
	lose := func(why string) {
		select {
		case hb.lost <- why:
		default:
		}
	}
	go func() {
		defer close(hb.done)
		timer := m.clock().NewTimer(m.cfg.Pace)
		defer timer.Stop()
		results := make(chan bool, 1)
		inFlight := false
		nextTick := m.now() + m.cfg.Pace
		for {
			hb.mu.Lock()
			fenceAt := hb.lastOK + budget
			hb.mu.Unlock()
			now := m.now()
			if now >= fenceAt {
				lose(fmt.Sprintf("no heartbeat reached the store for %v: fencing myself", budget))
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
					lose("another host raised the tick: it owns the package now")
					return
				}
				continue
			case <-timer.C():
			}
			if inFlight || m.now() < nextTick {
				continue // the last heartbeat has not come back yet, or it is not time
			}
			nextTick = m.now() + m.cfg.Pace
			inFlight = true
			hb.mu.Lock()
			cur := hb.tick
			hb.mu.Unlock()
			go func() {
				sent := m.now()
				won, err := m.lease().Renew(ctx, cur)
				if err != nil {
					results <- true // unknown: not a loss; the deadline decides
					return
				}
				if won {
					hb.mu.Lock()
					hb.tick, hb.lastOK = cur+1, sent
					wd := hb.watchdog
					hb.mu.Unlock()
					if err := wd.feed(); err != nil {
						m.Log.Printf("%s: feed the watchdog: %v", m.Name, err)
					}
				}
				results <- won
			}()
		}
	}()
	return hb
}

// active runs the package until it must stop. It returns done when the monitor exits.
func (m *Monitor) active(ctx context.Context, previous string, gen, tick int64, sent time.Duration, adopt bool) (bool, error) {
	var wd *watchdog
	if m.cfg.Watchdog != "" {
		var err error
		if wd, err = openWatchdog(m.cfg.Watchdog, m.cfg.watchdogTimeout()); err != nil {
			// promised protection that cannot be had: do not run without it
			m.Log.Printf("%s: %v; not starting", m.Name, err)
			m.record(ctx, "watchdog unavailable: not started")
			return m.giveUp(ctx, "failing")
		}
		m.Log.Printf("%s: watchdog %s armed (%d s)", m.Name, m.cfg.Watchdog, m.cfg.watchdogTimeout())
	}
	hb := m.startHeartbeat(ctx, tick, sent)
	hb.watchdog = wd
	defer func() {
		close(hb.stop)
		hb.wait()
		// the package is stopped (every way out of here stops it first): disarm
		wd.disarm()
	}()
	// scripts run under runCtx: losing the package cancels whatever runs
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lostWhy string
	go func() {
		select {
		case lostWhy = <-hb.lost:
			cancel()
		case <-runCtx.Done():
		}
	}()
	m.Script.SetEnv([]string{"LITE_RAFT_PKG_NAME=" + m.Name, "LITE_RAFT_PKG_OWNER=" + m.Host,
		"LITE_RAFT_PKG_PREVIOUS_OWNER=" + previous, "LITE_RAFT_PKG_GENERATION=" + strconv.FormatInt(gen, 10)})
	m.setState(ctx, "starting")
	up := false
	if !adopt && previous != "" && previous != m.Host && m.Fence != nil {
		// the previous owner's copy must be stopped, whatever its script's fence does
		reached, err := m.Fence.FenceHost(runCtx, previous)
		switch {
		case err == nil:
			m.record(ctx, "fenced "+previous+": stopped there")
		case !reached && m.cfg.FenceCommand != "":
			// the last resort for a host ssh cannot reach: a power switch, a reservation
			env := []string{"LITE_RAFT_PKG_NAME=" + m.Name, "LITE_RAFT_PKG_OWNER=" + m.Host,
				"LITE_RAFT_PKG_PREVIOUS_OWNER=" + previous, "LITE_RAFT_PKG_GENERATION=" + strconv.FormatInt(gen, 10)}
			sh := &Script{Path: "/bin/sh", Env: env}
			var out strings.Builder
			code, ferr := sh.run(runCtx, m.cfg.StartTimeout, &out, &out, "-c", m.cfg.FenceCommand)
			if ferr != nil || code != 0 {
				m.Log.Printf("%s: fence_command for %s failed (exit %d, %v): %s; not starting", m.Name, previous, code, ferr, strings.TrimSpace(out.String()))
				m.record(ctx, fmt.Sprintf("%s unreachable (%v) and fence_command failed: not started", previous, err))
				return m.giveUp(ctx, "failing")
			}
			m.record(ctx, fmt.Sprintf("%s unreachable (%v): fenced by fence_command", previous, err))
		case !reached:
			m.record(ctx, fmt.Sprintf("could not reach %s to fence it (%v): its monitor, if alive, has stopped it (timeout)", previous, err))
		default:
			m.Log.Printf("%s: fencing %s failed: %v; not starting", m.Name, previous, err)
			m.record(ctx, "fencing "+previous+" failed: not started")
			return m.giveUp(ctx, "failing")
		}
	}
	if adopt {
		code, _, err := m.Script.Run(runCtx, "status", m.cfg.StartTimeout)
		up = err == nil && code == 0
	} else if code, out, err := m.Script.Run(runCtx, "fence", m.cfg.StartTimeout); err != nil || code != 0 {
		m.Log.Printf("%s: fence failed (exit %d, %v): %s; not starting", m.Name, code, err, out)
		m.record(ctx, "fence failed: not started")
		return m.giveUp(ctx, "failing")
	}
	if !up {
		if code, out, err := m.Script.Run(runCtx, "start", m.cfg.StartTimeout); err != nil || code != 0 {
			m.Log.Printf("%s: start failed (exit %d, %v): %s", m.Name, code, err, out)
			m.setState(ctx, "failing")
			m.stopScript()
			return m.giveUp(ctx, "failed")
		}
	}
	m.setState(ctx, "running")
	restarts := 0
	t := m.clock().NewTimer(m.cfg.Pace)
	defer t.Stop()
	last := m.now()
	for {
		t.Reset(m.cfg.Pace)
		select {
		case <-runCtx.Done():
			if ctx.Err() != nil {
				// pkg stop on this host: stop, then let a stand-by take over
				m.setState(context.Background(), "halting")
				m.stopScript()
				m.setState(context.Background(), "halted")
				m.release(context.Background(), "stopped by pkg stop")
				return true, nil
			}
			m.Log.Printf("%s: %s", m.Name, lostWhy)
			m.stopScript()
			if strings.Contains(lostWhy, "fencing") {
				m.releasePending = true
			}
			m.record(context.Background(), "stopped: "+lostWhy)
			return false, nil
		case <-t.C():
		}
		gap := m.now() - last
		last = m.now()
		halt, err1 := m.Store.Get(runCtx, m.key("halt"))
		move, err2 := m.Store.Get(runCtx, m.key("move"))
		owner, err3 := m.Store.Get(runCtx, m.key("owner"))
		enabled, _ := m.Store.Get(runCtx, m.key("enabled"))
		if gap > 2*m.cfg.Pace && err3 != nil {
			// woken from a freeze (or a long stall) without word from the store: call
			// nothing; the heartbeat's deadline decides whether we still own it
			continue
		}
		if err1 == nil && halt == "yes" {
			m.setState(ctx, "halting")
			m.stopScript()
			m.setState(ctx, "halted")
			m.release(ctx, "halted cluster-wide (pkg halt)")
			return false, nil
		}
		if err3 == nil && owner != m.Host {
			m.Log.Printf("%s: the store names %s as owner: stopping at once", m.Name, orNone(owner))
			m.stopScript()
			m.record(ctx, "stopped: "+orNone(owner)+" owns it")
			return false, nil
		}
		if err2 == nil && move != "" && move != m.Host {
			m.setState(ctx, "halting")
			m.stopScript()
			m.release(ctx, "handed over to "+move+" (pkg move)")
			return false, nil
		}
		if enabled == "no" {
			continue // maintenance: keep the heartbeat, touch nothing
		}
		code, _, err := m.Script.Run(runCtx, "status", m.cfg.StartTimeout)
		if runCtx.Err() != nil {
			continue
		}
		switch {
		case err == nil && code == 0:
		case err == nil && code == 2:
			m.Log.Printf("%s: status says degraded", m.Name)
		default:
			if restarts < m.cfg.Restarts {
				restarts++
				m.record(ctx, fmt.Sprintf("status %d: local restart %d of %d", code, restarts, m.cfg.Restarts))
				m.stopScript()
				if c, _, err := m.Script.Run(runCtx, "start", m.cfg.StartTimeout); err == nil && c == 0 {
					continue
				}
			}
			m.setState(ctx, "failing")
			m.stopScript()
			return m.giveUp(ctx, "failed")
		}
	}
}

// stopScript stops the package, bounded by stop_timeout.
func (m *Monitor) stopScript() {
	code, out, err := m.Script.Run(context.Background(), "stop", m.cfg.StopTimeout)
	if err != nil || code != 0 {
		m.Log.Printf("%s: stop failed (exit %d, %v): %s", m.Name, code, err, out)
	}
}

// giveUp records a final state, gives the package up and ends this host's monitor, so a
// stand-by takes over.
func (m *Monitor) giveUp(ctx context.Context, state string) (bool, error) {
	m.setState(ctx, state)
	m.release(ctx, "gave up: "+state)
	return true, fmt.Errorf("package %s %s on %s", m.Name, state, m.Host)
}

func (m *Monitor) release(ctx context.Context, why string) {
	m.lease().Release(ctx)
	m.record(ctx, why)
}

func (m *Monitor) setState(ctx context.Context, s string) {
	if err := m.Store.Set(ctx, m.key("state"), s); err != nil {
		m.Log.Printf("%s: record state %s: %v", m.Name, s, err)
	}
	m.record(ctx, "state "+s)
}

// historyLines is how many transitions packages/NAME/history keeps.
const historyLines = 30

// record logs a transition and appends it to packages/NAME/history (who, what, when).
func (m *Monitor) record(ctx context.Context, what string) {
	m.Log.Printf("%s: %s", m.Name, what)
	line := fmt.Sprintf("%s %s %s", m.clock().Now().UTC().Format("2006-01-02T15:04:05.000Z"), m.Host, what)
	for i := 0; i < 3; i++ {
		old, err := m.Store.Get(ctx, m.key("history"))
		if err != nil {
			return
		}
		lines := append(strings.Split(strings.TrimSpace(old), "\n"), line)
		if lines[0] == "" {
			lines = lines[1:]
		}
		lines = lines[max(0, len(lines)-historyLines):]
		if won, err := m.Store.Swap(ctx, m.key("history"), old, strings.Join(lines, "\n")); err != nil || won {
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
	v := fmt.Sprintf("%d %s %d %d", m.clock().Now().UnixMilli(), m.seenTick, m.seenAtWall.UnixMilli(), m.standbyEvery().Milliseconds())
	m.Store.Set(ctx, m.key("standby/"+m.Host), v)
}

// Standby is what `pkg status` shows of one stand-by host.
type Standby struct {
	Host       string
	Fresh      bool      // it reported within three of its intervals
	Tick       string    // the tick it saw
	TickSeen   time.Time // when it saw that tick first
	ReportedAt time.Time
}

// TickAge says how old the tick is, as far as this stand-by can tell: exact if the tick
// has not moved since its report, else "less than the report's age".
func (s Standby) TickAge(current string, now time.Time) string {
	if current == s.Tick {
		return now.Sub(s.TickSeen).Round(100 * time.Millisecond).String()
	}
	return "<" + now.Sub(s.ReportedAt).Round(100*time.Millisecond).String()
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
