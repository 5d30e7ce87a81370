package main

// The scale workload (issue 14): both systems filled with --scale-keys keys of 1 KB, then
// measured at that size. Every step runs on lite-raft and then at once on etcd; a step
// that fails is recorded with its message and the next one runs, so one report holds
// everything that could be measured.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"lite-raft/api"
	"lite-raft/benchreport"
	"lite-raft/internal/harness"
	"lite-raft/statefile"
)

var (
	scaleKeys     = flag.Int("scale-keys", 500000, "scale workload: `N` keys of 1 KB filled before it measures (bench/s0 ... bench/s<N-1>)")
	scaleDuration = flag.Duration("scale-duration", 30*time.Second, "scale workload: how long 64 clients set random keys once the store is full")
	scaleBaseline = flag.Duration("scale-baseline", 5*time.Second, "scale workload: how long the same load runs on the empty store first (the baseline)")
	scaleDown     = flag.Duration("scale-down", 15*time.Second, "scale workload: how long a follower is stopped under the load")
	scaleWait     = flag.Duration("scale-wait", 120*time.Second, "scale workload: how long a restarted follower may take to catch up, and a new member to become a voter, before the step is reported as failed")
	fillClients   = flag.Int("fill-clients", 128, "scale workload: clients filling the store at once")
)

const (
	scaleValueSize = 1024
	scaleClients   = 64
	scalePrefix    = "bench/s"
	// the baseline sets 1000 keys of its own: over a few seconds at full speed the store
	// stays below a few MB, which an N-key space would not
	baselinePrefix = "bench/e"
	baselineKeys   = 1000
	// a restarted member has caught up once it lags the leader by fewer entries than this
	maxLagEntries = 1000
	// the scale targets are stated for this many keys (500 MB)
	scaleTargetKeys = 500000
	fillConns       = 4
)

// procMem is one server process's memory, from /proc/PID/status.
type procMem struct {
	Name  string `json:"name"`
	Pid   int    `json:"pid,omitempty"`
	RSS   int64  `json:"rss_bytes"`
	HWM   int64  `json:"hwm_bytes"`       // VmHWM: the largest RSS since the process started
	File  int64  `json:"rss_file_bytes"`  // the file-backed part of RSS (etcd maps its database)
	Anon  int64  `json:"rss_anon_bytes"`  // the rest: heap and stacks
	Error string `json:"error,omitempty"` // why it could not be read
}

// stepTime is the outcome of a timed step (catch-up, new member).
type stepTime struct {
	Member string  `json:"member"`
	OK     bool    `json:"ok"`
	Ms     float64 `json:"ms"`               // until done, or until given up
	Detail string  `json:"detail,omitempty"` // the last state seen, or the failure
}

// scaleResult is one system's scale figures; nil parts were not measured.
type scaleResult struct {
	Baseline     *figures                 `json:"baseline_set64,omitempty"`
	Fill         *benchreport.FillSummary `json:"fill,omitempty"`
	Load         *figures                 `json:"set64,omitempty"`
	MemAfterLoad []procMem                `json:"memory_after_load,omitempty"`
	MemEnd       []procMem                `json:"memory_at_end,omitempty"`
	// after the load. lite-raft: the leader's snapshot file and log; etcd: the leader's
	// bbolt database (size, and the part in use)
	SnapshotBytes int64 `json:"snapshot_bytes,omitempty"`
	LogBytes      int64 `json:"log_bytes,omitempty"`
	DBSize        int64 `json:"db_size,omitempty"`
	DBSizeInUse   int64 `json:"db_size_in_use,omitempty"`
	// everything the leader keeps in its data directory, in bytes
	DiskBytes   int64     `json:"leader_disk_bytes,omitempty"`
	CatchUp     *stepTime `json:"catch_up,omitempty"`
	CatchUpLoad *figures  `json:"catch_up_set64,omitempty"` // the load that ran meanwhile
	AddMember   *stepTime `json:"add_member,omitempty"`
	// the steps that failed, with their messages, in order
	Errors []string `json:"errors,omitempty"`
}

func (r *scaleResult) fail(step string, err error) {
	msg := fmt.Sprintf("%s: %v", step, err)
	logf("scale: %s", msg)
	r.Errors = append(r.Errors, msg)
}

// scaleReport is the scale workload's part of the report.
type scaleReport struct {
	Keys              int          `json:"keys"`
	ValueSize         int          `json:"value_size"`
	LiveDataBytes     int64        `json:"live_data_bytes"` // keys and values stored by the workload
	Clients           int          `json:"clients"`
	FillClients       int          `json:"fill_clients"`
	Duration          string       `json:"duration"`
	BaselineDuration  string       `json:"baseline_duration"`
	Down              string       `json:"member_down"`
	Wait              string       `json:"wait_bound"`
	ElectionTimeoutMs float64      `json:"election_timeout_ms"`
	Lite              *scaleResult `json:"lite_raft"`
	Etcd              *scaleResult `json:"etcd,omitempty"`
	// issue 14's targets judged on these figures, as the report prints them
	Targets []target `json:"targets"`
}

// scaleSystem is one system under the scale workload; scaleResult collects what it did.
type scaleSystem interface {
	name() string
	// setLoad runs scaleClients clients setting random keys among keys under prefix
	setLoad(prefix string, keys int, d time.Duration) (*figures, error)
	fill(keys int) (*benchreport.FillSummary, error)
	memory() []procMem
	sizes(r *scaleResult) error
	catchUp(r *scaleResult)
	addMember(r *scaleResult)
}

func runScale(lc *liteCluster, ec *etcdCluster) *scaleReport {
	s := &scaleReport{Keys: *scaleKeys, ValueSize: scaleValueSize,
		LiveDataBytes: benchreport.FillBytes(scalePrefix, *scaleKeys, scaleValueSize) +
			benchreport.FillBytes(baselinePrefix, baselineKeys, scaleValueSize),
		Clients: scaleClients, FillClients: *fillClients, Duration: scaleDuration.String(),
		BaselineDuration: scaleBaseline.String(), Down: scaleDown.String(), Wait: scaleWait.String(),
		ElectionTimeoutMs: ms(electionTimeout), Lite: &scaleResult{}}
	systems := []scaleSystem{lc}
	results := []*scaleResult{s.Lite}
	if ec != nil {
		s.Etcd = &scaleResult{}
		systems, results = append(systems, ec), append(results, s.Etcd)
	}
	each := func(what string, f func(scaleSystem, *scaleResult)) {
		for i, sys := range systems {
			logf("scale: %s: %s", what, sys.name())
			f(sys, results[i])
		}
	}
	each(fmt.Sprintf("%d clients setting %d keys of 1 KB on the empty store for %v (baseline)", scaleClients, baselineKeys, *scaleBaseline),
		func(sys scaleSystem, r *scaleResult) {
			var err error
			if r.Baseline, err = sys.setLoad(baselinePrefix, baselineKeys, *scaleBaseline); err != nil {
				r.fail("baseline set", err)
			}
		})
	each(fmt.Sprintf("filling %d keys of 1 KB (%.0f MB) with %d clients", *scaleKeys, float64(s.LiveDataBytes)/benchreport.MB, *fillClients),
		func(sys scaleSystem, r *scaleResult) {
			var err error
			if r.Fill, err = sys.fill(*scaleKeys); err != nil {
				r.fail("fill", err)
			}
		})
	each(fmt.Sprintf("%d clients setting random keys among the %d for %v", scaleClients, *scaleKeys, *scaleDuration),
		func(sys scaleSystem, r *scaleResult) {
			var err error
			if r.Load, err = sys.setLoad(scalePrefix, *scaleKeys, *scaleDuration); err != nil {
				r.fail("set at full size", err)
			}
			// right after this system's load, before the other's runs
			r.MemAfterLoad = sys.memory()
			if err := sys.sizes(r); err != nil {
				r.fail("data sizes", err)
			}
		})
	each(fmt.Sprintf("a follower stopped for %v under the load, then restarted: time until it lags < %d entries", *scaleDown, maxLagEntries),
		func(sys scaleSystem, r *scaleResult) { sys.catchUp(r) })
	each("a new member added with the full state: time until it votes",
		func(sys scaleSystem, r *scaleResult) { sys.addMember(r) })
	for i, sys := range systems {
		results[i].MemEnd = sys.memory()
	}
	s.Targets = s.targets()
	return s
}

// ---- reading processes and files ----

// parseProcStatus reads VmRSS, VmHWM, RssFile and RssAnon (kB) from /proc/PID/status text.
func parseProcStatus(text string) (m procMem, err error) {
	found := 0
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &m.RSS
		case "VmHWM":
			dst = &m.HWM
		case "RssFile":
			dst = &m.File
		case "RssAnon":
			dst = &m.Anon
		default:
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("%s: %q is not a size in kB", k, strings.TrimSpace(v))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("%s: %w", k, err)
		}
		*dst = n * 1024
		found++
	}
	if m.RSS == 0 || m.HWM == 0 {
		return m, errors.New("no VmRSS and VmHWM (a kernel thread, or a process that is exiting)")
	}
	return m, nil
}

func readProcMem(name string, pid int) procMem {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{Name: name, Pid: pid, Error: err.Error()}
	}
	m, err := parseProcStatus(string(b))
	m.Name, m.Pid = name, pid
	if err != nil {
		m.Error = fmt.Sprintf("/proc/%d/status: %v", pid, err)
	}
	return m
}

// dirBytes is the size of the regular files under dir (0 if it does not exist).
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a file deleted while we walk: a compacted segment, say
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n, err
}

// ---- running load generators ----

// progressLine matches benchreport.Progress's lines ("  1.0s      1234 ops ..."): the
// first one says the load has run for a second.
var progressLine = regexp.MustCompile(`^\s*\d+\.\ds\s+\d+ ops`)

// tail keeps the last lines of a stream, for error messages.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(l string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lines = append(t.lines, l); len(t.lines) > 8 {
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, " | ")
}

// suffix is the tail as the end of an error message, or "" when nothing was written.
func (t *tail) suffix() string {
	if s := t.String(); s != "" {
		return " (last output: " + s + ")"
	}
	return ""
}

// proc is a load generator (or another command) run with its stdout collected and its
// stderr read line by line as it comes.
type proc struct {
	cmd     *exec.Cmd
	stdout  bytes.Buffer
	stderr  tail
	running chan struct{} // closed at the first progress line
	done    chan struct{} // closed once the command has exited
	err     error         // cmd.Wait's, once done
}

// startProc starts cmd; every stderr line goes to onLine (if not nil) and to the tail.
func startProc(cmd *exec.Cmd, onLine func(string)) (*proc, error) {
	p := &proc{cmd: cmd, running: make(chan struct{}), done: make(chan struct{})}
	cmd.Stdout = &p.stdout
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(errPipe)
		var once sync.Once
		for sc.Scan() {
			l := sc.Text()
			if progressLine.MatchString(l) {
				once.Do(func() { close(p.running) })
			} else {
				p.stderr.add(l)
			}
			if onLine != nil {
				onLine(l)
			}
		}
		// stdout is complete only once Wait has returned, which also needs stderr read
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// wait waits for the command to end, at most within; past that it is killed.
func (p *proc) wait(within time.Duration) error {
	select {
	case <-p.done:
	case <-time.After(within):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("did not end within %v; killed%s", within, p.stderr.suffix())
	}
	if p.err != nil {
		return fmt.Errorf("%w%s", exitErr(p.err), p.stderr.suffix())
	}
	return nil
}

// waitRunning waits for the first progress line.
func (p *proc) waitRunning(within time.Duration) error {
	select {
	case <-p.running:
		return nil
	case <-p.done:
		return fmt.Errorf("ended before it ran: %v%s", exitErr(p.err), p.stderr.suffix())
	case <-time.After(within):
		return fmt.Errorf("no progress within %v%s", within, p.stderr.suffix())
	}
}

// lastJSON decodes the last line of the command's stdout into v.
func (p *proc) lastJSON(v any) error {
	lines := strings.Split(strings.TrimSpace(p.stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		return fmt.Errorf("%w in %q", err, p.stdout.String())
	}
	return nil
}

// echo prints a load generator's line on our stderr, naming the system.
func echo(system string) func(string) {
	return func(l string) { fmt.Fprintf(os.Stderr, "  %s> %s\n", system, l) }
}

// fillBound bounds a fill: a cluster that writes fewer than 1000 keys/s has failed anyway.
func fillBound(keys int) time.Duration {
	return 5*time.Minute + time.Duration(keys)*time.Millisecond
}

// runFill runs a fill to its end and returns its summary; a fill that did not write
// every key returns the summary and an error.
func runFill(cmd *exec.Cmd, system string, keys int) (*benchreport.FillSummary, error) {
	p, err := startProc(cmd, echo(system))
	if err != nil {
		return nil, err
	}
	werr := p.wait(fillBound(keys))
	var f benchreport.FillSummary
	if jerr := p.lastJSON(&f); jerr != nil {
		return nil, errors.Join(werr, jerr)
	}
	if werr != nil {
		return &f, werr
	}
	return &f, nil
}

// runLoad runs a load generator for d (and a margin) and reads its summary.
func runLoad(cmd *exec.Cmd, what string, d time.Duration) (*figures, error) {
	p, err := startProc(cmd, nil)
	if err != nil {
		return nil, err
	}
	if err := p.wait(d + 2*time.Minute); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var f figures
	if err := p.lastJSON(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &f, nil
}

// ---- lite-raft ----

func (lc *liteCluster) name() string { return "lite-raft" }

// benchCommand is `lite-raft bench` on the client host against the leader, as a command
// run over ssh (exec: so that SIGINT reaches the bench itself, not a shell around it).
func (lc *liteCluster) benchCommand(ctx context.Context, args string) (*exec.Cmd, error) {
	lead, err := lc.leader(30 * time.Second)
	if err != nil {
		return nil, err
	}
	return lc.client.SSHCommand(ctx, fmt.Sprintf("cd %s && exec ./lite-raft bench --hosts %s %s", harness.RemoteDir, lead.Name, args)), nil
}

func setArgs(prefix string, keys int, d time.Duration) string {
	return fmt.Sprintf("--clients %d --duration %s --mix set=100 --keys %d --key-prefix %s --value-size %d --json",
		scaleClients, d, keys, prefix, scaleValueSize)
}

func (lc *liteCluster) setLoad(prefix string, keys int, d time.Duration) (*figures, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Minute)
	defer cancel()
	cmd, err := lc.benchCommand(ctx, setArgs(prefix, keys, d))
	if err != nil {
		return nil, err
	}
	return runLoad(cmd, "lite-raft bench", d)
}

func (lc *liteCluster) fill(keys int) (*benchreport.FillSummary, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fillBound(keys)+time.Minute)
	defer cancel()
	cmd, err := lc.benchCommand(ctx, fmt.Sprintf("--fill --keys %d --key-prefix %s --value-size %d --clients %d --conns %d --json",
		keys, scalePrefix, scaleValueSize, *fillClients, fillConns))
	if err != nil {
		return nil, err
	}
	return runFill(cmd, "lite-raft", keys)
}

// agentPid finds the agent process of h (started by first-boot or start, or in the
// foreground by --cpuprofile).
func agentPid(h *harness.Host) (int, error) {
	procs, err := h.Procs()
	if err != nil {
		return 0, err
	}
	re := regexp.MustCompile(`lite-raft .*agent --foreground`)
	var pids []int
	for _, p := range procs {
		if re.MatchString(p.Cmdline) {
			pids = append(pids, p.Pid)
		}
	}
	if len(pids) != 1 {
		return 0, fmt.Errorf("%d agent processes on %s, want 1", len(pids), h.Name)
	}
	return pids[0], nil
}

func (lc *liteCluster) memory() []procMem {
	var out []procMem
	for _, h := range lc.members {
		pid, err := agentPid(h)
		if err != nil {
			out = append(out, procMem{Name: h.Name, Error: err.Error()})
			continue
		}
		out = append(out, readProcMem(h.Name, pid))
	}
	return out
}

func (lc *liteCluster) sizes(r *scaleResult) error {
	lead, err := lc.leader(30 * time.Second)
	if err != nil {
		return err
	}
	snapDir, err := dirBytes(filepath.Join(lead.Dir, statefile.SnapshotDir))
	if err != nil {
		return err
	}
	// the snapshot itself: the folder may also hold one being written at this moment
	fi, err := os.Stat(filepath.Join(lead.Dir, statefile.SnapshotDir, "snapshot"))
	if err != nil {
		return err
	}
	r.SnapshotBytes = fi.Size()
	if r.LogBytes, err = dirBytes(filepath.Join(lead.Dir, statefile.LogDir)); err != nil {
		return err
	}
	state, err := dirBytes(filepath.Join(lead.Dir, statefile.StateDir))
	r.DiskBytes = snapDir + r.LogBytes + state
	return err
}

// memberStatus is the leader's view of member name, and the leader's own status: the
// leader's status is asked, and when it has lost the lead the new leader's (lead is
// updated for the next call).
func (lc *liteCluster) memberStatus(lead **harness.Host, name string) (api.MemberStatus, api.Status, error) {
	st, err := lc.status(*lead)
	if err != nil {
		return api.MemberStatus{}, st, err
	}
	if st.Role != "leader" {
		was := (*lead).Name
		if h := lc.c.Host(st.Leader); h != nil {
			*lead = h
		}
		return api.MemberStatus{}, st, fmt.Errorf("%s is no longer the leader (it names %q)", was, st.Leader)
	}
	for _, n := range st.Nodes {
		if n.Name == name {
			return n, st, nil
		}
	}
	return api.MemberStatus{}, st, fmt.Errorf("the leader %s lists no %s (members %s)", (*lead).Name, name, st.Members)
}

// interruptBench stops the bench on the client host as Ctrl-C would: it lets the
// requests in flight end and prints its summary.
func (lc *liteCluster) interruptBench() error {
	n, err := lc.client.Signal(`lite-raft bench --hosts`, syscall.SIGINT)
	if err == nil && n != 1 {
		err = fmt.Errorf("%d bench processes on %s, want 1", n, lc.client.Name)
	}
	return err
}

// loadBound is how long a background load is started for: beyond every step that runs
// under it, so that it is always interrupted rather than ending on its own.
func loadBound() time.Duration { return *scaleDown + *scaleWait + 2*time.Minute }

func (lc *liteCluster) catchUp(r *scaleResult) {
	lead, err := lc.leader(30 * time.Second)
	if err != nil {
		r.fail("catch-up", err)
		return
	}
	down := others(lc.members, lead)[0]
	step := &stepTime{Member: down.Name}
	r.CatchUp = step
	ctx, cancel := context.WithTimeout(context.Background(), loadBound()+time.Minute)
	defer cancel()
	cmd, err := lc.benchCommand(ctx, setArgs(scalePrefix, *scaleKeys, loadBound()))
	if err != nil {
		r.fail("catch-up: the load", err)
		return
	}
	load, err := startProc(cmd, nil)
	if err != nil {
		r.fail("catch-up: the load", err)
		return
	}
	defer func() {
		// the load's figures, whatever happened to the member
		if err := lc.interruptBench(); err != nil {
			r.fail("catch-up: stopping the load", err)
		}
		if err := load.wait(30 * time.Second); err != nil {
			r.fail("catch-up: the load", err)
			return
		}
		var f figures
		if err := load.lastJSON(&f); err != nil {
			r.fail("catch-up: the load", err)
			return
		}
		r.CatchUpLoad = &f
	}()
	if err := load.waitRunning(30 * time.Second); err != nil {
		r.fail("catch-up: the load", err)
		return
	}
	logf("scale: lite-raft: stopping %s (the leader is %s) for %v", down.Name, lead.Name, *scaleDown)
	if _, e, code, err := down.Run("cd " + harness.RemoteDir + " && ./lite-raft stop"); err != nil || code != 0 {
		step.Detail = fmt.Sprintf("lite-raft stop on %s: exit %d %v %s", down.Name, code, err, strings.TrimSpace(e))
		r.fail("catch-up", errors.New(step.Detail))
		return
	}
	time.Sleep(*scaleDown) // the workload: the member stays down this long
	restart := time.Now()
	if _, e, code, err := down.Run(lc.startCommand()); err != nil || code != 0 {
		step.Detail = fmt.Sprintf("lite-raft start on %s: exit %d %v %s", down.Name, code, err, strings.TrimSpace(e))
		r.fail("catch-up", errors.New(step.Detail))
		return
	}
	step.OK, step.Detail = lc.waitCaughtUp("scale", &lead, down.Name, restart, *scaleWait)
	step.Ms = ms(time.Since(restart))
	if !step.OK {
		r.fail("catch-up", errors.New(step.Detail))
	}
}

func (lc *liteCluster) addMember(r *scaleResult) {
	// a fresh host with lite-raft installed and nothing else, as add-member expects; not timed
	h, err := lc.c.AddHost()
	if err != nil {
		r.fail("add member: a new harness host", err)
		return
	}
	step := &stepTime{Member: h.Name}
	r.AddMember = step
	lead, err := lc.leader(30 * time.Second)
	if err != nil {
		step.Detail = err.Error()
		r.fail("add member", err)
		return
	}
	// the CLI follows the change until the new member votes; --timeout makes it give up
	// by itself (exit 2), the context is the backstop
	cmdline := fmt.Sprintf("cd %s && ./lite-raft-client --timeout %.0f add-member %s", harness.RemoteDir, scaleWait.Seconds(), h.Name)
	ctx, cancel := context.WithTimeout(context.Background(), *scaleWait+time.Minute)
	defer cancel()
	logf("scale: lite-raft: %s: ./lite-raft-client add-member %s", lead.Name, h.Name)
	start := time.Now()
	p, err := startProc(lead.SSHCommand(ctx, cmdline), nil)
	if err != nil {
		step.Detail = err.Error()
		r.fail("add member", err)
		return
	}
	// the leader's view of the new member while the CLI follows the change: the CLI
	// prints only its steps
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watchLead := lead
		for {
			select {
			case <-stopWatch:
				return
			case <-p.done:
				return
			case <-time.After(5 * time.Second): // a progress line, not synchronisation
			}
			mst, lst, err := lc.memberStatus(&watchLead, h.Name)
			if err != nil {
				logf("scale: lite-raft: %s %.0fs into add-member: %v", h.Name, time.Since(start).Seconds(), err)
				continue
			}
			logf("scale: lite-raft: %s %.0fs into add-member: %s, match %d, lag %d, state %s; the leader's snapshot at index %d",
				h.Name, time.Since(start).Seconds(), mst.Role, mst.Match, mst.Lag, mst.State, lst.Snapshot)
		}
	}()
	werr := p.wait(*scaleWait + time.Minute)
	step.Ms = ms(time.Since(start))
	close(stopWatch)
	<-watched
	out := strings.TrimSpace(p.stdout.String())
	if out != "" {
		fmt.Fprintf(os.Stderr, "  lite-raft> %s\n", strings.ReplaceAll(out, "\n", "\n  lite-raft> "))
	}
	steps := strings.Split(out, "\n")
	step.Detail = steps[len(steps)-1]
	if werr != nil {
		step.Detail = fmt.Sprintf("add-member %s: %v; its last step: %s", h.Name, werr, step.Detail)
		r.fail("add member", errors.New(step.Detail))
		return
	}
	// the CLI says it is done; the leader must list it as a voter
	mst, _, err := lc.memberStatus(&lead, h.Name)
	if err == nil && mst.Role == "learner" {
		err = fmt.Errorf("add-member exited 0 but the leader lists %s as a learner", h.Name)
	}
	if err != nil {
		step.Detail = err.Error()
		r.fail("add member", err)
		return
	}
	step.OK = true
	lc.members = append(lc.members, h)
	logf("scale: lite-raft: %s is a voter %.1fs after add-member started (match %d, lag %d)", h.Name, step.Ms/1000, mst.Match, mst.Lag)
}

// ---- etcd ----

func (ec *etcdCluster) name() string { return "etcd" }

func (ec *etcdCluster) loadCommand(ctx context.Context, args ...string) (*exec.Cmd, error) {
	lead, err := ec.leader()
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, ec.load, append([]string{"--endpoints", ec.eps[lead]}, args...)...), nil
}

func etcdSetArgs(prefix string, keys int, d time.Duration) []string {
	return []string{"--clients", strconv.Itoa(scaleClients), "--duration", d.String(), "--op", "set",
		"--keys", strconv.Itoa(keys), "--key-prefix", prefix, "--value-size", strconv.Itoa(scaleValueSize), "--json"}
}

func (ec *etcdCluster) setLoad(prefix string, keys int, d time.Duration) (*figures, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Minute)
	defer cancel()
	cmd, err := ec.loadCommand(ctx, etcdSetArgs(prefix, keys, d)...)
	if err != nil {
		return nil, err
	}
	return runLoad(cmd, "etcdload", d)
}

func (ec *etcdCluster) fill(keys int) (*benchreport.FillSummary, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fillBound(keys)+time.Minute)
	defer cancel()
	cmd, err := ec.loadCommand(ctx, "--fill", "--keys", strconv.Itoa(keys), "--key-prefix", scalePrefix,
		"--value-size", strconv.Itoa(scaleValueSize), "--clients", strconv.Itoa(*fillClients), "--conns", strconv.Itoa(fillConns), "--json")
	if err != nil {
		return nil, err
	}
	return runFill(cmd, "etcd", keys)
}

func (ec *etcdCluster) memory() []procMem {
	var out []procMem
	for i, p := range ec.procs {
		name := fmt.Sprintf("e%d", i+1)
		if p.Process == nil || p.ProcessState != nil {
			out = append(out, procMem{Name: name, Error: "not running"})
			continue
		}
		out = append(out, readProcMem(name, p.Process.Pid))
	}
	return out
}

// endpointStatus is etcdload --status's answer for one endpoint.
type endpointStatus struct {
	Endpoint         string `json:"endpoint"`
	IsLeader         bool   `json:"is_leader"`
	RaftIndex        uint64 `json:"raft_index"`
	RaftAppliedIndex uint64 `json:"raft_applied_index"`
	DBSize           int64  `json:"db_size"`
	DBSizeInUse      int64  `json:"db_size_in_use"`
	Error            string `json:"error,omitempty"`
}

func (ec *etcdCluster) sizes(r *scaleResult) error {
	out, err := exec.Command(ec.load, "--endpoints", strings.Join(ec.eps, ","), "--status", "--timeout", "5s").Output()
	if err != nil {
		return fmt.Errorf("etcdload --status: %w", exitErr(err))
	}
	var sts []endpointStatus
	if err := json.Unmarshal(out, &sts); err != nil {
		return fmt.Errorf("etcdload --status: %w in %q", err, out)
	}
	for i, st := range sts {
		if st.IsLeader {
			r.DBSize, r.DBSizeInUse = st.DBSize, st.DBSizeInUse
			r.DiskBytes, err = dirBytes(filepath.Join(ec.dir, fmt.Sprintf("e%d", i+1)))
			return err
		}
	}
	return fmt.Errorf("etcdload --status: no leader in %s", out)
}

// stopMember stops member i (from 0) as systemd would: SIGTERM, and SIGKILL if it has not
// exited within 10 s.
func (ec *etcdCluster) stopMember(i int) error {
	return stopAsSystemd(ec.procs[i], fmt.Sprintf("e%d", i+1))
}

// stopAsSystemd stops p as systemd would: SIGTERM, and SIGKILL if it has not exited
// within 10 s (an error then says so, naming it what).
func stopAsSystemd(p *exec.Cmd, what string) error {
	if err := p.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		p.Wait()
		close(exited)
	}()
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
		p.Process.Kill()
		<-exited
		return fmt.Errorf("%s ignored SIGTERM for 10 s; killed", what)
	}
}

func (ec *etcdCluster) catchUp(r *scaleResult) {
	lead, err := ec.leader()
	if err != nil {
		r.fail("catch-up", err)
		return
	}
	down := (lead + 1) % 3
	step := &stepTime{Member: fmt.Sprintf("e%d", down+1)}
	r.CatchUp = step
	ctx, cancel := context.WithTimeout(context.Background(), loadBound()+time.Minute)
	defer cancel()
	cmd, err := ec.loadCommand(ctx, etcdSetArgs(scalePrefix, *scaleKeys, loadBound())...)
	if err != nil {
		r.fail("catch-up: the load", err)
		return
	}
	load, err := startProc(cmd, nil)
	if err != nil {
		r.fail("catch-up: the load", err)
		return
	}
	defer func() {
		if err := load.cmd.Process.Signal(os.Interrupt); err != nil {
			r.fail("catch-up: stopping the load", err)
		}
		if err := load.wait(30 * time.Second); err != nil {
			r.fail("catch-up: the load", err)
			return
		}
		var f figures
		if err := load.lastJSON(&f); err != nil {
			r.fail("catch-up: the load", err)
			return
		}
		r.CatchUpLoad = &f
	}()
	if err := load.waitRunning(30 * time.Second); err != nil {
		r.fail("catch-up: the load", err)
		return
	}
	logf("scale: etcd: stopping %s (the leader is e%d) for %v", step.Member, lead+1, *scaleDown)
	if err := ec.stopMember(down); err != nil {
		r.fail("catch-up: stop", err) // it is stopped all the same
	}
	time.Sleep(*scaleDown) // the workload: the member stays down this long
	restart := time.Now()
	if err := ec.startMember(down+1, "", "new"); err != nil {
		step.Detail = err.Error()
		r.fail("catch-up: restart", err)
		return
	}
	p, err := startProc(exec.Command(ec.load, "--endpoints", strings.Join(ec.eps, ","), "--wait-caught-up", ec.eps[down],
		"--max-lag", strconv.Itoa(maxLagEntries), "--timeout", scaleWait.String()), echo("etcd"))
	if err != nil {
		step.Detail = err.Error()
		r.fail("catch-up", err)
		return
	}
	werr := p.wait(*scaleWait + time.Minute)
	step.Ms = ms(time.Since(restart))
	var res struct {
		CaughtUp    bool   `json:"caught_up"`
		MemberIndex uint64 `json:"member_index"`
		LeaderIndex uint64 `json:"leader_index"`
		LastError   string `json:"last_error"`
	}
	if jerr := p.lastJSON(&res); jerr != nil {
		werr = errors.Join(werr, jerr)
	}
	step.Detail = fmt.Sprintf("raft index %d, the leader's %d", res.MemberIndex, res.LeaderIndex)
	if werr != nil || !res.CaughtUp {
		step.Detail = fmt.Sprintf("not caught up %v after its restart (%s): %v", *scaleWait, step.Detail, werr)
		r.fail("catch-up", errors.New(step.Detail))
		return
	}
	step.OK = true
	logf("scale: etcd: %s caught up %.1fs after its restart (%s)", step.Member, step.Ms/1000, step.Detail)
}

func (ec *etcdCluster) addMember(r *scaleResult) {
	i := len(ec.procs) + 1
	step := &stepTime{Member: fmt.Sprintf("e%d", i)}
	r.AddMember = step
	eps := strings.Join(ec.eps, ",")
	start := time.Now()
	out, err := exec.Command(ec.load, "--endpoints", eps, "--add-learner", fmt.Sprintf("e%d=%s", i, etcdPeerURL(i)), "--timeout", scaleWait.String()).Output()
	var added struct {
		ID             string  `json:"id"`
		InitialCluster string  `json:"initial_cluster"`
		RefusedMs      float64 `json:"refused_ms"`
		Attempts       int     `json:"attempts"`
	}
	if err == nil {
		err = json.Unmarshal(out, &added)
	}
	if err != nil {
		step.Detail = fmt.Sprintf("member add --learner: %v", exitErr(err))
		r.fail("add member", errors.New(step.Detail))
		return
	}
	// etcd refuses to add a member until every voter has been connected for 5 s: right
	// after the catch-up step's restart it does. That wait is the previous step's, so it
	// is reported but not counted
	refused := ""
	if added.Attempts > 1 {
		refused = fmt.Sprintf("; member add was refused as 'unhealthy cluster' for %.1f s (%d attempts) first, not counted", added.RefusedMs/1000, added.Attempts)
	}
	logf("scale: etcd: e%d added as learner %s%s; starting it with the cluster %s", i, added.ID, refused, added.InitialCluster)
	if err := ec.startMember(i, added.InitialCluster, "existing"); err != nil {
		step.Detail = err.Error()
		r.fail("add member", err)
		return
	}
	ec.eps = append(ec.eps, etcdEndpoint(i))
	p, err := startProc(exec.Command(ec.load, "--endpoints", eps, "--promote", added.ID, "--timeout", scaleWait.String()), echo("etcd"))
	if err != nil {
		step.Detail = err.Error()
		r.fail("add member", err)
		return
	}
	werr := p.wait(*scaleWait + time.Minute)
	step.Ms = benchreport.Round3(ms(time.Since(start)) - added.RefusedMs)
	var res struct {
		Promoted  bool   `json:"promoted"`
		Attempts  int    `json:"attempts"`
		LastError string `json:"last_error"`
	}
	if jerr := p.lastJSON(&res); jerr != nil {
		werr = errors.Join(werr, jerr)
	}
	if werr != nil || !res.Promoted {
		step.Detail = fmt.Sprintf("member promote: not accepted within %v after %d attempts: %v (last refusal: %s)%s", *scaleWait, res.Attempts, werr, res.LastError, refused)
		r.fail("add member", errors.New(step.Detail))
		return
	}
	step.OK = true
	step.Detail = fmt.Sprintf("promoted at attempt %d%s", res.Attempts, refused)
	logf("scale: etcd: e%d is a voter %.1fs after member add (%s)", i, step.Ms/1000, step.Detail)
}
