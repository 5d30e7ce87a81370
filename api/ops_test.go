package api

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// checkCatalogue lists what is half-declared in entries.
func checkCatalogue(entries []OpInfo) []string {
	var bad []string
	names, ops, cmds := map[string]bool{}, map[Op]bool{}, map[uint8]bool{}
	maxCmd, maxReq := 0, 0
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
		if e.Kind < Read || e.Kind > Local {
			say("no kind")
		}
		if e.Access < AccessRead || e.Access > AccessAdmin {
			say("no access")
		}
		if e.Requests < 1 || e.Requests > RequestVersion {
			say("request version %d: want 1 to %d", e.Requests, RequestVersion)
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
			if e.Kind != Write || !e.Leader {
				say("proposes a command but is not a write served by the leader")
			}
			if e.Commands > CommandVersion {
				say("command version %d beyond CommandVersion %d", e.Commands, CommandVersion)
			}
			maxCmd = max(maxCmd, e.Commands)
		}
		if e.Kind == Local && e.Leader {
			say("local, yet served by the leader")
		}
		if e.Key == KeyOrLease && e.Arg != ArgLease {
			say("a key-or-lease shape wants a lease argument")
		}
		if e.Arg == ArgPiece && e.Host != HostMember {
			say("a snapshot piece names the member holding it")
		}
		if e.Cond && e.CondValue {
			say("Cond carries CondValue already")
		}
		if e.Stale == StaleLocal && e.Kind != Read {
			say("--stale serves only reads locally")
		}
	}
	if maxCmd != CommandVersion {
		bad = append(bad, fmt.Sprintf("CommandVersion is %d, the newest command's version %d", CommandVersion, maxCmd))
	}
	if maxReq != RequestVersion {
		bad = append(bad, fmt.Sprintf("RequestVersion is %d, the newest op's version %d", RequestVersion, maxReq))
	}
	return bad
}

// TestCatalogue: every entry declared whole, and each op's request survives the wire
// with every field its shape names.
func TestCatalogue(t *testing.T) {
	for _, b := range checkCatalogue(catalogue[:]) {
		t.Error(b)
	}
	for _, e := range catalogue {
		if got, _ := e.Op.Info(); got.Name != e.Name || e.Op.String() != e.Name || IsWrite(e.Op) != (e.Kind == Write) {
			t.Errorf("%s: lookups disagree with the entry", e.Name)
		}
		r := sample(e)
		got, err := DecodeRequest(r.Encode())
		if err != nil || !reflect.DeepEqual(normal(got), normal(r)) {
			t.Errorf("%s: %+v comes back as %+v, %v", e.Name, r, got, err)
		}
		if err := r.Validate(); err != nil {
			t.Errorf("%s: a whole request is refused: %v", e.Name, err)
		}
	}
	if Op(12).Known() || Op(0).Known() || IsWrite(Op(200)) {
		t.Error("12 (retired), 0 or 200 taken as known")
	}
}

// TestCatalogueCheckCatchesHalfDeclared: the check above fails on entries with a part
// missing (planted: each would pass the build).
func TestCatalogueCheckCatchesHalfDeclared(t *testing.T) {
	plant := map[string]func(e *OpInfo){
		"no kind":                       func(e *OpInfo) { e.Kind = 0 },
		"command without version":       func(e *OpInfo) { e.Commands = 0 },
		"version beyond CommandVersion": func(e *OpInfo) { e.Commands = CommandVersion + 1 },
		"a command that is a read":      func(e *OpInfo) { e.Kind = Read },
		"no request version":            func(e *OpInfo) { e.Requests = 0 },
		"no access":                     func(e *OpInfo) { e.Access = 0 },
	}
	for name, f := range plant {
		entries := Ops()
		for i := range entries {
			if entries[i].Op == OpSet {
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

// sample is a request of e's op with every field its shape names set.
func sample(e OpInfo) Request {
	r := Request{Op: e.Op, ClientID: 7, Seq: 2, TimeoutMs: 1000}
	switch e.Key {
	case KeyRequired, KeyDir, KeyOrLease:
		r.Key = "a/b"
	case KeyPattern:
		r.Key = "a/"
	}
	if e.Value {
		r.Value = []byte("v")
	}
	if e.Cond {
		r.Cond, r.CondValue = "-lt", []byte("3")
	}
	if e.CondValue {
		r.CondValue = []byte("old")
	}
	switch e.Host {
	case HostMember:
		r.Member = "h2"
	case HostHolder:
		r.Holder = "root@h1 pid 1"
	}
	switch e.Arg {
	case ArgSteps:
		r.Steps = 4
	case ArgTTL:
		r.TTLMs = 3000
	case ArgLease:
		r.Lease = 9
	case ArgFrom:
		r.From, r.FromSet = 0, true
	case ArgPiece:
		r.Backup, r.Offset = "3.1", 1<<20
	}
	return r
}
