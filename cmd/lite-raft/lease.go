package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"lite-raft/api"
	"lite-raft/client"

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
	k := client.NewLease(doer(o, dial), client.SystemTimer, lease, ttl, sent, warnf)
	for {
		select {
		case <-ctx.Done():
			k.Release("set --keep-alive")
			return nil
		case <-time.After(time.Until(k.Next())):
		}
		if err := k.Renew(); err != nil {
			return lockExit(err)
		}
	}
}

// doer sends each request of a lease or lock as doRequest does, within timeout (0: the
// command's --timeout).
func doer(o clientOpts, dial dialFunc) client.Doer {
	return func(timeout time.Duration, req api.Request) (api.Response, error) {
		ro := o
		if timeout > 0 {
			ro.timeout = timeout
		}
		return doRequest(ro, dial, req)
	}
}

// warnf tells of a failure the command goes on after.
func warnf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "lite-raft-client: "+format+"\n", args...)
}

// lockExit is the exit of a lease or lock that ended with err: the request's own exit
// (doRequest made it already), or the code of client's table for what the client decided.
func lockExit(err error) error {
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return err
	}
	return clientExit(client.ExitCodeOf(err), "%v", err)
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
