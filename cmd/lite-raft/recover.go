package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/conf"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
	"lite-raft/statefile"
)

const recoverHelp = `Use this only when a quorum of the cluster is lost for good (hosts destroyed), so the
survivors can never elect a leader again. It rewrites THIS host's membership offline:

  1. stop lite-raft on every survivor;
  2. on the survivor with the most recent data (compare "log: A..B" and "term" of
     ./lite-raft debug), run: ./lite-raft recover --members "this-host other-survivor ..."
  3. on each other survivor named there: ./lite-raft first-boot --join (it starts empty);
  4. start lite-raft on the recovered host: ./lite-raft start. It becomes leader and sends
     its state to the others.

DATA-LOSS RISK: this host's log becomes the truth. Writes that were committed on the lost
hosts but had not reached this host are lost. Writes this host had received but the old
cluster never committed are kept, as if they had succeeded. Clients that got exit code 2
(unknown outcome) must check their writes. Every other survivor's data is replaced.`

func recoverCommand() *cli.Command {
	return &cli.Command{
		Name:        "recover",
		Usage:       "after a permanent loss of quorum, make this host's log the truth with new members (read --help)",
		Description: recoverHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "members", Usage: "the new members, space-separated; must include this host"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 || c.String("members") == "" {
				return usageError(c, "recover needs --members \"HOST ...\" and nothing else")
			}
			nodes, err := conf.ParseClusterNodes(c.String("members"))
			if err != nil {
				return usageError(c, "--members: "+err.Error())
			}
			me := thisHost()
			if !slices.Contains(nodes, me) {
				return usageError(c, fmt.Sprintf("--members must include this host (%s)", me))
			}
			dir, err := liteRaftDir(c)
			if err != nil {
				return cli.Exit(err, 1)
			}
			if ok, pid := running(dir); ok {
				return cli.Exit(fmt.Sprintf("lite-raft is running on %s (pid %d): stop it first", me, pid), 1)
			}
			return recoverMembers(c, dir, nodes)
		},
	}
}

func recoverMembers(c *cli.Context, dir string, nodes []string) error {
	s, st, err := statefile.Open(dir, statefile.Options{})
	if err != nil {
		return cli.Exit(fmt.Sprintf("recover: %v", err), 1)
	}
	defer s.Close()
	r, _, err := s.SnapshotData()
	if err != nil {
		return cli.Exit(fmt.Sprintf("recover: snapshot: %v", err), 1)
	}
	kv, err := kvstore.Restore(r)
	r.Close()
	if err != nil {
		return cli.Exit(fmt.Sprintf("recover: snapshot: %v", err), 1)
	}
	last, lastTerm := st.Snapshot.Meta.Index, st.Snapshot.Meta.Term
	end := st.First + uint64(len(st.Terms)) // one past the log's last entry
	const step = 1024                       // a piece at a time: the log may be large
	for lo := last + 1; lo < end; lo += step {
		ents, err := s.Entries(lo, min(end, lo+step), 0)
		if err != nil {
			return cli.Exit(fmt.Sprintf("recover: read the log: %v", err), 1)
		}
		for _, e := range ents {
			if e.Type == raftcore.EntryNormal && len(e.Data) > 0 {
				if cmd, err := kvstore.Decode(e.Data); err == nil {
					kv.Apply(e.Index, cmd)
				}
			}
			last, lastTerm = e.Index, e.Term
		}
	}
	// the members that will join get this state from here: it is dated by this host's
	// clock alone, and every lock and package generation moves past the old cluster's
	if err := kv.Rebase(uint64(time.Now().UnixNano())); err != nil {
		return cli.Exit(fmt.Sprintf("recover: %v (nothing changed)", err), 1)
	}
	members := raftcore.Membership{}
	for _, n := range nodes {
		members.Voters = append(members.Voters, raftcore.NodeID(n))
	}
	meta := raftcore.SnapshotMeta{Index: last, Term: lastTerm, Members: members}
	if err := s.ReplaceWithSnapshot(meta, kv.WriteSnapshot); err != nil {
		return cli.Exit(fmt.Sprintf("recover: %v", err), 1)
	}
	if err := s.SaveHardState(raftcore.HardState{Term: max(st.HardState.Term, lastTerm)}); err != nil {
		return cli.Exit(fmt.Sprintf("recover: %v", err), 1)
	}
	if err := statefile.WriteFileAtomic(conf.Path(dir, "cluster_nodes"), conf.FormatClusterNodes(nodes), 0o644); err != nil {
		return cli.Exit(fmt.Sprintf("recover: %v", err), 1)
	}
	fmt.Fprintf(c.App.Writer, "recovered: the log up to index %d (term %d, %d keys) is now a snapshot with members %s.\n",
		last, lastTerm, kv.Len(), strings.Join(nodes, " "))
	fmt.Fprintf(c.App.Writer, "next: run `./lite-raft first-boot --join` on each other member named, then `./lite-raft start` here.\n")
	return nil
}
