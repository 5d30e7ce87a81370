// Package agent is the node daemon: one per host, started by `lite-raft start` (or
// `lite-raft agent --foreground` under systemd).
//
// One goroutine owns the Raft node and the key-value state and runs the loop: it takes
// ticks, messages from peers and client requests from a channel, then handles the
// node's Ready: it sends the messages that may leave at once (a leader's appends go out
// while it writes the same entries to its own disk), persists through statefile (all
// entries ready at that moment in one write and one fsync: whatever arrived during the
// last fsync is batched into the next, which is the group commit), sends the messages
// that had to wait for the disk, applies committed entries and answers the clients
// waiting for them.
//
// Peers are reached through sshrpc: one SSH connection and one `lite-raft rpc` session
// per member, opened at start and reopened at once when it ends, each fed by its own
// goroutine so a slow or dead peer never stalls the loop. When a follower's link to its
// leader finds that the leader's host runs no agent any more (killed, crashed, stopped),
// the node is told (raftcore's LeaderGone) and stands for election without waiting out
// an election timeout; a host that falls silent is still found by the timeout.
// Writes and linearizable reads that reach a follower are forwarded to the leader over
// the follower's own connection, so clients never need ssh. Requests carry a client ID
// and sequence number that the state machine deduplicates, so the retries the agent
// makes (after a broken forward, a lost proposal, a leader change) never apply a write
// twice; a write whose fate is unknown at its deadline is answered with exit code 2.
//
// Files: temp/agent.sock (0600 in a 0700 folder), temp/agent.pid, temp/agent.lock (one
// agent per directory), the one-line status files temp/server_role, current_leader and
// commit_index for scripts, and message-log/lite-raft-server.log. commit_index and
// state/commit are mere hints of progress, written by a goroutine of their own at most ten
// times a second so that their renames never hold up the loop.
package agent
