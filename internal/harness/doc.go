// Package harness runs simulated lite-raft hosts on one Linux machine for end-to-end tests.
//
// A Cluster is N hosts named host1..hostN. Every host is
//
//   - a network namespace (lrh-K-hostI) with one interface, eth0, holding 10.213.K.I/24 and
//     plugged into a bridge that lives in a namespace of its own (lrh-K-sw). There is no
//     default route anywhere and IPv6 is off: a host reaches the other hosts of its cluster,
//     its own loopback and the test process, nothing else;
//   - a UTS namespace with host name hostI;
//   - a private mount namespace in which the host's own directory is mounted at RemoteDir
//     (/opt/lite-raft), its own home directory over root's (so ~/.ssh is the host's own), its
//     own /etc/ssh, /etc/hosts (every host of the cluster, name → address), /etc/hostname and
//     /tmp, and a fresh tmpfs on /run;
//   - a real OpenSSH sshd (Debian's /usr/sbin/sshd) listening on 10.213.K.I:22 with a host key
//     made by the harness.
//
// The test process reaches the hosts over one veth pair between the root namespace and the
// bridge: its root-side end, lrh-K, has 10.213.K.254/24 (Cluster.Gateway). No default route,
// forwarding setting or firewall rule of the root namespace is changed. Hosts answer the test
// process but cannot open connections to it: a rule in each host's namespace (chain
// LRH-GUARD) drops new connections to the gateway address, so nothing listening in the root
// namespace is reachable from a host.
//
// # Keys and ssh configuration
//
// One ed25519 key pair (Cluster.KeyFile) is authorized for root on every host and is also
// every host's own ~/.ssh/id_ed25519, so hosts log into each other as root without prompts,
// the way lite-raft is deployed. Each host's ~/.ssh/config says, for Host *:
// StrictHostKeyChecking accept-new, UserKnownHostsFile ~/.ssh/known_hosts, BatchMode yes,
// ConnectTimeout 5. Each host's ~/.ssh/known_hosts lists every host of the cluster
// ("hostI,10.213.K.I ssh-ed25519 ..."), or is empty when Options.NoKnownHosts is set, so
// tests can watch accept-new record keys. AddHost appends the new host's key to the other
// hosts' files; RegenerateHostKey does not touch them (that is the point of that call);
// ResetKnownHosts rewrites them all.
//
// sshd runs with: PermitRootLogin prohibit-password, public keys only (no passwords, no
// keyboard-interactive, UsePAM no), StrictModes yes, no AcceptEnv, MaxStartups 100:30:200,
// MaxSessions 100, LogLevel VERBOSE, the sftp subsystem. Its log (stderr, -e) goes to
// Host.LogFile; errors about a host quote the tail of that log, and when a test that used
// New has failed, the cleanup logs the tail of every host's sshd log.
//
// The test process logs in with the system ssh client and Cluster.SSHConfigFile (ssh -F),
// which has one block per host ("Host hostI 10.213.K.I") with HostName, User root,
// IdentityFile, IdentitiesOnly, UserKnownHostsFile Cluster.KnownHostsFile (always complete and
// kept current, also across RegenerateHostKey), StrictHostKeyChecking yes, BatchMode yes and
// ConnectTimeout 5. Go code can use the same files (for example with
// golang.org/x/crypto/ssh and knownhosts).
//
// # Running things on a host
//
//   - Host.Run runs a command line as root over ssh from the test process, the way a
//     sysadmin would (`ssh hostI 'cmd'`: sshd runs it with root's login shell, bash -c, and
//     sshd's default PATH). Output of background processes must be redirected, or ssh waits
//     for them like it always does.
//   - Host.RunFrom runs `ssh hostJ 'cmd'` inside another host, with that host's ~/.ssh: proof
//     that hosts reach each other by name.
//   - Host.Exec runs a program directly inside the host's namespaces (nsenter), not through
//     ssh, with a small fixed environment (PATH, HOME=/root, USER, LOGNAME) and working
//     directory /. Its output is collected through files, so a process it leaves running in
//     the background does not hold it up.
//   - SSHCommand and ExecCommand return the prepared *exec.Cmd for streaming, stdin or
//     long-running processes.
//
// Run, RunFrom and Exec return the command's stdout, stderr and exit status; err is set only
// when the command could not be run or did not finish within Options.Timeout (default 60s).
// A command killed by a signal reports exit 128+signal. ssh itself reports its own failures
// (refused connection, timeout, changed host key) as exit 255 with the reason on stderr.
//
// # Faults
//
//   - Host.Signal sends a signal (SIGKILL, SIGSTOP, SIGCONT, ...) to the host's processes whose
//     command line (arguments joined by spaces) matches a regular expression, like pkill -f.
//   - Host.PowerOff takes the host's link down first (so peers see silence, not a FIN or RST,
//     as with a real power cut) and then kills every process of the host with SIGKILL, sshd
//     included. The host's files stay. Host.PowerOn brings the link up, builds the
//     host's mount and UTS namespaces again and starts sshd.
//   - Host.StopSSHD stops only the listening sshd, as `systemctl stop ssh` does on Debian:
//     sessions already open keep running, new connections are refused. StartSSHD starts it.
//   - Host.RegenerateHostKey gives the host a new host key and restarts its sshd; the other
//     hosts' known_hosts still hold the old key, so their ssh refuses the host.
//   - Cluster.Partition(groups...) drops all traffic between hosts of different groups, both
//     ways (iptables DROP on INPUT in each affected host's namespace, by source address), so
//     connection attempts time out and established TCP connections stop delivering. Hosts in
//     no group are unaffected, and the test process always reaches every host. Cuts add up
//     (Isolate(a) then Isolate(b) isolates both) until Heal removes them all. The rules live
//     in a chain of their own, LRH-PARTITION, so rules a test adds itself are left alone.
//
// # Slots and cleanup
//
// A cluster owns a slot K in 1..250, which gives it the subnet 10.213.K.0/24 and the names
// lrh-K-sw, lrh-K-hostI and lrh-K. A slot is owned by holding an flock on
// /run/lite-raft-harness/slot-K.lock for the life of the cluster, so clusters in one process
// or in test processes running in parallel never collide. The lock file records the owner's
// pid and temporary directory. The kernel drops the lock when the owner exits however it
// exits, so a slot whose lock can be taken has no live owner: whatever carries its names is a
// leftover. Start cleans the slot it takes and every other unowned slot it finds (namespaces
// named lrh-K-*, the link lrh-K, processes inside those namespaces, the recorded temporary
// directory); it touches nothing whose name does not carry a slot it holds the lock of. A
// slot whose 10.213.K.0/24 is already used by an address in the root namespace is skipped.
//
// Close (idempotent; New registers it with t.Cleanup, which also runs after t.Fatal and after
// a panic in the test) kills every process of every host with SIGKILL, deletes the hosts' and
// the bridge's namespaces and the root-side veth, removes the temporary directory and
// releases the slot. Mounts need no unmounting: they exist only in the hosts' mount
// namespaces, which die with their last process. The host's init process and sshd are
// started with a parent-death signal (SIGKILL), so even a test binary that is killed or times
// out leaves at most session processes and namespaces behind, which the next Start removes.
// Lock files stay in /run/lite-raft-harness (empty, on tmpfs); they must never be deleted,
// or two owners could lock different files of the same name.
//
// # Prerequisites
//
// Linux, root, util-linux (nsenter, unshare, mount), iproute2 (ip), iptables
// (iptables-restore), OpenSSH client and server (ssh, ssh-keygen, /usr/sbin/sshd and its
// privilege separation user), and the right to create namespaces. New calls t.Skip naming
// what is missing, or t.Fatal when the environment variable CI is "true" or "1". Start
// returns a *PrerequisiteError instead. The mount point RemoteDir is created in the real
// file system (an empty directory) if it does not exist and is left there; apart from the
// harness's own namespaces and link (and the IPv6 switch of that link), nothing outside its
// temporary directory, /run/lite-raft-harness and /run/netns is written.
//
// # Limits
//
// Up to 250 clusters at once on a machine, up to 253 hosts per cluster. Cluster.Hosts and
// Host.HostKeyPub change under AddHost and RegenerateHostKey; read them from the goroutine
// that makes those calls. Everything else is safe for concurrent use. The hosts share the
// machine's kernel, pid space, /proc, /sys, users and every file outside the mounts listed
// above (including /usr, /etc apart from the files listed and /var). The parent-death
// signal fires when the OS thread that started the process exits, which the Go runtime only
// does for a goroutine that exits while locked with runtime.LockOSThread.
package harness
