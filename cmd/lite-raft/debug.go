package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"lite-raft/kvstore"
	"lite-raft/raftcore"
	"lite-raft/statefile"
)

func debugCommand() *cli.Command {
	return &cli.Command{
		Name:  "debug",
		Usage: "show this node's role, term, commit index and the last log entries",
		Description: "Reads the node's files without changing them (the agent may be running).\n" +
			"With `debug log --from N --to M` it prints any range of the log.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "last", Value: 20, Usage: "how many of the last log entries to print"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError(c, "debug takes no arguments (did you mean `debug log`?)")
			}
			if c.Int("last") < 0 {
				return usageError(c, "--last must not be negative")
			}
			return runDebug(c, 0, 0, c.Int("last"))
		},
		Subcommands: []*cli.Command{{
			Name:  "log",
			Usage: "print log entries FROM..TO (inclusive)",
			Flags: []cli.Flag{
				&cli.Uint64Flag{Name: "from", Usage: "first index to print (default: the first stored)"},
				&cli.Uint64Flag{Name: "to", Usage: "last index to print (default: the last stored)"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() > 0 {
					return usageError(c, "debug log takes no arguments; use --from and --to")
				}
				if c.IsSet("from") && c.IsSet("to") && c.Uint64("from") > c.Uint64("to") {
					return usageError(c, "--from must not be greater than --to")
				}
				from, to := c.Uint64("from"), c.Uint64("to")
				if !c.IsSet("to") {
					to = ^uint64(0)
				}
				return runDebug(c, max(from, 1), to, -1)
			},
		}},
	}
}

// readStatusFile returns a one-line status file of temp/, or "" if absent.
func readStatusFile(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, "temp", name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func runDebug(c *cli.Context, from, to uint64, last int) error {
	dir, err := liteRaftDir(c)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	s, st, err := statefile.Open(dir, statefile.Options{ReadOnly: true})
	if err != nil {
		return cli.Exit(fmt.Sprintf("debug: %v", err), 1)
	}
	defer s.Close()
	w := c.App.Writer
	lg := s.Log()
	if last >= 0 {
		role := readStatusFile(dir, "server_role")
		if role == "" {
			role = "not running"
		}
		commit := readStatusFile(dir, "commit_index")
		if commit == "" {
			commit = strconv.FormatUint(st.Commit, 10) + " (stored)"
		}
		vote := string(st.HardState.Vote)
		if vote == "" {
			vote = "-"
		}
		leader := readStatusFile(dir, "current_leader")
		if leader == "" {
			leader = "-"
		}
		sm := st.Snapshot.Meta
		fmt.Fprintf(w, "directory:  %s\n", dir)
		fmt.Fprintf(w, "role:       %s\n", role)
		fmt.Fprintf(w, "leader:     %s\n", leader)
		fmt.Fprintf(w, "term:       %d\n", st.HardState.Term)
		fmt.Fprintf(w, "vote:       %s\n", vote)
		fmt.Fprintf(w, "commit:     %s\n", commit)
		fmt.Fprintf(w, "snapshot:   index %d term %d (%d bytes)\n", sm.Index, sm.Term, len(st.Snapshot.Data))
		fmt.Fprintf(w, "members:    %s\n", raftcore.EncodeMembership(sm.Members))
		if lg.LastIndex() == 0 {
			fmt.Fprintf(w, "log:        empty\n")
		} else {
			fmt.Fprintf(w, "log:        %d..%d\n", lg.FirstIndex(), lg.LastIndex())
		}
		if lg.TornBytes > 0 {
			fmt.Fprintf(w, "note:       %d bytes of a torn write at the log's tail (cut at the next start)\n", lg.TornBytes)
		}
		if lg.LastIndex() == 0 || last == 0 {
			return nil
		}
		from = max(lg.FirstIndex(), lg.LastIndex()-min(lg.LastIndex(), uint64(last))+1)
		to = lg.LastIndex()
		fmt.Fprintf(w, "last %d entries:\n", to-from+1)
	}
	if lg.LastIndex() == 0 {
		return cli.Exit("debug log: the log is empty", 1)
	}
	from = max(from, lg.FirstIndex())
	to = min(to, lg.LastIndex())
	if from > to {
		return cli.Exit(fmt.Sprintf("debug log: the log holds %d..%d", lg.FirstIndex(), lg.LastIndex()), 1)
	}
	const step = 1024 // read in pieces: a long range should not load the whole log at once
	for lo := from; lo <= to; lo += step {
		ents, err := lg.Entries(lo, min(to, lo+step-1)+1)
		if err != nil {
			return cli.Exit(fmt.Sprintf("debug log: %v", err), 1)
		}
		for _, e := range ents {
			printEntry(w, e)
		}
	}
	return nil
}

func printEntry(w io.Writer, e raftcore.Entry) {
	if e.Type == raftcore.EntryNormal {
		if len(e.Data) == 0 {
			fmt.Fprintf(w, "%8d  term %-4d %-10s (a new leader's empty entry)\n", e.Index, e.Term, e.Type)
			return
		}
		if cmd, err := kvstore.Decode(e.Data); err == nil {
			fmt.Fprintf(w, "%8d  term %-4d %-10s %s\n", e.Index, e.Term, e.Type, cmd)
			return
		}
	}
	data := e.Data
	const show = 120
	suffix := ""
	if len(data) > show {
		data = data[:show]
		suffix = fmt.Sprintf("... (%d bytes)", len(e.Data))
	}
	fmt.Fprintf(w, "%8d  term %-4d %-10s %s%s\n", e.Index, e.Term, e.Type, strconv.Quote(string(data)), suffix)
}
