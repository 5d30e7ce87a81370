// Package raftcore is the Raft consensus algorithm as a deterministic state machine.
//
// It does no I/O, starts no goroutines, reads no clock and keeps no global state; the only
// randomness (election timeouts) comes from a seeded source the caller passes in Config.
// The agent drives it; tests drive it with a simulated network and disks. Everything that
// makes lite-raft correct is therefore testable here by replaying a seed.
//
// What it reads back of the durable state goes through Storage, a small interface the
// caller implements (statefile.Store in lite-raft, MemoryStorage in tests), as etcd's raft
// reads stable entries: memory holds every entry's term, the membership entries and a
// cache of the newest entries (MaxCacheBytes beyond what is not yet durable or applied),
// and never a snapshot's data, which stays in the caller's file. So a node's memory does
// not grow with the length of the log, the size of its values or of the state.
//
// # Driving a Node
//
// A Node is fed inputs and hands back work:
//
//   - Tick advances logical time (lite-raft ticks every election_timeout/10).
//   - Step delivers a Message from a peer.
//   - Propose, ProposeMembership, ReadIndex, TransferLeadership and Compact are the
//     requests of the local application; LeaderGone is its report that the leader's
//     process is known to have stopped (the follower then campaigns early).
//   - Ready returns what to do: hard state and entries to persist, pieces of a snapshot
//     being received to write down and a complete one to install, messages to send (some at once, some only after persisting), committed entries to
//     apply and reads that became safe. Advance acknowledges it. Ready may be called again
//     before Advance, so a caller can gather the next batch while the last one's fsync
//     runs (group commit); Advance then follows in order.
//
// Restarting is creating a Node from State: what earlier Readies asked to make durable.
// At first boot that is an empty log and a snapshot at index 0 whose membership names the
// initial voters (or no one, for a host that waits to be added).
//
// # What is implemented, and where
//
//   - election.go: elections with randomized timeouts in [T, 2T), pre-vote (a node asks
//     whether it could win before raising its term, so a partitioned node that comes back
//     does not depose a healthy leader) and the election restriction (§5.4.1). Two voters
//     that stand in the same round do not split the vote: the one that meets the other's
//     pre-vote and would rank after it (older log, or later name) gives way and waits two
//     round trips for its election (SetRoundTrip: the driver measures each link's).
//   - node.go: roles, ticks, term rules and check-quorum (a leader that has not heard from
//     a quorum within T steps down; followers that heard a leader within T ignore
//     elections unless a leadership transfer started them).
//   - replication.go: AppendEntries, pipelined up to MaxInflight messages per follower;
//     rejections carry a hint (last index whose term could match and that term) so the
//     leader skips a whole term per round trip; the commit rule (§5.4.2: only entries of the
//     leader's term are committed by counting). A pipelined append that arrives after a
//     gap (the driver may spread appends over several streams) is held, within
//     MaxAppendAhead, until the log reaches it (appahead.go); a gap that does not close
//     within two heartbeats is refused, and the leader goes back to what it holds.
//   - progress.go: the leader's per-follower state: probe, replicate or snapshot.
//   - snapshot.go: Compact drops the log prefix the application snapshotted (but for
//     KeepEntries before it, for followers a little behind); followers further behind
//     receive the snapshot in chunks read from Storage, a window of SnapshotWindow in
//     flight (SetSnapshotWindow: per member, sized by the driver from the link's round
//     trip), taken in any order within MaxSnapshotAhead and written in order, checked by
//     a CRC-32C of the whole computed as the pieces arrive. A transfer
//     resumes at the offset the follower reports, after a lost piece, a restart of either
//     side (the follower's partial snapshot comes back in State.Incoming) or a leader
//     change if the new leader's snapshot is byte-identical; a snapshot being sent stays
//     the one sent when a newer one is taken, unless at most its first window was
//     confirmed: then it starts over with the newer one, and waits for it while the
//     application writes it (SnapshotSoon). A follower that received a snapshot whole
//     takes no piece of another until that one is written down.
//   - log.go, storage.go: the log's bounded cache, Storage and MemoryStorage.
//   - membership.go, quorum.go: learners, joint consensus (C_old,new needs both majorities;
//     the leader appends C_new by itself once C_old,new commits), a leader outside C_new
//     steps down once it commits and hands over with MsgTimeoutNow. A membership takes
//     effect when appended (§4.1 of the dissertation), so truncation can take one back.
//   - transfer.go: leadership transfer (catch the target up, then MsgTimeoutNow).
//   - readindex.go: linearizable reads by read index, confirmed by a heartbeat round of the
//     current term; reads arriving together share one round.
//   - ready.go: the Ready/Advance contract.
//
// # Durability rules worth knowing
//
// A leader's appends go out before its own fsync (it counts itself for commit only once
// Advance says its entries are durable), but no message at all leaves while the term and
// vote behind it are not durable: otherwise a node could lead a term, crash, forget its
// vote, and vote again in that term. Answers that vouch for the log (append and vote
// responses) always wait for the persist. Committed entries are handed out for applying
// only once they are durable locally.
//
// # How it is tested
//
// cluster_test.go is a driver that runs Nodes with in-memory disks over a network that
// loses, duplicates, reorders and cuts messages, and checks as it goes: one leader per term,
// log matching, leader completeness, state machine safety, snapshot contents and
// linearizable reads. sim_test.go runs thousands of random schedules through it and then
// checks liveness; rules_test.go has one focused test per rule of the Raft paper.
// `go test ./raftcore/ -run 'TestSim$' -sim.seed=N -sim.trace=500 -v` replays a seed with
// a trace of its last events.
package raftcore
