// Command clusterbench is what `make bench` runs: lite-raft on a three-host harness
// cluster (network namespaces, a real sshd per host, fsync on), and, in the same run, a
// three-member etcd cluster from Debian's etcd-server on loopback with its data on the
// same disk, under the same workloads.
//
// Every workload runs against lite-raft and then at once against etcd, so the two see
// the same machine noise, and the report prints ratios: on a 2-core machine absolute
// figures move by a quarter from run to run, the ratio within one run much less. The
// load generators are lite-raft's own `lite-raft bench` (on a fourth host that is not a
// member, over ssh to the leader) and bench/etcdload (over TCP to etcd's leader), which
// implement the same workload definitions: N clients, one request at a time each, on
// keys bench/k0..k999, 16-byte values.
//
// Besides throughput and latency it measures the write availability gap after kill -9
// of the leader (election timeout 1 s on both sides, the same definition on both: from
// the kill to the end of the first write that started after the first write that failed)
// and the wall time of one `./lite-raft-client set` process, as a script would see it.
//
// bench/etcdload is a module of its own so that lite-raft does not depend on etcd's
// client; clusterbench runs it as a program.
package main
