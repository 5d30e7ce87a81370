package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The membership and status modes clusterbench's scale workload drives etcd with: the
// steps etcdctl would take (endpoint status, member add --learner, member promote), and
// the polling around them, done here so that the times measured are not those of
// starting a process per poll.

// pollEvery is how often the waiting modes ask again.
const pollEvery = 50 * time.Millisecond

// endpointStatus is one endpoint's answer to the maintenance Status call.
type endpointStatus struct {
	Endpoint         string `json:"endpoint"`
	ID               string `json:"id,omitempty"` // the member ID in hex, as etcdctl prints it
	IsLeader         bool   `json:"is_leader"`
	IsLearner        bool   `json:"is_learner"`
	RaftTerm         uint64 `json:"raft_term"`
	RaftIndex        uint64 `json:"raft_index"`
	RaftAppliedIndex uint64 `json:"raft_applied_index"`
	DBSize           int64  `json:"db_size"`
	DBSizeInUse      int64  `json:"db_size_in_use"`
	Error            string `json:"error,omitempty"`
}

func memberID(id uint64) string { return strconv.FormatUint(id, 16) }

// statusAll asks every endpoint, each within timeout; an endpoint that does not answer
// has its error instead of figures.
func statusAll(cl *clientv3.Client, endpoints []string, timeout time.Duration) []endpointStatus {
	out := make([]endpointStatus, len(endpoints))
	for i, ep := range endpoints {
		out[i].Endpoint = ep
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		st, err := cl.Status(ctx, ep)
		cancel()
		if err != nil {
			out[i].Error = err.Error()
			continue
		}
		out[i].IsLearner, out[i].RaftTerm, out[i].RaftIndex, out[i].RaftAppliedIndex = st.IsLearner, st.RaftTerm, st.RaftIndex, st.RaftAppliedIndex
		out[i].DBSize, out[i].DBSizeInUse = st.DbSize, st.DbSizeInUse
		if st.Header != nil {
			out[i].ID = memberID(st.Header.MemberId)
			out[i].IsLeader = st.Leader != 0 && st.Header.MemberId == st.Leader
		}
	}
	return out
}

func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fail("%v", err)
	}
	fmt.Fprintln(w, string(b))
	return nil
}

// runStatus prints every endpoint's status as one JSON array; an endpoint that does not
// answer is in it with its error, and the exit is 0 all the same.
func runStatus(cfg config, stdout io.Writer) error {
	cl, err := newClient(cfg.endpoints, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	return printJSON(stdout, statusAll(cl, cfg.endpoints, cfg.timeout))
}

// catchUpResult is what --wait-caught-up prints.
type catchUpResult struct {
	CaughtUp bool    `json:"caught_up"`
	Ms       float64 `json:"ms"` // from this program's start to the poll that saw it caught up
	// the last figures seen: the member's and the leader's raft index
	MemberIndex uint64 `json:"member_index"`
	LeaderIndex uint64 `json:"leader_index"`
	Polls       int    `json:"polls"`
	LastError   string `json:"last_error,omitempty"`
}

// lagOf compares a member's status with the leader's among sts: it returns the member's
// and the leader's raft index, and false with a reason when either is not known.
func lagOf(sts []endpointStatus, member string) (mine, lead uint64, why string) {
	var m, l *endpointStatus
	for i := range sts {
		if sts[i].Endpoint == member {
			m = &sts[i]
		}
		if sts[i].IsLeader {
			l = &sts[i]
		}
	}
	switch {
	case m == nil:
		return 0, 0, member + " is not among the endpoints"
	case m.Error != "":
		return 0, 0, member + ": " + m.Error
	case l == nil:
		var errs []string
		for _, s := range sts {
			if s.Error != "" {
				errs = append(errs, s.Endpoint+": "+s.Error)
			}
		}
		return m.RaftIndex, 0, "no endpoint is the leader " + strings.Join(errs, "; ")
	}
	return m.RaftIndex, l.RaftIndex, ""
}

// runWaitCaughtUp polls every endpoint's status until the member at cfg.waitCaughtUp has
// a raft index (its commit index) within cfg.maxLag of the leader's, or cfg.timeout has
// passed; it prints the result as JSON either way and exits 1 if it did not catch up.
// Errors (the member still starting) are polled through.
func runWaitCaughtUp(cfg config, stdout, errw io.Writer) error {
	start := time.Now()
	cl, err := newClient(cfg.endpoints, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := start.Add(cfg.timeout)
	lastLine := start
	var r catchUpResult
	for {
		r.Polls++
		sts := statusAll(cl, cfg.endpoints, min(time.Second, max(time.Until(deadline), time.Millisecond)))
		mine, lead, why := lagOf(sts, cfg.waitCaughtUp)
		r.MemberIndex, r.LeaderIndex = mine, lead
		if why == "" && lead <= mine+cfg.maxLag {
			r.CaughtUp, r.Ms = true, float64(time.Since(start).Microseconds())/1000
			return printJSON(stdout, r)
		}
		if why != "" {
			r.LastError = why
		}
		if now := time.Now(); now.Sub(lastLine) >= 2*time.Second {
			lastLine = now
			if why != "" {
				fmt.Fprintf(errw, "etcdload: %s not caught up after %.0fs: %s\n", cfg.waitCaughtUp, now.Sub(start).Seconds(), why)
			} else {
				fmt.Fprintf(errw, "etcdload: %s at raft index %d, the leader at %d (lag %d) after %.0fs\n",
					cfg.waitCaughtUp, mine, lead, lead-min(lead, mine), now.Sub(start).Seconds())
			}
		}
		if time.Now().Add(pollEvery).After(deadline) {
			r.Ms = float64(time.Since(start).Microseconds()) / 1000
			if err := printJSON(stdout, r); err != nil {
				return err
			}
			return fail("%s not within %d entries of the leader after %v (member %d, leader %d; %s)",
				cfg.waitCaughtUp, cfg.maxLag, cfg.timeout, mine, lead, r.LastError)
		}
		time.Sleep(pollEvery) // polling with a deadline
	}
}

// addLearnerResult is what --add-learner prints: the new member's ID and the
// --initial-cluster it must be started with (every member, itself included, by name).
type addLearnerResult struct {
	ID             string `json:"id"`
	InitialCluster string `json:"initial_cluster"`
	// RefusedMs is how long etcd refused the add as "unhealthy cluster" first: with
	// --strict-reconfig-check (the default) it does until every voter has been
	// connected for 5 s, so right after a member restarted it refuses for a while
	RefusedMs float64 `json:"refused_ms"`
	Attempts  int     `json:"attempts"`
}

func runAddLearner(cfg config, stdout io.Writer) error {
	start := time.Now()
	name, peerURL, _ := strings.Cut(cfg.addLearner, "=")
	cl, err := newClient(cfg.endpoints, true)
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := start.Add(cfg.timeout)
	var r addLearnerResult
	var resp *clientv3.MemberAddResponse
	for {
		r.Attempts++
		t := time.Now()
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		resp, err = cl.MemberAddAsLearner(ctx, []string{peerURL})
		cancel()
		if err == nil {
			r.RefusedMs = float64(t.Sub(start).Microseconds()) / 1000
			break
		}
		if !errors.Is(err, rpctypes.ErrUnhealthy) || time.Now().Add(pollEvery).After(deadline) {
			return fail("member add --learner %s (attempt %d, %v after the first): %v", peerURL, r.Attempts, time.Since(start).Round(time.Millisecond), err)
		}
		time.Sleep(pollEvery) // polling with a deadline
	}
	var parts []string
	for _, m := range resp.Members {
		n := m.Name
		if m.ID == resp.Member.ID {
			n = name // not started yet, so the cluster knows no name for it
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, n+"="+u)
		}
	}
	r.ID, r.InitialCluster = memberID(resp.Member.ID), strings.Join(parts, ",")
	return printJSON(stdout, r)
}

// promoteResult is what --promote prints.
type promoteResult struct {
	Promoted  bool    `json:"promoted"`
	Attempts  int     `json:"attempts"`
	Ms        float64 `json:"ms"` // from this program's start to the promote that succeeded
	LastError string  `json:"last_error,omitempty"`
}

// runPromote promotes the learner, again and again until etcd accepts (it refuses while
// the learner is behind the leader) or cfg.timeout has passed; it prints the result as
// JSON either way and exits 1 if the learner was not promoted.
func runPromote(cfg config, stdout, errw io.Writer) error {
	start := time.Now()
	id, _ := strconv.ParseUint(cfg.promote, 16, 64) // checked by parseFlags
	cl, err := newClient(cfg.endpoints, true)
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := start.Add(cfg.timeout)
	lastLine := start
	var r promoteResult
	for {
		r.Attempts++
		ctx, cancel := context.WithTimeout(context.Background(), min(5*time.Second, max(time.Until(deadline), time.Millisecond)))
		_, err := cl.MemberPromote(ctx, id)
		cancel()
		if err == nil {
			r.Promoted, r.Ms, r.LastError = true, float64(time.Since(start).Microseconds())/1000, ""
			return printJSON(stdout, r)
		}
		r.LastError = err.Error()
		if now := time.Now(); now.Sub(lastLine) >= 2*time.Second {
			lastLine = now
			fmt.Fprintf(errw, "etcdload: promote %s refused after %.0fs (%d attempts): %v\n", cfg.promote, now.Sub(start).Seconds(), r.Attempts, err)
		}
		if time.Now().Add(pollEvery).After(deadline) {
			r.Ms = float64(time.Since(start).Microseconds()) / 1000
			if err := printJSON(stdout, r); err != nil {
				return err
			}
			return fail("promote %s: not accepted within %v (%d attempts); last: %v", cfg.promote, cfg.timeout, r.Attempts, err)
		}
		time.Sleep(pollEvery) // polling with a deadline
	}
}
