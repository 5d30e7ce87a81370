package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"lite-raft/client"
	"lite-raft/failover"
	"lite-raft/failover/decide"
)

// pkgCheckResult is what check --pkg NAME found of a package: the plugin's state, a
// summary, and what the performance data says (nil: not known, printed U).
type pkgCheckResult struct {
	State      client.PluginState `json:"-"`
	StateName  string             `json:"state"`
	Code       int                `json:"code"`
	Summary    string             `json:"summary"`
	Package    string             `json:"package"`
	Owner      string             `json:"owner,omitempty"`
	PkgState   string             `json:"package_state,omitempty"`
	Generation *int64             `json:"generation"`
	TickAge    *float64           `json:"tick_age_seconds"`
	Standbys   *int               `json:"standbys"`
}

// runPkgCheck reads package p through caller (the same store every pkg verb reads) and
// judges it: OK running with a stand-by ready, WARNING without one or in maintenance (or
// starting), CRITICAL down, halted or stop-failed, UNKNOWN when it cannot tell.
func runPkgCheck(co checkOpts, dial dialFunc) pkgCheckResult {
	ctx, cancel := context.WithTimeout(context.Background(), co.timeout)
	defer cancel()
	res := pkgCheckResult{Package: co.pkg}
	caller, closeFn, err := dial(ctx)
	if err != nil {
		res.State, res.Summary = client.PluginUnknown, "no agent to ask: "+err.Error()
		return res
	}
	defer closeFn()
	s := failover.NewStore(client.New(caller), co.timeout)
	info, err := collectPkg(ctx, s, co.pkg, false)
	if err != nil {
		res.State, res.Summary = client.PluginStateOf(client.ExitCodeOf(err)), "no answer from the cluster: "+err.Error()
		if res.State == client.PluginOK {
			res.State = client.PluginUnknown
		}
		return res
	}
	return judgePkg(info)
}

// judgePkg is check --pkg's rule, apart from the reading so that a test can feed it.
func judgePkg(info pkgInfo) pkgCheckResult {
	standing := info.standingBy()
	res := pkgCheckResult{Package: info.Name, Owner: info.Owner, PkgState: info.State, Generation: info.Generation,
		TickAge: info.TickAge, Standbys: ptr(len(standing))}
	on := func() string {
		if len(standing) == 0 {
			return "no stand-by"
		}
		return "standing by: " + strings.Join(standing, ",")
	}
	switch st := decide.State(info.State); {
	case info.Tick == nil:
		res.State, res.Summary = client.PluginUnknown, fmt.Sprintf("package %s is not in the cluster (pkg init %s)", info.Name, info.Name)
		res.Standbys = nil
	case info.Halted:
		res.State, res.Summary = client.PluginCritical, fmt.Sprintf("%s is halted (pkg halt): it runs nowhere; pkg resume %s lifts it", info.Name, info.Name)
	case st == decide.StopFailed:
		res.State, res.Summary = client.PluginCritical, fmt.Sprintf("%s: its stop FAILED on %s, where it may still run: fence it or pkg confirm-stopped", info.Name, orNobody(info.Owner))
	case info.Owner == "":
		res.State, res.Summary = client.PluginCritical, fmt.Sprintf("%s is down: nobody runs it (state %s), %s", info.Name, orDash(info.State), on())
	case !info.Enabled:
		res.State, res.Summary = client.PluginWarning, fmt.Sprintf("%s in maintenance (pkg disable) on %s, state %s", info.Name, info.Owner, orDash(info.State))
	case st == decide.Starting:
		res.State, res.Summary = client.PluginWarning, fmt.Sprintf("%s starting on %s, %s", info.Name, info.Owner, on())
	case st != decide.Running:
		res.State, res.Summary = client.PluginCritical, fmt.Sprintf("%s is %s on %s, %s", info.Name, orDash(info.State), info.Owner, on())
	case len(standing) == 0:
		res.State, res.Summary = client.PluginWarning, fmt.Sprintf("%s running on %s with no stand-by: nothing takes it over if %s fails", info.Name, info.Owner, info.Owner)
	default:
		res.State, res.Summary = client.PluginOK, fmt.Sprintf("%s running on %s, %s", info.Name, info.Owner, on())
	}
	return res
}

// line is the plugin's output, with performance data: the generation (a counter), the
// tick's age as a fresh stand-by saw it (U without one) and the stand-bys (warning
// below 1).
func (r pkgCheckResult) line() string {
	gen, age, sb := "U", "U", "U"
	if r.Generation != nil {
		gen = strconv.FormatInt(*r.Generation, 10) + "c"
	}
	if r.TickAge != nil {
		age = strconv.FormatFloat(*r.TickAge, 'f', -1, 64) + "s"
	}
	if r.Standbys != nil {
		sb = strconv.Itoa(*r.Standbys)
	}
	summary := strings.NewReplacer("\n", " ", "|", "/").Replace(r.Summary)
	return fmt.Sprintf("LITE-RAFT PKG %s - %s | generation=%s tick_age=%s;;;0 standbys=%s;1:;;0", r.State, summary, gen, age, sb)
}

// MarshalJSON fills in the state's name and code.
func (r pkgCheckResult) MarshalJSON() ([]byte, error) {
	type plain pkgCheckResult
	p := plain(r)
	p.StateName, p.Code = r.State.String(), r.State.ExitCode()
	return json.Marshal(p)
}
