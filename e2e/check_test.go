package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"lite-raft/api"
	"lite-raft/internal/harness"
)

// expectCheck polls `cmd` (a check) on h until it exits with code and its status line
// starts with prefix and holds every one of has, and returns that line.
func (c *cluster) expectCheck(h *harness.Host, cmd string, code int, prefix string, within time.Duration, has ...string) string {
	c.t.Helper()
	var line string
	c.eventually(within, h.Name+": "+cmd+" giving "+prefix, func() (bool, string) {
		out, errOut, got := c.lr(h, cmd)
		line = strings.TrimSpace(out)
		ok := got == code && strings.HasPrefix(line, prefix) && strings.Count(line, "\n") == 0
		for _, s := range has {
			ok = ok && strings.Contains(line, s)
		}
		return ok, fmt.Sprintf("exit %d: %s %s", got, line, errOut)
	})
	return line
}

// TestCheckPlugin: lite-raft-client check gives the monitoring plugin's codes on real
// hosts: 0 for a healthy cluster (from a follower, and through lite-raft-remote from
// outside), 3 on a host with no agent, 1 once a follower is powered off (the quorum
// holds), 2 once a second one is (the quorum is lost).
func TestCheckPlugin(t *testing.T) {
	c := newCluster(t, 4, 3, "1", 1000)
	members, outside := c.Hosts[:3], c.Hosts[3]
	for _, h := range members {
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(members, 20*time.Second)
	os.WriteFile(filepath.Join(outside.Dir, "conf", "remote_hosts"), []byte("host1 host2 host3\n"), 0o644)
	os.Remove(filepath.Join(outside.Dir, "conf", "cluster_nodes"))
	c.must(lead, "./lite-raft-client set some data")
	fs := others(members, lead)

	healthy := "members=3 reachable=3;;2:;0;3 leader=1;;1:;0;1 commit="
	line := c.expectCheck(fs[0], "./lite-raft-client check", 0, "LITE-RAFT OK - leader "+lead.Name, 10*time.Second, healthy)
	t.Logf("healthy: %s", line)
	c.expectCheck(outside, "./lite-raft-remote check --timeout 10", 0, "LITE-RAFT OK - leader "+lead.Name, 10*time.Second, healthy)
	line = c.expectCheck(outside, "./lite-raft-client check", 3, "LITE-RAFT UNKNOWN - no agent to ask", 5*time.Second)
	t.Logf("no agent: %s", line)
	c.checkProm(lead, fs[0], outside)
	// status (issue 28): every member's data and disk size in the leader's table, as
	// each says them on its streams (at its start, then every 10 s)
	c.eventually(15*time.Second, "every member's sizes in the leader's status", func() (bool, string) {
		out, _, _ := c.lr(lead, "./lite-raft-client --json status")
		var st api.Status
		if json.Unmarshal([]byte(out), &st) != nil || len(st.Nodes) != len(members) {
			return false, out
		}
		for _, n := range st.Nodes {
			if n.DiskBytes == 0 || n.DataBytes == 0 {
				return false, out
			}
		}
		return true, ""
	})
	if out, _, _ := c.lr(lead, "./lite-raft-client status"); !strings.Contains(out, "DATA") || !strings.Contains(out, "DISK") || !strings.Contains(out, "RTT") {
		t.Errorf("no DATA, DISK and RTT columns in status:\n%s", out)
	}

	down := fs[0]
	if err := down.PowerOff(); err != nil {
		t.Fatal(err)
	}
	line = c.expectCheck(lead, "./lite-raft-client check", 1, "LITE-RAFT WARNING - leader "+lead.Name, 15*time.Second,
		"2/3 members reachable", "unreachable: "+down.Name, "reachable=2;;2:;0;3")
	t.Logf("one member down: %s", line)
	c.expectCheck(fs[1], "./lite-raft-client check", 1, "LITE-RAFT WARNING", 10*time.Second)
	c.expectCheck(outside, "./lite-raft-remote check --timeout 15", 1, "LITE-RAFT WARNING", 30*time.Second)

	if err := fs[1].PowerOff(); err != nil {
		t.Fatal(err)
	}
	// the leader's view without a quorum, or, once check-quorum made it step down, no
	// leader at all: CRITICAL either way, and in the end the latter
	line = c.expectCheck(lead, "./lite-raft-client check", 2, "LITE-RAFT CRITICAL", 15*time.Second)
	t.Logf("quorum lost: %s", line)
	line = c.expectCheck(lead, "./lite-raft-client check", 2, "LITE-RAFT CRITICAL - no leader", 15*time.Second, "leader=0;;1:;0;1")
	t.Logf("then: %s", line)
	c.expectCheck(outside, "./lite-raft-remote check --timeout 20", 2, "LITE-RAFT CRITICAL", 40*time.Second)
}

// promFile runs check --prom on h, which must exit with code, and parses the textfile
// with Prometheus' own parser.
func (c *cluster) promFile(h *harness.Host, code int) map[string]*dto.MetricFamily {
	c.t.Helper()
	out, errOut, got := c.lr(h, "mkdir -p textfile && ./lite-raft-client check --prom textfile/lite_raft.prom")
	if got != code {
		c.t.Fatalf("%s: check --prom: exit %d, want %d: %s %s", h.Name, got, code, out, errOut)
	}
	b, err := os.ReadFile(filepath.Join(h.Dir, "textfile", "lite_raft.prom"))
	if err != nil {
		c.t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		c.t.Fatalf("%s: the textfile does not parse: %v\n%s", h.Name, err, b)
	}
	return fams
}

// promSample is the value of family name's sample with label (name, value) if given:
// a gauge's or counter's value, a histogram's count; -1 when there is none.
func promSample(fams map[string]*dto.MetricFamily, name string, label ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		if len(label) == 2 {
			found := false
			for _, l := range m.Label {
				found = found || (l.GetName() == label[0] && l.GetValue() == label[1])
			}
			if !found {
				continue
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// checkProm (issue 28): check --prom on real hosts: a follower's textfile parses and
// says it has a leader and is not it, with saves timed; its data size grows by a 1 MB
// value once applied; the leader's has every member's lag and an awkward package name
// escaped; a host with no agent writes lite_raft_up 0.
func (c *cluster) checkProm(lead, follower, outside *harness.Host) {
	t := c.t
	t.Helper()
	fams := c.promFile(follower, 0)
	for name, want := range map[string]float64{"lite_raft_up": 1, "lite_raft_has_leader": 1, "lite_raft_is_leader": 0, "lite_raft_packages_up": 1} {
		if got := promSample(fams, name); got != want {
			t.Errorf("%s: %s %v, want %v", follower.Name, name, got, want)
		}
	}
	if n := promSample(fams, "lite_raft_fsync_seconds"); n < 1 {
		t.Errorf("%s: %v fsyncs timed after writes", follower.Name, n)
	}
	if promSample(fams, "lite_raft_member_lag_entries") != -1 {
		t.Errorf("%s: a follower wrote the members' lag", follower.Name)
	}
	before := promSample(fams, "lite_raft_data_bytes")
	c.must(lead, "head -c 1000000 /dev/zero | tr '\\0' x | ./lite-raft-client set prom/big -")
	// a key a package's could be, that the format must escape
	c.must(lead, `./lite-raft-client set 'packages/we"b\x/owner' `+lead.Name)
	c.eventually(10*time.Second, follower.Name+": data_bytes grown by the 1 MB value", func() (bool, string) {
		after := promSample(c.promFile(follower, 0), "lite_raft_data_bytes")
		return after >= before+1_000_000, fmt.Sprintf("data_bytes %v, before %v", after, before)
	})
	fams = c.promFile(lead, 0)
	if promSample(fams, "lite_raft_is_leader") != 1 || promSample(fams, "lite_raft_apply_seconds") < 1 {
		t.Errorf("%s: is_leader %v, applies %v", lead.Name, promSample(fams, "lite_raft_is_leader"), promSample(fams, "lite_raft_apply_seconds"))
	}
	for _, h := range c.Hosts[:3] {
		if lag := promSample(fams, "lite_raft_member_lag_entries", "member", h.Name); lag < 0 {
			t.Errorf("%s: no lag for member %s", lead.Name, h.Name)
		}
	}
	if got := promSample(fams, "lite_raft_package_owner", "package", `we"b\x`); got != 1 {
		t.Errorf("%s: owner of the awkward package: %v", lead.Name, got)
	}
	fams = c.promFile(outside, 3)
	if promSample(fams, "lite_raft_up") != 0 || promSample(fams, "lite_raft_check_state") != 3 || len(fams) != 2 {
		t.Errorf("%s (no agent): %v", outside.Name, fams)
	}
}
