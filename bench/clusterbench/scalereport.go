package main

import (
	"fmt"
	"io"
	"strings"

	"lite-raft/benchreport"
)

// target is one line of a report's targets: what the issue asks, whether this run met
// it, and the figures it was judged on.
type target struct {
	What  string `json:"target"`
	State string `json:"state"` // targetMet, targetNotMet or targetNotMeasured
	Got   string `json:"got"`
}

const (
	targetMet         = "met"
	targetNotMet      = "NOT met"
	targetNotMeasured = "not measured"
)

func metOrNot(ok bool) string {
	if ok {
		return targetMet
	}
	return targetNotMet
}

func formatTarget(t target) string {
	return fmt.Sprintf("  %-60s %-12s (%s)", t.What, t.State, t.Got)
}

func mbOf(b int64) float64 { return float64(b) / benchreport.MB }

// largest is the process with the largest value of f among those that could be read.
func largest(ms []procMem, f func(procMem) int64) (procMem, bool) {
	var best procMem
	found := false
	for _, m := range ms {
		if m.Error == "" && (!found || f(m) > f(best)) {
			best, found = m, true
		}
	}
	return best, found
}

func rss(m procMem) int64 { return m.RSS }
func hwm(m procMem) int64 { return m.HWM }

// cell is one figure of the table: a value, or a word saying why there is none.
type cell struct {
	v    float64
	text string // not empty: shown instead of v, and no ratio
}

func none(why string) cell { return cell{text: why} }

func (c cell) format(prec int) string {
	if c.text != "" {
		return c.text
	}
	return fmt.Sprintf("%.*f", prec, c.v)
}

func ratioCell(l, e cell) string {
	if l.text != "" || e.text != "" || e.v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", l.v/e.v)
}

func figureCell(f *figures, get func(*figures) float64) cell {
	if f == nil {
		return none("-")
	}
	return cell{v: get(f)}
}

func fillCell(f *benchreport.FillSummary, get func(*benchreport.FillSummary) float64) cell {
	if f == nil {
		return none("-")
	}
	return cell{v: get(f)}
}

func stepCell(s *stepTime, failed string) cell {
	switch {
	case s == nil:
		return none("-")
	case !s.OK:
		return none(failed)
	}
	return cell{v: s.Ms / 1000}
}

func memCell(ms []procMem, f func(procMem) int64) cell {
	m, ok := largest(ms, f)
	if !ok {
		return none("-")
	}
	return cell{v: mbOf(f(m))}
}

type scaleRow struct {
	name  string
	prec  int
	ratio bool // a lite-raft/etcd ratio means something for this row
	get   func(*scaleResult) cell
}

func (s *scaleReport) rows() []scaleRow {
	size := fmt.Sprintf("%.0f MB", mbOf(s.LiveDataBytes))
	return []scaleRow{
		{fmt.Sprintf("fill (%d clients): keys/s", s.FillClients), 0, true, func(r *scaleResult) cell {
			return fillCell(r.Fill, func(f *benchreport.FillSummary) float64 { return f.KeysPerS })
		}},
		{"fill: MB/s", 1, true, func(r *scaleResult) cell {
			return fillCell(r.Fill, func(f *benchreport.FillSummary) float64 { return f.MBPerS })
		}},
		{"fill: seconds", 1, true, func(r *scaleResult) cell {
			return fillCell(r.Fill, func(f *benchreport.FillSummary) float64 { return f.DurationS })
		}},
		{"fill: p99 ms", 2, true, func(r *scaleResult) cell {
			return fillCell(r.Fill, func(f *benchreport.FillSummary) float64 { return f.Latency.P99Ms })
		}},
		{"fill: max ms", 2, true, func(r *scaleResult) cell {
			return fillCell(r.Fill, func(f *benchreport.FillSummary) float64 { return f.Latency.MaxMs })
		}},
		{fmt.Sprintf("set, empty store (%s): ops/s", s.BaselineDuration), 0, true, func(r *scaleResult) cell {
			return figureCell(r.Baseline, func(f *figures) float64 { return f.OpsPerS })
		}},
		{"set, empty store: p99 ms", 2, true, func(r *scaleResult) cell {
			return figureCell(r.Baseline, func(f *figures) float64 { return f.P99Ms })
		}},
		{fmt.Sprintf("set at %s (%s): ops/s", size, s.Duration), 0, true, func(r *scaleResult) cell {
			return figureCell(r.Load, func(f *figures) float64 { return f.OpsPerS })
		}},
		{fmt.Sprintf("set at %s: p50 ms", size), 2, true, func(r *scaleResult) cell {
			return figureCell(r.Load, func(f *figures) float64 { return f.P50Ms })
		}},
		{fmt.Sprintf("set at %s: p99 ms", size), 2, true, func(r *scaleResult) cell {
			return figureCell(r.Load, func(f *figures) float64 { return f.P99Ms })
		}},
		{fmt.Sprintf("set at %s: max ms", size), 2, true, func(r *scaleResult) cell {
			return figureCell(r.Load, func(f *figures) float64 { return f.MaxMs })
		}},
		{fmt.Sprintf("set at %s: failed requests", size), 0, false, func(r *scaleResult) cell {
			return figureCell(r.Load, func(f *figures) float64 { return float64(f.Errors) })
		}},
		{fmt.Sprintf("set at %s / on the empty store: ops/s %%", size), 0, false, func(r *scaleResult) cell {
			if r.Load == nil || r.Baseline == nil || r.Baseline.OpsPerS == 0 {
				return none("-")
			}
			return cell{v: 100 * r.Load.OpsPerS / r.Baseline.OpsPerS}
		}},
		{"RSS after the load, MB (largest member)", 0, true, func(r *scaleResult) cell { return memCell(r.MemAfterLoad, rss) }},
		{"peak RSS (VmHWM) by then, MB (largest member)", 0, true, func(r *scaleResult) cell { return memCell(r.MemAfterLoad, hwm) }},
		{"RSS after the load / live data (largest member)", 2, true, func(r *scaleResult) cell {
			c := memCell(r.MemAfterLoad, rss)
			if c.text == "" {
				c.v /= mbOf(s.LiveDataBytes)
			}
			return c
		}},
		{"snapshot (lite-raft) or database (etcd), MB", 0, true, func(r *scaleResult) cell {
			switch {
			case r.SnapshotBytes > 0:
				return cell{v: mbOf(r.SnapshotBytes)}
			case r.DBSize > 0:
				return cell{v: mbOf(r.DBSize)}
			}
			return none("-")
		}},
		{"the leader's data directory, MB", 0, true, func(r *scaleResult) cell {
			if r.DiskBytes == 0 {
				return none("-")
			}
			return cell{v: mbOf(r.DiskBytes)}
		}},
		{fmt.Sprintf("follower down %s: caught up after, s", s.Down), 1, true, func(r *scaleResult) cell {
			return stepCell(r.CatchUp, "not caught up")
		}},
		{"  set ops/s meanwhile (down and catching up)", 0, true, func(r *scaleResult) cell {
			return figureCell(r.CatchUpLoad, func(f *figures) float64 { return f.OpsPerS })
		}},
		{"  set max ms meanwhile", 2, true, func(r *scaleResult) cell {
			return figureCell(r.CatchUpLoad, func(f *figures) float64 { return f.MaxMs })
		}},
		{"new member with the full state: a voter after, s", 1, true, func(r *scaleResult) cell {
			return stepCell(r.AddMember, "failed")
		}},
		{"peak RSS (VmHWM) at the end, MB (largest member)", 0, true, func(r *scaleResult) cell { return memCell(r.MemEnd, hwm) }},
	}
}

func (s *scaleReport) print(w io.Writer) {
	fmt.Fprintf(w, "\nscale: %d keys of %d bytes, live data %.0f MB (keys and values; MB = 10^6 bytes); %d clients set random keys among them, one request at a time each; election timeout %.0f ms\n\n",
		s.Keys, s.ValueSize, mbOf(s.LiveDataBytes), s.Clients, s.ElectionTimeoutMs)
	if s.Etcd != nil {
		fmt.Fprintln(w, "| scale | lite-raft | etcd | lite-raft/etcd |")
		fmt.Fprintln(w, "|---|---:|---:|---:|")
	} else {
		fmt.Fprintln(w, "| scale | lite-raft |")
		fmt.Fprintln(w, "|---|---:|")
	}
	for _, row := range s.rows() {
		l := row.get(s.Lite)
		fmt.Fprintf(w, "| %s | %s |", row.name, l.format(row.prec))
		if s.Etcd != nil {
			e := row.get(s.Etcd)
			ratio := "-"
			if row.ratio {
				ratio = ratioCell(l, e)
			}
			fmt.Fprintf(w, " %s | %s |", e.format(row.prec), ratio)
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintln(w, "\nmemory per server process, MB: RSS / peak (VmHWM) [file-backed part of RSS]")
	systems := []struct {
		name string
		r    *scaleResult
	}{{"lite-raft", s.Lite}, {"etcd", s.Etcd}}
	for _, sys := range systems {
		if sys.r == nil {
			continue
		}
		for _, when := range []struct {
			name string
			ms   []procMem
		}{{"after the load", sys.r.MemAfterLoad}, {"at the end", sys.r.MemEnd}} {
			var parts []string
			for _, m := range when.ms {
				if m.Error != "" {
					parts = append(parts, fmt.Sprintf("%s: %s", m.Name, m.Error))
					continue
				}
				parts = append(parts, fmt.Sprintf("%s %.0f / %.0f [%.0f]", m.Name, mbOf(m.RSS), mbOf(m.HWM), mbOf(m.File)))
			}
			if len(parts) > 0 {
				fmt.Fprintf(w, "  %-9s %-16s %s\n", sys.name, when.name+":", strings.Join(parts, ", "))
			}
		}
	}
	if l := s.Lite; l.SnapshotBytes > 0 || l.LogBytes > 0 {
		fmt.Fprintf(w, "lite-raft leader after the load: snapshot %.0f MB, log %.0f MB", mbOf(l.SnapshotBytes), mbOf(l.LogBytes))
		if e := s.Etcd; e != nil && e.DBSize > 0 {
			fmt.Fprintf(w, "; etcd leader: database %.0f MB, %.0f MB of it in use (etcd keeps every revision until compacted)", mbOf(e.DBSize), mbOf(e.DBSizeInUse))
		}
		fmt.Fprintln(w)
	}
	for _, sys := range systems {
		if sys.r == nil {
			continue
		}
		for _, st := range []struct {
			what string
			s    *stepTime
		}{{"catch-up of", sys.r.CatchUp}, {"new member", sys.r.AddMember}} {
			if st.s != nil && st.s.Detail != "" {
				fmt.Fprintf(w, "%s %s %s: %s\n", sys.name, st.what, st.s.Member, st.s.Detail)
			}
		}
	}
	for _, sys := range systems {
		if sys.r == nil || len(sys.r.Errors) == 0 {
			continue
		}
		fmt.Fprintf(w, "%s: steps that failed:\n", sys.name)
		for _, e := range sys.r.Errors {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}

	fmt.Fprintf(w, "\nscale targets (issue 14")
	if s.Keys != scaleTargetKeys {
		fmt.Fprintf(w, ": stated for %d keys, %.0f MB; this run has %d keys, %.0f MB",
			scaleTargetKeys, mbOf(benchreport.FillBytes(scalePrefix, scaleTargetKeys, scaleValueSize)), s.Keys, mbOf(s.LiveDataBytes))
	}
	fmt.Fprintln(w, "):")
	for _, t := range s.targets() {
		fmt.Fprintln(w, formatTarget(t))
	}
}

// targets judges lite-raft's scale figures against issue 14's targets.
func (s *scaleReport) targets() []target {
	l, e := s.Lite, s.Etcd
	size := fmt.Sprintf("%.0f MB", mbOf(s.LiveDataBytes))
	var out []target
	add := func(what string, measured bool, why string, ok bool, got string) {
		if !measured {
			out = append(out, target{what, targetNotMeasured, why})
			return
		}
		out = append(out, target{what, metOrNot(ok), got})
	}
	noEtcd := e == nil
	switch {
	case noEtcd:
		add("writes at "+size+": >= 2x etcd's ops/s", false, "no etcd in this run", false, "")
		add("writes at "+size+": p99 and max <= etcd's", false, "no etcd in this run", false, "")
	case l.Load == nil || e.Load == nil:
		add("writes at "+size+": >= 2x etcd's ops/s", false, "a load failed", false, "")
		add("writes at "+size+": p99 and max <= etcd's", false, "a load failed", false, "")
	default:
		add("writes at "+size+": >= 2x etcd's ops/s", true, "", l.Load.OpsPerS >= 2*e.Load.OpsPerS,
			fmt.Sprintf("%.2fx: %.0f vs %.0f ops/s", l.Load.OpsPerS/e.Load.OpsPerS, l.Load.OpsPerS, e.Load.OpsPerS))
		add("writes at "+size+": p99 and max <= etcd's", true, "",
			l.Load.P99Ms <= e.Load.P99Ms && l.Load.MaxMs <= e.Load.MaxMs,
			fmt.Sprintf("p99 %.2f vs %.2f ms, max %.2f vs %.2f ms", l.Load.P99Ms, e.Load.P99Ms, l.Load.MaxMs, e.Load.MaxMs))
	}
	if l.Load == nil || l.Baseline == nil || l.Baseline.OpsPerS == 0 {
		add("write ops/s at "+size+": >= 70% of the empty store's", false, "a load failed", false, "")
	} else {
		f := l.Load.OpsPerS / l.Baseline.OpsPerS
		add("write ops/s at "+size+": >= 70% of the empty store's", true, "", f >= 0.7,
			fmt.Sprintf("%.0f%%: %.0f vs %.0f ops/s", 100*f, l.Load.OpsPerS, l.Baseline.OpsPerS))
	}
	if m, ok := largest(l.MemAfterLoad, rss); !ok || len(l.MemAfterLoad) == 0 {
		add("RSS per agent <= 2x the live data", false, "no agent's memory could be read", false, "")
	} else {
		peak, _ := largest(l.MemAfterLoad, hwm)
		unread := 0
		for _, x := range l.MemAfterLoad {
			if x.Error != "" {
				unread++
			}
		}
		got := fmt.Sprintf("largest after the load %.0f MB on %s = %.2fx of %.0f MB; peak so far %.0f MB on %s",
			mbOf(m.RSS), m.Name, float64(m.RSS)/float64(s.LiveDataBytes), mbOf(s.LiveDataBytes), mbOf(peak.HWM), peak.Name)
		if unread > 0 {
			got += fmt.Sprintf("; %d agents unreadable", unread)
		}
		add("RSS per agent <= 2x the live data", true, "", m.RSS <= 2*s.LiveDataBytes && unread == 0, got)
	}
	down := fmt.Sprintf("a member down %s: caught up within 10 s", s.Down)
	switch c := l.CatchUp; {
	case c == nil:
		add(down, false, "the step did not run", false, "")
	case !c.OK && c.Ms == 0:
		add(down, false, c.Detail, false, "")
	case !c.OK:
		add(down, true, "", false, c.Detail)
	default:
		add(down, true, "", c.Ms <= 10000, fmt.Sprintf("%.1f s", c.Ms/1000))
	}
	switch a := l.AddMember; {
	case a == nil:
		add("a new member a voter within 30 s", false, "the step did not run", false, "")
	case !a.OK:
		add("a new member a voter within 30 s", true, "", false, fmt.Sprintf("failed after %.1f s: %s", a.Ms/1000, a.Detail))
	default:
		add("a new member a voter within 30 s", true, "", a.Ms <= 30000, fmt.Sprintf("%.1f s", a.Ms/1000))
	}
	// every request of the workload's loads and of the fill
	slowest := fmt.Sprintf("no request slower than one election timeout (%.0f ms)", s.ElectionTimeoutMs)
	var parts []string
	worst, measured := 0.0, false
	for _, x := range []struct {
		what string
		max  float64
		ok   bool
	}{
		{"baseline", maxOf(l.Baseline), l.Baseline != nil},
		{"fill", fillMax(l.Fill), l.Fill != nil},
		{"load at " + size, maxOf(l.Load), l.Load != nil},
		{"member down and catching up", maxOf(l.CatchUpLoad), l.CatchUpLoad != nil},
	} {
		if !x.ok {
			parts = append(parts, x.what+" not measured")
			continue
		}
		measured = true
		worst = max(worst, x.max)
		parts = append(parts, fmt.Sprintf("%s max %.0f ms", x.what, x.max))
	}
	add(slowest, measured, "no load was measured", worst <= s.ElectionTimeoutMs, strings.Join(parts, ", "))
	return out
}

func maxOf(f *figures) float64 {
	if f == nil {
		return 0
	}
	return f.MaxMs
}

func fillMax(f *benchreport.FillSummary) float64 {
	if f == nil {
		return 0
	}
	return f.Latency.MaxMs
}
