package main

import (
	"context"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/conf"
	"lite-raft/internal/sshcmd"
	"lite-raft/sshrpc"
)

func remoteCommand() *cli.Command {
	return &cli.Command{
		Name:  "remote",
		Usage: "the client verbs, from a host outside the cluster, over ssh (./lite-raft-remote)",
		UsageText: "lite-raft-remote [--json] [--stale] [--timeout SECONDS] VERB ARGS\n\n" +
			"Same verbs and exit codes as lite-raft-client. Reads conf/remote_hosts (the members),\n" +
			"conf/remote_path (lite-raft's folder on them; default: the same as here) and\n" +
			"conf/remote_user (default: as ssh_config says). It asks the last host that answered\n" +
			"as leader first, then the others in random order.",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			dir, err := liteRaftDir(c)
			if err != nil {
				return cli.Exit(err, 1)
			}
			rc, err := conf.LoadRemote(dir)
			if err != nil {
				return cli.Exit(err, api.CodeUsage)
			}
			// through the multiplexer (its connections kept from one call to the next),
			// else straight to the members
			if conn := dialMux(dir, rc); conn != nil {
				defer conn.Close()
				return runClient(c, c.Args().Slice(), func(ctx context.Context) (client.Caller, func(), error) {
					return muxCaller{conn}, func() {}, nil
				}, client.RemoteHold)
			}
			d, err := sshrpc.NewDialer(sshrpc.DialerOptions{User: rc.User})
			if err != nil {
				return cli.Exit(err, 1)
			}
			rm := newRemoteCaller(dir, rc, d)
			defer rm.Close()
			return runClient(c, c.Args().Slice(), func(ctx context.Context) (client.Caller, func(), error) {
				return rm, func() {}, nil
			}, client.RemoteHold)
		},
	}
}

// newRemoteCaller is client's Remote over conf/remote_hosts, each host reached by ssh
// running lite-raft rpc in conf/remote_path, the leader remembered in temp/remote_leader.
func newRemoteCaller(dir string, rc conf.Remote, d *sshrpc.Dialer) *client.Remote {
	command := sshcmd.Command(rc.Path, "rpc")
	return client.NewRemote(client.RemoteConfig{
		Hosts:      rc.Hosts,
		LeaderFile: filepath.Join(dir, "temp", "remote_leader"),
		Open:       func(h string) client.HostCaller { return sshrpc.NewPeer(h, d, command, sshrpc.ConnOptions{}) },
	})
}
