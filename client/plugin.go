package client

import (
	"fmt"

	"lite-raft/api"
)

// PluginState is the result of `lite-raft-client check` (and lite-raft-remote check), which
// monitoring systems run as a plugin. Its exit code follows the Nagios/Icinga plugin
// convention, NOT the table of ExitCode: a monitoring system reads 0-3 and nothing else
// (it takes 4 and above as UNKNOWN), so check never exits with the other verbs' codes.
//
//	code  state     when
//	0     OK        a leader answered; every member reachable and within the lag allowed
//	1     WARNING   quorum held, but a member is unreachable or lags (check's thresholds)
//	2     CRITICAL  no leader, quorum lost, or the leader could not be asked (any failure
//	                of the status request other than the ones below: 1, 11, 2, ...)
//	3     UNKNOWN   no agent on this host (the request's code is 12: nothing to ask), or
//	                check itself was misused (a bad option)
//
// PluginStateOf is the one place a failed request becomes a state; the states that need a
// leader's answer are decided from it by the thresholds (cmd/lite-raft/check.go).
type PluginState int

const (
	PluginOK       PluginState = 0
	PluginWarning  PluginState = 1
	PluginCritical PluginState = 2
	PluginUnknown  PluginState = 3
)

func (s PluginState) String() string {
	switch s {
	case PluginOK:
		return "OK"
	case PluginWarning:
		return "WARNING"
	case PluginCritical:
		return "CRITICAL"
	case PluginUnknown:
		return "UNKNOWN"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// ExitCode is the plugin's exit code for s.
func (s PluginState) ExitCode() int {
	if s < PluginOK || s > PluginUnknown {
		return int(PluginUnknown)
	}
	return int(s)
}

// PluginStateOf is the state of a check whose status request got no usable answer, from
// the request's exit code in the table (ExitCode, or the code an agent answered with): 12
// says no agent runs where check asked, so there is nothing to judge the cluster by
// (UNKNOWN); any other failure means the cluster could not produce a leader's view in
// time, which is what CRITICAL is for.
func PluginStateOf(code int) PluginState {
	switch code {
	case api.CodeOK:
		return PluginOK
	case api.CodeNoServer:
		return PluginUnknown
	}
	return PluginCritical
}
