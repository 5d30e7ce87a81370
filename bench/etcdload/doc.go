// Command etcdload is a load generator for an etcd v3 cluster. It exists to compare
// lite-raft with etcd on the same machine: it runs the same workload as
// `lite-raft bench` and prints the same summary, so that the two JSON objects can be
// put side by side.
//
// It is a separate Go module (lite-raft/bench/etcdload, with its own go.mod) so that
// lite-raft itself never depends on etcd: the etcd client brings in gRPC, protobuf
// and zap, none of which lite-raft needs. The nested go.mod keeps this directory out
// of the main module, so `go build ./...` at the repository root neither builds it nor
// needs its dependencies. The dependency goes the other way: it imports lite-raft's
// benchreport (through a replace directive) for the summary, the percentiles, the values
// and the progress line, so both sides of a ratio are measured by the same code.
//
// # Workload
//
// N clients (goroutines) each send one request at a time until --duration is over.
// They share --conns clientv3.Client instances (client i uses conns[i%conns]). Keys are
// bench/k0 ... bench/k<keys-1>, each request picks one uniformly at random. When the
// operation is get or cas, every key is first written once (not timed).
//
//   - set: Put(key, value).
//   - get: Get(key), linearizable (etcd's default; no WithSerializable).
//   - cas: Txn If(Value(key) != "x") Then(Put(key, value)), the same condition as
//     lite-raft's "if KEY != x set V"; no value is ever "x", so it always succeeds
//     once the key exists.
//
// Values are --value-size bytes of 'v' with a per-client counter (client number +
// k*clients) written in hex into the last up to 16 bytes, so no two writes of a run
// carry the same value (benchreport.Values). Every request has its own --timeout
// context. Latencies count every request, failed ones included; percentiles are
// nearest-rank (benchreport.Stats).
//
// # Other modes
//
// --leader prints the endpoint (as given) of the current leader.
//
// --failover-probe writes bench/probe in a loop and measures, once the line "go"
// arrives on stdin (the caller is about to kill the leader), how long writes were
// unavailable as a client sees it; see probe.go for the exact definition.
//
// --fill puts every key of --key-prefix0 ... once with --clients clients, printing a
// progress line every 2 s and a summary (benchreport.Fill, as `lite-raft bench --fill`).
//
// --status, --wait-caught-up, --add-learner and --promote are what clusterbench's scale
// workload needs of etcdctl (endpoint status, member add --learner, member promote),
// with the polling done in one process: --wait-caught-up returns once a member's raft
// index is within --max-lag of the leader's, --promote retries until etcd accepts (it
// refuses while the learner lags); both print JSON and exit 1 at --timeout.
package main
