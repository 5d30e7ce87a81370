package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/failover"
	"lite-raft/internal/lockfile"
	"lite-raft/statefile"
)

// check --prom FILE writes what check found, with the answering agent's own counters and
// the failover packages, in the text format of node_exporter's textfile collector. The
// format is written here, by hand: Prometheus' client library would more than double
// what every host installs for a few dozen lines of text. The tests parse the output
// with Prometheus' own parser.

// promInput is everything a textfile is made from; the writer reads no clock and no
// agent, so that a test can feed it.
type promInput struct {
	check checkResult
	// local is the answering agent's own status (nil: it did not answer)
	local *api.Status
	// pkgs are the packages, pkgsRead whether they could be read; monitors, which of
	// them have a monitor running on this host (nil: not known)
	pkgs     []pkgInfo
	pkgsRead bool
	monitors map[string]bool
	now      time.Time
}

// promText builds the text format: one family at a time, each with its HELP and TYPE.
type promText struct {
	b strings.Builder
}

func (p *promText) family(name, typ, help string) {
	fmt.Fprintf(&p.b, "# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(help), name, typ)
}

// sample writes one line; labels are name, value pairs.
func (p *promText) sample(name string, v float64, labels ...string) {
	p.b.WriteString(name)
	if len(labels) > 0 {
		p.b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				p.b.WriteByte(',')
			}
			p.b.WriteString(labels[i])
			p.b.WriteString(`="`)
			p.b.WriteString(escapeLabel(labels[i+1]))
			p.b.WriteByte('"')
		}
		p.b.WriteByte('}')
	}
	p.b.WriteByte(' ')
	p.b.WriteString(promFloat(v))
	p.b.WriteByte('\n')
}

// gauge writes a family of one unlabelled sample.
func (p *promText) gauge(name, help string, v float64) {
	p.family(name, "gauge", help)
	p.sample(name, v)
}

// histogram writes h in Prometheus' form: cumulative buckets, +Inf equal to the count.
func (p *promText) histogram(name, help string, h api.Histogram) {
	p.family(name, "histogram", help)
	var cum uint64
	for i, b := range h.Bounds {
		if i < len(h.Counts) {
			cum += h.Counts[i]
		}
		p.sample(name+"_bucket", float64(cum), "le", promFloat(b))
	}
	count := h.Count()
	p.sample(name+"_bucket", float64(count), "le", "+Inf")
	p.sample(name+"_sum", h.Sum)
	p.sample(name+"_count", float64(count))
}

func promFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// escapeLabel escapes a label value as the format wants (backslash, double quote, line
// feed); a key's bytes need not be UTF-8, which the format requires, so others are
// replaced.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// promTextfile renders in as a textfile. Families are written only when their values are
// known: an agent that did not answer gives lite_raft_up 0 and the check's state alone
// (so that node_exporter never serves the last values of an agent that is gone), an agent
// built before metrics gives no counters, a member that does not lead no member lines.
func promTextfile(in promInput) []byte {
	var p promText
	p.gauge("lite_raft_up", "1 if the lite-raft agent asked answered with its status, else 0", b2f(in.local != nil))
	p.gauge("lite_raft_check_state", "lite-raft-client check's state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN", float64(in.check.State.ExitCode()))
	st := in.local
	if st == nil {
		return []byte(p.b.String())
	}
	p.gauge("lite_raft_has_leader", "1 if this member knows a leader", b2f(st.Leader != ""))
	p.gauge("lite_raft_is_leader", "1 if this member is the leader", b2f(st.Role == "leader"))
	p.gauge("lite_raft_term", "this member's Raft term", float64(st.Term))
	p.gauge("lite_raft_commit_index", "the last log index this member knows committed", float64(st.Commit))
	p.gauge("lite_raft_applied_index", "the last log index this member's state machine applied", float64(st.Applied))
	p.gauge("lite_raft_snapshot_index", "the last log index this member's stored snapshot holds", float64(st.Snapshot))
	if m := st.Metrics; m != nil {
		p.family("lite_raft_leader_changes_total", "counter", "times this member learned of a new leader since its agent started")
		p.sample("lite_raft_leader_changes_total", float64(m.LeaderChanges))
		p.family("lite_raft_proposals_failed_total", "counter", "writes of this agent's clients answered as not applied or maybe applied (no leader, timeout, append failed) since it started")
		p.sample("lite_raft_proposals_failed_total", float64(m.ProposalsFailed))
		p.histogram("lite_raft_fsync_seconds", "time to make a batch of log entries or state durable", m.Fsync)
		p.histogram("lite_raft_apply_seconds", "time to apply a batch of committed entries and answer their clients", m.Apply)
		p.gauge("lite_raft_data_bytes", "bytes of the keys and values in this member's state machine", float64(m.DataBytes))
		if m.DiskBytes > 0 {
			p.gauge("lite_raft_disk_bytes", "bytes of this member's Raft files (state, log, snapshots), measured every 10 s", float64(m.DiskBytes))
		}
		p.gauge("lite_raft_snapshot_bytes", "size of this member's stored snapshot", float64(m.SnapshotBytes))
		if m.SnapshotUnixMs > 0 {
			age := in.now.Sub(time.UnixMilli(m.SnapshotUnixMs)).Seconds()
			p.gauge("lite_raft_snapshot_age_seconds", "time since this member stored its snapshot", max(age, 0))
		}
	}
	if st.Role == "leader" && len(st.Nodes) > 0 {
		// a family of one sample a member, of those whose value is known
		member := func(name, help string, value func(api.MemberStatus) (float64, bool)) {
			p.family(name, "gauge", help+" (written by the leader only)")
			for _, n := range st.Nodes {
				if v, ok := value(n); ok {
					p.sample(name, v, "member", n.Name)
				}
			}
		}
		member("lite_raft_member_lag_entries", "log entries a member is behind the leader",
			func(n api.MemberStatus) (float64, bool) { return float64(n.Lag), true })
		member("lite_raft_member_last_contact_seconds", "time since the leader last heard from a member",
			func(n api.MemberStatus) (float64, bool) { return float64(n.LastContactMs) / 1000, true })
		member("lite_raft_member_rtt_seconds", "the round trip of the leader's link to a member, smoothed",
			func(n api.MemberStatus) (float64, bool) { return float64(n.RTTUs) / 1e6, n.RTTUs > 0 })
		// sizes: only of the members that said them (a disk size is never 0 once said)
		member("lite_raft_member_data_bytes", "a member's keys and values, as it last said them",
			func(n api.MemberStatus) (float64, bool) { return float64(n.DataBytes), n.DiskBytes > 0 })
		member("lite_raft_member_disk_bytes", "a member's Raft files, as it last said them",
			func(n api.MemberStatus) (float64, bool) { return float64(n.DiskBytes), n.DiskBytes > 0 })
	}
	p.gauge("lite_raft_packages_up", "1 if the failover packages could be read from the cluster", b2f(in.pkgsRead))
	if !in.pkgsRead || len(in.pkgs) == 0 {
		return []byte(p.b.String())
	}
	p.family("lite_raft_package_owner", "gauge", "1 for the host that runs a package (no line when nobody does)")
	for _, k := range in.pkgs {
		if k.Owner != "" {
			p.sample("lite_raft_package_owner", 1, "package", k.Name, "host", k.Owner)
		}
	}
	p.family("lite_raft_package_state", "gauge", "1 for a package's state (unknown, starting, running, failing, halting, halted, failed, stop-failed)")
	for _, k := range in.pkgs {
		p.sample("lite_raft_package_state", 1, "package", k.Name, "state", orValue(k.State, "unknown"))
	}
	p.family("lite_raft_package_generation", "gauge", "a package's generation, raised by every new owner")
	for _, k := range in.pkgs {
		if k.Generation != nil {
			p.sample("lite_raft_package_generation", float64(*k.Generation), "package", k.Name)
		}
	}
	p.family("lite_raft_package_standbys", "gauge", "hosts whose monitor stands by, ready to take a package over")
	for _, k := range in.pkgs {
		p.sample("lite_raft_package_standbys", float64(len(k.standingBy())), "package", k.Name)
	}
	p.family("lite_raft_package_tick_age_seconds", "gauge", "age of a package's heartbeat (its owner's monitor's last tick) as the freshest stand-by saw it")
	for _, k := range in.pkgs {
		if k.TickAge != nil {
			p.sample("lite_raft_package_tick_age_seconds", *k.TickAge, "package", k.Name)
		}
	}
	if in.monitors != nil {
		p.family("lite_raft_package_monitor_running", "gauge", "1 if a package's monitor runs on this host")
		for _, k := range in.pkgs {
			p.sample("lite_raft_package_monitor_running", b2f(in.monitors[k.Name]), "package", k.Name)
		}
	}
	return []byte(p.b.String())
}

func orValue(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

// gatherProm asks for what a textfile holds beyond check's result: the answering
// agent's own status (--stale: its counters, not the leader's) and the packages.
// monitorDir is the lite-raft directory whose monitor locks, in its temp/ and in its
// pkg/ folder's (where the monitors' systemd unit runs them), tell which monitors run
// here ("": not known).
func gatherProm(co checkOpts, dial dialFunc, res checkResult, monitorDir string) promInput {
	in := promInput{check: res, now: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), co.timeout)
	defer cancel()
	caller, closeFn, err := dial(ctx)
	if err != nil {
		return in
	}
	defer closeFn()
	c := client.New(caller)
	resp, err := c.Do(ctx, api.Request{Op: api.OpStatus, Stale: true})
	if err != nil || resp.Code != api.CodeOK {
		return in
	}
	var st api.Status
	if json.Unmarshal(resp.JSON, &st) != nil {
		return in
	}
	in.local = &st
	in.now = time.Now()
	if st.Leader == "" {
		return in // nothing to read the packages from
	}
	s := failover.NewStore(c, co.timeout)
	names, err := s.List(ctx, "packages")
	if err != nil {
		return in
	}
	for _, n := range names {
		info, err := collectPkg(ctx, s, n, false)
		if err != nil {
			return in
		}
		in.pkgs = append(in.pkgs, info)
	}
	in.pkgsRead = true
	if monitorDir != "" {
		in.monitors = map[string]bool{}
		for _, n := range names {
			for _, d := range []string{monitorDir, filepath.Join(monitorDir, "pkg")} {
				if _, held := lockfile.Holder(filepath.Join(d, "temp", "pkg-"+n+".lock")); held {
					in.monitors[n] = true
				}
			}
		}
	}
	return in
}

// writeProm writes the textfile atomically (a file beside it, fsynced, renamed): the
// collector reads it at any moment, and must never see half of one.
func writeProm(path string, in promInput) error {
	if err := statefile.WriteFileAtomic(path, promTextfile(in), 0o644); err != nil {
		return fmt.Errorf("write the Prometheus textfile %s: %w", path, err)
	}
	return nil
}
