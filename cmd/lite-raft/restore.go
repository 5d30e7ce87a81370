package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"lite-raft/conf"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
	"lite-raft/statefile"
)

const restoreHelp = `Seeds a NEW cluster, offline, with the data of a snapshot that
"lite-raft-client snapshot save FILE" made:

  1. lay out the lite-raft directory on every host of the new cluster as for a first boot
     (conf/election_timeout, conf/snapshot_period, ssh between them), and copy FILE there;
  2. on EACH of them, with lite-raft not running and before it ever started:
         ./lite-raft restore FILE --members "host1 host2 host3"
     with the same FILE and the same members everywhere;
  3. then on each: ./lite-raft start (not first-boot: that would wipe what restore wrote).

restore reads FILE through first: its header checksum, its data's length and CRC-32C, and
the key-value data itself, which must decode. Only then does it write this host's durable
state: the snapshot (FILE's index and term, with the members given), FILE's term with no
vote, an empty log, and conf/cluster_nodes. The members then elect a leader among
themselves as after any restart and serve the data as of FILE's index. That leader first
moves every lock and package generation past anything the old cluster could have issued
(to an epoch from its clock, so restoring one FILE twice does not repeat either); until
then lock, pkg takeovers and --fence writes answer 1, try again. Hosts added later
with add-member get it from the leader, as always. Every member must be restored: one that
first-boots instead starts an empty history of its own, which could elect a leader with
another such member before the restored ones are up.

It refuses to run while lite-raft runs here, and when this host already has state (the
folders state/, state-machine-log/, state-machine-snapshot/) unless --force, which wipes
it: restoring over a member of a live cluster would make it forget what it acknowledged.
Flags may come before or after FILE.`

func restoreCommand() *cli.Command {
	return &cli.Command{
		Name:        "restore",
		Usage:       "seed a new cluster with a snapshot saved by lite-raft-client snapshot save (offline, on every member; read --help)",
		ArgsUsage:   "FILE",
		Description: restoreHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "members", Usage: "the new cluster's members, space-separated; must include this host"},
			&cli.BoolFlag{Name: "force", Usage: "wipe this host's state first, if it has any"},
		},
		Action: func(c *cli.Context) error {
			file, members, force, err := restoreArgs(c.Args().Slice(), c.String("members"), c.Bool("force"))
			if err != nil {
				return usageError(c, err.Error())
			}
			nodes, err := conf.ParseClusterNodes(members)
			if err == nil && len(nodes) == 0 {
				err = errors.New("no members")
			}
			if err != nil {
				return usageError(c, "--members: "+err.Error())
			}
			me := thisHost()
			if !slices.Contains(nodes, me) {
				return usageError(c, fmt.Sprintf("--members must include this host (%s): restore runs on each new member", me))
			}
			dir, err := liteRaftDir(c)
			if err != nil {
				return cli.Exit(err, 1)
			}
			if ok, pid := running(dir); ok {
				return cli.Exit(fmt.Sprintf("restore: lite-raft is running on %s (pid %d): restore seeds a new cluster, before its first start", me, pid), 1)
			}
			return restoreSnapshot(c, dir, file, nodes, force)
		},
	}
}

// restoreArgs takes FILE and the flags that follow it (urfave/cli stops parsing flags at
// the first argument, and the help shows them after FILE).
func restoreArgs(args []string, members string, force bool) (string, string, bool, error) {
	var files []string
	for len(args) > 0 {
		a := args[0]
		args = args[1:]
		switch {
		case a == "--members" || a == "-members":
			if len(args) == 0 {
				return "", "", false, errors.New("--members needs the members")
			}
			members, args = args[0], args[1:]
		case strings.HasPrefix(a, "--members="):
			members = strings.TrimPrefix(a, "--members=")
		case a == "--force" || a == "-force":
			force = true
		case a == "--":
			files = append(files, args...)
			args = nil
		case strings.HasPrefix(a, "-"):
			return "", "", false, fmt.Errorf("unknown option %q", a)
		default:
			files = append(files, a)
		}
	}
	if len(files) != 1 {
		return "", "", false, errors.New(`restore needs one FILE and --members "HOST ..."`)
	}
	if members == "" {
		return "", "", false, errors.New(`restore needs --members "HOST ..." (the new cluster's members)`)
	}
	return files[0], members, force, nil
}

func restoreSnapshot(c *cli.Context, dir, file string, nodes []string, force bool) error {
	fail := func(format string, args ...any) error {
		return cli.Exit("restore: "+fmt.Sprintf(format, args...), 1)
	}
	members := raftcore.Membership{}
	for _, n := range nodes {
		members.Voters = append(members.Voters, raftcore.NodeID(n))
	}
	if err := members.Validate(); err != nil {
		return usageError(c, "--members: "+err.Error())
	}
	var existing []string
	for _, d := range []string{statefile.StateDir, statefile.LogDir, statefile.SnapshotDir} {
		if _, err := os.Stat(filepath.Join(dir, d)); err == nil {
			existing = append(existing, d+"/")
		} else if !errors.Is(err, os.ErrNotExist) {
			return fail("%v", err)
		}
	}
	if len(existing) > 0 && !force {
		return fail("%s already has state in %s (%s): restore seeds a new cluster and would replace it. "+
			"If this host's data is not needed (it is not a member of a live cluster), run it again with --force",
			thisHost(), dir, strings.Join(existing, ", "))
	}
	// FILE is read through before anything here changes: a damaged copy refuses at once
	f, err := statefile.OpenSnapshotFile(file)
	if err != nil {
		return fail("%s: %v", file, err)
	}
	defer f.Close()
	if err := f.Check(); err != nil {
		return fail("%s: %v (not restored; nothing changed here)", file, err)
	}
	// into memory (the agent loads it so when it starts): the state is written marked as
	// restored, so that the new cluster moves its lock and package generations past the
	// old cluster's before it issues any (kvstore.MarkRestored). Not with this host's
	// clock: every member is restored alike, and their states must be the same.
	kv, err := kvstore.Restore(f.Data())
	if err != nil {
		return fail("%s: its checksum matches but its data does not read back: %v (not restored; nothing changed here)", file, err)
	}
	kv.MarkRestored()
	keys := kv.Len()
	snap := f.Snapshot
	if err := os.MkdirAll(filepath.Dir(conf.Path(dir, "cluster_nodes")), 0o755); err != nil {
		return fail("%v", err)
	}
	if err := statefile.Bootstrap(dir, members); err != nil {
		return fail("%v", err)
	}
	s, _, err := statefile.Open(dir, statefile.Options{})
	if err != nil {
		return fail("%v", err)
	}
	defer s.Close()
	// the term first: a crash before the snapshot leaves an empty member, which the others
	// send their snapshot to; never a snapshot from a term the node has not reached
	if err := s.SaveHardState(raftcore.HardState{Term: snap.Meta.Term}); err != nil {
		return fail("%v", err)
	}
	meta := raftcore.SnapshotMeta{Index: snap.Meta.Index, Term: snap.Meta.Term, Members: members}
	if err := s.ReplaceWithSnapshot(meta, kv.WriteSnapshot); err != nil {
		return fail("%v", err)
	}
	if err := statefile.WriteFileAtomic(conf.Path(dir, "cluster_nodes"), conf.FormatClusterNodes(nodes), 0o644); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(c.App.Writer, "restored %s on %s: index %d (term %d), %d keys, %d bytes of data, crc32c %08x; members %s.\n",
		file, thisHost(), snap.Meta.Index, snap.Meta.Term, keys, snap.Size, snap.Checksum, strings.Join(nodes, " "))
	fmt.Fprintf(c.App.Writer, "next: the same restore on every other member named, then `./lite-raft start` on each.\n")
	return nil
}
