package kvstore

import (
	"fmt"
	"time"

	"github.com/tidwall/btree"

	"lite-raft/api"
)

// The deduplication table (sessions): for each client ID, the last sequence number
// applied and what a retry of it must be answered. Every CLI call is a new client, so
// the table holds one session per write for as long as a retry of that write may come.
//
// Sessions expire by the state's time (Time: the largest stamp of the commands applied,
// the same on every member), SessionKeepMs after their client's last write; a request
// from a client the table does not hold, first sent more than SessionHorizonMs before
// that time, is a late retry, answered CodeTimeout and never applied (lateRetry). The
// table is bounded in memory too, by maxSessions and maxSessionBytes, but that bound
// never forgets a session younger than its keep: a new client is refused instead.
//
// Until the first stamped command (a cluster with members on builds from before command
// version 7, which still apply the old rule), sessions are forgotten as those builds
// forget them, the oldest by index once there are more than countSessions: every member
// must keep the same ones, or a retry would be applied on some and not on others.

// countSessions is the old rule's bound (builds before command version 7, and a state
// that was never stamped); the least recently active tenth is forgotten past it.
const countSessions = 10000

// The memory backstop of a stamped state: beyond either, a new client is refused
// (CodeFailed, nothing written) rather than a young session forgotten. At the issue's
// load (1,000 writes/s, one client each) an 11-minute keep holds 660,000 sessions;
// each takes about 100 bytes in memory and a dozen in a snapshot (README).
// (Variables only so that a test can reach them.)
var (
	maxSessions     = 2_000_000
	maxSessionBytes = 64 << 20 // of results' values (lease IDs, lock places, counters)
)

// plantedSessionLimit is Bugs.SessionsEvictedByCount's bound.
const plantedSessionLimit = 100

// session is a client's entry, compact: its answer is kept as the code and, where a
// retry must be given it again, the value (a lease's ID, a lock's place, a counter's
// new value, a txn's result), never the message, which a retry rebuilds from the code.
type session struct {
	seq uint64
	// mark orders the sessions for forgetting: the state's time of the last write, or
	// while the state has no time (never stamped), the index it was applied at
	mark   uint64
	result keptResult
}

// keptResult is a Result as the table keeps it: the code, and the value if any.
type keptResult struct {
	Code  uint8
	Value []byte
}

// sessionAge is a session's place in the forgetting order: by mark, then client ID
// (the order the old rule sorted in).
type sessionAge struct{ mark, id uint64 }

func ageLess(a, b sessionAge) bool {
	if a.mark != b.mark {
		return a.mark < b.mark
	}
	return a.id < b.id
}

func newAges() *btree.BTreeG[sessionAge] {
	return btree.NewBTreeGOptions(ageLess, btree.Options{NoLocks: true})
}

// Time is the state's time: the largest leader's stamp (Unix milliseconds) of the
// commands applied, 0 if none was stamped. It is the same on every member.
func (s *Store) Time() uint64 { return s.time }

// Sessions is how many clients the deduplication table holds.
func (s *Store) Sessions() int { return s.sessions.Len() }

// advance takes a command's stamp: the state's time moves to it if later, and the
// sessions older than the keep are forgotten.
func (s *Store) advance(stamp uint64) {
	if stamp <= s.time {
		return
	}
	if s.time == 0 && s.sessions.Len() > 0 {
		// the sessions from before the first stamp have an index for a mark, not a
		// time: they count from this stamp, a whole keep (their clients' retries, from
		// builds before it, carry no first-send time to tell them late)
		ages := newAges()
		var ids []uint64
		s.sessions.Scan(func(id uint64, _ session) bool { ids = append(ids, id); return true })
		for _, id := range ids {
			ss, _ := s.sessions.Get(id)
			ss.mark = stamp
			s.sessions.Set(id, ss)
			ages.Load(sessionAge{stamp, id})
		}
		s.ages = ages
	}
	s.time = stamp
	if s.time <= api.SessionKeepMs {
		return
	}
	for oldest := s.time - api.SessionKeepMs; ; {
		a, ok := s.ageTree().Min()
		if !ok || a.mark >= oldest {
			return
		}
		s.dropSession(a)
	}
}

func (s *Store) ageTree() *btree.BTreeG[sessionAge] {
	if s.ages == nil {
		s.ages = newAges()
	}
	return s.ages
}

func (s *Store) dropSession(a sessionAge) {
	s.ageTree().Delete(a)
	if ss, ok := s.sessions.Delete(a.id); ok {
		s.sessionBytes -= len(ss.result.Value)
	}
}

// putSession records client id's answer to seq.
func (s *Store) putSession(id, seq uint64, r Result) {
	mark := s.time
	if mark == 0 {
		mark = s.index
	}
	if old, ok := s.sessions.Get(id); ok {
		s.ageTree().Delete(sessionAge{old.mark, id})
		s.sessionBytes -= len(old.result.Value)
	}
	code := uint8(api.CodeFailed)
	if r.Code >= 0 && r.Code < 256 {
		code = uint8(r.Code)
	}
	var value []byte
	if len(r.Value) > 0 {
		value = r.Value
	}
	s.sessions.Set(id, session{seq: seq, mark: mark, result: keptResult{Code: code, Value: value}})
	s.ageTree().Set(sessionAge{mark, id})
	s.sessionBytes += len(value)
	switch {
	case s.bugs.SessionsEvictedByCount && s.sessions.Len() > plantedSessionLimit:
		s.forgetOldest(s.sessions.Len() - plantedSessionLimit*9/10)
	case s.time == 0 && s.sessions.Len() > countSessions:
		s.forgetOldest(s.sessions.Len() - countSessions*9/10)
	}
}

// forgetOldest forgets the n sessions first in the forgetting order: the old rule.
func (s *Store) forgetOldest(n int) {
	for ; n > 0; n-- {
		a, ok := s.ageTree().Min()
		if !ok {
			return
		}
		s.dropSession(a)
	}
}

// replay is the answer a retry of a session's last write gets again.
func (ss session) replay() Result {
	r := Result{Code: int(ss.result.Code), Value: ss.result.Value}
	if r.Code != api.CodeOK {
		r.Msg = replayMsg(r.Code)
	}
	return r
}

// replayMsg says what code meant, for a retry: the first answer's message is not kept
// (it named keys and values; the table must stay small).
func replayMsg(code int) string {
	what := map[int]string{
		api.CodeFailed:       "failed",
		api.CodeAlreadyHolds: "the key already held the new value",
		api.CodeCondFalse:    "the condition was false",
		api.CodeNoKey:        "the key did not exist",
		api.CodeExists:       "the key already existed",
		api.CodeFenced:       "fenced: the lock was not held at that generation; nothing was written",
	}[code]
	if what == "" {
		what = fmt.Sprintf("code %d", code)
	}
	return what + " (the answer to this request's first attempt, given again to its retry)"
}

// unknownClient answers a request from a client the table does not hold, when it must
// not be applied: a late retry (its first send older than the horizon: its session may
// have been forgotten, so it may have been applied), or a new client the full table
// cannot take without forgetting a session still young.
func (s *Store) unknownClient(c Command) (Result, bool) {
	if s.time == 0 {
		return Result{}, false // the old rule: a client not held is a new one
	}
	if c.FirstSentMs != 0 && c.FirstSentMs+api.SessionHorizonMs < s.time {
		age := time.Duration(s.time-c.FirstSentMs) * time.Millisecond
		return Result{Code: api.CodeTimeout, Msg: fmt.Sprintf(
			"a late retry: first sent %v before the cluster's time, past the %v in which the cluster tells a retry from a new client: "+
				"it may have been applied before, and it was not applied again", age.Round(time.Second), time.Duration(api.SessionHorizonMs)*time.Millisecond)}, true
	}
	if s.sessions.Len() >= maxSessions || s.sessionBytes >= maxSessionBytes {
		return Result{Code: api.CodeFailed, Msg: fmt.Sprintf(
			"too many clients: the cluster holds %d clients' sessions, all written to in the last %v, and forgetting one could apply its retry twice: "+
				"nothing was written; try again later", s.sessions.Len(), time.Duration(api.SessionKeepMs)*time.Millisecond)}, true
	}
	return Result{}, false
}
