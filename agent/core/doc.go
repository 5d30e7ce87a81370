// Package core is the agent's deterministic core: everything a node decides above Raft,
// with no goroutines, no I/O, no clock and no global state, like raftcore below it.
//
// It owns the Raft node and the key-value state machine, the client requests waiting for
// an answer, the forwarding of requests to the leader and their retries, reads, watches,
// membership operations and the bookkeeping of snapshots, and it decides the outcome of
// every request. It is driven by inputs: a client request, a peer message, a tick, a
// report that a link to a peer came up or went down, the answer (or failure) of a call it
// asked for, the result of a command it asked to run on a host, a snapshot saved. Each
// input carries the time, as milliseconds on the driver's monotonic clock; the core keeps
// no other notion of time. Its outputs come out of Ready as one batch: Raft's work
// (persist, then send), replies to clients, calls to make to peers, commands to run on
// hosts over ssh, a snapshot to save, a membership that committed, lines to log. The
// driver (package agent) does that I/O and calls Advance.
//
// Outcomes are exact. A request carries one of three states: not sent (nothing can have
// been appended anywhere), maybe applied (its bytes were handed to a transport toward a
// leader, or it was proposed here) and answered. Client codes come from the one table in
// package client: 11 and 12 only while nothing can have been appended; a write that may
// have been applied and got no answer is 2, and stays 2 even if a later retry is told
// "no leader" by an agent that never saw the earlier attempt.
//
// Retries never spin. A forward that could not be sent waits for the leader's link to come
// up, for another leader, or for its own backoff (doubling from 20 ms to 1 s, with
// jitter), whichever is first; a retried write keeps its client ID and sequence number, so
// the state machine applies it at most once. Failures that repeat are logged when they
// start and then at most once every five seconds with the count of what was suppressed.
//
// Snapshots are taken from the state machine every SnapshotPeriod applied entries; the log
// is compacted only after the driver reports the snapshot durable, and a failed save is
// retried after a backoff (doubling up to a minute), not on every batch.
//
// Backups (lite-raft-client snapshot save) are snapshots of the state as of a read index,
// written for a client to a file of their own and read by it in pieces: backup.go.
package core
