package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"lite-raft/api"
)

// LockOptions are what AcquireLock needs.
type LockOptions struct {
	Name   string
	Holder string // who asks (user@host pid), for locks' output
	TTL    time.Duration
	Wait   time.Duration // give up after this long without the lock (0: wait for ever)
	// Hold is the longest one host may be asked to hold a lock-wait (0: as long as the
	// wait likes); lite-raft-remote gives each host a share of the time (RemoteHold).
	Hold  time.Duration
	Do    Doer
	Clock Timer                            // nil: the system's
	Logf  func(format string, args ...any) // failures that are not the end (nil: none)
}

// Lock is a lock held: its place (generation), the lease that keeps it, and when the
// acquire was first sent, from which every deadline of the holder counts.
type Lock struct {
	Place api.LockPlace
	Lease *Lease
	Sent  time.Time
}

// WaitTimeoutError is a lock that was not ours within LockOptions.Wait: the place was
// given up. Its exit code is api.CodeLockTimeout.
type WaitTimeoutError struct {
	Name  string
	Wait  time.Duration
	Ahead int
}

func (e *WaitTimeoutError) Error() string {
	return fmt.Sprintf("lock %s: not ours within --wait %v (%d ahead); gave up the place", e.Name, e.Wait, e.Ahead)
}

// AcquireLock queues for the lock and waits until it is ours, renewing the lease in
// between, in polls no longer than a third of the ttl. When ctx ends (a signal, say) or
// Wait runs out, the place is given up. Errors: the acquire's own (as Do returned them, or
// an *AnswerError), *WaitTimeoutError, *LostError, or ctx's.
//
// One goroutine makes every request: a remote caller is not for concurrent use.
func AcquireLock(ctx context.Context, o LockOptions) (*Lock, error) {
	clock := o.Clock
	if clock == nil {
		clock = SystemTimer
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	sent := clock.Now()
	resp, err := o.Do(0, api.Request{Op: api.OpLockAcquire, Key: o.Name, TTLMs: uint64(o.TTL.Milliseconds()), Holder: o.Holder})
	if err != nil {
		return nil, err
	}
	if resp.Code != 0 {
		return nil, &AnswerError{Op: api.OpLockAcquire, Resp: resp}
	}
	l := &Lock{Sent: sent}
	if err := json.Unmarshal(resp.Value, &l.Place); err != nil {
		return nil, &LostError{Why: fmt.Sprintf("of lock %s: unreadable answer from the leader (%v); the place taken runs out within %v", o.Name, err, o.TTL)}
	}
	l.Lease = NewLease(o.Do, clock, l.Place.Lease, o.TTL, sent, logf)
	l.Lease.Token = l.Place.Token

	var deadline time.Time
	if o.Wait > 0 {
		deadline = clock.Now().Add(o.Wait)
	}
	for l.Place.Position != 0 {
		if err := ctx.Err(); err != nil {
			l.Lease.Release("lock")
			return nil, err
		}
		if !deadline.IsZero() && clock.Now().After(deadline) {
			l.Lease.Release("lock")
			return nil, &WaitTimeoutError{Name: o.Name, Wait: o.Wait, Ahead: l.Place.Position}
		}
		if !clock.Now().Before(l.Lease.Next()) {
			if err := l.Lease.Renew(); err != nil {
				return nil, err
			}
		}
		poll := l.Lease.Next().Sub(clock.Now())
		if o.Hold > 0 {
			poll = min(poll, o.Hold)
		}
		if !deadline.IsZero() {
			poll = min(poll, deadline.Sub(clock.Now()))
		}
		poll = max(poll, 100*time.Millisecond)
		r, err := o.Do(poll+2*time.Second, api.Request{Op: api.OpLockWait, Key: o.Name, Lease: l.Lease.ID,
			TimeoutMs: uint32(poll.Milliseconds())})
		switch {
		case err != nil:
			// no answer this time: the lease's renewals decide whether we are still in line.
			// A request that fails at once (no agent here) is not repeated at once: at most
			// one a second, and a renewal still when due
			logf("lock %s: waiting: %v", o.Name, err)
			<-clock.After(min(max(l.Lease.Next().Sub(clock.Now()), 0), time.Second))
		case r.Code == api.CodeNotFound:
			return nil, &LostError{Lease: l.Lease.ID, Why: fmt.Sprintf("of lock %s: lost our place: %s", o.Name, r.Msg)}
		case r.Code != 0:
			logf("lock %s: waiting: exit %d %s", o.Name, r.Code, r.Msg)
		default:
			json.Unmarshal(r.JSON, &l.Place)
		}
		if l.Lease.Lost() {
			return nil, &LostError{Lease: l.Lease.ID, Why: fmt.Sprintf("of lock %s ran out while waiting", o.Name)}
		}
	}
	return l, nil
}
