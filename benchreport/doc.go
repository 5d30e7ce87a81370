// Package benchreport is what lite-raft's load generator (`lite-raft bench`) and etcd's
// (bench/etcdload) must do alike for `make bench` to compare their figures: the JSON
// summary both print, nearest-rank percentiles, the values written, the progress line,
// the fill of the scale workload (Fill: every key once, its summary and progress lines)
// and the handling of Ctrl-C.
//
// The two generators cannot be one program: etcdload is a module of its own so that
// lite-raft does not depend on etcd's client. It imports this package (through a replace
// directive), so a change to how latency is summarised reaches both sides at once, and a
// ratio never compares two definitions.
package benchreport
