// Package lockcore decides what `lite-raft-client lock NAME -- COMMAND` does, and when:
// the acquire, the wait with its renewals, when COMMAND may start, the kill deadline
// its guard keeps, when COMMAND must be stopped, and the release. It is pure (no
// goroutines, I/O or clock of its own): the caller hands it the time with each input and
// carries out what its Ready says.
//
// It is one core so that one set of rules runs everywhere. The command line drives it
// with real requests, real time and a guard process (client.HoldLock, internal/guard);
// lite-raft-remote does the same over ssh; and the whole-system simulation (agent/core's
// TestAgentSim) drives it against simulated agents, on hosts whose clocks run up to
// DriftPPM fast or slow, with `lock` processes killed, frozen and cut off, and checks that
// no two COMMANDs ever run at once. Before, the simulation had a lock client of its own
// whose rules were stricter than the real one's, and proved nothing about it.
//
// The deadline rule (KillDeadline, Margin, Valid) is here too, as pure functions on
// Readings of a clock: the guard kills on it, the core computes it, the simulation
// checks it.
package lockcore
