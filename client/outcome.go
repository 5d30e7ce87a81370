package client

import (
	"errors"
	"fmt"

	"lite-raft/api"
)

// Outcome is what the caller knows of a request that got no answer from the state machine.
type Outcome uint8

const (
	NotSent      Outcome = iota + 1 // nothing can have been appended anywhere
	MaybeApplied                    // its bytes were handed to a transport toward a leader, or it was proposed
)

// Or merges the outcomes of two attempts of one request: MaybeApplied if either may have
// been applied (a request retried after a sent attempt stays MaybeApplied), else NotSent
// if either is. The zero Outcome (no attempt yet) changes nothing.
func (o Outcome) Or(p Outcome) Outcome {
	switch {
	case o == MaybeApplied || p == MaybeApplied:
		return MaybeApplied
	case o == NotSent || p == NotSent:
		return NotSent
	}
	return 0
}

func (o Outcome) String() string {
	switch o {
	case NotSent:
		return "not sent"
	case MaybeApplied:
		return "maybe applied"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Failure is why it ended without an answer.
type Failure uint8

const (
	FailNoServer Failure = iota + 1 // the agent asked runs no server (or cannot be reached at all)
	FailNoLeader                    // no leader known, or the leader cannot be reached
	FailTimeout                     // the deadline passed
	FailStale                       // a read the leader could not confirm in time
	FailStopping                    // the agent is stopping
)

func (f Failure) String() string {
	switch f {
	case FailNoServer:
		return "no server"
	case FailNoLeader:
		return "no leader"
	case FailTimeout:
		return "timeout"
	case FailStale:
		return "stale"
	case FailStopping:
		return "stopping"
	}
	return fmt.Sprintf("failure(%d)", uint8(f))
}

// ExitCode is THE table: the exit code of a request that ended without an answer from
// the state machine. Only an explicit NotSent lets a write exit 11 or 12; any other
// outcome of a write (MaybeApplied, or none given) is 2, whatever the failure. Reads never
// exit 2.
//
//	                      write, NotSent   write, MaybeApplied   read (either)
//	FailNoServer          12               2                     12
//	FailNoLeader          11               2                     11
//	FailTimeout           11 (it waited)   2                     1 (stale)
//	FailStale             1                2                     1
//	FailStopping          12               2                     12
//
// lite-raft-client check alone exits otherwise: with the Nagios plugin codes of plugin.go.
func ExitCode(op api.Op, o Outcome, f Failure) int {
	write := api.IsWrite(op)
	if write && o != NotSent {
		return api.CodeTimeout
	}
	switch f {
	case FailNoServer, FailStopping:
		return api.CodeNoServer
	case FailNoLeader:
		return api.CodeNoLeader
	case FailTimeout:
		if write {
			return api.CodeNoLeader // it waited for a leader the whole time
		}
		return api.CodeFailed
	}
	return api.CodeFailed // FailStale, or an unknown failure
}

// Fail builds the Response an agent or a client gives for such a request: its code from
// ExitCode, and the original's message. host names the agent that answers (or the one a
// connection to broke), for the messages that name one.
func Fail(op api.Op, o Outcome, f Failure, host string) api.Response {
	code := ExitCode(op, o, f)
	return api.Response{Code: code, Msg: failMessage(op, code, f, host)}
}

func failMessage(op api.Op, code int, f Failure, host string) string {
	on := "here"
	if host != "" {
		on = "on " + host
	}
	switch code {
	case api.CodeTimeout:
		switch f {
		case FailTimeout:
			return "timed out waiting for the commit: the write may or may not have been applied"
		case FailStopping:
			return fmt.Sprintf("the server %s stopped after the write was sent: it may or may not have been applied", on)
		}
		to := "the connection"
		if host != "" {
			to += " to " + host
		}
		return to + " broke after the write was sent: it may or may not have been applied"
	case api.CodeNoServer:
		if f == FailStopping {
			return fmt.Sprintf("no server running %s. cannot process request. (it is stopping)", on)
		}
		return fmt.Sprintf("no server running %s. cannot process request.", on)
	case api.CodeNoLeader:
		return "leader is not available."
	}
	return "leader is stale. try again."
}

// Downgrade takes the answer an agent gave to one attempt of a request. An answer of 11,
// 12 or 14 (or 10, which a request valid before can only get from a leader of another
// build) says that attempt appended nothing; if an earlier attempt of the same write may
// have been applied (o is MaybeApplied), the request as a whole may have been, and
// Downgrade returns the 2 response instead. Any other answer is returned unchanged.
func Downgrade(op api.Op, o Outcome, r api.Response) api.Response {
	if !api.IsWrite(op) || o != MaybeApplied || !appendedNothing(r.Code) {
		return r
	}
	msg := "the write may or may not have been applied: an earlier attempt got no answer"
	if r.Msg != "" {
		msg += ", then: " + r.Msg
	}
	return api.Response{Code: api.CodeTimeout, Msg: msg, Leader: r.Leader}
}

// Error is a request that ended without an answer: every such failure of Client.Do is
// one. Its exit code comes from the table (ExitCode); its message is the table's, with
// the cause after it.
type Error struct {
	Op      api.Op
	Outcome Outcome
	Failure Failure
	Host    string // the agent asked, or the host a connection to broke ("" if unknown)
	Err     error  // the cause
}

// Code is the request's exit code, from the table.
func (e *Error) Code() int { return ExitCode(e.Op, e.Outcome, e.Failure) }

// Response is the answer an agent would give for this failure.
func (e *Error) Response() api.Response { return Fail(e.Op, e.Outcome, e.Failure, e.Host) }

func (e *Error) Error() string {
	msg := e.Response().Msg
	if e.Err != nil {
		msg += " (" + e.Err.Error() + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// AnswerError is a request the agent answered with a failure (a code other than 0), for
// a caller that makes several requests and stops at the first that fails: the answer is
// the verdict, its code the exit code.
type AnswerError struct {
	Op   api.Op
	Resp api.Response
}

func (e *AnswerError) Error() string {
	if e.Resp.Msg == "" {
		return fmt.Sprintf("%s failed", e.Op)
	}
	return e.Resp.Msg
}

// ExitCodeOf maps an error of Client.Do (or one wrapping it) to its exit code through the
// table: 0 for nil, the table's code for an *Error, the answer's code for an
// *AnswerError, 16 for a *LostError, 15 for a *WaitTimeoutError, 1 for anything else.
func ExitCodeOf(err error) int {
	if err == nil {
		return api.CodeOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code()
	}
	var ae *AnswerError
	if errors.As(err, &ae) {
		return ae.Resp.Code
	}
	var le *LostError
	if errors.As(err, &le) {
		return api.CodeLockLost
	}
	var we *WaitTimeoutError
	if errors.As(err, &we) {
		return api.CodeLockTimeout
	}
	return api.CodeFailed
}

// appendedNothing reports whether an answer with code says that its attempt appended
// nothing anywhere.
func appendedNothing(code int) bool {
	switch code {
	case api.CodeNoLeader, api.CodeNoServer, api.CodeUpgrade, api.CodeUsage:
		return true
	}
	return false
}
