package api_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"lite-raft/api"
	"lite-raft/api/apitest"
)

// checkCatalogue lists what is half-declared in entries.
func checkCatalogue(entries []api.OpInfo) []string {
	var bad []string
	names, ops, cmds := map[string]bool{}, map[api.Op]bool{}, map[uint8]bool{}
	maxCmd, maxReq := api.FenceCommands, max(api.FenceRequests, api.TokenRequests)
	cmds[api.FenceCommand], cmds[api.RebaseCommand], cmds[api.LeaseKeepCommand] = true, true, true
	maxCmd = max(maxCmd, api.RebaseCommands, api.LeaseKeepCommands, api.StampCommands)
	maxReq = max(maxReq, api.FirstSentRequests)
	for _, s := range api.Successors() {
		if cmds[s.Command] || s.Command == 0 {
			bad = append(bad, fmt.Sprintf("successor of %s: command %d taken, or none", s.Op, s.Command))
		}
		cmds[s.Command] = true
		maxCmd = max(maxCmd, s.Commands)
		if s.Commands > api.CommandVersion {
			bad = append(bad, fmt.Sprintf("successor of %s: command version %d beyond api.CommandVersion %d", s.Op, s.Commands, api.CommandVersion))
		}
	}
	for _, e := range entries {
		say := func(f string, a ...any) {
			bad = append(bad, fmt.Sprintf("op %d (%q): ", e.Op, e.Name)+fmt.Sprintf(f, a...))
		}
		if e.Op == 0 || ops[e.Op] {
			say("no wire number, or one taken")
		}
		if e.Name == "" || names[e.Name] {
			say("no name, or one taken")
		}
		ops[e.Op], names[e.Name] = true, true
		if e.Kind < api.Read || e.Kind > api.Local {
			say("no kind")
		}
		if e.Access < api.AccessRead || e.Access > api.AccessAdmin {
			say("no access")
		}
		if e.Verb == "" || strings.ContainsAny(e.Verb, " \t") {
			say("no verb for ssh-command --allow")
		}
		if e.Requests < 1 || e.Requests > api.RequestVersion {
			say("request version %d: want 1 to %d", e.Requests, api.RequestVersion)
		}
		maxReq = max(maxReq, e.Requests)
		if (e.Command != 0) != (e.Commands != 0) {
			say("a command without its version, or a version without a command")
		}
		if e.Command != 0 {
			if cmds[e.Command] {
				say("command %d proposed by two ops", e.Command)
			}
			cmds[e.Command] = true
			if e.Kind != api.Write || !e.Leader {
				say("proposes a command but is not a write served by the leader")
			}
			if e.Commands > api.CommandVersion {
				say("command version %d beyond api.CommandVersion %d", e.Commands, api.CommandVersion)
			}
			maxCmd = max(maxCmd, e.Commands)
		}
		if e.Kind == api.Local && e.Leader {
			say("local, yet served by the leader")
		}
		if e.Key == api.KeyOrLease && e.Arg != api.ArgLease {
			say("a key-or-lease shape wants a lease argument")
		}
		if e.Arg == api.ArgPiece && e.Host != api.HostMember {
			say("a snapshot piece names the member holding it")
		}
		if e.Fence && (e.Command == 0 || e.Kind != api.Write) {
			say("a fence makes a write of the state machine conditional: not this op")
		}
		if e.Txn && (e.Command == 0 || e.Kind != api.Write) {
			say("a transaction is a write of the state machine: not this op")
		}
		if e.Cond && e.CondValue {
			say("Cond carries CondValue already")
		}
		if e.Stale == api.StaleLocal && e.Kind != api.Read {
			say("--stale serves only reads locally")
		}
		if e.Token && e.Arg != api.ArgLease {
			say("a token is a lease's: this op names none")
		}
		if s, ok := api.SuccessorOf(e.Op); ok && (e.Command == 0 || s.Commands <= e.Commands) {
			say("a successor of a command it does not propose, or of no newer version")
		}
	}
	if maxCmd != api.CommandVersion {
		bad = append(bad, fmt.Sprintf("CommandVersion is %d, the newest command's version %d", api.CommandVersion, maxCmd))
	}
	if maxReq != api.RequestVersion {
		bad = append(bad, fmt.Sprintf("RequestVersion is %d, the newest op's version %d", api.RequestVersion, maxReq))
	}
	return bad
}

// TestCatalogue: every entry declared whole, and each op's request survives the wire
// with every field its shape names.
func TestCatalogue(t *testing.T) {
	for _, b := range checkCatalogue(api.Ops()) {
		t.Error(b)
	}
	for _, e := range api.Ops() {
		if got, _ := e.Op.Info(); got.Name != e.Name || e.Op.String() != e.Name || api.IsWrite(e.Op) != (e.Kind == api.Write) {
			t.Errorf("%s: lookups disagree with the entry", e.Name)
		}
		r := apitest.Sample(e)
		got, err := api.DecodeRequest(r.Encode())
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("%s: %+v comes back as %+v, %v", e.Name, r, got, err)
		}
		if err := r.Validate(); err != nil {
			t.Errorf("%s: a whole request is refused: %v", e.Name, err)
		}
	}
	for _, e := range api.Ops() {
		if !e.Fence {
			continue
		}
		r := apitest.Sample(e)
		r.FenceName, r.FenceGen = "locks/job", 7
		got, err := api.DecodeRequest(r.Encode())
		if err != nil || !reflect.DeepEqual(got, r) || got.RequestVersion() != api.FenceRequests {
			t.Errorf("%s --fence: %+v comes back as %+v, %v", e.Name, r, got, err)
		}
	}
	for _, e := range api.Ops() {
		if !e.Token {
			continue
		}
		r := apitest.Sample(e)
		r.Token = 1<<63 | 11
		got, err := api.DecodeRequest(r.Encode())
		if err != nil || !reflect.DeepEqual(got, r) || got.RequestVersion() != api.TokenRequests || got.Validate() != nil {
			t.Errorf("%s with a token: %+v comes back as %+v, %v", e.Name, r, got, err)
		}
	}
	if api.Op(12).Known() || api.Op(0).Known() || api.IsWrite(200) {
		t.Error("12 (retired), 0 or 200 taken as known")
	}
}

// TestCatalogueCheckCatchesHalfDeclared: the check above fails on entries with a part
// missing (planted: each would pass the build).
func TestCatalogueCheckCatchesHalfDeclared(t *testing.T) {
	plant := map[string]func(e *api.OpInfo){
		"no kind":                       func(e *api.OpInfo) { e.Kind = 0 },
		"command without version":       func(e *api.OpInfo) { e.Commands = 0 },
		"version beyond CommandVersion": func(e *api.OpInfo) { e.Commands = api.CommandVersion + 1 },
		"a command that is a read":      func(e *api.OpInfo) { e.Kind = api.Read },
		"no request version":            func(e *api.OpInfo) { e.Requests = 0 },
		"no access":                     func(e *api.OpInfo) { e.Access = 0 },
		"no verb":                       func(e *api.OpInfo) { e.Verb = "" },
	}
	for name, f := range plant {
		entries := api.Ops()
		for i := range entries {
			if entries[i].Op == api.OpSet {
				f(&entries[i])
			}
		}
		if bad := checkCatalogue(entries); len(bad) == 0 {
			t.Errorf("planted %s: not caught", name)
		} else if !strings.Contains(strings.Join(bad, "\n"), `"set"`) && name != "version beyond CommandVersion" {
			t.Errorf("planted %s: caught as %v", name, bad)
		}
	}
}

// TestParseAllow: --allow's words give the ops of their verbs, check the status, a
// class every op of that access or less; an unknown word or an empty list is refused.
func TestParseAllow(t *testing.T) {
	a, err := api.ParseAllow("get, list,status,check,watch")
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []api.Op{api.OpGet, api.OpList, api.OpListValues, api.OpStatus, api.OpWatchLog} {
		if !a.Permits(op) {
			t.Errorf("get,list,status,check,watch does not permit %s", op)
		}
	}
	for _, op := range []api.Op{api.OpSet, api.OpUnset, api.OpSnapshot, api.OpSnapshotRead, api.OpDelMember, api.OpTxn, api.OpExists, api.OpCounterRaise} {
		if a.Permits(op) {
			t.Errorf("get,list,status,check,watch permits %s", op)
		}
	}
	if a.String() != "get,list,status,check,watch" {
		t.Errorf("String() = %q", a.String())
	}
	// each verb's word lets through every op the verb itself sends: a lock renews and
	// releases its lease, set --keep-alive renews, list -r pages with get --prefix
	for word, ops := range map[string][]api.Op{
		"lock": {api.OpLockAcquire, api.OpLeaseKeep, api.OpRevoke},
		"set":  {api.OpSet, api.OpSetLease, api.OpLeaseKeep},
		"list": {api.OpList, api.OpListValues, api.OpGetPrefix},
	} {
		w, err := api.ParseAllow(word)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range ops {
			if !w.Permits(op) {
				t.Errorf("--allow %s does not permit %s, which %s sends", word, op, word)
			}
		}
	}
	r, err := api.ParseAllow("read")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range api.Ops() {
		if r.Permits(e.Op) != (e.Access == api.AccessRead) {
			t.Errorf("read: %s (access %d) permitted %v", e.Name, e.Access, r.Permits(e.Op))
		}
	}
	for _, bad := range []string{"", ",", "get,sett", "all", "get list"} {
		if _, err := api.ParseAllow(bad); err == nil {
			t.Errorf("ParseAllow(%q) accepted", bad)
		}
	}
}
