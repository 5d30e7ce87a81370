// Package guard runs the COMMAND of `lite-raft-client lock NAME -- COMMAND` under a
// guard process that stops it when the lock can no longer be ours (issue 24). COMMAND as
// a plain child of the lock process ran on beside the next holder if the lock process
// was killed (kill -9) or frozen (SIGSTOP), and a signal reached only COMMAND itself, not
// the `work | tee log` it started.
//
// The guard is the lite-raft binary again (the hidden verb `lite-raft lock-guard`,
// which calls Serve), a process and not a goroutine, so that it outlives the lock
// process. Start runs it with two pipes: a control pipe only the lock process writes
// (Extend, Signal, Stop) and a status pipe back (COMMAND started, COMMAND's exit). The
// guard runs COMMAND as the leader of a process group of its own, and gives that group
// the terminal if the lock process had it. It keeps a kill deadline, a Reading of a clock
// all processes share (CLOCK_BOOTTIME on Linux, which counts a suspend), and stops the
// whole group, SIGTERM then SIGKILL:
//
//   - at the deadline: SIGTERM Grace before it, SIGKILL at it, whatever COMMAND does
//     with SIGTERM. The lock process moves the deadline (Extend) after each renewal the
//     leader confirmed; frozen, it sends none, and the guard kills on time;
//   - when the control pipe reaches its end (the lock process is gone, kill -9
//     included): SIGTERM at once, SIGKILL Grace later but never after the deadline;
//   - on Stop (the lock is lost): the same;
//   - when COMMAND itself ends: what it left running in its group gets the same, since
//     the lock is released as soon as the guard exits.
//
// The guard exits with COMMAND's exit code (128+N if signal N ended it) once the group
// is gone. The group's leader is reaped last, so that its pid, the group's id, cannot be
// reused under the guard's signals. The deadline itself is the parent's to compute:
// lockcore.KillDeadline is the rule (the lease's ttl from the first send of the last confirmed
// renewal, less lockcore.Margin for the two clocks' drift and scheduling), Valid whether a
// COMMAND may still start. The guard takes any deadline it is sent, earlier or later:
// the lock process alone knows what the leader confirmed.
//
// On Linux the guard is a child subreaper: a descendant that leaves COMMAND's group
// (setsid, setpgid) becomes the guard's child once its parent dies, and is stopped and
// reaped with the rest; the guard exits only when none is left. Without a subreaper
// (other systems) such a descendant escapes, and so does anything COMMAND left in its
// group when it ended by itself: there the guard learns the leader ended only by reaping
// it, and after that the group's id is no longer safe to signal. There, too, a stopped
// COMMAND is reaped only after the SIGKILL, Grace after the SIGTERM.
//
// What no guard can do is act while the whole host is frozen or suspended, or cut off
// and still running: the guard kills on this host's clock. That is what fencing is for:
// COMMAND gets LITE_RAFT_LOCK_GENERATION and what it changes must refuse an older one.
package guard
