// Package agent is the node daemon: one per host, started by `lite-raft start` (or
// `lite-raft agent --foreground` under systemd). It is the thin driver of agent/core,
// which decides everything (requests and their outcomes, forwarding, retries, membership
// steps, snapshots) without doing any I/O; this package does the I/O.
//
// One goroutine owns the core and runs the loop: it takes ticks, messages from peers,
// client requests, link reports and the results of calls from a channel, hands them to
// the core, then does the core's Ready: it answers clients, starts the calls and runs the
// core asked for (each on a goroutine of its own, reporting back through the channel),
// sends the Raft messages that may leave at once (a leader's appends go out while it
// writes the same entries to its own disk), persists (all entries ready at that moment in
// one write and one fsync: whatever arrived during the last fsync is batched into the
// next, which is the group commit), sends the messages that had to wait for the disk,
// and calls Advance, which applies what committed and answers whoever waited for it.
//
// The world is reached through three small interfaces (seams.go): Transport (ssh to the
// peers through sshrpc: one SSH connection and one `lite-raft rpc` session per member,
// each fed by its own goroutine so a slow or dead peer never stalls the loop, and on a
// long link several more sessions for snapshot pieces and a catching-up follower's
// appends (bulk.go); link reports; calls; commands run on a host), Storage (statefile)
// and Clock. The whole
// system is simulated one level down, in agent/core's tests, over in-memory versions of
// the same seams.
//
// When a follower's link to its leader finds that the leader's host runs no agent any
// more (killed, crashed, stopped), the core is told (raftcore's LeaderGone) and stands for
// election without waiting out an election timeout; a host that falls silent is still
// found by the timeout.
//
// Files: temp/agent.sock (0600 in a 0700 folder), temp/agent.pid, temp/agent.lock (one
// agent per directory), the one-line status files temp/server_role, current_leader and
// commit_index for scripts, temp/backup-ID.snapshot while a client's snapshot save reads it
// (backup.go), and message-log/lite-raft-server.log. commit_index and
// state/commit are mere hints of progress, written by a goroutine of their own at most ten
// times a second so that their renames never hold up the loop.
package agent
