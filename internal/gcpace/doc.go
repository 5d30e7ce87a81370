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
package gcpace
