// Package gcpace paces Go's garbage collector for the agent, a process that runs for
// months with a heap that is mostly its state machine.
//
// Go collects when the heap has grown by GOGC percent of what the last collection left
// live. The agent runs with 20 (cmd/lite-raft): with a large state, that keeps its RSS
// near 1.2x the live heap. With a small state the same rule is costly: 20 MB live
// means a collection every 4 MB allocated, and a leader under load allocates that in
// tens of milliseconds (every request, entry and message is a few hundred bytes), so the
// collector took a quarter of the leader's CPU in profiles at 256 clients.
//
// Run raises the percent while the live heap is small, so that the heap may always grow
// by at least a floor (64 MiB in the agent) between collections, and gives the base
// percent back as the heap grows past floor*100/percent: memory for a small agent, none
// for a large one, whose headroom is the base percent's anyway.
//
// It also sets a soft memory limit at that heap goal plus what the runtime holds beside
// the heap (stacks, metadata), unless GOMEMLIMIT is set. Without a limit, Go keeps freed
// memory mapped up to a tenth above the goal: at 519 MB of keys and values on one host,
// the agent's RSS was 1.63x the data with a live heap of 1.14x and GOGC 25; with the
// limit, 1.44-1.47x, and with GOGC 20 too, 1.39x, for more collections (136-146 instead
// of 100-124 in the same 45 s, each about 130 ms of marking on one core, no assists) and
// no fewer writes in alternating runs.
package gcpace
