// Package conf reads and checks the files in the lite-raft directory's conf/ folder,
// one value per file as in the original:
//
//   - cluster_nodes: space-separated host names of the members. It seeds the membership
//     at first boot; afterwards the agent rewrites it whenever a new membership commits,
//     so `cat conf/cluster_nodes` always shows the members. Missing means "this host
//     alone", a cluster that needs no ssh at all.
//   - election_timeout: seconds (decimals allowed, e.g. 0.5) a follower waits for a
//     leader before it stands for election; the actual wait is random in [T, 2T).
//   - snapshot_period: applied entries between two snapshots (not a time).
//   - remote_dir: optional; where lite-raft lives on the other hosts, if not at the same
//     path as here.
//
// The folder also holds these files' defaults, so a fresh copy works as it is.
package conf
