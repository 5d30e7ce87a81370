package client

import (
	"testing"

	"lite-raft/api"
)

// TestPluginStates: check's states and their exit codes are the Nagios plugin
// convention's, and a failed status request maps to one through the table's code: 12 (no
// agent where check asked) is UNKNOWN, every other failure CRITICAL.
func TestPluginStates(t *testing.T) {
	for s, want := range map[PluginState]struct {
		code int
		name string
	}{PluginOK: {0, "OK"}, PluginWarning: {1, "WARNING"}, PluginCritical: {2, "CRITICAL"}, PluginUnknown: {3, "UNKNOWN"}, 7: {3, "state(7)"}} {
		if s.ExitCode() != want.code || s.String() != want.name {
			t.Errorf("state %d: exit %d %q; want %d %q", int(s), s.ExitCode(), s, want.code, want.name)
		}
	}
	for code, want := range map[int]PluginState{api.CodeOK: PluginOK, api.CodeNoServer: PluginUnknown, api.CodeFailed: PluginCritical,
		api.CodeNoLeader: PluginCritical, api.CodeTimeout: PluginCritical, api.CodeUsage: PluginCritical} {
		if got := PluginStateOf(code); got != want {
			t.Errorf("PluginStateOf(%d) = %s; want %s", code, got, want)
		}
	}
}
