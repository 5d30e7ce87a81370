package main

import (
	"strings"
	"testing"

	"lite-raft/client"
)

// TestJudgePkg: check --pkg's states, one row per rule, and the performance data.
func TestJudgePkg(t *testing.T) {
	one, gen, age := int64(3), int64(7), 0.3
	fresh := []pkgStandby{{Host: "b", Fresh: true}}
	stale := []pkgStandby{{Host: "b", Fresh: false}}
	base := pkgInfo{Name: "web", Owner: "a", State: "running", Tick: &one, Generation: &gen, TickAge: &age, Enabled: true, Standbys: fresh}
	with := func(f func(*pkgInfo)) pkgInfo { p := base; f(&p); return p }
	for _, tc := range []struct {
		name string
		info pkgInfo
		want client.PluginState
		has  string
	}{
		{"running with a stand-by", base, client.PluginOK, "web running on a, standing by: b"},
		{"no fresh stand-by", with(func(p *pkgInfo) { p.Standbys = stale }), client.PluginWarning, "no stand-by"},
		{"maintenance", with(func(p *pkgInfo) { p.Enabled = false }), client.PluginWarning, "maintenance"},
		{"starting", with(func(p *pkgInfo) { p.State = "starting" }), client.PluginWarning, "starting on a"},
		{"down", with(func(p *pkgInfo) { p.Owner, p.State = "", "failed" }), client.PluginCritical, "down: nobody runs it (state failed)"},
		{"failing", with(func(p *pkgInfo) { p.State = "failing" }), client.PluginCritical, "is failing on a"},
		{"halted", with(func(p *pkgInfo) { p.Halted, p.Owner, p.State = true, "", "halted" }), client.PluginCritical, "halted"},
		{"stop-failed", with(func(p *pkgInfo) { p.State = "stop-failed" }), client.PluginCritical, "stop FAILED on a"},
		{"not in the cluster", pkgInfo{Name: "web"}, client.PluginUnknown, "not in the cluster"},
	} {
		r := judgePkg(tc.info)
		if r.State != tc.want || !strings.Contains(r.Summary, tc.has) {
			t.Errorf("%s: %s %q, want %s with %q", tc.name, r.State, r.Summary, tc.want, tc.has)
		}
	}
	if got := judgePkg(base).line(); got != "LITE-RAFT PKG OK - web running on a, standing by: b | generation=7c tick_age=0.3s;;;0 standbys=1;1:;;0" {
		t.Errorf("line: %q", got)
	}
	if got := judgePkg(pkgInfo{Name: "web"}).line(); !strings.HasSuffix(got, "| generation=U tick_age=U;;;0 standbys=U;1:;;0") {
		t.Errorf("line with nothing known: %q", got)
	}
}
