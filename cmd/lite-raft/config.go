package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"lite-raft/conf"
)

// confNames are the files conf/ may hold; anything else is most likely a misspelt one,
// which would be silently ignored (and its default used).
var confNames = []string{"cluster_nodes", "election_timeout", "snapshot_period", "remote_dir",
	"remote_hosts", "remote_path", "remote_user", "log", "log_level"}

func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "check this host's conf/ (for ExecStartPre=)",
		Subcommands: []*cli.Command{{
			Name:  "check",
			Usage: "validate conf/: exit 0 if every file in it is known and valid, 1 with what is wrong",
			Description: "Reads conf/ as the agent and the remote verbs do: cluster_nodes, election_timeout,\n" +
				"snapshot_period, remote_dir, and, when remote_hosts is there, remote_hosts, remote_path and\n" +
				"remote_user. A file with any other name is an error (a misspelt setting would be ignored).\n" +
				"It changes nothing and asks no other host. For a package's control script: pkg check NAME.",
			Action: func(c *cli.Context) error {
				if c.NArg() != 0 {
					return usageError(c, "config check takes no argument")
				}
				dir, err := liteRaftDir(c)
				if err != nil {
					return cli.Exit(err, 1)
				}
				return configCheck(c, dir)
			},
		}},
	}
}

func configCheck(c *cli.Context, dir string) error {
	var problems []string
	entries, err := os.ReadDir(filepath.Join(dir, "conf"))
	if err != nil && !os.IsNotExist(err) {
		return cli.Exit(fmt.Sprintf("conf/: %v", err), 1)
	}
	for _, e := range entries {
		// the source tree's conf/ is also the Go package that reads it, and the
		// directory is copied as it is: its .go files are not settings
		if name := e.Name(); !slices.Contains(confNames, name) && !strings.HasPrefix(name, ".") && !strings.HasSuffix(name, ".go") {
			problems = append(problems, fmt.Sprintf("%s: not a lite-raft setting (known: %s)", conf.Path(dir, name), strings.Join(confNames, ", ")))
		}
	}
	cfg, err := conf.Load(dir)
	if err != nil {
		problems = append(problems, err.Error())
	}
	var remote *conf.Remote
	if _, err := os.Stat(conf.Path(dir, "remote_hosts")); err == nil {
		r, err := conf.LoadRemote(dir)
		if err != nil {
			problems = append(problems, err.Error())
		} else {
			remote = &r
		}
	}
	if len(problems) > 0 {
		return cli.Exit("conf/ has problems:\n  "+strings.Join(problems, "\n  "), 1)
	}
	w := c.App.Writer
	nodes := "this host alone (no cluster_nodes)"
	if len(cfg.ClusterNodes) > 0 {
		nodes = strings.Join(cfg.ClusterNodes, " ")
	}
	fmt.Fprintf(w, "conf/ is valid: cluster_nodes %s, election_timeout %v, snapshot_period %d, log %s, log_level %s\n", nodes, cfg.ElectionTimeout, cfg.SnapshotPeriod,
		strings.TrimSpace(cfg.Log.Kind+" "+cfg.Log.Addr), cfg.LogLevel)
	if remote != nil {
		fmt.Fprintf(w, "remote: hosts %s, path %s, user %s\n", strings.Join(remote.Hosts, " "), remote.Path, orDash(remote.User))
	}
	return nil
}
