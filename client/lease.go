package client

import (
	"fmt"
	"time"

	"lite-raft/api"
	"lite-raft/client/lockcore"
)

// Doer sends one request within timeout (0: the command's own time limit) and returns
// the answer: the command line dials the local agent (or the members, through
// lite-raft-remote) for each.
type Doer func(timeout time.Duration, req api.Request) (api.Response, error)

// LostError is a lease that can no longer be taken as ours: gone from the store, or not
// renewed within its ttl. Its exit code is api.CodeLockLost (ExitCodeOf).
type LostError = lockcore.LostError

// WaitTimeoutError is a lock that was not ours within its --wait: the place was given
// up. Its exit code is api.CodeLockTimeout.
type WaitTimeoutError = lockcore.WaitTimeoutError

// Lease keeps one lease alive from the client. It renews every ttl/3 and knows until when
// the lease is surely still ours: the time a confirmed renewal was first sent, plus the
// ttl (the leader counts from when it got it, later). Past that, less a tenth of the ttl
// for the clocks, it is lost.
type Lease struct {
	ID  uint64
	TTL time.Duration
	// Token is the lease's token, as its lock's acquire returned it (api.LockPlace): its
	// revoke must present it. 0: the lease needs none (a TTL key's, or a lock's from a
	// cluster with a member older than command version 4).
	Token uint64

	do         Doer
	clock      Timer
	logf       func(format string, args ...any)
	validUntil time.Time
	lastTry    time.Time
}

// NewLease keeps lease id of ttl, granted by a request first sent at sent. logf (nil:
// nothing) hears of renewals that failed but did not lose the lease.
func NewLease(do Doer, clock Timer, id uint64, ttl time.Duration, sent time.Time, logf func(string, ...any)) *Lease {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Lease{ID: id, TTL: ttl, do: do, clock: clock, logf: logf, validUntil: sent.Add(ttl), lastTry: sent}
}

// Next is when to renew: a third of the ttl after the last attempt.
func (l *Lease) Next() time.Time { return l.lastTry.Add(l.TTL / 3) }

// ValidUntil is the end of the lease as this client can be sure of it: the send time of
// the last confirmed renewal (or of the grant) plus the ttl.
func (l *Lease) ValidUntil() time.Time { return l.validUntil }

// Lost reports whether the lease can no longer be taken as ours.
func (l *Lease) Lost() bool { return l.clock.Now().After(l.validUntil.Add(-l.TTL / 10)) }

// Renew tries once; it fails (a *LostError) only when the lease is gone or past saving.
func (l *Lease) Renew() error {
	sent := l.clock.Now()
	l.lastTry = sent
	timeout := min(l.TTL/3, l.validUntil.Sub(sent))
	var resp api.Response
	var err error
	if timeout > 0 {
		resp, err = l.do(timeout, api.Request{Op: api.OpLeaseKeep, Lease: l.ID, Token: l.Token})
	}
	switch {
	case timeout > 0 && err == nil && resp.Code == 0:
		l.validUntil = sent.Add(l.TTL)
		return nil
	case err == nil && resp.Code == api.CodeNotFound:
		return &LostError{Lease: l.ID, Why: "is gone: " + resp.Msg}
	case l.Lost():
		why := "no renewal in time"
		if err != nil {
			why = err.Error()
		} else if timeout > 0 {
			why = resp.Msg
		}
		return &LostError{Lease: l.ID, Why: fmt.Sprintf("lost: not renewed within its ttl of %v (%s)", l.TTL, why)}
	}
	l.logf("renewing lease %d: %v%s (it is ours until %s)", l.ID, err, resp.Msg, l.validUntil.Format("15:04:05.000"))
	return nil
}

// Release revokes the lease: its keys and lock place go now, not at expiry. A failure is
// only told (what names the command): the lease runs out within its ttl anyway.
func (l *Lease) Release(what string) {
	resp, err := l.do(5*time.Second, api.Request{Op: api.OpRevoke, Lease: l.ID, Token: l.Token})
	if err == nil && resp.Code != 0 && resp.Code != api.CodeNotFound {
		err = fmt.Errorf("exit %d: %s", resp.Code, resp.Msg)
	}
	if err != nil {
		l.logf("%s: releasing lease %d: %v (it runs out within %v anyway)", what, l.ID, err, l.TTL)
	}
}
