package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"lite-raft/api"
	"lite-raft/client"
)

// promFamilies is every family check --prom may write: its type and its labels. The
// README's list is held to it (TestPromREADMEListsEveryFamily).
var promFamilies = map[string]struct {
	typ    dto.MetricType
	labels []string
}{
	"lite_raft_up":                          {dto.MetricType_GAUGE, nil},
	"lite_raft_check_state":                 {dto.MetricType_GAUGE, nil},
	"lite_raft_has_leader":                  {dto.MetricType_GAUGE, nil},
	"lite_raft_is_leader":                   {dto.MetricType_GAUGE, nil},
	"lite_raft_term":                        {dto.MetricType_GAUGE, nil},
	"lite_raft_commit_index":                {dto.MetricType_GAUGE, nil},
	"lite_raft_applied_index":               {dto.MetricType_GAUGE, nil},
	"lite_raft_snapshot_index":              {dto.MetricType_GAUGE, nil},
	"lite_raft_leader_changes_total":        {dto.MetricType_COUNTER, nil},
	"lite_raft_proposals_failed_total":      {dto.MetricType_COUNTER, nil},
	"lite_raft_fsync_seconds":               {dto.MetricType_HISTOGRAM, nil},
	"lite_raft_apply_seconds":               {dto.MetricType_HISTOGRAM, nil},
	"lite_raft_data_bytes":                  {dto.MetricType_GAUGE, nil},
	"lite_raft_snapshot_bytes":              {dto.MetricType_GAUGE, nil},
	"lite_raft_snapshot_age_seconds":        {dto.MetricType_GAUGE, nil},
	"lite_raft_member_lag_entries":          {dto.MetricType_GAUGE, []string{"member"}},
	"lite_raft_member_last_contact_seconds": {dto.MetricType_GAUGE, []string{"member"}},
	"lite_raft_member_data_bytes":           {dto.MetricType_GAUGE, []string{"member"}},
	"lite_raft_member_rtt_seconds":          {dto.MetricType_GAUGE, []string{"member"}},
	"lite_raft_member_disk_bytes":           {dto.MetricType_GAUGE, []string{"member"}},
	"lite_raft_disk_bytes":                  {dto.MetricType_GAUGE, nil},
	"lite_raft_packages_up":                 {dto.MetricType_GAUGE, nil},
	"lite_raft_package_owner":               {dto.MetricType_GAUGE, []string{"host", "package"}},
	"lite_raft_package_state":               {dto.MetricType_GAUGE, []string{"package", "state"}},
	"lite_raft_package_generation":          {dto.MetricType_GAUGE, []string{"package"}},
	"lite_raft_package_standbys":            {dto.MetricType_GAUGE, []string{"package"}},
	"lite_raft_package_tick_age_seconds":    {dto.MetricType_GAUGE, []string{"package"}},
	"lite_raft_package_monitor_running":     {dto.MetricType_GAUGE, []string{"package"}},
}

// parseProm parses a textfile with Prometheus' own parser and checks what the parser
// lets through: every family documented (promFamilies), with HELP, its type and its
// labels; histograms cumulative, with the +Inf bucket equal to the count.
func parseProm(b []byte) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	for name, f := range fams {
		want, ok := promFamilies[name]
		switch {
		case !ok:
			return nil, fmt.Errorf("family %s is not documented", name)
		case f.GetHelp() == "":
			return nil, fmt.Errorf("family %s has no HELP", name)
		case f.GetType() != want.typ:
			return nil, fmt.Errorf("family %s is a %s, want %s", name, f.GetType(), want.typ)
		}
		for _, m := range f.Metric {
			var got []string
			for _, l := range m.Label {
				got = append(got, l.GetName())
			}
			sort.Strings(got)
			if !slices.Equal(got, want.labels) {
				return nil, fmt.Errorf("%s has labels %v, want %v", name, got, want.labels)
			}
			if h := m.GetHistogram(); h != nil {
				var prev uint64
				var prevLE float64 = math.Inf(-1)
				for _, bk := range h.Bucket {
					if bk.GetUpperBound() <= prevLE {
						return nil, fmt.Errorf("%s: bucket le=%g after le=%g", name, bk.GetUpperBound(), prevLE)
					}
					if bk.GetCumulativeCount() < prev {
						return nil, fmt.Errorf("%s: bucket le=%g holds %d, fewer than the one below (%d): not cumulative",
							name, bk.GetUpperBound(), bk.GetCumulativeCount(), prev)
					}
					prev, prevLE = bk.GetCumulativeCount(), bk.GetUpperBound()
				}
				// the parser keeps +Inf as a bucket, or drops it when it equals the count
				if n := len(h.Bucket); n > 0 && math.IsInf(h.Bucket[n-1].GetUpperBound(), 1) && h.Bucket[n-1].GetCumulativeCount() != h.GetSampleCount() {
					return nil, fmt.Errorf("%s: +Inf bucket %d, count %d", name, h.Bucket[n-1].GetCumulativeCount(), h.GetSampleCount())
				}
				if prev > h.GetSampleCount() {
					return nil, fmt.Errorf("%s: %d in the buckets, count %d", name, prev, h.GetSampleCount())
				}
			}
		}
	}
	// what the parser lets through: a family's lines apart (Prometheus' scrape refuses
	// them), or a series twice
	done, seen := map[string]bool{}, map[string]bool{}
	cur := ""
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, _, _ := strings.Cut(line, " ")
		if seen[series] {
			return nil, fmt.Errorf("%s twice", series)
		}
		seen[series] = true
		name, _, _ := strings.Cut(series, "{")
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base := strings.TrimSuffix(name, suffix); base != name && promFamilies[base].typ == dto.MetricType_HISTOGRAM {
				name = base
			}
		}
		if name != cur {
			if done[name] {
				return nil, fmt.Errorf("the lines of %s are not together", name)
			}
			done[cur], cur = true, name
		}
	}
	if !bytes.Contains(b, []byte("\n# TYPE lite_raft_up gauge\n")) {
		return nil, fmt.Errorf("no lite_raft_up")
	}
	return fams, nil
}

// value is the sample of family name whose labels include those given (name, value
// pairs), and whether there is one.
func promValue(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// awkward is a package name a key allows (no space, no control character, no slash)
// that the format must escape, with a byte that is not UTF-8.
const awkward = `we"b\x{a=1,b="2"}` + "\xff"

func fullInput() promInput {
	now := time.Unix(1_800_000_000, 0)
	gen, age := int64(7), 0.3
	fs := api.Histogram{Bounds: api.LatencyBounds, Counts: make([]uint64, len(api.LatencyBounds)+1), Sum: 0.5}
	fs.Counts[0], fs.Counts[3], fs.Counts[len(api.LatencyBounds)] = 10, 2, 1
	ap := api.Histogram{Bounds: api.LatencyBounds, Counts: make([]uint64, len(api.LatencyBounds)+1)}
	return promInput{
		check: checkResult{State: client.PluginWarning},
		local: &api.Status{ID: "h1", Role: "leader", Leader: "h1", Term: 5, Commit: 120, Applied: 119, Snapshot: 100,
			Nodes: []api.MemberStatus{{Name: "h1", Role: "leader", DataBytes: 4096, DiskBytes: 70000}, {Name: "h2", Lag: 3, LastContactMs: 1500, DataBytes: 2048, DiskBytes: 50000, RTTUs: 101500}},
			Metrics: &api.Metrics{LeaderChanges: 2, ProposalsFailed: 1, Fsync: fs, Apply: ap, DataBytes: 4096, DiskBytes: 70000,
				SnapshotBytes: 9000, SnapshotUnixMs: now.Add(-90 * time.Second).UnixMilli()}},
		pkgs: []pkgInfo{
			{Name: "web", Owner: "h1", State: "running", Generation: &gen, TickAge: &age,
				Standbys: []pkgStandby{{Host: "h2", Fresh: true}, {Host: "h3"}}},
			{Name: awkward, State: ""},
		},
		pkgsRead: true,
		monitors: map[string]bool{"web": true},
		now:      now,
	}
}

// TestPromTextfileParses: a leader's textfile with every family parses with
// Prometheus' parser, with the values, labels and escapes it was given.
func TestPromTextfileParses(t *testing.T) {
	out := promTextfile(fullInput())
	fams, err := parseProm(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for name := range promFamilies {
		if fams[name] == nil {
			t.Errorf("no %s in\n%s", name, out)
		}
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"lite_raft_up", nil, 1},
		{"lite_raft_check_state", nil, 1},
		{"lite_raft_has_leader", nil, 1},
		{"lite_raft_is_leader", nil, 1},
		{"lite_raft_term", nil, 5},
		{"lite_raft_commit_index", nil, 120},
		{"lite_raft_applied_index", nil, 119},
		{"lite_raft_snapshot_index", nil, 100},
		{"lite_raft_leader_changes_total", nil, 2},
		{"lite_raft_proposals_failed_total", nil, 1},
		{"lite_raft_fsync_seconds", nil, 13},
		{"lite_raft_apply_seconds", nil, 0},
		{"lite_raft_data_bytes", nil, 4096},
		{"lite_raft_snapshot_bytes", nil, 9000},
		{"lite_raft_snapshot_age_seconds", nil, 90},
		{"lite_raft_member_lag_entries", []string{"member", "h2"}, 3},
		{"lite_raft_member_last_contact_seconds", []string{"member", "h2"}, 1.5},
		{"lite_raft_member_data_bytes", []string{"member", "h2"}, 2048},
		{"lite_raft_member_rtt_seconds", []string{"member", "h2"}, 0.1015},
		{"lite_raft_member_disk_bytes", []string{"member", "h2"}, 50000},
		{"lite_raft_disk_bytes", nil, 70000},
		{"lite_raft_packages_up", nil, 1},
		{"lite_raft_package_owner", []string{"package", "web", "host", "h1"}, 1},
		{"lite_raft_package_state", []string{"package", "web", "state", "running"}, 1},
		{"lite_raft_package_generation", []string{"package", "web"}, 7},
		{"lite_raft_package_standbys", []string{"package", "web"}, 1},
		{"lite_raft_package_tick_age_seconds", []string{"package", "web"}, 0.3},
		{"lite_raft_package_monitor_running", []string{"package", "web"}, 1},
		// the awkward name comes back as it was, its byte that is not UTF-8 replaced
		{"lite_raft_package_state", []string{"package", strings.ToValidUTF8(awkward, "\uFFFD"), "state", "unknown"}, 1},
		{"lite_raft_package_monitor_running", []string{"package", strings.ToValidUTF8(awkward, "\uFFFD")}, 0},
	} {
		got, ok := promValue(fams, tc.name, tc.labels...)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	// the buckets as Prometheus reads them: cumulative from the agent's counts per bucket
	h := fams["lite_raft_fsync_seconds"].Metric[0].Histogram
	if h.Bucket[0].GetCumulativeCount() != 10 || h.Bucket[3].GetCumulativeCount() != 12 || h.Bucket[len(api.LatencyBounds)-1].GetCumulativeCount() != 12 ||
		h.GetSampleSum() != 0.5 || h.Bucket[0].GetUpperBound() != 0.0005 {
		t.Errorf("fsync histogram %v", h)
	}
	if _, ok := promValue(fams, "lite_raft_package_owner", "package", strings.ToValidUTF8(awkward, "\uFFFD")); ok {
		t.Errorf("an owner line for a package nobody runs")
	}
}

// TestPromTextfileWhatIsNotKnown: no agent, an agent of a build before metrics, a
// follower, packages not readable: what is not known is not written (never as zeros).
func TestPromTextfileWhatIsNotKnown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edit     func(*promInput)
		has, not []string
	}{
		{"no agent", func(in *promInput) { in.local = nil; in.check = checkResult{State: client.PluginUnknown} },
			[]string{"lite_raft_up", "lite_raft_check_state"}, []string{"lite_raft_term", "lite_raft_packages_up", "lite_raft_fsync_seconds"}},
		{"an older agent", func(in *promInput) { in.local.Metrics = nil },
			[]string{"lite_raft_term", "lite_raft_member_lag_entries"}, []string{"lite_raft_fsync_seconds", "lite_raft_data_bytes", "lite_raft_leader_changes_total"}},
		{"a follower", func(in *promInput) { in.local.Role, in.local.Leader, in.local.Nodes = "follower", "h2", nil },
			[]string{"lite_raft_is_leader", "lite_raft_fsync_seconds"}, []string{"lite_raft_member_lag_entries", "lite_raft_member_last_contact_seconds"}},
		{"no snapshot time", func(in *promInput) { in.local.Metrics.SnapshotUnixMs = 0 },
			[]string{"lite_raft_snapshot_bytes"}, []string{"lite_raft_snapshot_age_seconds"}},
		{"packages not read", func(in *promInput) { in.pkgs, in.pkgsRead = nil, false },
			[]string{"lite_raft_packages_up"}, []string{"lite_raft_package_state"}},
		{"monitors not known", func(in *promInput) { in.monitors = nil },
			[]string{"lite_raft_package_state"}, []string{"lite_raft_package_monitor_running"}},
	} {
		in := fullInput()
		tc.edit(&in)
		out := promTextfile(in)
		fams, err := parseProm(out)
		if err != nil {
			t.Errorf("%s: %v\n%s", tc.name, err, out)
			continue
		}
		for _, n := range tc.has {
			if fams[n] == nil {
				t.Errorf("%s: no %s", tc.name, n)
			}
		}
		for _, n := range tc.not {
			if fams[n] != nil {
				t.Errorf("%s: %s written", tc.name, n)
			}
		}
	}
	in := fullInput()
	in.local = nil
	fams, _ := parseProm(promTextfile(in))
	if v, _ := promValue(fams, "lite_raft_up"); v != 0 {
		t.Errorf("lite_raft_up %v without an agent", v)
	}
}

// TestPromCheckCatchesPlantedBugs: the parser check (parseProm) is worth what it
// catches: each planted mistake in a good textfile is refused.
func TestPromCheckCatchesPlantedBugs(t *testing.T) {
	good := string(promTextfile(fullInput()))
	if _, err := parseProm([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new string }{
		// per-bucket counts written as they are: 10 then 0 then 0 then 2 ...
		{"a histogram not cumulative", `lite_raft_fsync_seconds_bucket{le="0.001"} 10`, `lite_raft_fsync_seconds_bucket{le="0.001"} 0`},
		{"+Inf not the count", `lite_raft_fsync_seconds_bucket{le="+Inf"} 13`, `lite_raft_fsync_seconds_bucket{le="+Inf"} 12`},
		{"a quote not escaped", `we\"b`, `we"b`},
		{"a backslash not escaped", `we\"b\\x`, `we\"b\x`},
		{"a family without HELP", "# HELP lite_raft_term this member's Raft term\n", ""},
		{"a counter typed as a gauge", "# TYPE lite_raft_leader_changes_total counter", "# TYPE lite_raft_leader_changes_total gauge"},
		{"an undocumented family", "lite_raft_term 5\n", "lite_raft_term 5\nlite_raft_terms 5\n"},
		{"a label missing", `lite_raft_member_lag_entries{member="h2"} 3`, `lite_raft_member_lag_entries 3`},
		{"a family's lines apart", "lite_raft_term 5\n", "lite_raft_term 5\nlite_raft_up 1\n"},
	} {
		if !strings.Contains(good, tc.old) {
			t.Errorf("%s: %q is not in the textfile", tc.name, tc.old)
			continue
		}
		if _, err := parseProm([]byte(strings.Replace(good, tc.old, tc.new, 1))); err == nil {
			t.Errorf("%s: not caught", tc.name)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
}

// TestPromCheckVerb: check --prom FILE writes the file, atomically (nothing left beside
// it), whether an agent answers or not, with check's exit code; its bad uses are
// refused as UNKNOWN.
func TestPromCheckVerb(t *testing.T) {
	noAgent := t.TempDir()
	file := filepath.Join(t.TempDir(), "lite_raft.prom")
	out, code := runApp(t, "--dir", noAgent, "client", "check", "--prom", file)
	if code != 3 || !strings.HasPrefix(out, "LITE-RAFT UNKNOWN") {
		t.Errorf("check --prom without an agent: exit %d %q", code, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fams, err := parseProm(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if up, _ := promValue(fams, "lite_raft_up"); up != 0 || len(fams) != 2 {
		t.Errorf("without an agent:\n%s", b)
	}
	if v, _ := promValue(fams, "lite_raft_check_state"); v != 3 {
		t.Errorf("check state %v, want 3", v)
	}
	for _, args := range [][]string{{"check", "--prom"}, {"check", "--prom", ""}, {"check", "--prom", "x", "--pkg", "web"}} {
		if out, code := runApp(t, append([]string{"--dir", noAgent, "client"}, args...)...); code != 3 || !strings.Contains(out, "usage: lite-raft-client check") {
			t.Errorf("client %v: exit %d %q; want 3 and the usage", args, code, out)
		}
	}
	// a directory that is not there: the line, and UNKNOWN
	if out, code := runApp(t, "--dir", noAgent, "client", "check", "--prom", filepath.Join(noAgent, "none", "x.prom")); code != 3 || !strings.Contains(out, "write the Prometheus textfile") {
		t.Errorf("check --prom into no directory: exit %d %q", code, out)
	}

	dir := t.TempDir()
	startAgent(t, dir)
	before := dataBytes(t, dir)
	if out, code := runApp(t, "--dir", dir, "client", "set", "prom/key", strings.Repeat("v", 1000)); code != 0 {
		t.Fatalf("set: %d %s", code, out)
	}
	out, code = runApp(t, "--dir", dir, "client", "check", "--prom", file)
	if code != 0 || !strings.HasPrefix(out, "LITE-RAFT OK") {
		t.Fatalf("check --prom: exit %d %q", code, out)
	}
	b, _ = os.ReadFile(file)
	if fams, err = parseProm(b); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	for _, want := range []struct {
		name string
		min  float64
	}{{"lite_raft_up", 1}, {"lite_raft_has_leader", 1}, {"lite_raft_is_leader", 1}, {"lite_raft_fsync_seconds", 1},
		{"lite_raft_apply_seconds", 1}, {"lite_raft_data_bytes", float64(before) + 1000 + 8}, {"lite_raft_packages_up", 1}} {
		if v, ok := promValue(fams, want.name); !ok || v < want.min {
			t.Errorf("%s = %v (found %v), want at least %v\n%s", want.name, v, ok, want.min, b)
		}
	}
	if v, ok := promValue(fams, "lite_raft_member_lag_entries", "member", thisHost()); !ok || v != 0 {
		t.Errorf("the one member's lag: %v %v", v, ok)
	}
	entries, _ := os.ReadDir(filepath.Dir(file))
	if len(entries) != 1 {
		t.Errorf("beside the textfile: %v", entries)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o644 {
		t.Errorf("textfile mode %v: node_exporter runs as another user", fi.Mode())
	}
	// status shows the data size in its first line
	if out, code := runApp(t, "--dir", dir, "client", "status"); code != 0 || !strings.Contains(strings.SplitN(out, "\n", 2)[0], "; data ") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
}

// dataBytes is the one-member cluster's data size, from status --json.
func dataBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	out, code := runApp(t, "--dir", dir, "client", "--json", "status")
	var st api.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Metrics == nil {
		t.Fatalf("status --json: exit %d %s", code, out)
	}
	return st.Metrics.DataBytes
}

// TestStatusDataSize: the status text gives the answering member's data and snapshot
// sizes in its first line, when the agent reports them (not from an older one).
func TestStatusDataSize(t *testing.T) {
	var b bytes.Buffer
	st := api.Status{ID: "h1", Role: "leader", Leader: "h1", Term: 2, Metrics: &api.Metrics{DataBytes: 1_234_567, SnapshotBytes: 999}}
	printStatus(&b, st)
	if first := strings.SplitN(b.String(), "\n", 2)[0]; !strings.HasSuffix(first, "snapshot 0; data 1.2 MB, snapshot file 999 B") {
		t.Errorf("status line %q", first)
	}
	b.Reset()
	st.Metrics = nil
	printStatus(&b, st)
	if strings.Contains(b.String(), "data") {
		t.Errorf("an older agent's status %q", b.String())
	}
	for n, want := range map[uint64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 5_500_000_000: "5.5 GB", 7_000_000_000_000: "7000.0 GB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestPromREADMEListsEveryFamily: the README's metric list and what check --prom writes
// name the same families.
func TestPromREADMEListsEveryFamily(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for name := range promFamilies {
		if !strings.Contains(readme, "`"+name+"`") && !strings.Contains(readme, "`"+name+"{") {
			t.Errorf("README does not list %s", name)
		}
	}
	for _, m := range regexp.MustCompile("`(lite_raft_[a-z_]+)").FindAllStringSubmatch(readme, -1) {
		if _, ok := promFamilies[m[1]]; !ok {
			t.Errorf("README lists %s, which check --prom does not write", m[1])
		}
	}
}
