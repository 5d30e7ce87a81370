// Command lite-raft is the single binary of lite-raft: the node agent, the client verbs
// and the operator tools all hang off one urfave/cli command tree (main.go).
//
// It answers to four names, links made by `make` in place of the original's scripts
// (main.go's programs):
//
//   - lite-raft: the whole tree (first-boot, start, stop, status, client, remote, pkg, ...);
//   - lite-raft-client: `lite-raft client`, the client verbs against this host's agent;
//   - lite-raft-remote: `lite-raft remote`, the same verbs from a host outside the
//     cluster, over ssh to its members;
//   - pkg: `lite-raft pkg`, the packages run with failover.
//
// One file per command: server.go (first-boot, start, stop, agent), status.go,
// recover.go, restore.go, debug.go, rpc.go, bench.go, remote.go, sshcommand.go,
// pkg.go and pkgfence.go (pkg fence-stop and the fence over ssh); clientcmd.go is the
// client command, its options and plain verbs, and each client verb with a protocol of
// its own has its file (lock.go, lease.go, watch.go, snapshot.go, check.go);
// lockguard.go is the hidden verb the lock re-executes the binary as, to run COMMAND
// under a guard (package internal/guard). dir.go is the --dir flag they share. The wire types are package api's and the exit code table
// package client's: no exit code here is chosen by matching a message.
package main
