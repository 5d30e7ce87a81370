package lockcore

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"lite-raft/api"
)

// agent answers a lock's requests as a leader would, on the test's clock: the lock is
// ours from free on, lock-wait holds until then (or its timeout), and each request takes
// took unless an answer says otherwise.
type agent struct {
	free              Reading
	took              time.Duration
	acquireTakes      time.Duration
	keepCode          int
	keepErr           error
	waitErr           error
	keepFailFrom      Reading             // keepErr applies from this time on (0: always)
	tokens            map[api.Op][]uint64 // the token each request carried
	gone              bool                // the lease is no longer in the store
	acquires, waits   int
	keeps, revokes    int
	lastWait, maxPoll time.Duration
}

func (a *agent) do(now Reading, req api.Request) (api.Response, error, time.Duration) {
	if a.tokens == nil {
		a.tokens = map[api.Op][]uint64{}
	}
	a.tokens[req.Op] = append(a.tokens[req.Op], req.Token)
	place := func(at Reading) []byte {
		p := api.LockPlace{Lease: 41, Generation: 7}
		if req.Op == api.OpLockAcquire {
			p.Token = 77 // in the acquire's answer only
		}
		if at < a.free {
			p.Position = 1
		}
		b, _ := json.Marshal(p)
		return b
	}
	switch req.Op {
	case api.OpLockAcquire:
		a.acquires++
		took := max(a.took, a.acquireTakes)
		return api.Response{Value: place(now)}, nil, took
	case api.OpLockWait:
		a.waits++
		if a.waitErr != nil {
			return api.Response{}, a.waitErr, a.took
		}
		if a.gone {
			return api.Response{Code: api.CodeNotFound, Msg: "no such lease"}, nil, a.took
		}
		hold := time.Duration(req.TimeoutMs) * time.Millisecond
		a.maxPoll = max(a.maxPoll, hold)
		if now < a.free {
			hold = min(hold, a.free.Sub(now))
		} else {
			hold = 0
		}
		return api.Response{JSON: place(now.Add(hold))}, nil, max(hold, a.took)
	case api.OpLeaseKeep:
		a.keeps++
		if a.gone {
			return api.Response{Code: api.CodeNotFound, Msg: "no such lease"}, nil, a.took
		}
		if a.keepErr != nil && now >= a.keepFailFrom {
			return api.Response{}, a.keepErr, a.took
		}
		return api.Response{Code: a.keepCode}, nil, a.took
	case api.OpRevoke:
		a.revokes++
		return api.Response{}, nil, a.took
	}
	return api.Response{Code: api.CodeUsage}, nil, a.took
}

// run is one lock command against a, from Reading start, with COMMAND running for
// runFor once started (0: until it is stopped); signal, if set, comes at sigAt.
type run struct {
	cfg    Config
	a      *agent
	runFor time.Duration
	sigAt  Reading
	sig    int
	stopAt Reading // COMMAND dies this long after a Stop (0: at once)

	now              Reading
	started, stopped bool
	startAt          Reading
	generation       uint64
	deadlines        []Reading // the guard's, each time it was set
	signalled        int
	logs             []string
}

const t0 = Reading(1_000_000_000_000)

func (r *run) go_(t *testing.T) Outcome {
	t.Helper()
	r.now = t0
	c := New(r.cfg, r.now)
	var exitAt Reading
	for steps := 0; steps < 100000; steps++ {
		rd := c.Ready()
		r.logs = append(r.logs, rd.Logs...)
		if rd.Start {
			r.started, r.startAt, r.generation = true, r.now, rd.Generation
			r.deadlines = append(r.deadlines, rd.Deadline)
			if r.runFor > 0 {
				exitAt = r.now.Add(r.runFor)
			}
		} else if rd.Deadline != 0 {
			r.deadlines = append(r.deadlines, rd.Deadline)
		}
		if rd.Stop {
			r.stopped = true
			exitAt = r.now
		}
		if rd.Signal != 0 {
			r.signalled = rd.Signal
		}
		if rd.Done != nil {
			return *rd.Done
		}
		if s := rd.Send; s != nil {
			resp, err, took := r.a.do(r.now, s.Req)
			if r.sig != 0 && r.sigAt != 0 && r.sigAt <= r.now.Add(took) {
				// the signal comes while the request is on its way
				c.Interrupt(max(r.now, r.sigAt), r.sig)
				r.sigAt = 0
			}
			if took > s.Timeout && s.Timeout > 0 {
				r.now = r.now.Add(s.Timeout)
				c.Answer(r.now, s.ID, api.Response{}, errors.New("timeout"))
				continue
			}
			r.now = r.now.Add(took)
			c.Answer(r.now, s.ID, resp, err)
			continue
		}
		next := rd.Wake
		if r.started && exitAt != 0 && (next == 0 || exitAt <= next) {
			r.now = max(r.now, exitAt)
			exitAt = 0
			c.Exited(r.now, 0, nil)
			continue
		}
		if r.sig != 0 && r.sigAt != 0 && (next == 0 || r.sigAt <= next) {
			r.now = max(r.now, r.sigAt)
			r.sigAt = 0
			c.Interrupt(r.now, r.sig)
			continue
		}
		if next == 0 {
			t.Fatalf("the core waits for nothing and is not done (at +%v)", r.now.Sub(t0))
		}
		r.now = max(r.now, next)
		c.Tick(r.now)
	}
	t.Fatalf("no end after 100000 steps")
	return Outcome{}
}

// TestWaitsRenewsAndRuns: a lock held by another for 20 s with a 3 s ttl is waited for
// in polls no longer than a renewal apart, the lease renewed every ttl/3 meanwhile;
// COMMAND starts with the generation, the guard's deadline moves after each confirmed
// renewal to its first send plus ttl less Margin, and the lease is released at the end.
func TestWaitsRenewsAndRuns(t *testing.T) {
	a := &agent{free: t0.Add(20 * time.Second), took: 5 * time.Millisecond}
	r := &run{cfg: Config{Name: "job", TTL: 3 * time.Second}, a: a, runFor: 10 * time.Second}
	out := r.go_(t)
	if out.Err != nil || out.Code != 0 || !r.started || r.generation != 7 || a.revokes != 1 {
		t.Fatalf("outcome %+v, started %v generation %d, %d revokes: want COMMAND run with generation 7, released", out, r.started, r.generation, a.revokes)
	}
	if r.startAt < a.free || r.startAt > a.free.Add(100*time.Millisecond) {
		t.Errorf("started %v after the lock was free", r.startAt.Sub(a.free))
	}
	// 30 s at one renewal a second (ttl/3)
	if a.keeps < 28 || a.keeps > 31 || a.maxPoll > time.Second {
		t.Errorf("%d renewals in 30 s with a 3 s ttl, polls up to %v: want about 30, polls at most 1 s", a.keeps, a.maxPoll)
	}
	// each deadline is a confirmed send plus 3 s less the margin, less than 1 s after the
	// one before it while COMMAND ran
	if len(r.deadlines) < 9 {
		t.Fatalf("%d deadlines for a 10 s run: want one per renewal", len(r.deadlines))
	}
	for i, d := range r.deadlines[1:] {
		if step := d.Sub(r.deadlines[i]); step <= 0 || step > time.Second+10*time.Millisecond {
			t.Errorf("deadline %d moved by %v", i+1, step)
		}
	}
	if first := r.deadlines[0]; first.Sub(r.startAt) > 3*time.Second-Margin(3*time.Second) {
		t.Errorf("the first deadline is %v after the start: past the last confirmed send + ttl - margin", first.Sub(r.startAt))
	}
}

// TestGivesUp: --wait running out (15, place given up), the lease gone (16), renewals
// that fail for a whole ttl (16, before the ttl is out), and a signal while waiting
// (128+N, place given up).
func TestGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name    string
		agent   func(*agent)
		cfg     func(*Config)
		sig     bool
		check   func(Outcome) bool
		revoked bool
	}{
		{name: "wait runs out", cfg: func(c *Config) { c.Wait = 5 * time.Second }, revoked: true,
			check: func(o Outcome) bool { var e *WaitTimeoutError; return errors.As(o.Err, &e) && o.Code == 0 }},
		{name: "lease gone", agent: func(a *agent) { a.keepCode = api.CodeNotFound },
			check: func(o Outcome) bool { var e *LostError; return errors.As(o.Err, &e) }},
		{name: "renewals fail", agent: func(a *agent) { a.keepErr = errors.New("no leader") },
			check: func(o Outcome) bool { var e *LostError; return errors.As(o.Err, &e) }},
		{name: "signal", sig: true, revoked: true,
			check: func(o Outcome) bool { return o.Code == 128+15 && o.Err != nil }},
	} {
		a := &agent{free: t0.Add(time.Hour), took: 5 * time.Millisecond}
		if tc.agent != nil {
			tc.agent(a)
		}
		r := &run{cfg: Config{Name: "job", TTL: 3 * time.Second}, a: a}
		if tc.cfg != nil {
			tc.cfg(&r.cfg)
		}
		if tc.sig {
			r.sig, r.sigAt = 15, t0.Add(2*time.Second)
		}
		out := r.go_(t)
		if !tc.check(out) || (a.revokes > 0) != tc.revoked || r.started {
			t.Errorf("%s: %+v, %d revokes, started %v; want revoked %v, never started", tc.name, out, a.revokes, r.started, tc.revoked)
		}
		if _, lost := out.Err.(*LostError); lost && r.now.Sub(t0) > 3*time.Second {
			t.Errorf("%s: given up %v after the acquire, past the 3 s ttl", tc.name, r.now.Sub(t0))
		}
	}
}

// TestFailingWaitsDoNotSpin: lock-waits that fail at once (no agent) are asked again at
// most once a second while the renewals keep the place.
func TestFailingWaitsDoNotSpin(t *testing.T) {
	a := &agent{free: t0.Add(10 * time.Second), waitErr: errors.New("no server")}
	r := &run{cfg: Config{Name: "job", TTL: 3 * time.Second, Wait: 10 * time.Second}, a: a}
	out := r.go_(t)
	if _, ok := out.Err.(*WaitTimeoutError); !ok {
		t.Fatalf("%+v: want --wait to run out", out)
	}
	if a.waits > 12 || a.keeps < 8 {
		t.Fatalf("%d lock-waits and %d renewals in 10 s: want at most one wait a second, renewals kept", a.waits, a.keeps)
	}
}

// TestLateAnswerIsChecked: an acquire that says "yours" but took 2.9 s of a 3 s ttl
// does not start COMMAND on its word: one renewal decides. Confirmed (first send counts),
// COMMAND starts; the lease gone, it never starts. Planted StartOnStaleAnswer starts it on
// a lease that is gone.
func TestLateAnswerIsChecked(t *testing.T) {
	for _, tc := range []struct {
		name      string
		gone      bool
		plant     Bug
		wantStart bool
	}{
		{name: "renewal confirms", wantStart: true},
		{name: "lease gone", gone: true},
		{name: "planted: start on the stale answer", gone: true, plant: StartOnStaleAnswer, wantStart: true},
	} {
		a := &agent{acquireTakes: 2900 * time.Millisecond, took: 5 * time.Millisecond, gone: tc.gone}
		r := &run{cfg: Config{Name: "job", TTL: 3 * time.Second, Plant: tc.plant}, a: a, runFor: time.Second}
		out := r.go_(t)
		if r.started != tc.wantStart {
			t.Errorf("%s: started %v (%+v), want %v", tc.name, r.started, out, tc.wantStart)
		}
		if r.started && !tc.gone && r.deadlines[0] != t0.Add(2900*time.Millisecond).Add(3*time.Second-Margin(3*time.Second)) {
			t.Errorf("%s: deadline %v after the acquire's send, want the renewal's send + ttl - margin", tc.name, r.deadlines[0].Sub(t0))
		}
	}
}

// TestLostWhileRunning: renewals failing while COMMAND runs stop it at the deadline of
// the last confirmed one, never later; the end is lost (16), whatever COMMAND's exit.
// Planted KillAtLeaseEnd gives the guard the lease's own end instead.
func TestLostWhileRunning(t *testing.T) {
	for _, plant := range []Bug{0, KillAtLeaseEnd} {
		// the lock is free; the renewal at +1 s is confirmed, those from +1.5 s on fail
		a := &agent{free: t0, took: 5 * time.Millisecond, keepErr: errors.New("no leader"), keepFailFrom: t0.Add(1500 * time.Millisecond)}
		r := &run{cfg: Config{Name: "job", TTL: 3 * time.Second, Plant: plant}, a: a}
		out := r.go_(t)
		var lost *LostError
		if !errors.As(out.Err, &lost) || !r.stopped {
			t.Fatalf("plant %d: %+v, stopped %v: want lost and COMMAND stopped", plant, out, r.stopped)
		}
		last := r.deadlines[len(r.deadlines)-1]
		want := t0.Add(time.Second).Add(3*time.Second - Margin(3*time.Second))
		if plant == KillAtLeaseEnd {
			want = t0.Add(4 * time.Second)
		}
		if last != want {
			t.Errorf("plant %d: last deadline at +%v, want +%v", plant, last.Sub(t0), want.Sub(t0))
		}
		if r.now > last {
			t.Errorf("plant %d: COMMAND stopped at +%v, after its deadline +%v", plant, r.now.Sub(t0), last.Sub(t0))
		}
	}
}

// TestExitAndSignal: COMMAND's exit code is the command's, after the release; a signal
// while it runs goes to COMMAND.
func TestExitAndSignal(t *testing.T) {
	a := &agent{free: t0, took: 5 * time.Millisecond}
	r := &run{cfg: Config{Name: "job", TTL: 3 * time.Second}, a: a, runFor: 2 * time.Second, sig: 2, sigAt: t0.Add(time.Second)}
	out := r.go_(t)
	if out != (Outcome{}) || r.signalled != 2 || a.revokes != 1 {
		t.Fatalf("%+v, signalled %d, %d revokes: want exit 0, SIGINT passed on, released", out, r.signalled, a.revokes)
	}
}

// TestTokenGoesWithEveryRenewalAndTheRelease: the token the acquire returned goes with
// each renewal and with the revoke, which the store refuses without it, though the
// lock-wait answers in between carry none.
func TestTokenGoesWithEveryRenewalAndTheRelease(t *testing.T) {
	a := &agent{free: t0.Add(3 * time.Second), took: 5 * time.Millisecond}
	r := &run{cfg: Config{Name: "job", TTL: 3 * time.Second}, a: a, runFor: 2 * time.Second}
	if out := r.go_(t); out != (Outcome{}) {
		t.Fatalf("%+v", out)
	}
	for _, op := range []api.Op{api.OpLeaseKeep, api.OpRevoke} {
		if len(a.tokens[op]) == 0 {
			t.Fatalf("no %s sent", op)
		}
		for _, tok := range a.tokens[op] {
			if tok != 77 {
				t.Fatalf("%s sent with tokens %v, want 77 each time", op, a.tokens[op])
			}
		}
	}
}
