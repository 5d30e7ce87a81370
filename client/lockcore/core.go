package lockcore

import (
	"encoding/json"
	"fmt"
	"time"

	"lite-raft/api"
)

// Config is one `lock NAME -- COMMAND`.
type Config struct {
	Name   string
	Holder string // who asks (user@host pid), for locks' output
	TTL    time.Duration
	Wait   time.Duration // give up after this long without the lock (0: wait for ever)
	// Hold is the longest one lock-wait may be held by one host (0: as long as the wait
	// likes); lite-raft-remote gives each host a share of the time.
	Hold time.Duration
	// Plant is a bug, for the simulation's checks that it catches each (zero: none).
	Plant Bug
}

// Bug is a planted bug: the simulation shows that its checks catch each.
type Bug uint8

const (
	// KillAtLeaseEnd gives the guard the lease's own end as its deadline, not Margin
	// before it.
	KillAtLeaseEnd Bug = iota + 1
	// StartOnStaleAnswer starts COMMAND on any answer that says the lock is ours, however
	// late it came.
	StartOnStaleAnswer
)

// Send is a request to send. At most one is in flight: lite-raft-remote's caller is not
// for concurrent use. Its answer goes to Answer with the same ID.
type Send struct {
	ID      uint64
	Timeout time.Duration // the longest the request may take
	Req     api.Request
}

// Outcome is how the lock command ends. Err nil: COMMAND ran and Code is its exit
// code. Err set and Code 0: the exit code is the error's (client.ExitCodeOf, or its
// own if the request failed with one). Err set and Code set: exit Code, saying Err.
type Outcome struct {
	Code int
	Err  error
}

// Ready is what the driver must do now, taken by Core.Ready.
type Ready struct {
	Send *Send
	// Wake is when to call Tick at the latest if nothing else comes first (0: not needed).
	Wake Reading
	// Start: run COMMAND under the guard with kill deadline Deadline; Generation is its
	// fencing number.
	Start      bool
	Generation uint64
	// Deadline, when not 0 and not Start: move the running guard's deadline to it.
	Deadline Reading
	// Stop: stop COMMAND now (SIGTERM, SIGKILL the grace later, never after the deadline).
	Stop bool
	// Signal: pass this signal on to COMMAND's group.
	Signal int
	Logs   []string
	// Done: the command ends so; nothing more is to be done.
	Done *Outcome
}

// WaitTimeoutError is a lock that was not ours within Config.Wait: the place was
// given up. Its exit code is api.CodeLockTimeout.
type WaitTimeoutError struct {
	Name  string
	Wait  time.Duration
	Ahead int
}

func (e *WaitTimeoutError) Error() string {
	return fmt.Sprintf("lock %s: not ours within --wait %v (%d ahead); gave up the place", e.Name, e.Wait, e.Ahead)
}

// LostError is a lease that can no longer be taken as ours: gone from the store, or not
// renewed in time. Its exit code is api.CodeLockLost.
type LostError struct {
	Lease uint64
	Why   string
}

func (e *LostError) Error() string { return fmt.Sprintf("lease %d %s", e.Lease, e.Why) }

type phase uint8

const (
	acquiring phase = iota // the acquire is in flight
	waiting                // in the queue: renewing, asking whether it is ours
	running                // COMMAND runs
	releasing              // the revoke is in flight
	done
)

// Core is one lock command from the acquire to the release: which requests to send,
// when COMMAND may start, the guard's deadline after each confirmed renewal, when
// COMMAND must stop. It is pure: the caller passes the time (a Reading of this host's
// clock) with every input, and carries out what Ready says. The command line runs it
// over ssh or the local socket with a real guard process (client.HoldLock); the
// whole-system simulation runs the same Core against simulated agents, drifting
// clocks and frozen, killed or cut-off holders.
//
// The rules it keeps:
//   - the lease is surely ours until the first send of the last renewal the leader
//     confirmed (at first: of the acquire, not of a retry) plus the ttl: the leader
//     counts the ttl from when the request reached it, later. KillDeadline takes Margin
//     off that for the clocks, and is the guard's deadline;
//   - COMMAND starts only while Valid: Margin before that deadline at the latest. An
//     answer that says "yours" but came late is checked by one more renewal;
//   - a lease not renewed by its deadline is lost: COMMAND is stopped;
//   - the lease is released when COMMAND ends, or when a wait is given up.
type Core struct {
	cfg   Config
	now   Reading
	began Reading // when the command began: Wait counts from here
	phase phase

	place     api.LockPlace
	confirmed Reading // first send of the last confirmed renewal (or of the acquire)
	lastTry   Reading // send of the last renewal tried
	quietTill Reading // after a wait that failed at once: no request before this
	checking  bool    // a renewal before the start is in flight, the lock's answer having come late
	checked   bool    // one was confirmed: if that was not enough either, the lock is given up

	flight   *Send
	flightAt Reading
	nextID   uint64

	sig   int      // the signal that ended the wait
	exit  *Outcome // COMMAND's end, while its renewal or release is in flight
	lost  error    // the lease was lost while COMMAND ran: it is being stopped
	final *Outcome // how it ends, once the release is answered

	rd Ready
}

// New starts a lock command at now: Ready has the acquire.
func New(cfg Config, now Reading) *Core {
	c := &Core{cfg: cfg, now: now, began: now}
	c.send(api.Request{Op: api.OpLockAcquire, Key: cfg.Name, TTLMs: uint64(cfg.TTL.Milliseconds()), Holder: cfg.Holder}, 0)
	return c
}

// Ready returns what to do and clears it. Call it after every input.
func (c *Core) Ready() Ready {
	if c.phase != done {
		c.rd.Wake = c.wake()
	}
	rd := c.rd
	c.rd = Ready{}
	return rd
}

// Tick tells the core the time: a Wake came (or anything else happened).
func (c *Core) Tick(now Reading) {
	c.now = max(c.now, now)
	c.advance()
}

// Answer is the answer to request id (err: none came; a transport's error).
func (c *Core) Answer(now Reading, id uint64, resp api.Response, err error) {
	c.now = max(c.now, now)
	if c.flight == nil || c.flight.ID != id {
		return
	}
	s, sent := c.flight, c.flightAt
	c.flight = nil
	switch s.Req.Op {
	case api.OpLockAcquire:
		c.acquired(sent, resp, err)
	case api.OpLockWait:
		c.waited(resp, err)
	case api.OpLeaseKeep:
		c.renewed(sent, resp, err)
	case api.OpRevoke:
		if err == nil && resp.Code != 0 && resp.Code != api.CodeNotFound {
			err = fmt.Errorf("exit %d: %s", resp.Code, resp.Msg)
		}
		if err != nil {
			c.logf("lock %s: releasing lease %d: %v (it runs out within %v anyway)", c.cfg.Name, c.place.Lease, err, c.cfg.TTL)
		}
		c.finish(*c.final)
		return
	}
	c.advance()
}

// Exited tells that COMMAND (its guard) ended, with the command's exit code and err if
// the guard failed (or could not start it).
func (c *Core) Exited(now Reading, code int, err error) {
	c.now = max(c.now, now)
	if c.phase != running {
		return
	}
	c.exit = &Outcome{Code: code, Err: err}
	c.advance()
}

// Interrupt is a signal to the lock command: while it waits, the place is given up and
// it ends with 128+sig; while COMMAND runs, it goes to COMMAND's group, whose end ends
// the command.
func (c *Core) Interrupt(now Reading, sig int) {
	c.now = max(c.now, now)
	switch c.phase {
	case acquiring, waiting:
		if c.sig == 0 {
			c.sig = sig
		}
	case running:
		c.rd.Signal = sig
	}
	c.advance()
}

func (c *Core) send(req api.Request, timeout time.Duration) {
	c.nextID++
	c.flight = &Send{ID: c.nextID, Timeout: timeout, Req: req}
	c.flightAt = c.now
	c.rd.Send = c.flight
}

func (c *Core) logf(format string, args ...any) {
	c.rd.Logs = append(c.rd.Logs, fmt.Sprintf(format, args...))
}

// deadline is the guard's: when COMMAND must be dead.
func (c *Core) deadline() Reading {
	if c.cfg.Plant == KillAtLeaseEnd {
		return c.confirmed.Add(c.cfg.TTL)
	}
	return KillDeadline(c.confirmed, c.cfg.TTL)
}

// lostBy reports whether the lease can no longer be taken as ours at now.
func (c *Core) lostBy(now Reading) bool { return now >= c.deadline() }

// nextRenewal is when to renew: a third of the ttl after the last try.
func (c *Core) nextRenewal() Reading { return c.lastTry.Add(c.cfg.TTL / 3) }

func (c *Core) acquired(sent Reading, resp api.Response, err error) {
	switch {
	case err != nil:
		c.end(Outcome{Err: err})
		return
	case resp.Code != 0:
		// the answer's code is the exit code
		c.end(Outcome{Code: resp.Code, Err: fmt.Errorf("lock %s: %s", c.cfg.Name, resp.Msg)})
		return
	}
	if err := json.Unmarshal(resp.Value, &c.place); err != nil || c.place.Lease == 0 {
		c.end(Outcome{Err: &LostError{Why: fmt.Sprintf("of lock %s: unreadable answer from the leader (%q); the place taken runs out within %v", c.cfg.Name, resp.Value, c.cfg.TTL)}})
		return
	}
	c.phase, c.confirmed, c.lastTry = waiting, sent, sent
}

func (c *Core) waited(resp api.Response, err error) {
	switch {
	case err != nil:
		// no answer this time: the renewals decide whether we are still in line. One that
		// failed at once (no agent here) is not repeated at once: at most one a second
		c.logf("lock %s: waiting: %v", c.cfg.Name, err)
		c.quietTill = min(max(c.nextRenewal(), c.now), c.now.Add(time.Second))
	case resp.Code == api.CodeNotFound:
		c.end(Outcome{Err: &LostError{Lease: c.place.Lease, Why: fmt.Sprintf("of lock %s: lost our place: %s", c.cfg.Name, resp.Msg)}})
	case resp.Code != 0:
		c.logf("lock %s: waiting: exit %d %s", c.cfg.Name, resp.Code, resp.Msg)
	default:
		var p api.LockPlace
		if json.Unmarshal(resp.JSON, &p) == nil && p.Lease == c.place.Lease {
			// the token comes in the acquire's answer only
			c.place.Position, c.place.Generation = p.Position, p.Generation
		}
	}
}

func (c *Core) renewed(sent Reading, resp api.Response, err error) {
	checking := c.checking
	c.checking = false
	switch {
	case err == nil && resp.Code == 0:
		c.confirmed = max(c.confirmed, sent)
		c.checked = c.checked || checking
		if c.phase == running && c.lost == nil {
			c.rd.Deadline = c.deadline()
		}
		return
	case err == nil && resp.Code == api.CodeNotFound:
		c.lose(&LostError{Lease: c.place.Lease, Why: "is gone: " + resp.Msg})
		return
	case checking:
		c.lose(&LostError{Lease: c.place.Lease, Why: fmt.Sprintf("of lock %s: the lock's answer came too late to be sure it was still ours, and no renewal was confirmed", c.cfg.Name)})
		return
	}
	why := resp.Msg
	if err != nil {
		why = err.Error()
	}
	if c.lostBy(c.now) {
		c.lose(&LostError{Lease: c.place.Lease, Why: fmt.Sprintf("lost: not renewed within its ttl of %v (%s)", c.cfg.TTL, why)})
		return
	}
	c.logf("renewing lease %d: %s (it is ours until %v from now)", c.place.Lease, why, c.deadline().Sub(c.now).Round(time.Millisecond))
}

// lose ends the lease: COMMAND, if it runs, is stopped, and its end ends the command.
func (c *Core) lose(err error) {
	if c.phase == running {
		if c.lost == nil {
			c.lost = err
			c.logf("lock %s lost: stopping COMMAND", c.cfg.Name)
			c.rd.Stop = true
		}
		return
	}
	c.end(Outcome{Err: err})
}

// end finishes without a release: the lease is gone, or was never had.
func (c *Core) end(o Outcome) {
	if c.sig != 0 {
		o = Outcome{Code: 128 + c.sig, Err: fmt.Errorf("lock %s: signal %d while waiting; gave up the place", c.cfg.Name, c.sig)}
	}
	c.finish(o)
}

func (c *Core) finish(o Outcome) {
	c.phase = done
	c.rd.Done = &o
	c.rd.Wake = 0
}

// release revokes the lease, and then ends so.
func (c *Core) release(o Outcome) {
	c.phase, c.final = releasing, &o
	c.send(api.Request{Op: api.OpRevoke, Lease: c.place.Lease, Token: c.place.Token}, 5*time.Second)
}

// advance decides the next step when no request is in flight.
func (c *Core) advance() {
	if c.phase == running && c.lost == nil && c.exit == nil && c.lostBy(c.now) {
		// no renewal confirmed in time (one may still be on its way): the guard stops
		// COMMAND at this deadline anyway
		c.lose(&LostError{Lease: c.place.Lease, Why: fmt.Sprintf("lost: not renewed within its ttl of %v", c.cfg.TTL)})
	}
	if c.flight != nil || c.phase == done {
		return
	}
	switch c.phase {
	case waiting:
		c.advanceWaiting()
	case running:
		switch {
		case c.exit != nil && c.lost != nil:
			c.finish(Outcome{Err: c.lost})
		case c.exit != nil:
			c.release(*c.exit)
		case c.lost == nil && c.now >= c.nextRenewal():
			c.renew()
		}
	}
}

func (c *Core) advanceWaiting() {
	switch {
	case c.sig != 0:
		c.release(Outcome{Code: 128 + c.sig, Err: fmt.Errorf("lock %s: signal %d while waiting; gave up the place", c.cfg.Name, c.sig)})
		return
	case c.place.Position == 0 && c.cfg.Plant == StartOnStaleAnswer:
		c.start()
		return
	case c.lostBy(c.now) && c.lastTry <= c.confirmed:
		// the answer that put us here came late, no renewal tried since: one decides
		c.renew()
		return
	case c.lostBy(c.now):
		c.end(Outcome{Err: &LostError{Lease: c.place.Lease, Why: fmt.Sprintf("of lock %s ran out while waiting", c.cfg.Name)}})
		return
	case c.cfg.Wait > 0 && c.now >= c.began.Add(c.cfg.Wait) && c.place.Position != 0:
		c.release(Outcome{Err: &WaitTimeoutError{Name: c.cfg.Name, Wait: c.cfg.Wait, Ahead: c.place.Position}})
		return
	case c.place.Position == 0:
		c.start()
		return
	case c.now >= c.nextRenewal():
		c.renew()
		return
	case c.now < c.quietTill:
		return
	}
	poll := c.nextRenewal().Sub(c.now)
	if c.cfg.Hold > 0 {
		poll = min(poll, c.cfg.Hold)
	}
	if c.cfg.Wait > 0 {
		poll = min(poll, c.began.Add(c.cfg.Wait).Sub(c.now))
	}
	poll = max(poll, 100*time.Millisecond)
	c.send(api.Request{Op: api.OpLockWait, Key: c.cfg.Name, Lease: c.place.Lease, TimeoutMs: uint32(poll.Milliseconds())}, poll+2*time.Second)
}

// start runs COMMAND if the lease is surely ours for long enough, else renews once to
// find out.
func (c *Core) start() {
	if !Valid(c.now, c.confirmed, c.cfg.TTL) && c.cfg.Plant != StartOnStaleAnswer {
		if c.checked {
			c.release(Outcome{Code: api.CodeLockLost, Err: fmt.Errorf("lock %s: the lease was not surely ours for long enough to start COMMAND (no renewal confirmed in time); gave it up", c.cfg.Name)})
			return
		}
		c.checking = true
		c.renew()
		return
	}
	c.phase = running
	c.rd.Start, c.rd.Generation, c.rd.Deadline = true, c.place.Generation, c.deadline()
}

func (c *Core) renew() {
	c.lastTry = c.now
	timeout := min(c.cfg.TTL/3, c.confirmed.Add(c.cfg.TTL).Sub(c.now))
	c.send(api.Request{Op: api.OpLeaseKeep, Lease: c.place.Lease, Token: c.place.Token}, max(timeout, 100*time.Millisecond))
}

// wake is when the core next needs Tick.
func (c *Core) wake() Reading {
	if c.flight != nil {
		if c.phase == running && c.lost == nil && c.exit == nil {
			return max(c.deadline(), c.now)
		}
		return 0 // the answer comes within the request's timeout
	}
	switch c.phase {
	case waiting:
		w := min(c.nextRenewal(), c.deadline())
		if c.now < c.quietTill {
			w = min(w, c.quietTill)
		}
		if c.cfg.Wait > 0 {
			w = min(w, c.began.Add(c.cfg.Wait))
		}
		return max(w, c.now)
	case running:
		if c.exit == nil && c.lost == nil {
			return max(min(c.nextRenewal(), c.deadline()), c.now)
		}
	}
	return 0
}
