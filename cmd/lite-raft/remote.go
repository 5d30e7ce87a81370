package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

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
			d, err := sshrpc.NewDialer(sshrpc.DialerOptions{User: rc.User})
			if err != nil {
				return cli.Exit(err, 1)
			}
			rm := newRemoteCaller(dir, rc, d)
			defer rm.close()
			return runClient(c, c.Args().Slice(), func(ctx context.Context) (client.Caller, func(), error) {
				return rm, func() {}, nil
			}, remoteHold)
		},
	}
}

// remoteCaller sends a request to the cluster's members over ssh, one after another,
// until one gives an answer other than "no leader" or "no server". Every attempt keeps
// the request's client ID and sequence number, so a host that answers after another may
// have applied it answers for that same request (deduplicated), and its answer is
// authoritative. When no host gives one, Call returns a *client.Error: NotSent (11, or 1
// for a read past the deadline) if every attempt failed before its bytes left or was
// answered 11 or 12, MaybeApplied (2 for a write) as soon as one was handed over without
// an answer, e.g. a host that hung for its share of the time after the bytes were written.
type remoteCaller struct {
	dir   string
	hosts []string
	share time.Duration // the most one host may take
	open  func(host string) hostCaller
	peers map[string]hostCaller
	// failed are the hosts that gave no answer in this command: its later requests (a
	// lock's renewals, a watch's) try them last, after the ones not known to be down
	failed map[string]bool
}

// hostCaller is the stream to one host: an *sshrpc.Peer.
type hostCaller interface {
	client.Caller
	Close() error
}

// remoteShare is the most one host may take before the next is tried, and remoteHold
// the longest a host is asked to hold a request that waits for something: its answer
// has a second to come back within the share.
const (
	remoteShare = 5 * time.Second
	remoteHold  = remoteShare - time.Second
)

func newRemoteCaller(dir string, rc conf.Remote, d *sshrpc.Dialer) *remoteCaller {
	command := sshcmd.Command(rc.Path, "rpc")
	return &remoteCaller{dir: dir, hosts: rc.Hosts, share: remoteShare, peers: map[string]hostCaller{},
		open: func(h string) hostCaller { return sshrpc.NewPeer(h, d, command, sshrpc.ConnOptions{}) }}
}

func (r *remoteCaller) leaderFile() string { return filepath.Join(r.dir, "temp", "remote_leader") }

// order is the last leader first, then the others at random; the hosts that gave no
// answer in this command after them all.
func (r *remoteCaller) order() []string {
	hosts := append([]string(nil), r.hosts...)
	rand.Shuffle(len(hosts), func(i, j int) { hosts[i], hosts[j] = hosts[j], hosts[i] })
	if last := r.lastLeader(); last != "" {
		for i, h := range hosts {
			if h == last {
				hosts[0], hosts[i] = hosts[i], hosts[0]
			}
		}
	}
	slices.SortStableFunc(hosts, func(a, b string) int {
		switch {
		case r.failed[a] == r.failed[b]:
			return 0
		case r.failed[a]:
			return 1
		}
		return -1
	})
	return hosts
}

func (r *remoteCaller) lastLeader() string {
	b, err := os.ReadFile(r.leaderFile())
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// fail notes that host gave no answer; if it is the remembered leader, it is forgotten,
// so that the next command does not start with it either.
func (r *remoteCaller) fail(host string) {
	if r.failed == nil {
		r.failed = map[string]bool{}
	}
	r.failed[host] = true
	if r.lastLeader() == host {
		os.Remove(r.leaderFile())
	}
}

func (r *remoteCaller) remember(leader string) {
	if leader == "" {
		return
	}
	os.MkdirAll(filepath.Dir(r.leaderFile()), 0o700)
	os.WriteFile(r.leaderFile(), []byte(leader+"\n"), 0o600)
}

func (r *remoteCaller) Call(ctx context.Context, typ uint8, payload []byte) (sshrpc.Frame, error) {
	outcome := client.NotSent // no host tried: nothing sent
	var host string           // the host of the last attempt that may have been applied, else the last tried
	hung := false             // that attempt ran out of time (rather than its connection breaking)
	var errs []error
	for _, h := range r.order() {
		p := r.peers[h]
		if p == nil {
			p = r.open(h)
			r.peers[h] = p
		}
		if outcome == client.NotSent {
			host = h
		}
		// leave time for the next host if this one hangs
		actx, cancel := context.WithTimeout(ctx, min(remaining(ctx), r.share))
		f, err := p.Call(actx, typ, payload)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h, err))
			r.fail(h)
			if !errors.Is(err, api.ErrNotSent) { // a RemoteError too: it got the request
				outcome, host, hung = client.MaybeApplied, h, errors.Is(err, context.DeadlineExceeded)
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		resp, err := api.DecodeResponse(f.Payload)
		if err != nil { // it got the request, its answer is unreadable
			errs = append(errs, fmt.Errorf("%s: %w", h, err))
			outcome, host, hung = client.MaybeApplied, h, false
			continue
		}
		if resp.Code == api.CodeNoLeader || resp.Code == api.CodeNoServer {
			// nothing appended by that host
			errs = append(errs, fmt.Errorf("%s: %s", h, resp.Msg))
			continue
		}
		delete(r.failed, h)
		r.remember(resp.Leader)
		return f, nil
	}
	failure := client.FailNoLeader
	if ctx.Err() != nil || hung {
		failure = client.FailTimeout
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no hosts in conf/remote_hosts"))
	}
	return sshrpc.Frame{}, &client.Error{Outcome: outcome, Failure: failure, Host: host, Err: errors.Join(errs...)}
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
