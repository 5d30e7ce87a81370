// Package decide is what a package monitor decides, as pure functions of one read of the
// package's state in the store (a View), the monitor's settings (Rules) and its clock:
// whether a stand-by takes the package over and whom it must fence first (Standby),
// what an active owner does this pace (ActiveStep), when it must begin stopping the
// package by itself (Rules.SelfFenceAt), whether a fence result allows a start
// (AfterFence), and what a stop leaves behind (AfterStop). Actions and reasons are
// typed; nothing is decided by matching a message.
//
// The rules it keeps (issue 25):
//   - a failed stop never lets the package go: the host keeps it as stop-failed, and no
//     other host starts it until that host is fenced (fence-stop there finds it stopped,
//     or fence_command succeeds) or an operator confirms it stopped. No timing rule
//     covers a host whose stop failed;
//   - every start fences the previous owner unless it stopped cleanly, the adopt path
//     (this host already named owner) included: who held the package and how that ended
//     is recorded with every change of hands (packages/NAME/previous);
//   - an owner's self-fencing deadline comes from its clock alone and is looked at
//     before the store is asked anything, so a freeze, a suspend or a slow store never
//     delays the stop;
//   - a stand-by waits the longer of its own settings' wait and the one the owner
//     published, so settings changed while monitors run are safe.
//
// The monitor (package failover) is the driver: it reads the store, runs the scripts
// and the fencing, and writes what these decisions say.
package decide
