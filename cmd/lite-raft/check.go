package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/raftcore"
)

const checkUsage = `usage: lite-raft-client check [--warn-lag N] [--unreachable-after SECONDS] [--timeout SECONDS] [--json] [--prom FILE]
       lite-raft-client check --pkg NAME [--timeout SECONDS] [--json]

A monitoring plugin (Nagios, Icinga, Naemon, ...): asks the leader for its view of every
member and prints one status line, with performance data after "|":

  LITE-RAFT OK - leader host1 in term 5, 3/3 members reachable, max lag 0 | members=3 reachable=3;;2:;0;3 leader=1;;1:;0;1 commit=1234c max_lag=0;1000;;0 term=5c

It exits with the plugin convention's codes, NOT those of the other verbs:

  0  OK        a leader answered; every member is reachable and within --warn-lag
  1  WARNING   the quorum holds, but a member is unreachable or lags more than --warn-lag
  2  CRITICAL  no leader, the quorum is lost, or the leader did not answer in time
  3  UNKNOWN   no agent runs on this host (nothing to ask), or a bad option

  --warn-lag N                 entries a member may be behind the leader's log (default 1000)
  --unreachable-after SECONDS  a member the leader has not heard from for longer is unreachable
                               (default: the cluster's election timeout)
  --timeout SECONDS            how long to wait for the leader's answer (default 5; through
                               lite-raft-remote give 15: it tries each host for up to 5 s)
  --json                       print the result as one JSON object instead of the status line
  --prom FILE                  also write FILE (atomically) for node_exporter's textfile collector:
                               the check's state, the answering agent's counters (lite_raft_*)
                               and the failover packages; lite_raft_up 0 when no agent answered

check --pkg NAME judges a failover package instead (exit codes as above):

  LITE-RAFT PKG OK - web running on host4, standing by: host5 | generation=7c tick_age=0.3s;;;0 standbys=1;1:;;0

  0  OK        running, with a stand-by ready (a fresh report)
  1  WARNING   running with no stand-by, in maintenance, or starting
  2  CRITICAL  down (nobody runs it, or its state is failed, failing, halting), halted, or stop-failed
  3  UNKNOWN   not in the cluster, no agent to ask, or no answer

Performance data: members (voters and learners), reachable (critical below a majority of the
voters), leader (1 if there is one), commit (the leader's commit index), max_lag (entries,
warning above --warn-lag) and term; U where it could not be known.`

// checkOpts are check's options.
type checkOpts struct {
	warnLag     uint64
	unreachable time.Duration // 0: the election timeout the leader reports
	timeout     time.Duration
	json        bool
	pkg         string // check --pkg NAME: the package, not the cluster
	prom        string // check --prom FILE: the textfile to write too
}

// checkResult is what check found: its state and what it prints. A field unknown (no
// leader's answer) is nil, printed as U.
type checkResult struct {
	State       client.PluginState `json:"-"`
	StateName   string             `json:"state"`
	Code        int                `json:"code"`
	Summary     string             `json:"summary"`
	Leader      string             `json:"leader,omitempty"`
	Members     *int               `json:"members"`
	Reachable   *int               `json:"reachable"`
	Quorum      *int               `json:"quorum"` // reachable voters needed
	Commit      *uint64            `json:"commit"`
	MaxLag      *uint64            `json:"max_lag"`
	Term        *uint64            `json:"term"`
	Unreachable []string           `json:"unreachable,omitempty"`
	Lagging     []string           `json:"lagging,omitempty"`
	warnLag     uint64
}

func ptr[T any](v T) *T { return &v }

// checkVerb runs check. Its exit code is the plugin's (client.PluginState), never the
// table's: a bad option is UNKNOWN, not 10.
func checkVerb(c *cli.Context, o clientOpts, dial dialFunc, args []string) error {
	co, help, err := parseCheckArgs(o, args)
	if help {
		fmt.Fprintln(c.App.Writer, checkUsage)
		return nil
	}
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "lite-raft-client check: %v\n\n%s\n", err, checkUsage)
		return cli.Exit("", client.PluginUnknown.ExitCode())
	}
	if co.pkg != "" {
		return report(c, co.json, runPkgCheck(co, dial))
	}
	res := runCheck(co, dial)
	res.warnLag = co.warnLag
	if co.prom != "" {
		// the directory whose monitor locks say which monitors run here (the pkg/
		// folder's, or this one's: `pkg run` from either puts its lock in its temp/)
		monitorDir, _ := liteRaftDir(c)
		if err := writeProm(co.prom, gatherProm(co, dial, res, monitorDir)); err != nil {
			// the check's line still says what it found; the exit says the file is not
			// there to say it: a monitor's set-up that is wrong, UNKNOWN as a bad option
			report(c, co.json, res)
			fmt.Fprintf(c.App.ErrWriter, "lite-raft-client check: %v\n", err)
			return cli.Exit("", client.PluginUnknown.ExitCode())
		}
	}
	return report(c, co.json, res)
}

// pluginResult is a check's result: one line, or one JSON object, and its state.
type pluginResult interface {
	line() string
	state() client.PluginState
}

func (r checkResult) state() client.PluginState    { return r.State }
func (r pkgCheckResult) state() client.PluginState { return r.State }

// report prints r and exits with its state's code.
func report(c *cli.Context, asJSON bool, r pluginResult) error {
	if asJSON {
		b, _ := json.Marshal(r)
		fmt.Fprintln(c.App.Writer, string(b))
	} else {
		fmt.Fprintln(c.App.Writer, r.line())
	}
	if code := r.state().ExitCode(); code != 0 {
		return cli.Exit("", code)
	}
	return nil
}

func parseCheckArgs(o clientOpts, args []string) (co checkOpts, help bool, err error) {
	co = checkOpts{warnLag: 1000, timeout: 5 * time.Second, json: o.json}
	if o.timeoutSet {
		co.timeout = o.timeout
	}
	if o.stale {
		return co, false, errors.New("--stale does not apply: check needs the leader's view")
	}
	for len(args) > 0 {
		a := args[0]
		name, val, hasVal := strings.Cut(a, "=")
		switch name {
		case "-h", "--help", "help":
			return co, true, nil
		case "--json":
			co.json = true
			args = args[1:]
			continue
		case "--warn-lag", "--unreachable-after", "--timeout", "--pkg", "--prom":
		default:
			return co, false, fmt.Errorf("unknown option %q", a)
		}
		if !hasVal {
			if len(args) < 2 {
				return co, false, fmt.Errorf("%s needs a value", name)
			}
			val, args = args[1], args[1:]
		}
		args = args[1:]
		switch name {
		case "--prom":
			if val == "" || strings.HasSuffix(val, "/") {
				return co, false, fmt.Errorf("--prom %q: a file name", val)
			}
			co.prom = val
		case "--pkg":
			if val == "" || strings.Contains(val, "/") {
				return co, false, fmt.Errorf("--pkg %q: a package name", val)
			}
			co.pkg = val
		case "--warn-lag":
			if co.warnLag, err = strconv.ParseUint(val, 10, 64); err != nil {
				return co, false, fmt.Errorf("--warn-lag %q: not a number of entries", val)
			}
		default:
			secs, perr := strconv.ParseFloat(val, 64)
			if perr != nil || secs <= 0 || secs > 1e6 {
				return co, false, fmt.Errorf("%s %q: not a positive number of seconds", name, val)
			}
			d := time.Duration(secs * float64(time.Second))
			if name == "--timeout" {
				co.timeout = d
			} else {
				co.unreachable = d
			}
		}
	}
	if co.prom != "" && co.pkg != "" {
		return co, false, errors.New("--prom writes every package: give it without --pkg")
	}
	return co, false, nil
}

// runCheck asks for the leader's view (a status request that a follower forwards) and
// judges it. A request that got no usable answer becomes a state through
// client.PluginStateOf, from its exit code in the table.
func runCheck(co checkOpts, dial dialFunc) checkResult {
	ctx, cancel := context.WithTimeout(context.Background(), co.timeout)
	defer cancel()
	caller, closeFn, err := dial(ctx)
	if err != nil {
		e := &client.Error{Op: api.OpStatus, Outcome: client.NotSent, Failure: client.FailNoServer, Host: thisHost(), Err: err}
		return failedCheck(e.Code(), e.Error())
	}
	defer closeFn()
	resp, err := client.New(caller).Do(ctx, api.Request{Op: api.OpStatus})
	if err != nil {
		var ce *client.Error
		if errors.As(err, &ce) && ce.Host == "" {
			ce.Host = thisHost()
		}
		return failedCheck(client.ExitCodeOf(err), err.Error())
	}
	if resp.Code != api.CodeOK {
		return failedCheck(resp.Code, resp.Msg)
	}
	var st api.Status
	if err := json.Unmarshal(resp.JSON, &st); err != nil {
		return checkResult{State: client.PluginUnknown, Summary: fmt.Sprintf("unreadable status from the agent: %v", err)}
	}
	return evaluateStatus(st, co)
}

func failedCheck(code int, msg string) checkResult {
	state := client.PluginStateOf(code)
	what := "no answer from the leader"
	if state == client.PluginUnknown {
		what = "no agent to ask"
	}
	return checkResult{State: state, Summary: what + ": " + msg}
}

// evaluateStatus judges a status answer. Only the leader's answer lists the members
// (Nodes); an answer without a leader is from a member that knows none.
func evaluateStatus(st api.Status, co checkOpts) checkResult {
	res := checkResult{Commit: ptr(st.Commit), Term: ptr(st.Term), warnLag: co.warnLag}
	m, err := raftcore.DecodeMembership([]byte(st.Members))
	if err != nil {
		res.State, res.Summary = client.PluginUnknown, fmt.Sprintf("unreadable members %q in the status: %v", st.Members, err)
		return res
	}
	all := m.All()
	res.Members = ptr(len(all))
	if st.Leader == "" {
		res.State = client.PluginCritical
		res.Summary = fmt.Sprintf("no leader: %s is %s in term %d, members %s", st.ID, st.Role, st.Term, names(all))
		return res
	}
	if len(st.Nodes) == 0 {
		res.State = client.PluginUnknown
		res.Summary = fmt.Sprintf("%s answered as %s (leader %s) without the leader's view of the members", st.ID, st.Role, st.Leader)
		return res
	}
	res.Leader = st.Leader
	limit := co.unreachable
	if limit <= 0 {
		limit = time.Duration(st.ElectionTimeoutMs) * time.Millisecond
	}
	if limit <= 0 {
		limit = time.Second // an agent that does not say (an older build)
	}
	nodes := map[raftcore.NodeID]api.MemberStatus{}
	for _, n := range st.Nodes {
		nodes[raftcore.NodeID(n.Name)] = n
	}
	reach := map[raftcore.NodeID]bool{}
	var maxLag uint64
	for _, id := range all {
		n, ok := nodes[id]
		switch {
		case !ok:
			res.Unreachable = append(res.Unreachable, string(id)+" (not in the leader's view)")
		case n.Role == "leader" || time.Duration(n.LastContactMs)*time.Millisecond <= limit:
			reach[id] = true
		default:
			res.Unreachable = append(res.Unreachable, fmt.Sprintf("%s (last contact %v ago)", id,
				(time.Duration(n.LastContactMs)*time.Millisecond).Round(100*time.Millisecond)))
		}
		if ok {
			maxLag = max(maxLag, n.Lag)
			if n.Lag > co.warnLag {
				res.Lagging = append(res.Lagging, fmt.Sprintf("%s (%d entries behind, %s)", id, n.Lag, n.State))
			}
		}
	}
	res.Reachable, res.MaxLag = ptr(len(reach)), ptr(maxLag)
	// a joint configuration needs a majority of both sets
	quorum := true
	for _, set := range [][]raftcore.NodeID{m.Voters, m.Outgoing} {
		if len(set) == 0 {
			continue
		}
		n := 0
		for _, id := range set {
			if reach[id] {
				n++
			}
		}
		quorum = quorum && n > len(set)/2
	}
	res.Quorum = ptr(len(m.Voters)/2 + 1)
	head := fmt.Sprintf("leader %s in term %d, %d/%d members reachable, max lag %d", st.Leader, st.Term, len(reach), len(all), maxLag)
	var issues []string
	if len(res.Unreachable) > 0 {
		issues = append(issues, "unreachable: "+strings.Join(res.Unreachable, ", "))
	}
	if len(res.Lagging) > 0 {
		issues = append(issues, fmt.Sprintf("lagging more than %d: %s", co.warnLag, strings.Join(res.Lagging, ", ")))
	}
	switch {
	case !quorum:
		res.State = client.PluginCritical
		head = "quorum lost: " + head
	case len(issues) > 0:
		res.State = client.PluginWarning
	default:
		res.State = client.PluginOK
	}
	res.Summary = strings.Join(append([]string{head}, issues...), "; ")
	return res
}

func names(ids []raftcore.NodeID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, " ")
}

// line is the plugin's output: "LITE-RAFT STATE - summary | perfdata", each datum as
// label=value[unit];warn;crit;min;max, with U for a value not known.
func (r checkResult) line() string {
	num := func(p *uint64, unit string) string {
		if p == nil {
			return "U"
		}
		return strconv.FormatUint(*p, 10) + unit
	}
	count := func(p *int) string {
		if p == nil {
			return "U"
		}
		return strconv.Itoa(*p)
	}
	reachable := "U"
	if r.Reachable != nil && r.Quorum != nil && r.Members != nil {
		// critical below a majority of the voters; at most every member
		reachable = fmt.Sprintf("%d;;%d:;0;%d", *r.Reachable, *r.Quorum, *r.Members)
	}
	leader := "U"
	switch {
	case r.Leader != "":
		leader = "1"
	case r.Term != nil: // an agent answered: it knows no leader
		leader = "0"
	}
	perf := []string{
		"members=" + count(r.Members),
		"reachable=" + reachable,
		"leader=" + leader + ";;1:;0;1",
		"commit=" + num(r.Commit, "c"),
		fmt.Sprintf("max_lag=%s;%d;;0", num(r.MaxLag, ""), r.warnLag),
		"term=" + num(r.Term, "c"),
	}
	// one line: a monitor keeps only the first, and "|" starts the performance data
	summary := strings.NewReplacer("\n", " ", "|", "/").Replace(r.Summary)
	return fmt.Sprintf("LITE-RAFT %s - %s | %s", r.State, summary, strings.Join(perf, " "))
}

// MarshalJSON fills in the state's name and code.
func (r checkResult) MarshalJSON() ([]byte, error) {
	type plain checkResult
	p := plain(r)
	p.StateName, p.Code = r.State.String(), r.State.ExitCode()
	return json.Marshal(p)
}
