// Package client is the client side of lite-raft's client protocol: how `lite-raft
// client`, `lite-raft remote`, `lite-raft bench` and the failover module send the
// requests of package api to an agent, and what a request that got no answer exits with.
//
// A request travels as one frame on an sshrpc stream: the local agent's unix socket, or
// an SSH session running `lite-raft rpc` on a member. The agent that receives a write or
// a linearizable read forwards it to the leader and returns the leader's answer
// unchanged, so a client never needs to know who leads.
//
// Remote is the Caller of a host outside the cluster (lite-raft remote, pkg there): it
// tries the members over ssh in turn, the remembered leader first and the hosts that gave
// no answer last, each for a share of the time, and decides the outcome over them all.
//
// SaveBackup and ReleaseBackup are the protocol of `snapshot save`: ask the leader for
// a snapshot, wait until it is written, read it in pieces, check it, let the holder
// drop its copy.
//
// Every client draws a random ID and numbers its requests; the state machine remembers
// the last answer per client, so a request retried after a broken connection or a
// leader change is applied at most once.
//
// A request that gets no answer from the state machine ends with an Outcome (NotSent:
// nothing can have been appended anywhere; MaybeApplied: its bytes were handed to a
// transport toward a leader, or it was proposed) and a Failure (no server, no leader,
// timeout, stale, stopping). ExitCode is the one table that turns them into an exit
// code, for the agents (Fail) and the clients (Error, ExitCodeOf) alike: a write that
// may have been applied exits 2, 11 and 12 only when nothing can have been appended, a
// read never exits 2 (whether an op is a write is its catalogue entry's kind). No exit
// code is chosen by matching a message.
package client
