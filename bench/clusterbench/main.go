package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"lite-raft/api"
	"lite-raft/benchreport"
	"lite-raft/client"
	"lite-raft/internal/harness"
	"lite-raft/internal/sshcmd"
	"lite-raft/sshrpc"
)

var (
	liteDir   = flag.String("lite-raft", ".", "`DIR` holding the built lite-raft (make build)")
	duration  = flag.Duration("duration", 10*time.Second, "how long each workload runs on each system")
	etcdLoad  = flag.String("etcdload", "", "the etcdload `BINARY` (bench/etcdload): also run every workload against etcd; empty: lite-raft only")
	etcdBin   = flag.String("etcd", "/usr/bin/etcd", "the etcd server `BINARY`")
	only      = flag.String("only", "", "comma-separated workload names to run (set1, set16, set64, get64, cas64, set256, get256, wall, batch, failover, scale, wan); empty: all")
	wallRuns  = flag.Int("wall-runs", 200, "how many `./lite-raft-client set` processes to time")
	jsonOut   = flag.String("json", "", "also write every figure to this `FILE` as JSON")
	keepGoing = flag.Bool("keep", false, "leave the LAN clusters running after their report, before the WAN section (Ctrl-C ends them)")
	profDir   = flag.String("cpuprofile", "", "run lite-raft's agents with --cpuprofile and --memprofile, writing DIR/hostN.prof, DIR/hostN.allocs.prof (read them with go tool pprof) and DIR/hostN.gctrace (GODEBUG=gctrace=1)")
	logsDir   = flag.String("logs", "", "keep the servers' logs: every host's message-log/ in DIR/hostN/, etcd's in DIR/etcd/ (the clusters' folders are removed at the end)")
)

// electionTimeout is both systems' (lite-raft's conf/election_timeout, etcd's
// --election-timeout); the scale workload's latency target is one of it.
const electionTimeout = time.Second

// workload is one line of the report.
type workload struct {
	id, name string
	clients  int
	op       string
}

var workloads = []workload{
	{"set1", "set, 1 client", 1, "set"},
	{"set16", "set, 16 clients", 16, "set"},
	{"set64", "set, 64 clients", 64, "set"},
	{"get64", "linearizable get, 64 clients", 64, "get"},
	{"cas64", "conditional set, 64 clients", 64, "cas"},
	// issue 31's targets are at 256 clients
	{"set256", "set, 256 clients", 256, "set"},
	{"get256", "linearizable get, 256 clients", 256, "get"},
}

// figures is a load generator's summary: `lite-raft bench --json` and `etcdload --json`
// print the same one (benchreport).
type figures = benchreport.Summary

type report struct {
	Machine  string              `json:"machine"`
	Version  string              `json:"version"`
	Duration string              `json:"duration_per_workload"`
	Lite     map[string]*figures `json:"lite_raft"`
	Etcd     map[string]*figures `json:"etcd,omitempty"`
	// availability gap after kill -9 of the leader, ms
	LiteFailoverMs float64 `json:"lite_raft_failover_ms,omitempty"`
	EtcdFailoverMs float64 `json:"etcd_failover_ms,omitempty"`
	// wall time of one ./lite-raft-client set process, ms, run on the leader and on a follower
	WallLeaderP50   float64 `json:"client_set_wall_leader_p50_ms,omitempty"`
	WallLeaderP99   float64 `json:"client_set_wall_leader_p99_ms,omitempty"`
	WallFollowerP50 float64 `json:"client_set_wall_follower_p50_ms,omitempty"`
	WallFollowerP99 float64 `json:"client_set_wall_follower_p99_ms,omitempty"`
	// /bin/true and an empty Go program timed the same way: what any process, and any
	// Go process, costs here
	TrueP50    float64 `json:"bin_true_wall_p50_ms,omitempty"`
	EmptyGoP50 float64 `json:"empty_go_wall_p50_ms,omitempty"`
	// the batch workload (issue 31)
	Batch *batchReport `json:"batch,omitempty"`
	// the scale workload (issue 14)
	Scale *scaleReport `json:"scale,omitempty"`
	// the WAN section (issue 30)
	WAN *wanReport `json:"wan,omitempty"`
}

func main() {
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: clusterbench [flags]   (normally run by `make bench`, as root)\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "clusterbench: %v\n", err)
		os.Exit(1)
	}
}

func wanted(id string) bool {
	return *only == "" || slices.Contains(strings.Split(*only, ","), id)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// lanWanted says whether a workload of the LAN clusters (all but wan) is to run.
func lanWanted() bool {
	for _, w := range workloads {
		if wanted(w.id) {
			return true
		}
	}
	return wanted("wall") || wanted("batch") || wanted("failover") || wanted("scale")
}

func run() error {
	rep := &report{Machine: machine(), Version: version(), Duration: duration.String(),
		Lite: map[string]*figures{}}
	if wanted("batch") {
		if err := checkBatchFlags(); err != nil {
			return err
		}
	}
	if lanWanted() {
		if err := runLAN(rep); err != nil {
			return err
		}
	}
	if wanted("wan") {
		rep.WAN = runWAN(*etcdLoad != "")
	}
	rep.print(os.Stdout)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runLAN runs the workloads of the LAN clusters (lite-raft on harness hosts without
// delay, etcd on loopback) and closes them, unless --keep, before the WAN section starts
// clusters of its own.
func runLAN(rep *report) error {
	lc, err := startLite(*liteDir)
	if err != nil {
		return fmt.Errorf("lite-raft cluster: %w", err)
	}
	defer lc.close()
	var ec *etcdCluster
	if *etcdLoad != "" {
		rep.Etcd = map[string]*figures{}
		if ec, err = startEtcd(*etcdBin, *etcdLoad); err != nil {
			return fmt.Errorf("etcd cluster: %w", err)
		}
		defer ec.close()
	}

	// each workload on one system and at once on the other: they share the machine's
	// state of the moment
	for _, w := range workloads {
		if !wanted(w.id) {
			continue
		}
		logf("%s: lite-raft for %v", w.name, *duration)
		f, err := lc.bench(w)
		if err != nil {
			return fmt.Errorf("%s on lite-raft: %w", w.name, err)
		}
		rep.Lite[w.id] = f
		if ec != nil {
			logf("%s: etcd for %v", w.name, *duration)
			if rep.Etcd[w.id], err = ec.bench(w); err != nil {
				return fmt.Errorf("%s on etcd: %w", w.name, err)
			}
		}
	}
	if wanted("wall") {
		logf("wall time of %d `./lite-raft-client set` processes on the leader, then on a follower", *wallRuns)
		if rep.WallLeaderP50, rep.WallLeaderP99, err = lc.wallTime(true, &rep.TrueP50, &rep.EmptyGoP50); err != nil {
			return err
		}
		if rep.WallFollowerP50, rep.WallFollowerP99, err = lc.wallTime(false, &rep.TrueP50, &rep.EmptyGoP50); err != nil {
			return err
		}
	}
	// before the failover, which leaves the old leader a follower that has just restarted
	if wanted("batch") {
		rep.Batch = runBatch(lc, ec)
	}
	if wanted("failover") {
		logf("kill -9 of lite-raft's leader under writes")
		gap, err := lc.failover()
		if err != nil {
			return fmt.Errorf("lite-raft failover: %w", err)
		}
		rep.LiteFailoverMs = ms(gap)
		if ec != nil {
			logf("kill -9 of etcd's leader under writes")
			gap, err := ec.failover()
			if err != nil {
				return fmt.Errorf("etcd failover: %w", err)
			}
			rep.EtcdFailoverMs = ms(gap)
		}
	}
	if wanted("scale") {
		rep.Scale = runScale(lc, ec)
	}
	if *keepGoing {
		rep.print(os.Stdout)
		logf("clusters left running; Ctrl-C ends them")
		<-make(chan struct{})
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *report) print(w io.Writer) {
	perWorkload := ""
	if len(r.Lite) > 0 {
		perWorkload = r.Duration + " per workload; "
	}
	fmt.Fprintf(w, "\nmachine: %s\nlite-raft %s; %s3 members, fsync on, election timeout %v\n", r.Machine, r.Version, perWorkload, electionTimeout)
	if len(r.Lite) > 0 {
		fmt.Fprintln(w)
	}
	// no header when no workload of the table ran (--only scale, say)
	switch {
	case len(r.Lite) == 0:
	case r.Etcd != nil:
		fmt.Fprintln(w, "| workload | lite-raft ops/s | p50 ms | p99 ms | etcd ops/s | p50 ms | p99 ms | ops/s ratio | p50 ratio |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	default:
		fmt.Fprintln(w, "| workload | lite-raft ops/s | p50 ms | p99 ms |")
		fmt.Fprintln(w, "|---|---:|---:|---:|")
	}
	for _, wl := range workloads {
		l := r.Lite[wl.id]
		if l == nil {
			continue
		}
		fmt.Fprintf(w, "| %s | %.0f | %.2f | %.2f |", wl.name, l.OpsPerS, l.P50Ms, l.P99Ms)
		if e := r.Etcd[wl.id]; e != nil {
			fmt.Fprintf(w, " %.0f | %.2f | %.2f | %.2fx | %.2fx |", e.OpsPerS, e.P50Ms, e.P99Ms, l.OpsPerS/e.OpsPerS, l.P50Ms/e.P50Ms)
		}
		fmt.Fprintln(w)
	}
	if r.LiteFailoverMs > 0 {
		fmt.Fprintf(w, "\nwrites back after kill -9 of the leader: lite-raft %.0f ms", r.LiteFailoverMs)
		if r.EtcdFailoverMs > 0 {
			fmt.Fprintf(w, ", etcd %.0f ms", r.EtcdFailoverMs)
		}
		fmt.Fprintln(w)
	}
	if r.WallLeaderP50 > 0 {
		fmt.Fprintf(w, "one ./lite-raft-client set, wall time: on the leader p50 %.2f ms p99 %.2f ms; on a follower p50 %.2f ms p99 %.2f ms (same loop: /bin/true p50 %.2f ms, an empty Go program p50 %.2f ms)\n",
			r.WallLeaderP50, r.WallLeaderP99, r.WallFollowerP50, r.WallFollowerP99, r.TrueP50, r.EmptyGoP50)
	}
	// the targets of issue 8, as ratios within this run
	var checks []string
	check := func(what string, ok bool, got string) {
		checks = append(checks, formatTarget(target{What: what, State: metOrNot(ok), Got: got}))
	}
	if l, e := r.Lite["set64"], r.Etcd["set64"]; l != nil && e != nil {
		check("writes, 64 clients: >= 1.2x etcd's ops/s", l.OpsPerS >= 1.2*e.OpsPerS, fmt.Sprintf("%.2fx", l.OpsPerS/e.OpsPerS))
	}
	if l, e := r.Lite["set1"], r.Etcd["set1"]; l != nil && e != nil {
		check("write latency, 1 client: p50 <= etcd's", l.P50Ms <= e.P50Ms, fmt.Sprintf("%.2f vs %.2f ms", l.P50Ms, e.P50Ms))
	}
	if l, e := r.Lite["get64"], r.Etcd["get64"]; l != nil && e != nil {
		check("linearizable reads, 64 clients: >= etcd's ops/s", l.OpsPerS >= e.OpsPerS, fmt.Sprintf("%.2fx", l.OpsPerS/e.OpsPerS))
	}
	// issue 31's
	if l, e := r.Lite["set256"], r.Etcd["set256"]; l != nil && e != nil {
		check("writes, 256 clients: >= 6x etcd's ops/s (issue 31)", l.OpsPerS >= 6*e.OpsPerS, fmt.Sprintf("%.2fx", l.OpsPerS/e.OpsPerS))
	}
	if l, e := r.Lite["set1"], r.Etcd["set1"]; l != nil && e != nil {
		check("write latency, 1 client: p50 <= 0.7x etcd's (issue 31)", l.P50Ms <= 0.7*e.P50Ms, fmt.Sprintf("%.2fx", l.P50Ms/e.P50Ms))
	}
	if l, e := r.Lite["get256"], r.Etcd["get256"]; l != nil && e != nil {
		check("linearizable reads, 256 clients: >= 8x etcd's ops/s (issue 31)", l.OpsPerS >= 8*e.OpsPerS, fmt.Sprintf("%.2fx", l.OpsPerS/e.OpsPerS))
	}
	if r.WallLeaderP50 > 0 {
		check("one lite-raft-client set: median < 5 ms", max(r.WallLeaderP50, r.WallFollowerP50) < 5,
			fmt.Sprintf("%.2f ms leader, %.2f ms follower", r.WallLeaderP50, r.WallFollowerP50))
	}
	if r.LiteFailoverMs > 0 {
		check("writes back within 1.5 election timeouts", r.LiteFailoverMs <= 1500, fmt.Sprintf("%.0f ms", r.LiteFailoverMs))
	}
	if len(checks) > 0 {
		fmt.Fprintf(w, "\ntargets:\n%s\n", strings.Join(checks, "\n"))
	}
	if r.Batch != nil {
		r.Batch.print(w)
	}
	if r.Scale != nil {
		r.Scale.print(w)
	}
	if r.WAN != nil {
		r.WAN.print(w)
	}
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	var u syscall.Utsname
	kernel := ""
	if syscall.Uname(&u) == nil {
		var b []byte
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		kernel = ", Linux " + string(b)
	}
	return fmt.Sprintf("%d cores (%s)%s, %s", runtime.NumCPU(), model, kernel, time.Now().Format("2006-01-02"))
}

func version() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "(unknown version)"
	}
	return strings.TrimSpace(string(out))
}

// ---- lite-raft on a harness cluster ----

type liteCluster struct {
	c       *harness.Cluster
	members []*harness.Host
	client  *harness.Host // a fourth host, not a member, where the load runs
	tmpl    string
	// profiling: the agents write CPU profiles when they stop
	profiling bool
	profDir   string
	polls     *statusPolls
}

// statusPolls keeps one `lite-raft rpc` stream over ssh per member for status: the
// workloads poll the leader every 100 ms (a member catching up), and a new ssh process,
// sshd session and lite-raft-client per poll took about a tenth of the two cores while
// a restarted member caught up (perf record -a), which etcd's poller, on one connection,
// does not pay.
type statusPolls struct {
	mu    sync.Mutex
	home  string
	d     *sshrpc.Dialer
	peers map[string]*sshrpc.Peer
}

// client is the status stream to h, dialled on first use (and again by the peer after
// its agent restarted).
func (sp *statusPolls) client(c *harness.Cluster, h *harness.Host) (*client.Client, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.d == nil {
		home, err := os.MkdirTemp("", "clusterbench-ssh-")
		if err != nil {
			return nil, err
		}
		d, err := sshrpc.NewDialer(sshrpc.DialerOptions{ConfigFiles: []string{c.SSHConfigFile}, Home: home})
		if err != nil {
			os.RemoveAll(home)
			return nil, err
		}
		sp.home, sp.d, sp.peers = home, d, map[string]*sshrpc.Peer{}
	}
	p := sp.peers[h.Name]
	if p == nil {
		p = sshrpc.NewPeer(h.Name, sp.d, sshcmd.Command(harness.RemoteDir, "rpc"), sshrpc.ConnOptions{})
		sp.peers[h.Name] = p
	}
	return client.New(p), nil
}

func (sp *statusPolls) close() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for _, p := range sp.peers {
		p.Close()
	}
	if sp.home != "" {
		os.RemoveAll(sp.home)
	}
	sp.d, sp.peers, sp.home = nil, nil, ""
}

// liteTemplate makes the folder every harness host starts with: the built lite-raft of
// dir and its links, an empty Go program (wallTime) and conf/ naming host1-host3.
func liteTemplate(dir string) (_ string, err error) {
	tmpl, err := os.MkdirTemp("", "clusterbench-tmpl-")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmpl)
		}
	}()
	if err = copyExecutable(filepath.Join(dir, "lite-raft"), filepath.Join(tmpl, "lite-raft")); err != nil {
		return "", fmt.Errorf("%w (run make build first)", err)
	}
	for _, f := range []string{"lite-raft-client", "lite-raft-remote"} {
		if err := os.Symlink("lite-raft", filepath.Join(tmpl, f)); err != nil {
			return "", err
		}
	}
	if err := buildEmptyGo(filepath.Join(tmpl, "empty-go")); err != nil {
		return "", err
	}
	os.Mkdir(filepath.Join(tmpl, "conf"), 0o755)
	for name, v := range map[string]string{"cluster_nodes": "host1 host2 host3",
		"election_timeout": strconv.FormatFloat(electionTimeout.Seconds(), 'g', -1, 64)} {
		if err := os.WriteFile(filepath.Join(tmpl, "conf", name), []byte(v+"\n"), 0o644); err != nil {
			return "", err
		}
	}
	return tmpl, nil
}

func startLite(dir string) (*liteCluster, error) {
	tmpl, err := liteTemplate(dir)
	if err != nil {
		return nil, err
	}
	lc := &liteCluster{tmpl: tmpl, polls: &statusPolls{}}
	logf("starting 4 harness hosts (3 members, 1 client)")
	lc.c, err = harness.Start(4, harness.Options{Template: tmpl, Timeout: *duration + 3*time.Minute})
	// the scale workload adds a fifth host (AddHost) when it adds a member
	if err != nil {
		lc.close()
		return nil, err
	}
	lc.members, lc.client = lc.c.Hosts[:3], lc.c.Hosts[3]
	for _, h := range lc.members {
		if _, e, code, err := h.Run("cd " + harness.RemoteDir + " && ./lite-raft first-boot"); err != nil || code != 0 {
			lc.close()
			return nil, fmt.Errorf("first-boot on %s: exit %d %v %s", h.Name, code, err, e)
		}
	}
	if *profDir != "" {
		if err := lc.profileAgents(*profDir); err != nil {
			lc.close()
			return nil, err
		}
	}
	if _, err := lc.leader(30 * time.Second); err != nil {
		lc.close()
		return nil, err
	}
	return lc, nil
}

// profileAgents restarts every member's agent in the foreground with --cpuprofile; the
// profiles are written when the agents stop (close).
func (lc *liteCluster) profileAgents(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lc.profiling, lc.profDir = true, dir
	for _, h := range lc.members {
		if _, e, code, err := h.Run("cd " + harness.RemoteDir + " && ./lite-raft stop >/dev/null; " + lc.startCommand()); err != nil || code != 0 {
			return fmt.Errorf("restart %s's agent with --cpuprofile: exit %d %v %s", h.Name, code, err, e)
		}
	}
	logf("agents run with --cpuprofile; profiles go to %s when the run ends", dir)
	return nil
}

// startCommand starts a member's agent, in the foreground with profiles when profiling
// (a member restarted by a workload then profiles its life since that restart).
func (lc *liteCluster) startCommand() string {
	if !lc.profiling {
		return "cd " + harness.RemoteDir + " && ./lite-raft start"
	}
	// the host's own folder: its /tmp is not ours
	return "cd " + harness.RemoteDir + " && (GODEBUG=gctrace=1 setsid ./lite-raft agent --foreground --cpuprofile cpu.prof --memprofile allocs.prof </dev/null >/dev/null 2>gctrace &)"
}

func (lc *liteCluster) close() {
	if lc.c != nil && lc.profiling {
		for _, h := range lc.members {
			h.Run("cd " + harness.RemoteDir + " && ./lite-raft stop") // writes the profile
			for from, to := range map[string]string{"cpu.prof": ".prof", "allocs.prof": ".allocs.prof", "gctrace": ".gctrace"} {
				if b, err := os.ReadFile(filepath.Join(h.Dir, from)); err == nil {
					os.WriteFile(filepath.Join(lc.profDir, h.Name+to), b, 0o644)
				}
			}
		}
	}
	if lc.c != nil && *logsDir != "" {
		for _, h := range lc.c.Hosts {
			// the client host runs no agent and has no logs
			if err := copyFiles(filepath.Join(h.Dir, "message-log"), filepath.Join(*logsDir, h.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				logf("keeping %s's logs: %v", h.Name, err)
			}
		}
	}
	lc.polls.close()
	if lc.c != nil {
		lc.c.Close()
	}
	os.RemoveAll(lc.tmpl)
}

// copyFiles copies the regular files directly in src to dst (created if need be).
func copyFiles(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (lc *liteCluster) status(h *harness.Host) (api.Status, error) {
	var st api.Status
	cl, err := lc.polls.client(lc.c, h)
	if err != nil {
		return st, fmt.Errorf("status on %s: %w", h.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Do(ctx, api.Request{Op: api.OpStatus, Stale: true})
	if err == nil && resp.Code != 0 {
		err = fmt.Errorf("exit %d: %s", resp.Code, resp.Msg)
	}
	if err != nil {
		return st, fmt.Errorf("status on %s: %w", h.Name, err)
	}
	return st, json.Unmarshal(resp.JSON, &st)
}

// leader waits until every member names the same leader.
func (lc *liteCluster) leader(within time.Duration) (*harness.Host, error) {
	deadline := time.Now().Add(within)
	for {
		var lead string
		agree := true
		for _, h := range lc.members {
			st, err := lc.status(h)
			if err != nil || st.Leader == "" || (lead != "" && st.Leader != lead) {
				agree = false
				break
			}
			lead = st.Leader
		}
		if agree {
			if h := lc.c.Host(lead); h != nil {
				return h, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the members agree on no leader after %v", within)
		}
		time.Sleep(100 * time.Millisecond) // polling with a deadline
	}
}

func (lc *liteCluster) bench(w workload) (*figures, error) {
	lead, err := lc.leader(30 * time.Second)
	if err != nil {
		return nil, err
	}
	cmd := fmt.Sprintf("cd %s && ./lite-raft bench --hosts %s --clients %d --duration %s --mix %s=100 --json",
		harness.RemoteDir, lead.Name, w.clients, *duration, w.op)
	o, e, code, err := lc.client.Run(cmd)
	if err != nil || code != 0 {
		return nil, fmt.Errorf("%s: exit %d %v %s", cmd, code, err, e)
	}
	var f figures
	if err := json.Unmarshal([]byte(o), &f); err != nil {
		return nil, fmt.Errorf("%s: %w in %q", cmd, err, o)
	}
	return &f, nil
}

// wallTime runs ./lite-raft-client set *wallRuns times in a row on the leader or on a
// follower and returns the median and p99 wall time of one process, in ms, as bash's
// clock sees it around each run (no fork of a timer inside the interval).
func (lc *liteCluster) wallTime(onLeader bool, trueP50, emptyGoP50 *float64) (p50, p99 float64, err error) {
	lead, err := lc.leader(30 * time.Second)
	if err != nil {
		return 0, 0, err
	}
	h := lead
	if !onLeader {
		for _, m := range lc.members {
			if m != lead {
				h = m
				break
			}
		}
	}
	// /bin/true and an empty Go program in the same loop: what starting any process,
	// and any Go process, costs here
	script := fmt.Sprintf(`cd %s && for i in $(seq %d); do a=$EPOCHREALTIME; /bin/true; b=$EPOCHREALTIME; ./empty-go; s=$EPOCHREALTIME; ./lite-raft-client set bench/wall $i >/dev/null || exit 1; e=$EPOCHREALTIME; echo "$s $e $a $b"; done`,
		harness.RemoteDir, *wallRuns)
	o, e, code, err := h.Exec("bash", "-c", script)
	if err != nil || code != 0 {
		return 0, 0, fmt.Errorf("timing lite-raft-client set on %s: exit %d %v %s", h.Name, code, err, e)
	}
	var lat, trueLat, goLat []float64
	for _, line := range strings.Split(strings.TrimSpace(o), "\n") {
		var t [4]float64
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		ok := true
		for i := range t {
			var err error
			t[i], err = strconv.ParseFloat(f[i], 64)
			ok = ok && err == nil
		}
		if ok {
			s, e, a, b := t[0], t[1], t[2], t[3]
			lat, trueLat, goLat = append(lat, (e-s)*1000), append(trueLat, (b-a)*1000), append(goLat, (s-b)*1000)
		}
	}
	if len(trueLat) > 0 {
		slices.Sort(trueLat)
		slices.Sort(goLat)
		*trueP50, *emptyGoP50 = benchreport.Percentile(trueLat, 50), benchreport.Percentile(goLat, 50)
	}
	if len(lat) == 0 {
		return 0, 0, fmt.Errorf("timing lite-raft-client set on %s: no timings in %q", h.Name, o)
	}
	slices.Sort(lat)
	return benchreport.Percentile(lat, 50), benchreport.Percentile(lat, 99), nil
}

// failover kills the leader's agent with SIGKILL while a probe writes through every
// member in turn, and returns the write availability gap the probe saw.
func (lc *liteCluster) failover() (time.Duration, error) {
	lead, err := lc.leader(30 * time.Second)
	if err != nil {
		return 0, err
	}
	home, err := os.MkdirTemp("", "clusterbench-ssh-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(home)
	d, err := sshrpc.NewDialer(sshrpc.DialerOptions{ConfigFiles: []string{lc.c.SSHConfigFile}, Home: home})
	if err != nil {
		return 0, err
	}
	var clients []*client.Client
	for _, h := range lc.members {
		p := sshrpc.NewPeer(h.Name, d, sshcmd.Command(harness.RemoteDir, "rpc"), sshrpc.ConnOptions{})
		defer p.Close()
		clients = append(clients, client.New(p))
	}
	n := 0
	write := func(ctx context.Context) error {
		n++
		resp, err := clients[n%len(clients)].Do(ctx, api.Request{Op: api.OpSet, Key: "bench/probe", Value: []byte(strconv.Itoa(n))})
		if err == nil && resp.Code != 0 {
			err = fmt.Errorf("exit %d: %s", resp.Code, resp.Msg)
		}
		return err
	}
	gap, err := probeGap(write, func() error {
		k, err := lead.Signal(`lite-raft .*agent --foreground`, syscall.SIGKILL)
		if err == nil && k != 1 {
			err = fmt.Errorf("%d agents killed on %s, want 1", k, lead.Name)
		}
		return err
	})
	// the old leader back, so the cluster can be used again (--keep)
	lead.Run(lc.startCommand())
	return gap, err
}

// probeTimeout bounds each write of the failover probes: the gap is measured in steps of
// at most this much (a write to a live member waiting for an election uses all of it).
const probeTimeout = 100 * time.Millisecond

// probeGap writes in a loop (probeTimeout per write), kills, and measures the write
// availability gap as benchreport.Gap defines it, which bench/etcdload's
// --failover-probe uses for etcd.
func probeGap(write func(context.Context) error, kill func() error) (time.Duration, error) {
	type result struct {
		start, end time.Time
		err        error
	}
	results := make(chan result, 1024)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
			s := time.Now()
			err := write(ctx)
			cancel()
			select {
			case results <- result{s, time.Now(), err}:
			case <-stop:
				return
			}
		}
	}()
	// writes must work before the kill
	warm := time.After(time.Second)
	okBefore := 0
warmup:
	for {
		select {
		case r := <-results:
			if r.err == nil {
				okBefore++
			}
		case <-warm:
			break warmup
		}
	}
	if okBefore == 0 {
		return 0, errors.New("no write succeeded in the second before the kill")
	}
	t0 := time.Now()
	if err := kill(); err != nil {
		return 0, err
	}
	gap := benchreport.Gap{T0: t0}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case r := <-results:
			if d, known := gap.Add(r.start, r.end, r.err == nil); known {
				return d, nil
			}
		case <-deadline:
			return 0, errors.New("no write succeeded within 30 s of the kill")
		}
	}
}

// ---- etcd on loopback ----

type etcdCluster struct {
	dir   string
	bin   string
	load  string
	eps   []string
	procs []*exec.Cmd
	// args are each member's command line, to start it again after a stop
	args [][]string
}

// etcdPeerURL and etcdEndpoint are member i's (from 1) addresses.
func etcdPeerURL(i int) string  { return fmt.Sprintf("http://127.0.0.1:%d", 23800+i) }
func etcdEndpoint(i int) string { return fmt.Sprintf("127.0.0.1:%d", 23790+i) }

func startEtcd(bin, load string) (*etcdCluster, error) {
	dir, err := os.MkdirTemp("", "clusterbench-etcd-")
	if err != nil {
		return nil, err
	}
	ec := &etcdCluster{dir: dir, bin: bin, load: load}
	var initial []string
	for i := 1; i <= 3; i++ {
		initial = append(initial, fmt.Sprintf("e%d=%s", i, etcdPeerURL(i)))
		ec.eps = append(ec.eps, etcdEndpoint(i))
	}
	logf("starting 3 etcd members on loopback (%s), data in %s", strings.Join(ec.eps, " "), dir)
	for i := 1; i <= 3; i++ {
		if err := ec.startMember(i, strings.Join(initial, ","), "new"); err != nil {
			ec.close()
			return nil, err
		}
	}
	if _, err := ec.leader(); err != nil {
		ec.close()
		return nil, err
	}
	return ec, nil
}

// startMember starts member i (from 1), e<i>, its data in ec.dir/e<i>, and records it as
// ec.procs[i-1] (appending when it is new). Its output is appended to ec.dir/e<i>.log.
func (ec *etcdCluster) startMember(i int, initialCluster, state string) error {
	name, peer, cl := fmt.Sprintf("e%d", i), etcdPeerURL(i), "http://"+etcdEndpoint(i)
	args := []string{"--name", name, "--data-dir", filepath.Join(ec.dir, name),
		"--listen-client-urls", cl, "--advertise-client-urls", cl,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", initialCluster, "--initial-cluster-state", state,
		"--initial-cluster-token", "clusterbench", "--heartbeat-interval", "100", "--election-timeout", strconv.FormatInt(electionTimeout.Milliseconds(), 10),
		// the scale workload keeps every revision of 500 MB of data (etcd compacts
		// nothing by default): the default 2 GiB quota could stop it midway with "database
		// space exceeded", a limit and not a cost, so it is raised to etcd's suggested maximum
		"--quota-backend-bytes", strconv.FormatInt(8<<30, 10),
		"--log-level", "error"}
	if i <= len(ec.args) {
		args = ec.args[i-1] // a restart: the same command line (etcd ignores the initial-* flags then)
	}
	logFile, err := os.OpenFile(filepath.Join(ec.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(ec.bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", ec.bin, err)
	}
	if i <= len(ec.procs) {
		ec.procs[i-1] = cmd
	} else {
		ec.procs, ec.args = append(ec.procs, cmd), append(ec.args, args)
	}
	return nil
}

func (ec *etcdCluster) close() {
	for _, p := range ec.procs {
		if p.Process != nil && p.ProcessState == nil {
			p.Process.Kill()
			p.Wait()
		}
	}
	if *logsDir != "" {
		// the data folders hold the logs (e1.log ...) beside the members' data
		if err := copyFiles(ec.dir, filepath.Join(*logsDir, "etcd")); err != nil {
			logf("keeping etcd's logs: %v", err)
		}
	}
	os.RemoveAll(ec.dir)
}

// leader returns the index of etcd's leader in ec.eps.
func (ec *etcdCluster) leader() (int, error) {
	out, err := exec.Command(ec.load, "--endpoints", strings.Join(ec.eps, ","), "--leader", "--timeout", "30s").Output()
	if err != nil {
		return 0, fmt.Errorf("etcdload --leader: %w", exitErr(err))
	}
	ep := strings.TrimSpace(string(out))
	i := slices.Index(ec.eps, ep)
	if i < 0 {
		return 0, fmt.Errorf("etcdload --leader answered %q", ep)
	}
	return i, nil
}

func exitErr(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}

func (ec *etcdCluster) bench(w workload) (*figures, error) {
	lead, err := ec.leader()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(ec.load, "--endpoints", ec.eps[lead], "--clients", strconv.Itoa(w.clients),
		"--duration", duration.String(), "--op", w.op, "--json")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), exitErr(err))
	}
	var f figures
	if err := json.Unmarshal(out, &f); err != nil {
		return nil, fmt.Errorf("etcdload: %w in %q", err, out)
	}
	return &f, nil
}

// failover runs etcdload's probe through every endpoint and kills etcd's leader when the
// probe is writing.
func (ec *etcdCluster) failover() (time.Duration, error) {
	lead, err := ec.leader()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(ec.load, "--endpoints", strings.Join(ec.eps, ","), "--failover-probe", "--timeout", probeTimeout.String())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer cmd.Wait()
	defer stdin.Close()
	// the probe says when its first put went through; its messages go on to our stderr
	writing := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(os.Stderr, sc.Text())
			if strings.Contains(sc.Text(), "first put ok") {
				close(writing)
			}
		}
	}()
	select {
	case <-writing:
	case <-time.After(30 * time.Second):
		return 0, errors.New("etcdload --failover-probe: no put succeeded within 30 s")
	}
	time.Sleep(time.Second) // a second of steady writes before the kill, as probeGap has
	fmt.Fprintln(stdin, "go")
	if err := ec.procs[lead].Process.Kill(); err != nil {
		return 0, err
	}
	// the killed member back once the probe is done, as lite-raft's failover does, so
	// that later workloads (scale) have three members again
	defer func() {
		ec.procs[lead].Wait()
		if err := ec.startMember(lead+1, "", "new"); err != nil {
			logf("etcd: restarting e%d after the failover: %v", lead+1, err)
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("etcdload --failover-probe: %w", err)
	}
	var r struct {
		RecoveryMs float64 `json:"recovery_ms"`
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return 0, fmt.Errorf("etcdload --failover-probe: %w in %q", err, line)
	}
	return time.Duration(r.RecoveryMs * float64(time.Millisecond)), nil
}

// buildEmptyGo builds a Go program that does nothing, to time beside lite-raft-client:
// the floor any Go command has on this machine.
func buildEmptyGo(out string) error {
	dir, err := os.MkdirTemp("", "clusterbench-empty-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module empty\n\ngo 1.21\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build an empty Go program: %v\n%s", err, b)
	}
	return nil
}
