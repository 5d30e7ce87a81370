package core

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/client/lockcore"
	"lite-raft/raftcore"
)

// ---- lock holders ----
//
// Each locker is a script on one host that runs `lite-raft-client lock lk -- COMMAND` in
// a loop. The lock process is the real one's core (lockcore.Core), on its host's
// drifting clock; its guard and COMMAND are modelled: COMMAND runs until it ends by
// itself or is killed, and while it runs it writes key fk with --fence lk=GENERATION,
// one write after another. The guard acts as internal/guard does: SIGTERM grace before
// the deadline, SIGKILL at it, SIGTERM at once and SIGKILL grace later (never after the
// deadline) when the lock process dies or says the lock is lost. Each of its actions
// lands up to simGuardLateMs late: a loaded host, the kill taking effect; that is what
// lockcore.Slack is for.
//
// A nemesis kills lock processes (kill -9), freezes them (SIGSTOP) for up to three ttls,
// and freezes whole holders (lock, guard and COMMAND: as a frozen host would be). The
// checks (checkLockRuns): no two COMMANDs run at once unless the earlier one's guard was
// frozen, and no fenced write is accepted once a COMMAND with a greater generation has
// started.

const (
	simLockTTL     = 1000 * time.Millisecond
	simGuardLateMs = 150
)

// simLocker is one host's script, taking the lock turn after turn.
type simLocker struct {
	id    int
	host  *simNode
	turns int
	proc  *simLockProc // this turn's lock process
}

// simLockProc is one `lock` process, with its guard and COMMAND once started.
type simLockProc struct {
	l          *simLocker
	turn       int
	core       *lockcore.Core
	clientID   uint64
	seq        uint64
	killed     bool // kill -9: nothing more from it
	frozenTill Time // SIGSTOP: what it hears waits until then
	pending    []func(lockcore.Reading)
	wakes      int // a later Wake replaces an earlier
	run        *simLockRun
}

// simLockRun is one COMMAND's life under its guard.
type simLockRun struct {
	p           *simLockProc
	gen         uint64
	start, end  Time // end < 0 while it runs
	deadline    lockcore.Reading
	grace       time.Duration
	stopping    bool // SIGTERM sent: its SIGKILL comes grace later, at the deadline at the latest
	stopFrom    lockcore.Reading
	ignoresTerm bool
	guardEvents int       // a later schedule replaces an earlier
	frozen      [][2]Time // whole-holder freezes: guard and COMMAND stopped
	writes      int
}

type simFencedWrite struct {
	run  *simLockRun
	sent Time
	code int
}

func (s *sim) startLockers(voters []raftcore.NodeID) {
	for i := 0; i < 3; i++ {
		l := &simLocker{id: i, host: s.nodes[voters[(i+1)%len(voters)]]}
		s.lockers = append(s.lockers, l)
		s.after(Time(s.rng.IntN(100)), func() { s.lockTurn(l) })
	}
	s.after(Time(300+s.rng.IntN(700)), s.lockNemesis)
}

// lockTurn starts the next `lock` process of l's script.
func (s *sim) lockTurn(l *simLocker) {
	if s.faultsOver {
		return
	}
	l.turns++
	p := &simLockProc{l: l, turn: l.turns, clientID: uint64(100+l.id)<<40 | uint64(l.turns)<<8 | 1}
	l.proc = p
	cfg := lockcore.Config{Name: "lk", Holder: fmt.Sprintf("locker %d turn %d", l.id, l.turns), TTL: simLockTTL}
	switch s.plant {
	case "kill-at-lease-end":
		cfg.Plant = lockcore.KillAtLeaseEnd
	case "start-on-stale-answer":
		cfg.Plant = lockcore.StartOnStaleAnswer
	}
	p.core = lockcore.New(cfg, s.reading(l.host))
	s.lockPump(p)
}

// lockDeliver hands an input to a lock process: at once, or when it thaws; never to a
// killed one.
func (s *sim) lockDeliver(p *simLockProc, fn func(now lockcore.Reading)) {
	switch {
	case p.killed:
	case s.now < p.frozenTill:
		p.pending = append(p.pending, fn)
	default:
		fn(s.reading(p.l.host))
		s.lockPump(p)
	}
}

// lockPump carries out what the lock process's core asks.
func (s *sim) lockPump(p *simLockProc) {
	if p.killed {
		return
	}
	n := p.l.host
	rd := p.core.Ready()
	for _, l := range rd.Logs {
		s.tracef("locker %d turn %d: %s", p.l.id, p.turn, l)
	}
	switch {
	case rd.Start:
		s.commandStart(p, rd.Generation, rd.Deadline)
	case rd.Deadline != 0 && p.run != nil && p.run.end < 0:
		p.run.deadline = rd.Deadline
		s.guardSchedule(p.run)
	}
	if rd.Stop && p.run != nil {
		s.guardStop(p.run)
	}
	if rd.Done != nil {
		s.tracef("locker %d turn %d ends: code %d %v", p.l.id, p.turn, rd.Done.Code, rd.Done.Err)
		if p.run != nil && p.run.end < 0 {
			s.violate("locker %d turn %d ended with its COMMAND still running", p.l.id, p.turn)
		}
		if p.l.proc == p {
			p.l.proc = nil
			s.after(Time(s.rng.IntN(100)), func() { s.lockTurn(p.l) })
		}
		return
	}
	if q := rd.Send; q != nil {
		s.lockSend(p, *q)
	}
	if rd.Wake != 0 {
		p.wakes++
		w := p.wakes
		s.after(max(0, s.simTime(n, rd.Wake)-s.now), func() {
			if p.wakes == w {
				s.lockDeliver(p, func(now lockcore.Reading) { p.core.Tick(now) })
			}
		})
	}
}

// lockSend sends a lock process's request to its host's agent; the answer, or a
// timeout, goes back to the core.
func (s *sim) lockSend(p *simLockProc, q lockcore.Send) {
	n := p.l.host
	timeout := Time(q.Timeout.Milliseconds())
	if timeout <= 0 {
		timeout = 2000
	}
	answered := false
	answer := func(resp api.Response, err error) {
		if answered {
			return
		}
		answered = true
		s.lockDeliver(p, func(now lockcore.Reading) { p.core.Answer(now, q.ID, resp, err) })
	}
	if !n.up {
		s.after(50, func() { answer(api.Response{}, errors.New("no server")) })
		return
	}
	s.after(timeout, func() { answer(api.Response{}, errors.New("timeout")) })
	p.seq++
	req := q.Req
	req.ClientID, req.Seq = p.clientID, p.seq
	if req.TimeoutMs == 0 {
		req.TimeoutMs = uint32(max(100, timeout-100))
	}
	s.request(n, req, func(r api.Response, broken bool) {
		s.tracef("locker %d turn %d on %s: %s lease %d → exit %d %s %s %s (broken %v)", p.l.id, p.turn, n.id, req.Op, req.Lease, r.Code, r.Msg, r.Value, r.JSON, broken)
		// the answer travels back to the client: it acts on it later, not from within
		// the agent's Ready
		s.after(1, func() {
			if broken {
				answer(api.Response{}, errors.New("stream broke"))
			} else {
				answer(r, nil)
			}
		})
	})
}

// ---- COMMAND and its guard ----

func (s *sim) commandStart(p *simLockProc, gen uint64, deadline lockcore.Reading) {
	grace := min(10*time.Second, simLockTTL/10, simLockTTL/3-lockcore.Margin(simLockTTL))
	r := &simLockRun{p: p, gen: gen, start: s.now, end: -1, deadline: deadline, grace: grace, ignoresTerm: s.rng.IntN(3) == 0}
	p.run = r
	s.lockRuns = append(s.lockRuns, r)
	s.stats.lockRuns++
	s.tracef("locker %d turn %d: COMMAND starts, generation %d, deadline in %v", p.l.id, p.turn, gen, deadline.Sub(s.reading(p.l.host)))
	s.guardSchedule(r)
	// half end by themselves after a while; the others run until they are stopped
	if s.rng.IntN(2) == 0 {
		s.after(Time(50+s.rng.IntN(700)), func() { s.commandAct(r, func() { s.commandEnd(r, 0, "ends") }) })
	}
	s.commandWrite(r)
}

// commandAct does what COMMAND or its guard does at this moment, or when their freeze
// ends.
func (s *sim) commandAct(r *simLockRun, fn func()) {
	if r.end >= 0 {
		return
	}
	for _, f := range r.frozen {
		if s.now >= f[0] && s.now < f[1] {
			s.after(f[1]-s.now, func() { s.commandAct(r, fn) })
			return
		}
	}
	fn()
}

// commandWrite is COMMAND's next fenced write, and the one after it once answered.
func (s *sim) commandWrite(r *simLockRun) {
	s.commandAct(r, func() {
		n := r.p.l.host
		next := func() { s.after(Time(10+s.rng.IntN(50)), func() { s.commandWrite(r) }) }
		if !n.up {
			next()
			return
		}
		r.writes++
		w := len(s.writes)
		s.writes = append(s.writes, simFencedWrite{run: r, sent: s.now, code: -1})
		req := api.Request{Op: api.OpSet, Key: "fk", Value: fmt.Appendf(nil, "%d/%d/%d", r.p.l.id, r.p.turn, r.writes),
			FenceName: "lk", FenceGen: r.gen, ClientID: r.p.clientID + 1<<7, Seq: uint64(r.writes), TimeoutMs: 400}
		if s.plant == "unfenced-writes" {
			// planted: COMMAND does not pass its generation on
			req.FenceName, req.FenceGen = "", 0
		}
		done := false
		s.after(500, func() {
			if !done {
				done = true
				next()
			}
		})
		s.request(n, req, func(resp api.Response, broken bool) {
			if done {
				return
			}
			done = true
			if !broken {
				s.writes[w].code = resp.Code
				switch resp.Code {
				case 0:
					s.stats.fencedOK++
				case api.CodeFenced:
					s.stats.fencedRefused++
				}
			}
			next()
		})
	})
}

// commandEnd: COMMAND is gone; its guard tells the lock process.
func (s *sim) commandEnd(r *simLockRun, code int, how string) {
	if r.end >= 0 {
		return
	}
	r.end = s.now
	s.tracef("locker %d turn %d: COMMAND %s (generation %d)", r.p.l.id, r.p.turn, how, r.gen)
	s.lockDeliver(r.p, func(now lockcore.Reading) { r.p.core.Exited(now, code, nil) })
}

// guardSchedule (re)plans the guard's signals for r's deadline.
func (s *sim) guardSchedule(r *simLockRun) {
	r.guardEvents++
	ev := r.guardEvents
	n := r.p.l.host
	termAt := r.deadline.Add(-r.grace)
	if r.stopping {
		termAt = r.stopFrom
	}
	killAt := r.deadline
	if r.stopping {
		killAt = min(killAt, r.stopFrom.Add(r.grace))
	}
	late := func() Time { return Time(s.rng.IntN(simGuardLateMs + 1)) }
	s.after(max(0, s.simTime(n, termAt)-s.now)+late(), func() {
		if r.guardEvents == ev {
			s.commandAct(r, func() { s.commandTerm(r) })
		}
	})
	s.after(max(0, s.simTime(n, killAt)-s.now)+late(), func() {
		if r.guardEvents == ev {
			s.commandAct(r, func() { s.commandEnd(r, 128+9, "killed (SIGKILL)") })
		}
	})
}

// commandTerm: SIGTERM to COMMAND's group. Some COMMANDs finish their batch first.
func (s *sim) commandTerm(r *simLockRun) {
	if r.ignoresTerm {
		return
	}
	s.after(Time(s.rng.IntN(30)), func() {
		s.commandAct(r, func() { s.commandEnd(r, 128+15, "stopped (SIGTERM)") })
	})
}

// guardStop: the lock process is gone, or says the lock is lost.
func (s *sim) guardStop(r *simLockRun) {
	if r.stopping || r.end >= 0 {
		return
	}
	r.stopping, r.stopFrom = true, s.reading(r.p.l.host)
	s.guardSchedule(r)
}

// ---- the holders' nemesis ----

func (s *sim) lockNemesis() {
	if s.faultsOver {
		return
	}
	defer s.after(Time(300+s.rng.IntN(1200)), s.lockNemesis)
	l := s.lockers[s.rng.IntN(len(s.lockers))]
	p := l.proc
	if p == nil || p.killed {
		return
	}
	d := Time(s.rng.IntN(3 * int(simLockTTL.Milliseconds())))
	switch s.rng.IntN(3) {
	case 0:
		s.stats.holderFaults++
		s.tracef("locker %d turn %d: lock process killed (kill -9)", l.id, p.turn)
		p.killed = true
		if p.run != nil {
			s.guardStop(p.run) // the guard's pipe ends
		}
		l.proc = nil
		s.after(Time(s.rng.IntN(200)), func() { s.lockTurn(l) })
	case 1:
		s.stats.holderFaults++
		s.lockFreeze(p, d, false)
	case 2:
		s.stats.holderFaults++
		s.lockFreeze(p, d, true)
	}
}

// lockFreeze stops a lock process for d (SIGSTOP, then SIGCONT), and with whole its guard
// and COMMAND: a holder frozen whole.
func (s *sim) lockFreeze(p *simLockProc, d Time, whole bool) {
	s.tracef("locker %d turn %d: lock process frozen for %d ms (with guard and COMMAND: %v)", p.l.id, p.turn, d, whole)
	p.frozenTill = max(p.frozenTill, s.now+d)
	if whole && p.run != nil && p.run.end < 0 {
		p.run.frozen = append(p.run.frozen, [2]Time{s.now, s.now + d})
	}
	s.after(d, func() {
		if s.now < p.frozenTill || p.killed {
			return
		}
		pending := p.pending
		p.pending = nil
		for _, fn := range pending {
			s.lockDeliver(p, fn)
		}
		s.lockPump(p)
	})
}

// checkLockRuns: no two COMMANDs ran at once, unless the earlier one's guard was frozen
// before the later one began; generations grow from holder to holder; no fenced write
// was accepted once a COMMAND of a greater generation had started.
func (s *sim) checkLockRuns() {
	runs := slices.Clone(s.lockRuns)
	slices.SortStableFunc(runs, func(a, b *simLockRun) int { return cmp.Compare(a.start, b.start) })
	for i, b := range runs {
		for _, a := range runs[:i] {
			if a.end >= 0 && a.end <= b.start {
				continue
			}
			if slices.ContainsFunc(a.frozen, func(f [2]Time) bool { return f[0] < b.start }) {
				s.stats.frozenOverlaps++
				continue
			}
			s.violate("two COMMANDs at once: locker %d turn %d (generation %d) from %d to %d, locker %d turn %d (generation %d) from %d",
				a.p.l.id, a.p.turn, a.gen, a.start, a.end, b.p.l.id, b.p.turn, b.gen, b.start)
			return
		}
		if i > 0 && b.gen <= runs[i-1].gen {
			a := runs[i-1]
			s.violate("lock generation went from %d (locker %d turn %d) to %d (locker %d turn %d)", a.gen, a.p.l.id, a.p.turn, b.gen, b.p.l.id, b.p.turn)
			return
		}
	}
	for _, w := range s.writes {
		if w.code != 0 {
			continue
		}
		for _, r := range runs {
			if r.gen > w.run.gen && r.start <= w.sent {
				s.violate("a fenced write of generation %d (locker %d turn %d) sent at %d was accepted, though generation %d (locker %d turn %d) had started at %d",
					w.run.gen, w.run.p.l.id, w.run.p.turn, w.sent, r.gen, r.p.l.id, r.p.turn, r.start)
				return
			}
		}
	}
}

// TestAgentSimCatchesPlantedLockBugs plants each bug of the lock client the simulation
// must catch, in the real client's core, and checks that some seed fails for each; and
// a COMMAND that writes without its fencing number, to show the write check works.
func TestAgentSimCatchesPlantedLockBugs(t *testing.T) {
	if *agentSimBug != "" || *agentSimSeed != 0 {
		t.Skip("runs only without -agentsim.bug and -agentsim.seed")
	}
	for _, name := range []string{"kill-at-lease-end", "start-on-stale-answer", "unfenced-writes"} {
		t.Run(name, func(t *testing.T) {
			const limit = 400
			if r, ok := firstFailure(bugs{}, name, limit); ok {
				line, _, _ := strings.Cut(r.failure, "\n")
				t.Logf("caught by seed %d: %s", r.seed, line)
				return
			}
			t.Fatalf("no seed of %d caught the planted bug %s", limit, name)
		})
	}
}
