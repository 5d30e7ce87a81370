package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/internal/harness"
)

var lockJepsenSeed = flag.Uint64("lockjepsen.seed", 0, "TestLockJepsen's nemesis order (0: from the clock)")

// jepsenIncr is the COMMAND each host runs under lock jl: read the counter jl/c, add one
// with a write fenced by its generation, and log every step to jepsen.log with the time
// (date +%s%N: the hosts share this machine's clock). Between steps it beats every 0.1 s,
// so that a COMMAND's last line is at most ~0.1 s before its death. While the file
// "long" exists on its host (the nemesis's target), it runs 1.5 s before its write and
// 6 s after, longer than the ttl (3 s): an orphaned COMMAND would outlive the lease.
const jepsenIncr = `#!/bin/sh
g=$LITE_RAFT_LOCK_GENERATION
ev() { echo "$* $(date +%s%N)" >>jepsen.log; }
beats() { i=0; while [ $i -lt $1 ]; do ev beat $g; sleep 0.1; i=$((i+1)); done; }
ev start $g $$
pre=4; post=4
if [ -e long ]; then pre=15; post=60; ev long $g; fi
if ! n=$(CLI get jl/c 2>>jepsen.err); then ev readfail $g; exit 0; fi
ev read $g $n
beats $pre
ev setbegin $g $((n+1))
CLI set --fence jl=$g jl/c $((n+1)) 2>>jepsen.err
ev set $g $((n+1)) $?
beats $post
ev end $g
`

// jepsenLoop takes lock jl and runs jepsenIncr until the file "stop" appears. It is a
// file of its own so that its shell's command line does not name the lock.
const jepsenLoop = `#!/bin/sh
cd /opt/lite-raft
while [ ! -e stop ]; do
	CLI lock jl --ttl 3s -- ./incr.sh
	rc=$?
	echo "lockexit - $rc $(date +%s%N)" >>jepsen.log
	[ $rc -eq 0 ] || sleep 0.2
done
touch loop-done
`

// jrun is one holder's COMMAND as its host's jepsen.log tells it.
type jrun struct {
	host            string
	gen             uint64
	pid             int
	start, last     int64 // first and last line's time (ns)
	read            int   // -1: no read
	long, ended     bool
	setBegin        int64 // 0: no write tried
	setVal, setCode int   // setCode -1: no set line (killed in the write or before)
}

// parseJepsenLog reads one host's jepsen.log into runs by generation.
func parseJepsenLog(host, text string, runs map[uint64]*jrun) error {
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 {
			return fmt.Errorf("%s: bad line %q", host, l)
		}
		if f[0] == "lockexit" {
			continue
		}
		gen, err1 := strconv.ParseUint(f[1], 10, 64)
		ts, err2 := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%s: bad line %q", host, l)
		}
		r := runs[gen]
		if f[0] == "start" {
			if r != nil {
				return fmt.Errorf("generation %d started twice: on %s and on %s", gen, r.host, host)
			}
			pid, _ := strconv.Atoi(f[2])
			r = &jrun{host: host, gen: gen, pid: pid, start: ts, read: -1, setCode: -1}
			runs[gen] = r
		}
		if r == nil || r.host != host {
			return fmt.Errorf("%s: line %q of a generation that did not start here", host, l)
		}
		r.last = max(r.last, ts)
		num := func(i int) int {
			n, err := strconv.Atoi(f[i])
			if err != nil {
				n = -2
			}
			return n
		}
		switch f[0] {
		case "long":
			r.long = true
		case "read":
			r.read = num(2)
		case "setbegin":
			r.setBegin, r.setVal = ts, num(2)
		case "set":
			r.setCode = num(3)
		case "end":
			r.ended = true
		}
	}
	return nil
}

// TestLockJepsen: every host of a cluster (three members and one outside it, through
// lite-raft-remote) takes lock jl in a loop, its COMMAND adding one to the counter jl/c
// with a write fenced by its generation, while a nemesis kills -9 a holding lock
// process, freezes one (SIGSTOP) past its ttl, freezes a holder's whole tree (lock, guard
// and COMMAND) and wakes its COMMAND first, cuts a holder's host off, kills -9 the
// leader's agent, restarts a follower's, and kills -9 and freezes a remote's lock
// process. Then the counter's history (watch --from 0) must go up by exactly one at a
// time, no write of an old generation may have been accepted, the counter must lie
// between the increments that exited 0 and those tried, and no COMMAND may have been
// alive after the next holder's started, except the one whose guard was frozen with it.
func TestLockJepsen(t *testing.T) {
	seed := *lockJepsenSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lockjepsen seed %d (replay the nemesis's order with -lockjepsen.seed=%d)", seed, seed)
		}
	})
	began := time.Now()
	// no snapshot: a member's change ring, which watch --from 0 reads, then holds the
	// whole history (a snapshot installed on a member that fell behind would reset it)
	c := newCluster(t, 4, 3, "0.5", 100000)
	members, outside := c.Hosts[:3], c.Hosts[3]
	for _, h := range members {
		c.must(h, "./lite-raft first-boot")
	}
	c.leader(members, 20*time.Second)
	c.remoteOn(outside, "host1 host2 host3", nil)
	c.eventually(10*time.Second, "the counter set to 0", func() (bool, string) {
		_, e, code := c.lr(members[0], "./lite-raft-client set jl/c 0")
		return code == 0, e
	})
	byName := map[string]*harness.Host{}
	for _, h := range c.Hosts {
		byName[h.Name] = h
		cli := "./lite-raft-client"
		if h == outside {
			cli = "./lite-raft-remote"
		}
		for name, text := range map[string]string{"incr.sh": jepsenIncr, "loop.sh": jepsenLoop} {
			if err := os.WriteFile(filepath.Join(h.Dir, name), []byte(strings.ReplaceAll(text, "CLI", cli)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, h := range c.Hosts {
		c.must(h, "(nohup sh loop.sh </dev/null >loop.out 2>&1 &)")
	}
	// whatever happens, nothing stays frozen or cut, and the loops end
	t.Cleanup(func() {
		c.Heal()
		for _, h := range c.Hosts {
			os.WriteFile(filepath.Join(h.Dir, "stop"), nil, 0o644)
			h.Signal(`lite-raft|incr\.sh|sleep`, syscall.SIGCONT)
		}
	})

	runsNow := func() map[uint64]*jrun {
		runs := map[uint64]*jrun{}
		for _, h := range c.Hosts {
			b, err := os.ReadFile(filepath.Join(h.Dir, "jepsen.log"))
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if err := parseJepsenLog(h.Name, string(b), runs); err != nil {
				t.Fatal(err)
			}
		}
		return runs
	}
	maxGen := func() uint64 {
		var g uint64
		for gen := range runsNow() {
			g = max(g, gen)
		}
		return g
	}
	// startedAfter waits until a COMMAND of a generation above gen has started
	startedAfter := func(gen uint64, what string) *jrun {
		var next *jrun
		c.eventually(30*time.Second, "a holder after generation "+fmt.Sprint(gen)+" ("+what+")", func() (bool, string) {
			next = nil
			for g, r := range runsNow() {
				if g > gen && (next == nil || g < next.gen) {
					next = r
				}
			}
			return next != nil, fmt.Sprintf("last generation %d", maxGen())
		})
		return next
	}
	// heldOn waits until next's COMMAND has run for a second (or ended): a fault lifted
	// at once when the next holder starts would let the woken lock process stop its
	// COMMAND within a beat of that start, and hide a guard that is late
	heldOn := func(next *jrun) {
		c.eventually(30*time.Second, fmt.Sprintf("generation %d's COMMAND running for a second", next.gen), func() (bool, string) {
			r := runsNow()[next.gen]
			return r.ended || r.last-r.start >= int64(time.Second), fmt.Sprintf("%+v", *r)
		})
	}
	holderRe := regexp.MustCompile(`@(\S+) pid (\d+)$`)
	// holding finds, within 30 s, a holder on one of hosts whose COMMAND is in the
	// phase ok accepts (with "long" made on those hosts for the time it waits), and
	// returns its run and its lock process's pid
	holding := func(hosts []*harness.Host, phase string, ok func(*jrun) bool) (*jrun, int) {
		for _, h := range hosts {
			os.WriteFile(filepath.Join(h.Dir, "long"), nil, 0o644)
		}
		defer func() {
			for _, h := range hosts {
				os.Remove(filepath.Join(h.Dir, "long"))
			}
		}()
		var run *jrun
		var pid int
		c.eventually(30*time.Second, "a holder on "+fmt.Sprint(names(hosts))+" "+phase, func() (bool, string) {
			var l api.LockStatus
			seen := "no member answers locks jl"
			for _, m := range members {
				out, e, code, err := m.Run("cd " + harness.RemoteDir + " && ./lite-raft-client --json locks jl")
				if err == nil && code == 0 && json.Unmarshal([]byte(out), &l) == nil {
					seen = out
					break
				}
				seen = fmt.Sprintf("%s: exit %d %v %s", m.Name, code, err, e)
				l.Holder = ""
			}
			m := holderRe.FindStringSubmatch(l.Holder)
			if m == nil {
				return false, seen
			}
			pid, _ = strconv.Atoi(m[2])
			h := byName[m[1]]
			in := false
			for _, x := range hosts {
				in = in || x == h
			}
			run = runsNow()[l.Generation]
			if !in || run == nil || run.host != h.Name || !ok(run) {
				return false, seen
			}
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			return strings.Contains(strings.ReplaceAll(string(cmdline), "\x00", " "), " lock jl "), fmt.Sprintf("pid %d: %q", pid, cmdline)
		})
		return run, pid
	}
	longRunning := func(r *jrun) bool { return r.long && !r.ended }
	beforeWrite := func(r *jrun) bool { return r.long && r.read >= 0 && r.setBegin == 0 }
	signal := func(pid int, sig syscall.Signal) {
		t.Helper()
		// the hosts share this machine's process ids: the test signals them itself
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatalf("kill -%d %d: %v", sig, pid, err)
		}
	}

	frozenGens := map[uint64]bool{} // holders frozen with their guard: fencing's case
	restarted := map[*harness.Host]bool{}
	// what the nemesis did, and to which holder (gen 0: to no holder in particular)
	type event struct {
		what      string
		gen, next uint64
	}
	var events []event
	logEvent := func(what string, r, next *jrun) {
		e := event{what: what}
		if r != nil {
			e.gen = r.gen
			what += fmt.Sprintf(": generation %d on %s", r.gen, r.host)
		}
		if next != nil {
			e.next = next.gen
			what += fmt.Sprintf(", next holder generation %d on %s", next.gen, next.host)
		}
		events = append(events, e)
		t.Logf("nemesis %s", what)
	}
	killLock := func(hosts []*harness.Host, tag string) {
		r, pid := holding(hosts, "mid-COMMAND", longRunning)
		signal(pid, syscall.SIGKILL)
		logEvent("kill -9 of the "+tag+"lock process", r, startedAfter(r.gen, "after the kill"))
	}
	stopLock := func(hosts []*harness.Host, tag string) {
		r, pid := holding(hosts, "mid-COMMAND", longRunning)
		signal(pid, syscall.SIGSTOP)
		// frozen until the lease went to someone else (longer than the ttl) and a second on
		next := startedAfter(r.gen, "while the lock process is frozen")
		heldOn(next)
		signal(pid, syscall.SIGCONT)
		logEvent("SIGSTOP of the "+tag+"lock process", r, next)
	}
	nemesis := []struct {
		name string
		do   func()
	}{
		{"kill-lock", func() { killLock(members, "") }},
		{"stop-lock", func() { stopLock(members, "") }},
		{"freeze-tree", func() {
			r, pid := holding(members, "between its read and its write", beforeWrite)
			guards := childrenOf(pid)
			if len(guards) != 1 {
				t.Fatalf("lock process %d has children %v, want its guard alone", pid, guards)
			}
			for _, p := range []int{pid, guards[0], -r.pid} {
				signal(p, syscall.SIGSTOP)
			}
			frozenGens[r.gen] = true
			next := startedAfter(r.gen, "while a holder's tree is frozen")
			// COMMAND wakes first, its guard and lock still frozen (as on a frozen host
			// whose COMMAND ran on): its write must be refused
			signal(-r.pid, syscall.SIGCONT)
			c.eventually(20*time.Second, "the woken COMMAND's write", func() (bool, string) {
				return runsNow()[r.gen].setCode >= 0, "no set line"
			})
			signal(guards[0], syscall.SIGCONT)
			signal(pid, syscall.SIGCONT)
			logEvent(fmt.Sprintf("SIGSTOP of a holder's lock, guard and COMMAND, COMMAND woken first (its write exited %d)", runsNow()[r.gen].setCode), r, next)
		}},
		{"cut-holder", func() {
			r, _ := holding(members, "mid-COMMAND", longRunning)
			if err := c.Isolate(byName[r.host]); err != nil {
				t.Fatal(err)
			}
			next := startedAfter(r.gen, "while the holder's host is cut off")
			heldOn(next)
			if err := c.Heal(); err != nil {
				t.Fatal(err)
			}
			logEvent("holder's host cut off from the cluster", r, next)
		}},
		{"kill-leader", func() {
			lead := c.leader(members, 20*time.Second)
			before := maxGen()
			if n, err := lead.Signal(`lite-raft .*agent --foreground`, syscall.SIGKILL); err != nil || n != 1 {
				t.Fatalf("kill -9 the leader's agent: %d %v", n, err)
			}
			c.leader(others(members, lead), 20*time.Second)
			c.must(lead, "./lite-raft start")
			restarted[lead] = true
			c.leader(members, 20*time.Second)
			logEvent("kill -9 of the leader's agent ("+lead.Name+"), restarted", nil, startedAfter(before, "after the leader's agent restarted"))
		}},
		{"restart-follower", func() {
			lead := c.leader(members, 20*time.Second)
			f := others(members, lead)[0]
			for _, h := range others(members, lead) {
				if restarted[h] {
					f = h // leave a member never restarted: watch --from 0 reads it
				}
			}
			before := maxGen()
			c.must(f, "./lite-raft stop")
			c.must(f, "./lite-raft start")
			restarted[f] = true
			c.leader(members, 20*time.Second)
			logEvent("restart of a follower's agent ("+f.Name+")", nil, startedAfter(before, "after the follower's agent restarted"))
		}},
		{"kill-remote-lock", func() { killLock([]*harness.Host{outside}, "lite-raft-remote ") }},
		{"stop-remote-lock", func() { stopLock([]*harness.Host{outside}, "lite-raft-remote ") }},
	}
	rng := rand.New(rand.NewPCG(seed, 24))
	faultsFrom := time.Now()
	for round := 0; round < 2; round++ {
		rng.Shuffle(len(nemesis), func(i, j int) { nemesis[i], nemesis[j] = nemesis[j], nemesis[i] })
		// the leader's kill before a follower's restart, which then picks a member
		// restarted already if it can: a member is left never restarted, for watch
		kl, rf := -1, -1
		for i, n := range nemesis {
			switch n.name {
			case "kill-leader":
				kl = i
			case "restart-follower":
				rf = i
			}
		}
		if rf < kl {
			nemesis[kl], nemesis[rf] = nemesis[rf], nemesis[kl]
		}
		for _, n := range nemesis {
			n.do()
		}
	}
	faultsTook := time.Since(faultsFrom)

	// the end: the loops stop once their COMMAND ran
	for _, h := range c.Hosts {
		if err := os.WriteFile(filepath.Join(h.Dir, "stop"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.eventually(60*time.Second, "every loop ended", func() (bool, string) {
		for _, h := range c.Hosts {
			if _, err := os.Stat(filepath.Join(h.Dir, "loop-done")); err != nil {
				return false, h.Name + "'s loop runs on"
			}
		}
		return true, ""
	})
	if _, e, code := c.lr(members[0], "./lite-raft-client set --fence jl=1 jl/c 0"); code != 18 {
		t.Fatalf("a write fenced with the first generation after all the others: exit %d %q, want 18", code, e)
	}
	c.must(members[0], "./lite-raft-client set jl/end done")
	final, err := strconv.Atoi(strings.TrimSpace(c.must(members[0], "./lite-raft-client get jl/c")))
	if err != nil {
		t.Fatal(err)
	}

	// (a) the counter's history, from a member never restarted if there is one (with no
	// snapshot taken, a restarted member's change ring refills with the whole log too)
	watcher := members[0]
	for _, h := range members {
		if !restarted[h] {
			watcher = h
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lines := startWatch(ctx, t, watcher, "./lite-raft-client watch jl/ --from 0")
	var history []int
	for done := false; !done; {
		line, ok := <-lines
		if !ok {
			t.Fatalf("watch jl/ --from 0 on %s ended before jl/end was set (history so far %v)", watcher.Name, history)
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 4 && f[1] == "set" && f[2] == "jl/end":
			done = true
		case len(f) == 4 && f[1] == "set" && f[2] == "jl/c":
			v, err := strconv.Atoi(f[3])
			if err != nil {
				t.Fatalf("watch printed %q", line)
			}
			history = append(history, v)
		default:
			t.Fatalf("watch printed %q", line)
		}
	}
	cancel()
	for i, v := range history {
		if v != i {
			t.Errorf("(a) the counter's history goes %v at change %d: want each accepted write one above the one before (history %v)", history[max(0, i-1):i+1], i, history)
			break
		}
	}
	if len(history) == 0 || history[len(history)-1] != final {
		t.Errorf("(a) the history ends %v, get jl/c gives %d", history, final)
	}

	runs := runsNow()
	var all []*jrun
	accepted, tried, refused := 0, 0, 0
	wroteBy := map[int][]*jrun{} // value -> runs whose write of it exited 0 or has no known outcome
	for _, r := range runs {
		all = append(all, r)
		if r.setBegin != 0 {
			tried++
		}
		switch r.setCode {
		case 0:
			accepted++
		case 18:
			refused++
		}
		// outcome unknown: killed in it, exit 2 (no answer), or the client killed
		if r.setBegin != 0 && (r.setCode == 0 || r.setCode == -1 || r.setCode == 2 || r.setCode >= 128) {
			wroteBy[r.setVal] = append(wroteBy[r.setVal], r)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].start < all[j].start })
	// (b) no write of an old generation accepted: a write that exited 0 began before
	// any later generation's COMMAND started; and along the history the writers'
	// generations never go down
	for _, r := range all {
		if r.setCode != 0 {
			continue
		}
		for _, o := range all {
			if o.gen > r.gen && o.start < r.setBegin {
				t.Errorf("(b) the write of %d by generation %d (%s) began %v after generation %d's COMMAND started (%s), and was accepted",
					r.setVal, r.gen, r.host, time.Duration(r.setBegin-o.start), o.gen, o.host)
			}
		}
	}
	var lastGen uint64
	for _, v := range history[1:] {
		ws := wroteBy[v]
		var w *jrun
		for _, r := range ws {
			if r.setCode == 0 {
				w = r
			}
		}
		if w == nil && len(ws) == 1 {
			w = ws[0] // a write whose outcome is unknown (its COMMAND killed in it)
		}
		if w == nil {
			if len(ws) == 0 {
				t.Errorf("(b) the history holds %d, which no write that exited 0 or has no outcome made (refused ones included: %v)", v, ws)
			}
			continue // several writes of unknown outcome: which one is unknown
		}
		if w.gen < lastGen {
			t.Errorf("(b) the history's writers' generations went down: %d wrote %d after %d's write", w.gen, v, lastGen)
		}
		lastGen = w.gen
	}
	// (c) the counter between the increments that exited 0 and those tried
	if final < accepted || final > tried {
		t.Errorf("(c) the counter is %d: want between %d (writes that exited 0) and %d (writes tried)", final, accepted, tried)
	}
	inHistory := map[int]bool{}
	for _, v := range history {
		inHistory[v] = true
	}
	lost := 0
	for _, r := range all {
		if r.setCode == 0 && !inHistory[r.setVal] {
			lost++
			t.Errorf("(c) generation %d's write of %d exited 0 and is not in the history", r.gen, r.setVal)
		}
	}
	// (d) no COMMAND alive (its last line) after the next holder's started, except a
	// holder frozen with its guard: one line's delay (date, then append) only makes a
	// life look shorter, and a COMMAND beats every 0.1 s, so a sign of life after the
	// next start is an overlap whatever the tolerance
	var maxOverlap int64 = -1 << 62
	var prevEnd *jrun
	for _, r := range all {
		if prevEnd != nil {
			if d := prevEnd.last - r.start; d > maxOverlap {
				maxOverlap = d
				if d > 0 {
					what := "left alone by the nemesis"
					for _, e := range events {
						if e.gen == prevEnd.gen {
							what = e.what
						}
					}
					t.Errorf("(d) generation %d's COMMAND (%s; %s) was alive %v after generation %d's (%s) started",
						prevEnd.gen, prevEnd.host, what, time.Duration(d), r.gen, r.host)
				}
			}
		}
		if !frozenGens[r.gen] && (prevEnd == nil || r.last > prevEnd.last) {
			prevEnd = r
		}
	}
	fmt.Printf("locks: acquisitions=%d accepted=%d refused_stale=%d lost=%d max_overlap_ms=%d\n",
		len(all), accepted, refused, lost, max(0, maxOverlap)/int64(time.Millisecond))
	var said []string
	for _, e := range events {
		line := e.what
		if r, next := runs[e.gen], runs[e.next]; r != nil && next != nil {
			how := "stopped before its end"
			if r.ended {
				how = "ended by itself"
			}
			gap := time.Duration(next.start - r.last).Round(time.Millisecond)
			when := fmt.Sprintf("%v before", gap)
			if gap < 0 {
				when = fmt.Sprintf("%v after (fencing's case)", -gap)
			}
			line += fmt.Sprintf(": generation %d's COMMAND on %s (%s) made its last line %s generation %d's started on %s",
				r.gen, r.host, how, when, next.gen, next.host)
		} else if next != nil {
			line += fmt.Sprintf(": the first COMMAND after it, generation %d on %s", next.gen, next.host)
		}
		said = append(said, line)
	}
	t.Logf("lockjepsen: %d faults in %v, %v in all; the closest COMMANDs (bar the frozen holder's) %v apart; counter %d, %d writes tried; the nemesis:\n  %s",
		len(events), faultsTook.Round(time.Second), time.Since(began).Round(time.Second), time.Duration(-maxOverlap).Round(time.Millisecond),
		final, tried, strings.Join(said, "\n  "))
	if refused == 0 {
		t.Errorf("no fenced write was refused: the frozen holder's woken COMMAND should have tried one")
	}
}

func names(hosts []*harness.Host) []string {
	var out []string
	for _, h := range hosts {
		out = append(out, h.Name)
	}
	return out
}

// childrenOf lists the processes whose parent is pid (the hosts share this machine's
// process ids).
func childrenOf(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so after the last ")"
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}
