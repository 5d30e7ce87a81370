package core

import (
	"bytes"
	"fmt"

	"lite-raft/api"
)

// The session clients of the whole-system simulation (issue 26): a crowd that writes as
// the command line does, every write a new client ID (over a thousand a schedule, coming and
// going), and late retriers, each of which writes once with a new client ID and sends the
// very same request again (its client ID, sequence number and first-send time) through
// any member some hundreds of milliseconds later, after hundreds of the crowd's clients
// wrote, as a retry after a broken connection arrives. The check is direct: the retry
// of a write whose first answer was 0 must be answered 0 again (with the same value), or
// with a code that says this attempt did nothing or may have (1, 2, 11, 12, 14); 13 (a
// create's key exists) or 6 (a counter raise from a stale value) is the write applied a
// second time. Their keys are apart from the porcupine clients' (crowd/, late/).

const (
	crowdWriters     = 1
	crowdPauseMs     = 8   // a crowd writer sends its next write within this (no waiting for answers)
	lateRetriers     = 3   // clients that retry late
	lateRetryMinMs   = 900 // how long after its first answer a retry is sent again
	lateRetrySpanMs  = 1200
	sessionTimeoutMs = 700 // what the session clients tell the agent they wait
)

// startSessionClients starts the crowd and the late retriers (runSim's hook).
func (s *sim) startSessionClients() {
	for i := 0; i < crowdWriters; i++ {
		s.after(Time(s.rng.IntN(50)), func() { s.crowdWrite(i) })
	}
	for i := 0; i < lateRetriers; i++ {
		s.after(Time(100+s.rng.IntN(200)), func() { s.lateWrite(i, 0) })
	}
}

// anyUp is a member up to send a client's request to, nil if none is.
func (s *sim) anyUp() *simNode {
	up := s.upNodes()
	if len(up) == 0 {
		return nil
	}
	return up[s.rng.IntN(len(up))]
}

// crowdWrite sends one write as a new client and schedules the next, without waiting.
func (s *sim) crowdWrite(i int) {
	if s.faultsOver {
		return
	}
	if n := s.anyUp(); n != nil {
		req := api.Request{Op: api.OpSet, Key: fmt.Sprintf("crowd/%d", i), Value: []byte("x"),
			ClientID: s.rng.Uint64() | 1, Seq: 1, FirstSentMs: uint64(max(1, s.now)), TimeoutMs: sessionTimeoutMs}
		s.request(n, req, func(api.Response, bool) {})
	}
	s.after(Time(1+s.rng.IntN(crowdPauseMs)), func() { s.crowdWrite(i) })
}

// lateWrite writes once as a new client (a create, or a counter raise, of a key of its
// own), then retries the same request late and checks the retry's answer.
func (s *sim) lateWrite(i, round int) {
	if s.faultsOver {
		return
	}
	next := func() { s.after(Time(1+s.rng.IntN(50)), func() { s.lateWrite(i, round+1) }) }
	n := s.anyUp()
	if n == nil {
		next()
		return
	}
	id := s.rng.Uint64() | 1
	req := api.Request{Op: api.OpCreate, Key: fmt.Sprintf("late/%d.%d", i, round), Value: []byte("v"),
		ClientID: id, Seq: 1, FirstSentMs: uint64(max(1, s.now)), TimeoutMs: sessionTimeoutMs}
	if round%2 == 1 {
		req.Op, req.Value = api.OpCounterRaise, nil
	}
	sent := s.now
	done := false
	s.request(n, req, func(first api.Response, broken bool) {
		if done {
			return
		}
		done = true
		if broken || first.Code != api.CodeOK {
			next() // nothing definite to hold the retry to
			return
		}
		s.after(Time(lateRetryMinMs+s.rng.IntN(lateRetrySpanMs)), func() {
			m := s.anyUp()
			if m == nil || s.faultsOver {
				next()
				return
			}
			again := false
			s.request(m, req, func(r api.Response, broken bool) {
				if again {
					return
				}
				again = true
				switch {
				case broken:
				case r.Code == api.CodeOK && bytes.Equal(r.Value, first.Value):
				case r.Code == api.CodeFailed || r.Code == api.CodeTimeout || r.Code == api.CodeNoLeader ||
					r.Code == api.CodeNoServer || r.Code == api.CodeUpgrade:
				default:
					s.violate("a late retry of %s %s (client %x, first sent at %d ms, answered 0 %q) was answered %d %q %q through %s: applied a second time",
						req.Op, req.Key, id, sent, first.Value, r.Code, r.Msg, r.Value, m.id)
				}
				next()
			})
			s.after(sessionTimeoutMs+100, func() {
				if !again {
					again = true
					next()
				}
			})
		})
	})
	s.after(sessionTimeoutMs+100, func() {
		if !done {
			done = true
			next()
		}
	})
}
