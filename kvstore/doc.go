// Package kvstore is lite-raft's replicated state machine: a key-value store of
// slash-separated keys, applied in log order on every member.
//
// Commands travel inside Raft log entries (Encode/Decode) and are evaluated only when
// applied, which makes the conditional set atomic: two concurrent `if KEY = X set Y`
// cannot both succeed, because the second sees the first's result (the original checked
// at the leader before appending, a known defect).
//
// Every command may carry a client ID and sequence number. The store remembers the last
// sequence number and result of each client, so a request retried after a broken
// forward or a leader change is answered from memory instead of being applied twice.
//
// Keys are non-empty paths of printable characters without empty, "." or ".."
// segments, at most 1 KiB; values are any bytes up to 1 MiB. `list DIR` names the
// entries directly below DIR. The store is deterministic: its snapshot is the same bytes
// on every member that applied the same entries, so snapshot transfers can resume
// across leaders.
package kvstore
