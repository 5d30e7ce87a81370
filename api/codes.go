package api

import "fmt"

// Result codes: the exit codes of the original (SPEC.md), which answers carry and the
// command line exits with. The state machine's results (5-9, 13) are among them.
const (
	CodeOK           = 0
	CodeFailed       = 1 // includes "leader is stale. try again."
	CodeTimeout      = 2 // the outcome is unknown: the write may or may not have been applied
	CodeAppendFailed = 3
	CodeNotLeader    = 4
	CodeAlreadyHolds = 5 // if ... set Y: the condition held but KEY already holds Y
	CodeCondFalse    = 6 // if ...: the condition is false
	CodeNoKey        = 7 // if ...: KEY does not exist
	CodeNoDir        = 8 // list DIR: no such folder
	CodeNotFound     = 9 // get KEY: no such key (exists KEY: absent)
	CodeUsage        = 10
	CodeNoLeader     = 11
	CodeNoServer     = 12
	CodeExists       = 13 // create: KEY already exists
	// CodeUpgrade: a member does not understand this kind of command or request yet (it
	// runs an older build): nothing was appended, upgrade it first
	CodeUpgrade = 14
	// lock: --wait ran out before the lock was ours (our place was given up), and the
	// lock was lost (our lease ran out: COMMAND, if started, was stopped)
	CodeLockTimeout = 15
	CodeLockLost    = 16
	// CodeCompacted: watch --from N: the changes after N are no longer kept
	CodeCompacted = 17
	// CodeFenced: a write with --fence NAME=GEN was refused, as NAME is no longer held at
	// generation GEN (a later holder has it, or its lease is gone): nothing was written
	CodeFenced = 18
	// CodeDenied: the ssh key this came through may not run the operation
	// (ssh-command --allow); nothing was done
	CodeDenied = 19
)

// CodeMeanings says what each exit code tells a script, in code order: the man pages
// print it, and a test holds the README's table to it.
var CodeMeanings = []struct {
	Code    int
	Meaning string
}{
	{CodeOK, "done"},
	{CodeFailed, "failed; for get/list: leader is stale. try again. (the leader could not confirm its leadership in time)"},
	{CodeTimeout, "the write may or may not have been applied: its bytes reached a transport toward a leader, or it was proposed, and no answer came (at the deadline, or because a connection broke)"},
	{CodeAppendFailed, "the append failed"},
	{CodeNotLeader, "not the leader"},
	{CodeAlreadyHolds, "if: the condition held but KEY already holds the new value (nothing to do)"},
	{CodeCondFalse, "if, txn: the condition (for txn: one of them) is false; nothing was written"},
	{CodeNoKey, "if: KEY does not exist"},
	{CodeNoDir, "list, list --values: no such folder"},
	{CodeNotFound, "get, exists: no such key"},
	{CodeUsage, "wrong usage: a missing or malformed argument (nothing was sent or written)"},
	{CodeNoLeader, "leader is not available. (also a write that waited its whole time for a leader)"},
	{CodeNoServer, "no server running on HOST. cannot process request."},
	{CodeExists, "create: KEY already exists"},
	{CodeUpgrade, "a member runs an older lite-raft that does not understand this command (create, if ... unset, set --ttl, lock, --fence, txn, unset --prefix) or request (exists, list --values, get --prefix): upgrade it first; nothing was written"},
	{CodeLockTimeout, "lock --wait D: the lock was not ours within D (our place in the queue was given up)"},
	{CodeLockLost, "lock, set --keep-alive: the lease was lost (not renewed within its ttl); a running COMMAND was sent SIGTERM"},
	{CodeCompacted, "watch --from N: this member no longer keeps the changes after N"},
	{CodeFenced, "--fence NAME=GEN: lock NAME is no longer held at generation GEN; nothing was written"},
	{CodeDenied, "refused: the ssh key it came through is not allowed this operation (ssh-command --allow); nothing was done"},
}

// Meaning is what code tells a script (CodeMeanings), or "exit N" for a code not in the
// table (a lock's COMMAND's, say).
func Meaning(code int) string {
	for _, c := range CodeMeanings {
		if c.Code == code {
			return c.Meaning
		}
	}
	return fmt.Sprintf("exit %d", code)
}

// ProposalFailed tells whether a write answered with code failed to be applied, or may
// not have been: the cluster could not take it (no leader, the leader lost, the append
// failed, no answer in time, no server), as opposed to a refusal by the state machine's
// rules (a false condition, a fence, a key that exists), which is the write's result,
// or a request that was malformed or needs an upgrade, which no retry mends.
func ProposalFailed(code int) bool {
	switch code {
	case CodeFailed, CodeTimeout, CodeAppendFailed, CodeNotLeader, CodeNoLeader, CodeNoServer:
		return true
	}
	return false
}
