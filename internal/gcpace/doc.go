// Package gcpace paces Go's garbage collector for the agent, a process that runs for
// months with a heap that is mostly its state machine.
//
// Go collects when the heap has grown by GOGC percent of what the last collection left
// live. The agent runs with 25 (cmd/lite-raft): with a large state, that keeps its RSS
// near 1.25x the live heap. With a small state the same rule is costly: 20 MB live
// means a collection every 5 MB allocated, and a leader under load allocates that in
// tens of milliseconds (every request, entry and message is a few hundred bytes), so the
// collector took a quarter of the leader's CPU in profiles at 256 clients.
//
// Run raises the percent while the live heap is small, so that the heap may always grow
// by at least a floor (64 MiB in the agent) between collections, and gives the base
// percent back as the heap grows past floor*100/percent: memory for a small agent, none
// for a large one, whose headroom is the base percent's anyway.
//
// It also sets a soft memory limit at that heap goal plus what the runtime holds beside
// the heap (stacks, metadata), once the live heap stops growing, unless GOMEMLIMIT is set.
// Without a limit, Go keeps freed memory mapped up to a tenth above the goal. At 519 MB
// of keys and values on one host, under 64 clients' writes, the agent's RSS was 1.65x
// the data (a live heap of 1.14x); with the limit, 1.43-1.46x, for 2-3% fewer writes
// (39.1k and 39.5k ops/s against 40.3k). GOGC 20 with the limit gave 1.40x but 12% fewer
// writes. While the heap grows (a restart's replay, a snapshot loading, a fill) there is
// no limit: what it gives back is faulted in again at once.
package gcpace
