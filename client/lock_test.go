package client

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"lite-raft/api"
)

// fakeTime is a Timer that moves only when told.
type fakeTime struct{ t time.Time }

func (f *fakeTime) Now() time.Time { return f.t }
func (f *fakeTime) After(d time.Duration) <-chan time.Time {
	f.t = f.t.Add(d)
	ch := make(chan time.Time, 1)
	ch <- f.t
	return ch
}

// lockAgent answers a lock's requests as the leader would, on a fake clock: lock-wait
// holds for its time (the clock moves), and the lock is ours once the clock reaches
// free.
type lockAgent struct {
	clock             *fakeTime
	free              time.Time
	keeps, revokes    int
	keepCode          int
	keepErr           error
	keepTakes         time.Duration
	acquires, waiting int
	waitErr           error
}

func (a *lockAgent) do(timeout time.Duration, req api.Request) (api.Response, error) {
	place := func() []byte {
		p := api.LockPlace{Lease: 41, Generation: 3}
		if a.clock.t.Before(a.free) {
			p.Position = 1
		}
		b, _ := json.Marshal(p)
		return b
	}
	switch req.Op {
	case api.OpLockAcquire:
		a.acquires++
		a.clock.t = a.clock.t.Add(200 * time.Millisecond) // a slow acquire: counted from its send
		return api.Response{Value: place()}, nil
	case api.OpLockWait:
		a.waiting++
		if a.waitErr != nil {
			return api.Response{}, a.waitErr
		}
		if req.Lease != 41 {
			return api.Response{Code: api.CodeNotFound}, nil
		}
		hold := time.Duration(req.TimeoutMs) * time.Millisecond
		if a.clock.t.Before(a.free) {
			a.clock.t = a.clock.t.Add(min(hold, a.free.Sub(a.clock.t)))
		}
		return api.Response{JSON: place()}, nil
	case api.OpLeaseKeep:
		a.keeps++
		a.clock.t = a.clock.t.Add(a.keepTakes)
		return api.Response{Code: a.keepCode}, a.keepErr
	case api.OpRevoke:
		a.revokes++
		return api.Response{}, nil
	}
	return api.Response{Code: api.CodeUsage}, nil
}

// TestAcquireLockWaitsAndRenews: a lock held by another for 20 s with a 3 s ttl is
// waited for in polls no longer than a renewal apart, the lease is renewed about every
// ttl/3 meanwhile, and the lock's deadlines count from the acquire's first send.
func TestAcquireLockWaitsAndRenews(t *testing.T) {
	start := time.Unix(1000, 0)
	clock := &fakeTime{t: start}
	a := &lockAgent{clock: clock, free: start.Add(20 * time.Second)}
	l, err := AcquireLock(context.Background(), LockOptions{Name: "job", TTL: 3 * time.Second, Do: a.do, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if l.Place.Position != 0 || l.Place.Generation != 3 || l.Lease.ID != 41 || !l.Sent.Equal(start) {
		t.Fatalf("lock %+v, sent %v: want ours, generation 3, lease 41, sent at the start", l.Place, l.Sent)
	}
	// 20 s at one renewal a second (ttl/3)
	if a.keeps < 18 || a.keeps > 21 || a.waiting < a.keeps {
		t.Fatalf("%d renewals, %d waits over 20 s with a 3 s ttl: want about 20, and a wait between each", a.keeps, a.waiting)
	}
	if !l.Lease.ValidUntil().After(clock.t) {
		t.Fatalf("the lease is valid until %v, before now %v", l.Lease.ValidUntil(), clock.t)
	}
}

// TestAcquireLockGivesUp: --wait running out (15), the lease gone (16), renewals that
// fail for a whole ttl (16), and a cancelled wait each end the wait; the place is given up
// where it is still ours.
func TestAcquireLockGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name    string
		agent   func(*lockAgent)
		opts    func(*LockOptions)
		cancel  bool
		code    int
		revoked bool
	}{
		{name: "wait runs out", opts: func(o *LockOptions) { o.Wait = 5 * time.Second }, code: api.CodeLockTimeout, revoked: true},
		{name: "lease gone", agent: func(a *lockAgent) { a.keepCode = api.CodeNotFound }, code: api.CodeLockLost},
		{name: "renewals fail", agent: func(a *lockAgent) { a.keepErr = errors.New("no leader") }, code: api.CodeLockLost},
		{name: "cancelled", cancel: true, code: api.CodeFailed, revoked: true},
	} {
		start := time.Unix(1000, 0)
		clock := &fakeTime{t: start}
		a := &lockAgent{clock: clock, free: start.Add(time.Hour)}
		if tc.agent != nil {
			tc.agent(a)
		}
		o := LockOptions{Name: "job", TTL: 3 * time.Second, Do: a.do, Clock: clock}
		if tc.opts != nil {
			tc.opts(&o)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if tc.cancel {
			cancel()
		}
		_, err := AcquireLock(ctx, o)
		cancel()
		if err == nil || ExitCodeOf(err) != tc.code || (a.revokes > 0) != tc.revoked {
			t.Errorf("%s: %v (exit %d), %d revokes; want exit %d, revoked %v", tc.name, err, ExitCodeOf(err), a.revokes, tc.code, tc.revoked)
		}
		if tc.code == api.CodeLockLost && clock.t.Sub(start) > 3*time.Second {
			t.Errorf("%s: given up %v after the acquire, past the 3 s ttl", tc.name, clock.t.Sub(start))
		}
	}
}

// TestAcquireLockFailingWaitsDoNotSpin: lock-waits that fail at once (no agent) are
// asked again at most once a second while the renewals keep the place.
func TestAcquireLockFailingWaitsDoNotSpin(t *testing.T) {
	start := time.Unix(1000, 0)
	clock := &fakeTime{t: start}
	a := &lockAgent{clock: clock, free: start.Add(10 * time.Second), waitErr: errors.New("no server")}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := AcquireLock(ctx, LockOptions{Name: "job", TTL: 3 * time.Second, Wait: 10 * time.Second, Do: a.do, Clock: clock})
		done <- err
	}()
	select {
	case err := <-done:
		if ExitCodeOf(err) != api.CodeLockTimeout {
			t.Fatalf("%v, want --wait to run out (15)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("still asking after 5 s of real time (%d lock-waits): it spins on a failing request", a.waiting)
	}
	if a.waiting > 12 || a.keeps < 8 {
		t.Fatalf("%d lock-waits and %d renewals in 10 s: want at most one wait a second, renewals kept", a.waiting, a.keeps)
	}
}

// TestLeaseValidFromTheSend: a confirmed renewal makes the lease ours until the time it
// was sent plus the ttl, however long the answer took; past that less a tenth of the
// ttl, it is lost.
func TestLeaseValidFromTheSend(t *testing.T) {
	start := time.Unix(1000, 0)
	clock := &fakeTime{t: start}
	a := &lockAgent{clock: clock, keepTakes: 700 * time.Millisecond}
	l := NewLease(a.do, clock, 41, 3*time.Second, start, nil)
	clock.t = start.Add(time.Second)
	if err := l.Renew(); err != nil {
		t.Fatal(err)
	}
	if want := start.Add(4 * time.Second); !l.ValidUntil().Equal(want) {
		t.Fatalf("valid until %v after a renewal sent at +1 s: want %v (send + ttl)", l.ValidUntil(), want)
	}
	clock.t = start.Add(3700 * time.Millisecond)
	if l.Lost() {
		t.Fatal("lost 0.3 s before the margin")
	}
	clock.t = start.Add(3701 * time.Millisecond)
	if !l.Lost() {
		t.Fatal("not lost past validity less a tenth of the ttl")
	}
}
