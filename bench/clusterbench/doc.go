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
// The batch workload (--only batch, `make bench-batch`; issue 31) sets keys from a script's
// point of view: a loop of --batch-loop `./lite-raft-client set` processes on the leader's
// host against one `./lite-raft-client batch` fed --batch-n sets (--batch-window in
// flight), also from a follower; on etcd, the same loop of `etcdctl put` and the same keys
// from etcdload with --batch-window Puts in flight on one connection. It prints sets/s side
// by side with ratios, and judges issue 31's target (batch.go).
//
// The scale workload (--only scale, `make bench-scale`; the last one of `make bench`)
// measures both systems holding --scale-keys keys of 1 KB (bench/s0 ..., 500,000 by
// default, about 500 MB), one step at a time on lite-raft and then on etcd:
//
//   - the baseline: 64 clients setting 1 KB values on 1000 keys of their own for
//     --scale-baseline, while the store is still (nearly) empty;
//   - the fill: every key written once by --fill-clients clients (lite-raft bench --fill,
//     etcdload --fill), with progress every 2 s;
//   - the load: 64 clients setting random keys among them for --scale-duration; then the
//     VmRSS and VmHWM of every server process (/proc/PID/status) and the leader's data
//     sizes (lite-raft's snapshot and log, etcd's database);
//   - catch-up: under the same load, a follower is stopped (lite-raft stop, SIGTERM for
//     etcd) for --scale-down and started again; the time from the start until it lags
//     the leader by fewer than 1000 entries (lite-raft: the leader's status, match and
//     lag; etcd: its raft index against the leader's), bounded by --scale-wait;
//   - a new member: lite-raft's `lite-raft-client add-member` of a fifth harness host
//     from the leader (it returns once the host votes); etcd's member add --learner, the
//     member started with the cluster, and member promote retried until etcd accepts.
//
// A step that fails is reported with its message and the next one runs. The report
// prints the figures side by side with ratios, and judges issue 14's targets.
//
// bench/etcdload is a module of its own so that lite-raft does not depend on etcd's
// client; clusterbench runs it as a program.
package main
