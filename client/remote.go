package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"lite-raft/api"
	"lite-raft/sshrpc"
	"lite-raft/statefile"
)

// RemoteShare is the most one host may take before the next is tried, and RemoteHold
// the longest a host is asked to hold a request that waits for something: its answer
// has a second to come back within the share.
const (
	RemoteShare = 5 * time.Second
	RemoteHold  = RemoteShare - time.Second
)

// HostCaller is the stream to one host: an *sshrpc.Peer, or a fake in tests.
type HostCaller interface {
	Caller
	Close() error
}

// RemoteConfig is what a Remote needs.
type RemoteConfig struct {
	Hosts []string
	// LeaderFile remembers, from one command to the next, the host that last named
	// itself or another as leader ("": not remembered).
	LeaderFile string
	// Share is the most one host may take (0: RemoteShare).
	Share time.Duration
	// Open makes the caller of one host; it is called once per host, when first tried.
	Open  func(host string) HostCaller
	Clock Clock // nil: the system's
}

// Remote sends a request to the cluster's members, one after another, until one gives
// an answer other than "no leader" or "no server". Every attempt keeps the request's
// client ID and sequence number, so a host that answers after another may have applied
// it answers for that same request (deduplicated), and its answer is authoritative.
// When no host gives one, Call returns an *Error: NotSent (11, or 1 for a read past the
// deadline) if every attempt failed before its bytes left or was answered 11 or 12,
// MaybeApplied (2 for a write) as soon as one was handed over without an answer, e.g. a
// host that hung for its share of the time after the bytes were written.
//
// Calls may run at once (lite-raft-remote's multiplexer serves several commands).
type Remote struct {
	cfg   RemoteConfig
	mu    sync.Mutex // peers, failed
	peers map[string]HostCaller
	// failed are the hosts that gave no answer since this Remote was made (a command, or
	// the multiplexer's life): its later requests (a lock's renewals, a watch's) try them
	// last, after the ones not known to be down
	failed map[string]bool
	// leader is the one last named (LeaderFile, read once; written when it changes): the
	// multiplexer makes many requests, and a file read and written on each was disk work
	// on every call, and concurrent writes that could interleave
	leader     string
	leaderRead bool
}

// NewRemote returns a Remote over cfg.Hosts; Close closes the callers it opened.
func NewRemote(cfg RemoteConfig) *Remote {
	if cfg.Share <= 0 {
		cfg.Share = RemoteShare
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	return &Remote{cfg: cfg, peers: map[string]HostCaller{}, failed: map[string]bool{}}
}

// order is the last leader first, then the others at random; the hosts that gave no
// answer in this command after them all.
func (r *Remote) order() []string {
	hosts := slices.Clone(r.cfg.Hosts)
	rand.Shuffle(len(hosts), func(i, j int) { hosts[i], hosts[j] = hosts[j], hosts[i] })
	if last := r.lastLeader(); last != "" {
		for i, h := range hosts {
			if h == last {
				hosts[0], hosts[i] = hosts[i], hosts[0]
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
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

func (r *Remote) lastLeader() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.leaderRead && r.cfg.LeaderFile != "" {
		if b, err := os.ReadFile(r.cfg.LeaderFile); err == nil {
			r.leader = strings.TrimSpace(string(b))
		}
	}
	r.leaderRead = true
	return r.leader
}

// fail notes that host gave no answer; if it is the remembered leader, it is forgotten,
// so that the next command does not start with it either.
func (r *Remote) fail(host string) {
	wasLeader := r.lastLeader() == host
	r.mu.Lock()
	r.failed[host] = true
	if wasLeader {
		r.leader = ""
	}
	r.mu.Unlock()
	if wasLeader && r.cfg.LeaderFile != "" {
		os.Remove(r.cfg.LeaderFile)
	}
}

// remember keeps the leader named for the next command, when it changes. It is a hint: a
// failure to write it costs the next command a host tried in vain, no more.
func (r *Remote) remember(leader string) {
	if leader == "" || r.lastLeader() == leader {
		return
	}
	r.mu.Lock()
	r.leader = leader
	r.mu.Unlock()
	if r.cfg.LeaderFile != "" {
		os.MkdirAll(filepath.Dir(r.cfg.LeaderFile), 0o700)
		statefile.WriteFileAtomic(r.cfg.LeaderFile, []byte(leader+"\n"), 0o600)
	}
}

// Call sends the frame to the hosts in order (see Remote).
func (r *Remote) Call(ctx context.Context, typ uint8, payload []byte) (sshrpc.Frame, error) {
	outcome := NotSent // no host tried: nothing sent
	var host string    // the host of the last attempt that may have been applied, else the last tried
	hung := false      // that attempt ran out of time (rather than its connection breaking)
	var errs []error
	for _, h := range r.order() {
		r.mu.Lock()
		p := r.peers[h]
		if p == nil {
			p = r.cfg.Open(h)
			r.peers[h] = p
		}
		r.mu.Unlock()
		if outcome == NotSent {
			host = h
		}
		// leave time for the next host if this one hangs
		actx, cancel := context.WithTimeout(ctx, min(r.remaining(ctx), r.cfg.Share))
		f, err := p.Call(actx, typ, payload)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h, err))
			r.fail(h)
			if !errors.Is(err, api.ErrNotSent) { // a RemoteError too: it got the request
				outcome, host, hung = MaybeApplied, h, errors.Is(err, context.DeadlineExceeded)
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		resp, err := api.DecodeResponse(f.Payload)
		if err != nil { // it got the request, its answer is unreadable
			errs = append(errs, fmt.Errorf("%s: %w", h, err))
			outcome, host, hung = MaybeApplied, h, false
			continue
		}
		if resp.Code == api.CodeNoLeader || resp.Code == api.CodeNoServer {
			// nothing appended by that host
			errs = append(errs, fmt.Errorf("%s: %s", h, resp.Msg))
			continue
		}
		r.mu.Lock()
		delete(r.failed, h)
		r.mu.Unlock()
		r.remember(resp.Leader)
		return f, nil
	}
	failure := FailNoLeader
	if ctx.Err() != nil || hung {
		failure = FailTimeout
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no hosts to ask"))
	}
	return sshrpc.Frame{}, &Error{Outcome: outcome, Failure: failure, Host: host, Err: errors.Join(errs...)}
}

// remaining is the time left before ctx's deadline (a minute without one).
func (r *Remote) remaining(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return dl.Sub(r.cfg.Clock.Now())
	}
	return time.Minute
}

// Close closes the callers of the hosts tried.
func (r *Remote) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for h, p := range r.peers {
		if err := p.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h, err))
		}
	}
	return errors.Join(errs...)
}
