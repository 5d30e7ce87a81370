package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/client"
	"lite-raft/conf"
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
				return cli.Exit(err, client.CodeUsage)
			}
			d, err := sshrpc.NewDialer(sshrpc.DialerOptions{User: rc.User})
			if err != nil {
				return cli.Exit(err, 1)
			}
			rm := &remoteCaller{dir: dir, hosts: rc.Hosts, dialer: d,
				command: "exec " + shellQuote(filepath.Join(rc.Path, "lite-raft")) + " rpc", peers: map[string]*sshrpc.Peer{}}
			defer rm.close()
			return runClient(c, c.Args().Slice(), func(ctx context.Context) (client.Caller, func(), error) {
				return rm, func() {}, nil
			})
		},
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// remoteCaller sends a request to the cluster's members over ssh, one after another,
// until one answers with something other than "no leader" or "no server".
type remoteCaller struct {
	dir     string
	hosts   []string
	dialer  *sshrpc.Dialer
	command string
	peers   map[string]*sshrpc.Peer
}

func (r *remoteCaller) leaderFile() string { return filepath.Join(r.dir, "temp", "remote_leader") }

// order is the last leader first, then the others at random.
func (r *remoteCaller) order() []string {
	hosts := append([]string(nil), r.hosts...)
	rand.Shuffle(len(hosts), func(i, j int) { hosts[i], hosts[j] = hosts[j], hosts[i] })
	if b, err := os.ReadFile(r.leaderFile()); err == nil {
		last := strings.TrimSpace(string(b))
		for i, h := range hosts {
			if h == last {
				hosts[0], hosts[i] = hosts[i], hosts[0]
			}
		}
	}
	return hosts
}

func (r *remoteCaller) remember(leader string) {
	if leader == "" {
		return
	}
	os.MkdirAll(filepath.Dir(r.leaderFile()), 0o700)
	os.WriteFile(r.leaderFile(), []byte(leader+"\n"), 0o600)
}

func (r *remoteCaller) Call(ctx context.Context, typ uint8, payload []byte) (sshrpc.Frame, error) {
	var errs []error
	for _, h := range r.order() {
		p := r.peers[h]
		if p == nil {
			p = sshrpc.NewPeer(h, r.dialer, r.command, sshrpc.ConnOptions{})
			r.peers[h] = p
		}
		// leave time for the next host if this one hangs
		actx, cancel := context.WithTimeout(ctx, min(remaining(ctx), 5*time.Second))
		f, err := p.Call(actx, typ, payload)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		resp, derr := client.DecodeResponse(f.Payload)
		if derr == nil && (resp.Code == client.CodeNoLeader || resp.Code == client.CodeNoServer) {
			errs = append(errs, fmt.Errorf("%s: %s", h, resp.Msg))
			continue
		}
		if derr == nil {
			r.remember(resp.Leader)
		}
		return f, derr
	}
	if ctx.Err() != nil {
		return sshrpc.Frame{}, ctx.Err()
	}
	return sshrpc.Frame{}, &sshrpc.RemoteError{Msg: "leader is not available. (" + errors.Join(errs...).Error() + ")"}
}

func remaining(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return time.Minute
}

func (r *remoteCaller) close() {
	for _, p := range r.peers {
		p.Close()
	}
}
