package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
	"lite-raft/sshrpc"
	"lite-raft/statefile"
)

func debugCommand() *cli.Command {
	return &cli.Command{
		Name:  "debug",
		Usage: "show this node's role, term, commit index and the last log entries",
		Description: "Reads the node's files without changing them (the agent may be running).\n" +
			"If an agent runs in the directory, role, leader, term, commit and applied are its\n" +
			"own answer (a stale status over temp/agent.sock): the commit index on disk\n" +
			"(state/commit) is only a hint, written at most ten times a second.\n" +
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

// askAgent asks the agent running in dir, if one answers on temp/agent.sock, for its own
// view: a stale status, answered from its state without asking the leader.
func askAgent(dir string) (api.Status, error) {
	var st api.Status
	conn, err := dialAgent(dir, sshrpc.ConnOptions{})
	if err != nil {
		return st, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := client.New(conn).Do(ctx, api.Request{Op: api.OpStatus, Stale: true})
	if err != nil {
		return st, err
	}
	if resp.Code != api.CodeOK {
		return st, fmt.Errorf("status: %s (code %d)", resp.Msg, resp.Code)
	}
	if err := json.Unmarshal(resp.JSON, &st); err != nil {
		return st, fmt.Errorf("status: %w", err)
	}
	return st, nil
}

// nodeView is what debug says of the node's role and progress, and where each came from.
type nodeView struct {
	role, leader, term, commit string
	applied                    string // "" if unknown
	note                       string // "" or a caveat on where the values came from
}

// viewNode prefers the running agent's answer; the files only hint. state/commit is the
// commit index the agent last wrote for its next start: at most ten times a second, and
// only min(commit, applied), so it trails a busy agent. temp/ holds the files of scripts
// (role, leader, commit_index), which only a running agent keeps up to date.
func viewNode(dir string, st raftcore.State) nodeView {
	hint := st.Commit
	if as, err := askAgent(dir); err == nil {
		v := nodeView{role: as.Role + " (agent)", leader: orDash(as.Leader),
			term:    strconv.FormatUint(as.Term, 10),
			commit:  strconv.FormatUint(as.Commit, 10) + " (agent)",
			applied: strconv.FormatUint(as.Applied, 10) + " (agent)"}
		if as.Term != st.HardState.Term {
			v.term += fmt.Sprintf(" (agent); state/current %d", st.HardState.Term)
		}
		if as.Commit != hint {
			v.commit += fmt.Sprintf("; state/commit hint %d", hint)
		}
		return v
	} else if ok, pid := running(dir); ok {
		// an agent holds the lock but does not answer (starting, stopping or stuck): the
		// files of temp/ are its last word
		v := nodeView{role: readStatusFile(dir, "server_role"), leader: orDash(readStatusFile(dir, "current_leader")),
			term: strconv.FormatUint(st.HardState.Term, 10),
			note: fmt.Sprintf("the agent (pid %d) does not answer (%v): role, leader and commit are from temp/ and state/, which trail it", pid, err)}
		if v.role == "" {
			v.role = "unknown"
		}
		v.role += " (temp/server_role)"
		if ci := readStatusFile(dir, "commit_index"); ci != "" {
			v.commit = ci + " (temp/commit_index)"
			if ci != strconv.FormatUint(hint, 10) {
				v.commit += fmt.Sprintf("; state/commit hint %d", hint)
			}
		} else {
			v.commit = fmt.Sprintf("%d (state/commit: the last hint written)", hint)
		}
		return v
	}
	v := nodeView{role: "not running", leader: "-", term: strconv.FormatUint(st.HardState.Term, 10),
		commit: fmt.Sprintf("%d (state/commit: the last hint written; no agent runs here)", hint)}
	if readStatusFile(dir, "server_role") != "" || readStatusFile(dir, "commit_index") != "" {
		v.note = "temp/server_role, current_leader and commit_index are left by an agent that did not stop cleanly: ignored"
	}
	return v
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
		v := viewNode(dir, st)
		sm := st.Snapshot.Meta
		fmt.Fprintf(w, "directory:  %s\n", dir)
		fmt.Fprintf(w, "role:       %s\n", v.role)
		fmt.Fprintf(w, "leader:     %s\n", v.leader)
		fmt.Fprintf(w, "term:       %s\n", v.term)
		fmt.Fprintf(w, "vote:       %s\n", orDash(string(st.HardState.Vote)))
		fmt.Fprintf(w, "commit:     %s\n", v.commit)
		if v.applied != "" {
			fmt.Fprintf(w, "applied:    %s\n", v.applied)
		}
		fmt.Fprintf(w, "snapshot:   index %d term %d (%d bytes)\n", sm.Index, sm.Term, st.Snapshot.Size)
		fmt.Fprintf(w, "members:    %s\n", raftcore.EncodeMembership(sm.Members))
		if lg.LastIndex() == 0 {
			fmt.Fprintf(w, "log:        empty\n")
		} else {
			fmt.Fprintf(w, "log:        %d..%d\n", lg.FirstIndex(), lg.LastIndex())
		}
		if lg.TornBytes > 0 {
			fmt.Fprintf(w, "note:       %d bytes of a torn write at the log's tail (cut at the next start)\n", lg.TornBytes)
		}
		if v.note != "" {
			fmt.Fprintf(w, "note:       %s\n", v.note)
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
		ents, err := lg.Entries(lo, min(to, lo+step-1)+1, 0)
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
