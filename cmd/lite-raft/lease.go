package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"lite-raft/api"

	"github.com/urfave/cli/v2"
)

// parseTTL reads a lease's time to live: a Go duration (30s, 1m30s) or seconds.
func parseTTL(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, err2 := strconv.ParseFloat(s, 64)
		if err2 != nil {
			return 0, fmt.Errorf("ttl %q: want a duration such as 30s or 2m", s)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < api.MinTTLMs*time.Millisecond || d > api.MaxTTLMs*time.Millisecond {
		return 0, fmt.Errorf("ttl %v: want 1s to 24h", d)
	}
	return d, nil
}

// setTTLVerb runs `set --ttl D [--keep-alive] KEY VALUE`: KEY is set under a new lease
// of D and goes when the lease runs out. With --keep-alive this command stays, renewing
// the lease every D/3, until it is stopped (SIGINT, SIGTERM): then it revokes the lease,
// so the key goes with it. If the lease is lost meanwhile it exits 16.
func setTTLVerb(c *cli.Context, o clientOpts, dial dialFunc, args []string) error {
	var ttl time.Duration
	keep := false
	for len(args) > 0 && strings.HasPrefix(args[0], "--") {
		switch a := args[0]; {
		case a == "--keep-alive":
			keep = true
		case a == "--ttl" || strings.HasPrefix(a, "--ttl="):
			v, ok := strings.CutPrefix(a, "--ttl=")
			if !ok {
				if len(args) < 2 {
					return clientUsageError(c, "set: --ttl needs a duration")
				}
				v, args = args[1], args[1:]
			}
			d, err := parseTTL(v)
			if err != nil {
				return clientUsageError(c, "set: "+err.Error())
			}
			ttl = d
		case a == "--":
			args = args[1:]
			goto done
		default:
			return clientUsageError(c, fmt.Sprintf("set: unknown option %s", a))
		}
		args = args[1:]
	}
done:
	if ttl == 0 {
		return clientUsageError(c, "set: --keep-alive needs --ttl")
	}
	if len(args) != 2 {
		return clientUsageError(c, "set: want [--ttl D] [--keep-alive] KEY VALUE")
	}
	v, err := valueArg(args[1])
	if err != nil {
		return err
	}
	req := api.Request{Op: api.OpSetLease, Key: args[0], Value: v, TTLMs: uint64(ttl.Milliseconds())}
	if err := req.Validate(); err != nil {
		return clientExit(api.CodeUsage, "set: %v", err)
	}
	sent := time.Now()
	resp, err := doRequest(o, dial, req)
	if err != nil {
		return err
	}
	if resp.Code != 0 {
		return printResponse(c.App.Writer, o, req, resp)
	}
	lease, err := strconv.ParseUint(string(resp.Value), 10, 64)
	if err != nil {
		return clientExit(api.CodeFailed, "set --ttl %s: unreadable lease number %q from the leader; the key goes within %v", args[0], resp.Value, ttl)
	}
	if o.json {
		fmt.Fprintf(c.App.Writer, "{\"key\":%q,\"lease\":%d,\"ttl_ms\":%d}\n", args[0], lease, ttl.Milliseconds())
	}
	if !keep {
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	k := newKeeper(o, dial, lease, ttl, sent)
	for {
		select {
		case <-ctx.Done():
			return k.release("set --keep-alive")
		case <-time.After(time.Until(k.next())):
		}
		if err := k.renew(); err != nil {
			return err
		}
	}
}

// keeper keeps one lease alive from the client: it renews every ttl/3 and knows until
// when the lease is surely still ours: the time a confirmed renewal was sent, plus the
// ttl (the leader counts from when it got it, later). Past that, less a margin for the
// clocks, it is lost.
type keeper struct {
	o          clientOpts
	dial       dialFunc
	lease      uint64
	ttl        time.Duration
	validUntil time.Time
	lastTry    time.Time
}

// newKeeper keeps a lease granted just now (by a request sent at sent).
func newKeeper(o clientOpts, dial dialFunc, lease uint64, ttl time.Duration, sent time.Time) *keeper {
	return &keeper{o: o, dial: dial, lease: lease, ttl: ttl, validUntil: sent.Add(ttl), lastTry: sent}
}

// next is when to renew: a third of the ttl after the last attempt.
func (k *keeper) next() time.Time { return k.lastTry.Add(k.ttl / 3) }

// lost reports whether the lease can no longer be taken as ours.
func (k *keeper) lost() bool { return time.Now().After(k.validUntil.Add(-k.ttl / 10)) }

// renew tries once; it fails (exit 16) only when the lease is gone or past saving.
func (k *keeper) renew() error {
	sent := time.Now()
	k.lastTry = sent
	o := k.o
	o.timeout = min(k.ttl/3, time.Until(k.validUntil))
	var resp api.Response
	var err error
	if o.timeout > 0 {
		resp, err = doRequest(o, k.dial, api.Request{Op: api.OpLeaseKeep, Lease: k.lease})
	}
	switch {
	case o.timeout > 0 && err == nil && resp.Code == 0:
		k.validUntil = sent.Add(k.ttl)
		return nil
	case err == nil && resp.Code == api.CodeNotFound:
		return clientExit(api.CodeLockLost, "lease %d is gone: %s", k.lease, resp.Msg)
	case k.lost():
		why := "no renewal in time"
		if err != nil {
			why = err.Error()
		} else if o.timeout > 0 {
			why = resp.Msg
		}
		return clientExit(api.CodeLockLost, "lease %d lost: not renewed within its ttl of %v (%s)", k.lease, k.ttl, why)
	}
	fmt.Fprintf(os.Stderr, "lite-raft-client: renewing lease %d: %v%s (it is ours until %s)\n", k.lease, err, resp.Msg,
		k.validUntil.Format("15:04:05.000"))
	return nil
}

// release revokes the lease (its keys and lock place go now, not at expiry).
func (k *keeper) release(what string) error {
	o := k.o
	o.timeout = 5 * time.Second
	resp, err := doRequest(o, k.dial, api.Request{Op: api.OpRevoke, Lease: k.lease})
	if err == nil && resp.Code != 0 && resp.Code != api.CodeNotFound {
		err = fmt.Errorf("exit %d: %s", resp.Code, resp.Msg)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lite-raft-client: %s: releasing lease %d: %v (it runs out within %v anyway)\n", what, k.lease, err, k.ttl)
	}
	return nil
}

// leaseVerb runs `lease keep KEY` (renew KEY's lease once) and `lease revoke KEY` (end
// it: KEY goes, and every other key of that lease).
func leaseVerb(c *cli.Context, o clientOpts, dial dialFunc, args []string) error {
	if len(args) != 2 || (args[0] != "keep" && args[0] != "revoke") {
		return clientUsageError(c, "lease: want keep KEY, or revoke KEY")
	}
	req := api.Request{Op: api.OpLeaseKeep, Key: args[1]}
	if args[0] == "revoke" {
		req.Op = api.OpRevoke
	}
	if err := api.ValidateKey(args[1]); err != nil {
		return clientExit(api.CodeUsage, "lease %s: %v", args[0], err)
	}
	resp, err := doRequest(o, dial, req)
	if err != nil {
		return err
	}
	if resp.Code != 0 {
		return printResponse(c.App.Writer, o, req, resp)
	}
	if o.json && len(resp.JSON) > 0 {
		fmt.Fprintln(c.App.Writer, string(resp.JSON))
	}
	return nil
}

// ttlJSON is the lease part of get --json.
type ttlJSON struct {
	Lease uint64 `json:"lease"`
	TTLMs *int64 `json:"ttl_ms,omitempty"`
}

func parseTTLJSON(b []byte) (ttlJSON, bool) {
	var t ttlJSON
	if len(b) == 0 || json.Unmarshal(b, &t) != nil || t.Lease == 0 {
		return t, false
	}
	return t, true
}
