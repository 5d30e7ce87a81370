package api

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
)
