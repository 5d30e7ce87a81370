package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/sshrpc"
)

const clientUsage = `usage: lite-raft-client [--json] [--stale] [--timeout SECONDS] VERB ARGS

  get KEY                  print the value of KEY (exit 9 if missing)
  get --prefix DIR         print every key under DIR, at any depth, with its value ("KEY VALUE" lines
                           quoted as list --values quotes; --json: one {"key","value"} a line); read
                           in pages of at most 4 MB, each at its own index (exit 8: no key under DIR);
                           list -r DIR is the same
  exists KEY               exit 0 if KEY exists, 9 if not; prints nothing (with --json: {"key","exists"})
  list [DIR]               print the names directly under DIR (exit 8 if missing)
  list --values [DIR]      print every key directly under DIR with its value, all read at one moment:
                           one "KEY VALUE" line per key, a value that is empty, not UTF-8, has a line
                           break or another unprintable character, a leading quote or a space at
                           either end quoted as Go's strconv.Quote does; --json adds subfolders,
                           the counters under DIR and the index it was read at (exit 8 if missing)
  set KEY VALUE            set KEY (VALUE "-" reads it from standard input)
  unset KEY                remove KEY
  unset --prefix DIR       remove every key under DIR, at any depth, in one write (at most 10,000 keys,
                           else exit 1 and nothing removed); prints how many; watchers see one change
  if KEY OP X set Y        set KEY to Y if "KEY OP X" holds; OP is one of = != -eq -ne -lt -le -gt -ge
                           (exit 7: no KEY, 6: false, 5: KEY already holds Y)
  if KEY OP X unset        remove KEY if "KEY OP X" holds (exit 7: no KEY, 6: false)
  create KEY VALUE         set KEY only if it does not exist (exit 13: it exists; VALUE "-": stdin)
  set|create|unset|if --fence NAME=GEN ...
                           the same write, applied only while lock NAME is held at generation GEN
                           (LITE_RAFT_LOCK_GENERATION): exit 18 and nothing written once it is not
  set --ttl D KEY VALUE    set KEY under a lease of D (30s, 2m): it goes when the lease runs out;
                           with --keep-alive, stay and renew it until stopped (then it goes)
  lease keep KEY           renew KEY's lease once (exit 9: no such key or lease)
  lease revoke KEY         end KEY's lease now: KEY (and every key of that lease) goes
  lock NAME [--ttl D] [--wait D] -- COMMAND [ARGS...]
                           run COMMAND holding the cluster-wide lock NAME (lock --help)
  locks [NAME]             every held lock (or NAME: exit 9 if not held): holder, generation, lease,
                           time left, waiting; --json for scripts
  watch KEY|DIR/ [--once] [--from N] [-- COMMAND]
                           print each change (N set KEY VALUE, N deleted KEY) as it happens (watch --help)
  txn [--if KEY = V|--if KEY != V|--if KEY missing|--if KEY present|--if-counter NAME N]...
      --set KEY V|--unset KEY|--raise NAME ...
                           every action if every condition holds, else none (exit 6: one was
                           false, nothing done); prints raised counters (txn --help)
  noop                     commit an empty entry
  status                   every member: role, term, match and commit index, lag, last contact, the
                           round trip of the leader's link to it, data and disk size (each as it said
                           them, every 10 s)
  add-member HOST          boot HOST over ssh, add it as learner, wait until it caught up, make it a voter
  del-member HOST          remove HOST (handing leadership over first if it leads), then stop it over ssh
                           (both are carried out by the leader's agent, which goes on if this command
                           dies; it prints the steps as they happen; with --timeout it stops following
                           after that long and exits 2)
  transfer-leader HOST     make HOST the leader
  check [OPTIONS]          a monitoring plugin: one status line, exit 0 OK, 1 WARNING, 2 CRITICAL,
                           3 UNKNOWN (the Nagios convention, not the codes below; check --help)
  export [DIR]             print every key under DIR with its value, one JSON object a line, all of one
                           consistent state (export --help)
  import                   write the keys of export's lines from standard input, 64 keys a txn
  batch [-0] [--atomic]    run one command a line from standard input (get, exists, list, set, create,
                           unset, if, noop), pipelined over one connection; one result line each, in
                           order (EXIT [OUTPUT]); exits with the highest code, 2 if any outcome is
                           unknown; --atomic: all of them in one write, or none (batch --help)
  snapshot save FILE       write a consistent snapshot of the whole state, as of now, to FILE (a
                           backup for lite-raft restore; snapshot --help)

  --json     print each answer as JSON, one object a line; a verb that prints nothing else (a
             write, an error) prints {"verb": VERB, "exit": N}, with "error": MESSAGE when N is
             not 0 (the exit code is the same); add-member and del-member print their steps
             ({"step": ...}) and that object last; lock's output stays COMMAND's
  --stale    read this host's state without asking the leader (get, exists, list, status)
  --timeout  seconds to wait for the answer (default 10, at most 300 but for add-member and
             del-member); a write still unanswered then exits 2: it may or may not have been applied

Arguments may start with a dash (set t -5, if n -lt 3 set 4); put options before the verb.
VERB --help (or -h) shows that verb's help and does nothing else; VERB -- ARGS takes ARGS as
they are (unset -- --help removes the key --help).`

type clientOpts struct {
	json, stale bool
	timeout     time.Duration
	timeoutSet  bool // --timeout was given
	// hold is the longest one host may be asked to keep a request before it answers (0:
	// as long as the request likes). lite-raft-remote gives each host a share of the time
	// and then tries the next, so a request the agent holds until something happens
	// (watch, lock-wait, a membership change's progress) must be answered within it.
	hold time.Duration
}

// held is how long a request that waits at the agent may ask it to wait: d, or less
// where hosts are given only a share of the time each.
func (o clientOpts) held(d time.Duration) time.Duration {
	if o.hold > 0 {
		return min(d, o.hold)
	}
	return d
}

func clientCommand() *cli.Command {
	return &cli.Command{
		Name:            "client",
		Usage:           "get, set, list, if ... set, status, add-member, del-member on the cluster (via the local agent)",
		UsageText:       clientUsage,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			dir, err := liteRaftDir(c)
			if err != nil {
				return cli.Exit(err, 1)
			}
			return runClient(c, c.Args().Slice(), func(ctx context.Context) (client.Caller, func(), error) {
				conn, err := dialAgent(dir, sshrpc.ConnOptions{})
				if err != nil {
					return nil, nil, err
				}
				return conn, func() { conn.Close() }, nil
			}, 0)
		},
	}
}

// clientExit prints msg to stderr and exits with code.
func clientExit(code int, format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), code)
}

func parseClientArgs(args []string) (clientOpts, []string, error) {
	o := clientOpts{timeout: 10 * time.Second}
	for len(args) > 0 {
		switch a := args[0]; {
		case a == "--json":
			o.json = true
		case a == "--stale":
			o.stale = true
		case a == "--timeout" || strings.HasPrefix(a, "--timeout="):
			v, ok := strings.CutPrefix(a, "--timeout=")
			if !ok {
				if len(args) < 2 {
					return o, nil, errors.New("--timeout needs a number of seconds")
				}
				v, args = args[1], args[1:]
			}
			var secs float64
			if _, err := fmt.Sscanf(v, "%g", &secs); err != nil || secs <= 0 {
				return o, nil, fmt.Errorf("--timeout %q: not a positive number of seconds", v)
			}
			o.timeout = time.Duration(secs * float64(time.Second))
			o.timeoutSet = true
		case a == "--":
			return o, args[1:], nil
		case a == "-h" || a == "--help":
			return o, []string{"help"}, nil
		default:
			return o, args, nil
		}
		args = args[1:]
	}
	return o, args, nil
}

type dialFunc func(ctx context.Context) (client.Caller, func(), error)

// runClient runs a client verb; hold is clientOpts.hold. With --json, a verb that printed
// nothing says how it ended in one object on standard output: {"exit": 0} (with the key
// it wrote, if any), or {"error": MESSAGE, "exit": N}, the exit code unchanged and the
// message on standard error as always. lock is left alone: its standard output is
// COMMAND's.
func runClient(c *cli.Context, args []string, dial dialFunc, hold time.Duration) error {
	o, args, err := parseClientArgs(args)
	if err != nil || !o.json {
		return runVerb(c, o, err, args, dial, hold)
	}
	out := &countingWriter{w: c.App.Writer}
	saved := c.App.Writer
	c.App.Writer = out
	err = runVerb(c, o, nil, args, dial, hold)
	c.App.Writer = saved
	// add-member and del-member print their steps, one object a line: the outcome is
	// one more
	stream := len(args) > 0 && (args[0] == "add-member" || args[0] == "del-member")
	if (out.n > 0 && !stream) || (len(args) > 0 && (args[0] == "lock" || args[0] == "help")) {
		return err
	}
	res := map[string]any{"exit": 0}
	if len(args) > 0 {
		res["verb"] = args[0]
	}
	if err != nil {
		res["exit"] = exitCode(err)
		var u *usageExit
		switch {
		case errors.As(err, &u):
			res["error"] = u.msg
		case err.Error() != "":
			res["error"] = err.Error()
		default:
			res["error"] = api.Meaning(exitCode(err))
		}
	}
	b, _ := json.Marshal(res)
	fmt.Fprintln(saved, string(b))
	return err
}

// countingWriter counts what a verb printed.
type countingWriter struct {
	w io.Writer
	n int
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += n
	return n, err
}

// runVerb runs the verb args[0] with options o (parseErr: the options were bad).
func runVerb(c *cli.Context, o clientOpts, parseErr error, args []string, dial dialFunc, hold time.Duration) error {
	if parseErr != nil {
		return clientUsageError(c, parseErr.Error())
	}
	o.hold = hold
	if len(args) == 0 {
		return clientUsageError(c, "missing verb")
	}
	verb, args := args[0], args[1:]
	if limit := time.Duration(api.MaxClientTimeoutMs) * time.Millisecond; o.timeout > limit && verb != "add-member" && verb != "del-member" {
		// a write's retries must all end well within the window in which the cluster
		// tells a retry from a new client (api.SessionHorizonMs); add-member and
		// del-member only follow a change that long, each of their requests short
		return clientUsageError(c, fmt.Sprintf("--timeout %v: at most %d seconds (a write retried later than %d minutes after its first send could "+
			"no longer be told from a new one)", o.timeout, limit/time.Second, api.SessionHorizonMs/60000))
	}
	if verb == "help" {
		fmt.Fprintln(c.App.Writer, clientUsage)
		return nil
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") && !ownHelp[verb] {
		// before anything is parsed or sent: `unset --help` must not delete a key named
		// --help (`unset -- --help` does)
		if h := verbHelp(verb); h != "" {
			fmt.Fprintln(c.App.Writer, h)
			return nil
		}
		return clientUsageError(c, fmt.Sprintf("unknown verb %q", verb))
	}
	switch verb {
	case "get":
		if len(args) == 0 {
			fmt.Fprintln(c.App.Writer, "null") // the original's answer to a get without a key
			return cli.Exit("", api.CodeUsage)
		}
		if args[0] == "--prefix" {
			return getPrefixVerb(c, o, dial, "get --prefix", args[1:])
		}
	case "list":
		if len(args) > 0 && args[0] == "--values" {
			return listValuesVerb(c, o, dial, args[1:])
		}
		if len(args) > 0 && args[0] == "-r" {
			return getPrefixVerb(c, o, dial, "list -r", args[1:])
		}
	case "set":
		if len(args) > 0 && strings.HasPrefix(args[0], "--") && args[0] != "--" && !strings.HasPrefix(args[0], "--fence") {
			return setTTLVerb(c, o, dial, args)
		}
	case "txn":
		return txnVerb(c, o, dial, args)
	case "lock":
		return lockVerb(c, o, dial, args)
	case "watch":
		return watchVerb(c, o, dial, args)
	case "lease":
		return leaseVerb(c, o, dial, args)
	case "locks":
		if len(args) > 1 {
			return clientUsageError(c, "locks: want at most one NAME")
		}
		if len(args) == 1 {
			if err := api.ValidateKey(args[0]); err != nil {
				return clientExit(api.CodeUsage, "locks: %v", err)
			}
			return oneLockVerb(c, o, dial, args[0])
		}
	case "add-member", "del-member", "transfer-leader":
		if len(args) != 1 {
			return clientUsageError(c, verb+": want HOST")
		}
		return membershipVerb(c, o, dial, verb, args[0])
	case "check":
		return checkVerb(c, o, dial, args)
	case "snapshot":
		return snapshotVerb(c, o, dial, args)
	case "export":
		return exportVerb(c, o, dial, args)
	case "import":
		return importVerb(c, o, dial, args, os.Stdin)
	case "batch":
		return batchVerb(c, o, dial, args, os.Stdin)
	}
	req, err := oneRequest(verb, args, valueArg)
	if err != nil {
		var u *usageExit
		if errors.As(err, &u) {
			return clientUsageError(c, u.msg)
		}
		return err
	}
	req.Stale = o.stale
	// bad input is refused before it travels: nothing is sent, nothing written
	if err := req.Validate(); err != nil {
		return clientExit(api.CodeUsage, "%s: %v", verb, err)
	}
	resp, err := doRequest(o, dial, req)
	if err != nil {
		return err
	}
	return printResponse(c.App.Writer, o, req, resp)
}

// ownHelp are the verbs that parse -h and --help themselves (their help is longer than
// their lines in clientUsage).
var ownHelp = map[string]bool{"lock": true, "watch": true, "check": true, "snapshot": true, "txn": true, "export": true, "import": true, "batch": true}

// ownDashes are the verbs whose own parsing gives "--" a meaning (what follows is a
// COMMAND, or set's options end there).
var ownDashes = map[string]bool{"lock": true, "watch": true, "set": true, "create": true, "txn": true, "check": true, "snapshot": true}

// verbHelp is verb's part of clientUsage: its lines, each with what follows it indented
// deeper, and the options and the note at the end; "" for a verb it does not list.
func verbHelp(verb string) string {
	if verb == "no-op" {
		verb = "noop"
	}
	var b strings.Builder
	in := false
	for _, l := range strings.Split(clientUsage, "\n") {
		switch {
		case strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "   "):
			w := strings.Fields(l)[0]
			in = w == verb || strings.HasPrefix(w, verb+"|") || strings.Contains(w, "|"+verb+"|") || strings.HasSuffix(w, "|"+verb)
		case strings.HasPrefix(l, "   "):
			// a continuation: part of what it continues
		default:
			in = false
		}
		if in {
			b.WriteString(l + "\n")
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "usage: lite-raft-client [--json] [--stale] [--timeout SECONDS] " + verb + " ...\n\n" + b.String() +
		"\n-h or --help right after the verb shows this and does nothing else; -- there passes what follows\n" +
		"as it is (" + verb + " -- --help ...: --help is an argument). lite-raft-client help lists every verb."
}

// cutFence takes --fence NAME=GEN (or --fence=NAME=GEN) off the front of args.
func cutFence(args []string) (name string, gen uint64, rest []string, err error) {
	if len(args) == 0 || (args[0] != "--fence" && !strings.HasPrefix(args[0], "--fence=")) {
		return "", 0, args, nil
	}
	v, ok := strings.CutPrefix(args[0], "--fence=")
	args = args[1:]
	if !ok {
		if len(args) == 0 {
			return "", 0, nil, errors.New("--fence needs NAME=GENERATION")
		}
		v, args = args[0], args[1:]
	}
	name, g, ok := strings.Cut(v, "=")
	if gen, err = strconv.ParseUint(g, 10, 64); !ok || err != nil || gen == 0 || name == "" {
		return "", 0, nil, fmt.Errorf("--fence %q: want NAME=GENERATION, the lock and the generation it was given (LITE_RAFT_LOCK_GENERATION)", v)
	}
	return name, gen, args, nil
}

// oneLockVerb runs `locks NAME`: that lock's holder, generation and lease (the leader
// knows the time left), or exit 9 when nobody holds it. A script that fences its writes
// reads the generation here (as COMMAND gets it in LITE_RAFT_LOCK_GENERATION).
func oneLockVerb(c *cli.Context, o clientOpts, dial dialFunc, name string) error {
	req := api.Request{Op: api.OpLocks, Stale: o.stale}
	resp, err := doRequest(o, dial, req)
	if err != nil {
		return err
	}
	if resp.Code != 0 {
		return printResponse(c.App.Writer, o, req, resp)
	}
	var ls []api.LockStatus
	if err := json.Unmarshal(resp.JSON, &ls); err != nil {
		return clientExit(api.CodeFailed, "locks: %v", err)
	}
	for _, l := range ls {
		if l.Name != name {
			continue
		}
		if o.json {
			b, _ := json.Marshal(l)
			fmt.Fprintln(c.App.Writer, string(b))
			return nil
		}
		printLocks(c.App.Writer, []api.LockStatus{l})
		return nil
	}
	return clientExit(api.CodeNotFound, "lock %s is not held", name)
}

// printLocks prints locks as a table.
func printLocks(w io.Writer, ls []api.LockStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LOCK\tGENERATION\tHOLDER\tLEASE\tTTL LEFT\tWAITING")
	for _, l := range ls {
		left := "-"
		if l.TTLMs >= 0 {
			left = (time.Duration(l.TTLMs) * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%d\n", l.Name, l.Generation, l.Holder, l.Lease, left, len(l.Waiting))
	}
	tw.Flush()
}

// valueArg is a value from the command line, "-" for standard input.
func valueArg(a string) ([]byte, error) {
	if a != "-" {
		return []byte(a), nil
	}
	v, err := io.ReadAll(io.LimitReader(os.Stdin, api.MaxValueLen+1))
	if err != nil {
		return nil, clientExit(1, "read the value from standard input: %v", err)
	}
	return v, nil
}

func clientUsageError(c *cli.Context, msg string) error {
	fmt.Fprintf(c.App.ErrWriter, "lite-raft-client: %s\n\n%s\n", msg, clientUsage)
	return &usageExit{msg: msg}
}

// usageExit is a usage error already printed with the usage text: exit 10, nothing more
// on standard error, and its message for --json.
type usageExit struct{ msg string }

func (u *usageExit) Error() string { return "" }
func (u *usageExit) ExitCode() int { return api.CodeUsage }

// doRequest sends one request. A request without an answer exits with the code of the
// table (client.ExitCode): the local socket not answering is 12 (nothing was sent), any
// other failure the code of its *client.Error.
func doRequest(o clientOpts, dial dialFunc, req api.Request) (api.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	cl, closeFn, err := dialClient(ctx, dial)
	if err != nil {
		return api.Response{}, err
	}
	defer closeFn()
	resp, err := cl.Do(ctx, req)
	if err != nil {
		return resp, requestExit(err, o)
	}
	return resp, nil
}

// dialClient dials and makes one client (one session: its requests share a client ID),
// or says why nothing could be sent, as the exit table has it.
func dialClient(ctx context.Context, dial dialFunc) (*client.Client, func(), error) {
	caller, closeFn, err := dial(ctx)
	if errors.Is(err, sshrpc.ErrNoRestriction) {
		return nil, nil, clientExit(api.CodeUpgrade, "%v", err)
	}
	if err != nil {
		return nil, nil, notSentExit(thisHost(), err)
	}
	return client.New(caller), closeFn, nil
}

// notSentExit is the exit when the agent on host could not be reached, so nothing was
// sent: the table's code (12) and message.
func notSentExit(host string, err error) error {
	return requestExit(&client.Error{Outcome: client.NotSent, Failure: client.FailNoServer, Host: host, Err: err}, clientOpts{})
}

// requestExit is the exit of a request that ended without an answer: the table's code
// and message.
func requestExit(err error, o clientOpts) error {
	var ce *client.Error
	if errors.As(err, &ce) {
		if ce.Host == "" {
			ce.Host = thisHost() // the agent asked
		}
		if ce.Failure == client.FailTimeout {
			return clientExit(ce.Code(), "%s (no answer within %v: %v)", ce.Response().Msg, o.timeout, ce.Err)
		}
	}
	return clientExit(client.ExitCodeOf(err), "%v", err)
}

func printResponse(w io.Writer, o clientOpts, req api.Request, r api.Response) error {
	if req.Op == api.OpExists && (r.Code == api.CodeOK || r.Code == api.CodeNotFound) {
		// a test, as test -e is: the exit code says it, nothing else unless asked
		if o.json {
			b, _ := json.Marshal(map[string]any{"key": req.Key, "exists": r.Code == api.CodeOK})
			fmt.Fprintln(w, string(b))
		}
		if r.Code != api.CodeOK {
			return cli.Exit("", r.Code)
		}
		return nil
	}
	if r.Code != api.CodeOK {
		msg := r.Msg
		if msg == "" {
			msg = fmt.Sprintf("%s failed", req.Op)
		}
		return cli.Exit(msg, r.Code)
	}
	switch req.Op {
	case api.OpUnsetPrefix:
		n, _ := strconv.Atoi(string(r.Value))
		if o.json {
			b, _ := json.Marshal(map[string]any{"dir": req.Key + "/", "removed": n})
			fmt.Fprintln(w, string(b))
		} else {
			fmt.Fprintf(w, "removed %d keys under %s/\n", n, req.Key)
		}
	case api.OpGet:
		if o.json {
			out := map[string]any{"key": req.Key, "value": string(r.Value)}
			if t, ok := parseTTLJSON(r.JSON); ok {
				out["lease"] = t.Lease
				if t.TTLMs != nil {
					out["ttl_ms"] = *t.TTLMs
				}
			}
			b, _ := json.Marshal(out)
			fmt.Fprintln(w, string(b))
		} else {
			w.Write(r.Value)
			fmt.Fprintln(w)
		}
	case api.OpList:
		if o.json {
			b, _ := json.Marshal(r.Names)
			fmt.Fprintln(w, string(b))
		} else {
			for _, n := range r.Names {
				fmt.Fprintln(w, n)
			}
		}
	case api.OpLocks:
		if o.json {
			fmt.Fprintln(w, string(r.JSON))
			return nil
		}
		var ls []api.LockStatus
		if err := json.Unmarshal(r.JSON, &ls); err != nil {
			return cli.Exit(fmt.Sprintf("locks: %v", err), 1)
		}
		printLocks(w, ls)
	case api.OpStatus:
		if o.json {
			fmt.Fprintln(w, string(r.JSON))
			return nil
		}
		var st api.Status
		if err := json.Unmarshal(r.JSON, &st); err != nil {
			return cli.Exit(fmt.Sprintf("status: %v", err), 1)
		}
		printStatus(w, st)
	}
	return nil
}

func printStatus(w io.Writer, st api.Status) {
	// the answering member's own sizes; the leader's table has every member's, as each
	// last said them (every api.AnnounceEveryMs)
	data := ""
	if m := st.Metrics; m != nil {
		data = fmt.Sprintf("; data %s, snapshot file %s", byteSize(m.DataBytes), byteSize(m.SnapshotBytes))
	}
	fmt.Fprintf(w, "%s is %s in term %d; leader %s; commit %d, applied %d, last index %d, snapshot %d%s\n",
		st.ID, st.Role, st.Term, orDash(st.Leader), st.Commit, st.Applied, st.LastIndex, st.Snapshot, data)
	fmt.Fprintf(w, "members: %s\n", st.Members)
	if ch := st.Change; ch != nil && len(ch.Steps) > 0 {
		state := "in progress"
		if ch.Done {
			state = fmt.Sprintf("done, exit %d", ch.Code)
		}
		fmt.Fprintf(w, "membership change: %s %s (%s): %s\n", ch.Op, ch.Host, state, ch.Steps[len(ch.Steps)-1])
	}
	if len(st.Nodes) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tMATCH\tLAG\tSTATE\tLAST CONTACT\tRTT\tDATA\tDISK\tVERSION")
	for _, n := range st.Nodes {
		state := n.State
		if n.SnapshotSize > 0 {
			// a transfer can take a while: show how far it is
			state = fmt.Sprintf("%s %.1f/%.1f MB", state, float64(n.SnapshotBytes)/1e6, float64(n.SnapshotSize)/1e6)
		}
		rtt := "-"
		if n.RTTUs > 0 {
			rtt = (time.Duration(n.RTTUs) * time.Microsecond).Round(100 * time.Microsecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s (commands v%d)\n", n.Name, n.Role, n.Match, n.Lag, state,
			(time.Duration(n.LastContactMs) * time.Millisecond).String(), rtt, memberData(n), sizeOrDash(n.DiskBytes), orDash(n.Build), n.Commands)
	}
	tw.Flush()
}

// memberData is a member's data size, "-" until it said its sizes (its disk size is never
// 0 once it has: its state files are there).
func memberData(n api.MemberStatus) string {
	if n.DiskBytes == 0 {
		return "-"
	}
	return byteSize(n.DataBytes)
}

// sizeOrDash is byteSize, or "-" for a size not known (0: not said yet, or an older build).
func sizeOrDash(n uint64) string {
	if n == 0 {
		return "-"
	}
	return byteSize(n)
}

// byteSize is n in bytes, or kB, MB or GB (powers of 1000) to one decimal.
func byteSize(n uint64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), 0
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, []string{"", "kB", "MB", "GB"}[i])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// membershipVerb runs transfer-leader, add-member and del-member. The membership changes
// are carried out by the leader's agent, which goes on if this process dies; this only
// starts one and prints its steps as they happen (following with change-wait), then exits
// with its result. With --timeout it stops following after that long and exits 2: the
// change may still complete (status shows it).
func membershipVerb(c *cli.Context, o clientOpts, dial dialFunc, verb, host string) error {
	w := c.App.Writer
	// say prints a step (or, kind "note", a remark on the following): with --json one
	// object a line, the last of which runClient writes with the outcome
	say := func(kind, text string) {
		if o.json {
			b, _ := json.Marshal(map[string]string{kind: text})
			fmt.Fprintln(w, string(b))
		} else {
			fmt.Fprintln(w, text)
		}
	}
	if verb == "transfer-leader" {
		if !o.json {
			fmt.Fprintf(w, "making %s the leader ... ", host)
		}
		resp, err := doRequest(clientOpts{timeout: max(o.timeout, 30*time.Second)}, dial, api.Request{Op: api.OpTransfer, Member: host})
		if err == nil && resp.Code != 0 {
			err = cli.Exit(resp.Msg, resp.Code)
		}
		if !o.json {
			fmt.Fprintln(w, map[bool]string{true: "done", false: "failed"}[err == nil])
		}
		return err
	}
	op := api.OpAddMember
	if verb == "del-member" {
		op = api.OpDelMember
	}
	var deadline time.Time
	if o.timeoutSet {
		deadline = time.Now().Add(o.timeout)
	}
	first := min(max(o.timeout, 10*time.Second), time.Duration(api.MaxClientTimeoutMs)*time.Millisecond)
	resp, err := doRequest(clientOpts{timeout: first}, dial, api.Request{Op: op, Member: host})
	if err != nil {
		return err
	}
	if resp.Code != 0 {
		return cli.Exit(resp.Msg, resp.Code)
	}
	printed, id := 0, ""
	for {
		var st api.ChangeStatus
		if err := json.Unmarshal(resp.JSON, &st); err != nil {
			return clientExit(api.CodeTimeout, "%s %s: unreadable answer from the leader (%v): the change may go on; see status", verb, host, err)
		}
		if id != "" && st.ID != id && st.ID != "" {
			say("note", fmt.Sprintf("(the leader changed: %s goes on with it)", strings.SplitN(st.ID, "/", 2)[0]))
			printed = 0
		}
		if st.ID != "" {
			id = st.ID
		}
		for ; printed < len(st.Steps); printed++ {
			say("step", st.Steps[printed])
		}
		if st.Done {
			if st.Code != 0 {
				return cli.Exit("", st.Code)
			}
			return nil
		}
		wait := o.held(30 * time.Second)
		if !deadline.IsZero() {
			if wait = min(wait, time.Until(deadline)); wait <= 0 {
				return clientExit(api.CodeTimeout, "%s %s: still in progress on the leader after %v; it goes on (see status)", verb, host, o.timeout)
			}
		}
		req := api.Request{Op: api.OpChangeWait, Member: host, Steps: uint64(printed), TimeoutMs: uint32(wait.Milliseconds())}
		resp, err = doRequest(clientOpts{timeout: wait + 5*time.Second}, dial, req)
		if err != nil && op == api.OpDelMember && host == thisHost() && st.Stopping {
			// this very host was removed and is being stopped: its agent went away
			say("step", fmt.Sprintf("lite-raft on %s (this host) stopped", host))
			return nil
		}
		if err != nil {
			say("note", fmt.Sprintf("lost the leader's answers: %v", err))
			return clientExit(api.CodeTimeout, "%s %s: the change may go on in the leader's agent; see status", verb, host)
		}
	}
}

// oneRequest parses the verbs that are one request and one answer (get KEY, list [DIR],
// set, create, unset [--prefix], if, exists, noop, status, locks, with --fence where a
// write takes it) into their request, not yet validated; value reads a VALUE argument
// ("-": standard input, for a single call). A bad line is a *usageExit, whose message
// says why; a verb that is not one of these is one too.
func oneRequest(verb string, args []string, value func(string) ([]byte, error)) (api.Request, error) {
	usage := func(msg string) (api.Request, error) { return api.Request{}, &usageExit{msg: msg} }
	// VERB -- ARGS: the words after -- are arguments, whatever they look like
	literal := len(args) > 0 && args[0] == "--" && !ownDashes[verb]
	if literal {
		args = args[1:]
	}
	need := func(n int, what string) error {
		if len(args) != n {
			return &usageExit{msg: fmt.Sprintf("%s: want %s", verb, what)}
		}
		return nil
	}
	// --fence NAME=GEN, first after a write's verb: applied only while lock NAME is held
	// at generation GEN
	var fenceName string
	var fenceGen uint64
	if (verb == "set" || verb == "create" || verb == "unset" || verb == "if") && !literal {
		var err error
		if fenceName, fenceGen, args, err = cutFence(args); err != nil {
			return usage(fmt.Sprintf("%s: %v", verb, err))
		}
		if fenceName != "" && len(args) > 0 && args[0] == "--" && (verb == "unset" || verb == "if") {
			args = args[1:] // unset --fence L=3 -- --help
		}
	}
	var req api.Request
	switch verb {
	case "get":
		if len(args) > 0 && args[0] == "--prefix" && !literal {
			return usage("get --prefix: not one request")
		}
		if err := need(1, "KEY"); err != nil {
			return api.Request{}, err
		}
		req = api.Request{Op: api.OpGet, Key: args[0]}
	case "list":
		if len(args) > 0 && (args[0] == "--values" || args[0] == "-r") && !literal {
			return usage("list " + args[0] + ": not one request")
		}
		if len(args) > 1 {
			return usage("list: want at most one DIR")
		}
		req = api.Request{Op: api.OpList}
		if len(args) == 1 {
			req.Key = strings.TrimSuffix(args[0], "/")
		}
	case "set", "create":
		if len(args) > 0 && args[0] == "--" {
			args = args[1:]
		}
		if err := need(2, "KEY VALUE"); err != nil {
			return api.Request{}, err
		}
		v, err := value(args[1])
		if err != nil {
			return api.Request{}, err
		}
		req = api.Request{Op: api.OpSet, Key: args[0], Value: v}
		if verb == "create" {
			req.Op = api.OpCreate
		}
	case "unset":
		if len(args) > 0 && args[0] == "--prefix" && !literal && fenceName == "" {
			if len(args) != 2 {
				return usage("unset --prefix: want DIR")
			}
			req = api.Request{Op: api.OpUnsetPrefix, Key: strings.Trim(args[1], "/")}
			if req.Key == "" {
				return usage("unset --prefix: want a DIR, not every key")
			}
			break
		}
		if err := need(1, "KEY"); err != nil {
			return api.Request{}, err
		}
		req = api.Request{Op: api.OpUnset, Key: args[0]}
	case "exists":
		if err := need(1, "KEY"); err != nil {
			return api.Request{}, err
		}
		req = api.Request{Op: api.OpExists, Key: args[0]}
	case "if":
		switch {
		case len(args) == 5 && args[3] == "set":
			req = api.Request{Op: api.OpIfSet, Key: args[0], Cond: args[1], CondValue: []byte(args[2]), Value: []byte(args[4])}
		case len(args) == 4 && args[3] == "unset":
			req = api.Request{Op: api.OpIfUnset, Key: args[0], Cond: args[1], CondValue: []byte(args[2])}
		default:
			return usage("if: want KEY OP X set Y, or KEY OP X unset")
		}
	case "noop", "no-op":
		if err := need(0, "no arguments"); err != nil {
			return api.Request{}, err
		}
		req = api.Request{Op: api.OpNoop}
	case "status":
		if err := need(0, "no arguments"); err != nil {
			return api.Request{}, err
		}
		req = api.Request{Op: api.OpStatus}
	case "locks":
		if err := need(0, "no NAME"); err != nil {
			return api.Request{}, err
		}
		req = api.Request{Op: api.OpLocks}
	default:
		return usage(fmt.Sprintf("unknown verb %q", verb))
	}
	req.FenceName, req.FenceGen = fenceName, fenceGen
	return req, nil
}
