// Package kvmodel is lite-raft's key-value store as porcupine checks histories against
// it: the model that the linearizability torture test (e2e) and the agent simulation
// (agent/core) share, so a rule of the exit codes is written once.
//
// Each key is a register, checked on its own (the model partitions a history by key).
// Writes carry a value unique to the operation, so a read tells which write it saw; a
// key that does not exist is the empty string (values are never empty).
//
// Outcomes are taken at the exit codes' word (Classify): a write that exits 2, or got
// no answer at all, may take effect at any time from its call on, or never; one that
// exits 1, 3, 4, 10, 11, 12 or 14 was not applied, and is accepted only as a no-op, so a
// later read of its value makes the history illegal (a wrong 11 or 12 is caught); the
// results of conditional writes (5, 6, 7, 13) must fit the state the model holds. A read
// that failed observed nothing and is left out.
package kvmodel
