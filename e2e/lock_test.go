package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/internal/harness"
)

// TestLock: two hosts running `lock job -- CMD` in a loop never hold it at once, and the
// fencing number grows with every holder; then the holder's host is powered off in the
// middle of its command, and another host gets the lock within its ttl (plus the time a
// new leader takes when the holder's host was the leader's).
func TestLock(t *testing.T) {
	c := newCluster(t, 3, 3, "0.5", 1000)
	for _, h := range c.Hosts {
		c.must(h, "./lite-raft first-boot")
	}
	c.leader(c.Hosts, 20*time.Second)
	// the first write needs every member's version: wait until the leader has them
	c.eventually(10*time.Second, "create accepted", func() (bool, string) {
		_, e, code := c.lr(c.Hosts[0], "./lite-raft-client create ready 1")
		return code == 0 || code == 13, e
	})

	// each run appends "NAME start GEN T" and "NAME end GEN T" (T in ns: the hosts share
	// this machine's clock) to its host's own file, and adds one to a counter in the store
	// with a write fenced by its generation
	const runs = 8
	loop := func(h *harness.Host) string {
		ev := harness.RemoteDir + "/lock-events"
		incr := `n=$(./lite-raft-client get counter 2>/dev/null || echo 0); ./lite-raft-client set --fence job=$LITE_RAFT_LOCK_GENERATION counter $((n+1))`
		cmd := fmt.Sprintf(`echo "%s start $LITE_RAFT_LOCK_GENERATION $(date +%%s%%N)" >>%s; %s; sleep 0.1; echo "%s end $LITE_RAFT_LOCK_GENERATION $(date +%%s%%N)" >>%s`,
			h.Name, ev, incr, h.Name, ev)
		return fmt.Sprintf("for i in $(seq %d); do ./lite-raft-client lock job --ttl 3s -- sh -c '%s' || echo \"exit $?\" >&2; done", runs, cmd)
	}
	var wg sync.WaitGroup
	for _, h := range c.Hosts[:2] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, e, code := c.lr(h, loop(h)); code != 0 || e != "" {
				t.Errorf("%s: lock loop: exit %d, stderr %q", h.Name, code, e)
			}
		}()
	}
	wg.Wait()
	c.expect(c.Hosts[2], "./lite-raft-client get counter", 0, strconv.Itoa(2*runs))
	if _, e, code := c.lr(c.Hosts[2], "./lite-raft-client set --fence job=1 counter 0"); code != 18 {
		t.Fatalf("a write fenced with the first holder's generation after the others: exit %d %q, want 18", code, e)
	}
	type run struct {
		host       string
		gen        int
		start, end int64
	}
	var all []run
	line := regexp.MustCompile(`^(\S+) (start|end) (\d+) (\d+)$`)
	for _, h := range c.Hosts[:2] {
		b, err := os.ReadFile(filepath.Join(h.Dir, "lock-events"))
		if err != nil {
			t.Fatal(err)
		}
		var cur *run
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			m := line.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("%s: bad event %q", h.Name, l)
			}
			gen, _ := strconv.Atoi(m[3])
			ts, _ := strconv.ParseInt(m[4], 10, 64)
			if m[2] == "start" {
				all = append(all, run{host: m[1], gen: gen, start: ts})
				cur = &all[len(all)-1]
			} else if cur != nil && cur.gen == gen {
				cur.end = ts
			}
		}
	}
	if len(all) != 2*runs {
		t.Fatalf("%d runs recorded, want %d", len(all), 2*runs)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].start < all[j].start })
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if a.end == 0 || b.start < a.end {
			t.Fatalf("runs overlap: %s gen %d [%d, %d] and %s gen %d from %d", a.host, a.gen, a.start, a.end, b.host, b.gen, b.start)
		}
		if b.gen <= a.gen {
			t.Fatalf("generation went from %d (%s) to %d (%s)", a.gen, a.host, b.gen, b.host)
		}
	}

	// the holding lock process killed, then frozen, then its host (a follower's) cut off
	// from the cluster with a COMMAND that ignores SIGTERM: its COMMAND (a pipeline
	// writing a line every 0.1 s) stops before the waiter's starts
	for _, how := range []string{"KILL", "STOP", "cut"} {
		lead := c.leader(c.Hosts, 10*time.Second)
		followers := others(c.Hosts, lead)
		lockHolderSignalled(c, followers[0], followers[1], how)
	}

	// the holder's host loses power mid-command, a follower's first: its lease is renewed
	// every ttl/3, so the next in line has the lock within the ttl, and not much before
	lead := c.leader(c.Hosts, 10*time.Second)
	followers := others(c.Hosts, lead)
	freed := lockFreedAfterPowerOff(c, followers[0], followers[1], "follower")
	if freed < 2*time.Second-200*time.Millisecond || freed > 3*time.Second+300*time.Millisecond {
		t.Fatalf("the lock came free %v after its holder's power-off: want between 2/3 of the ttl and the ttl (3s)", freed)
	}
	// then the leader's host, holding it: a new leader resumes the lease's countdown, so
	// the lock comes free within the ttl + 2 election timeouts + 1 s of its last renewal
	if err := followers[0].PowerOn(); err != nil {
		t.Fatal(err)
	}
	c.must(followers[0], "./lite-raft start")
	c.leader(c.Hosts, 20*time.Second)
	freedLeader := lockFreedAfterPowerOff(c, lead, followers[0], "leader")
	if freedLeader < 2*time.Second || freedLeader > 3*time.Second+2*time.Second {
		t.Fatalf("the lock came free %v after its holder's (the leader's) power-off: want within the ttl (3s) + 2 election timeouts (0.5 s) + 1 s", freedLeader)
	}
	t.Logf("lock: %d runs on 2 hosts, never overlapping, generations 1..%d; freed %.2fs after the holder's power-off (a follower; ttl 3s), %.2fs when the holder was the leader",
		len(all), all[len(all)-1].gen, freed.Seconds(), freedLeader.Seconds())
}

// lockFreedAfterPowerOff has holder take lock job and keep it, waiter queue behind it,
// and holder's host lose power; it returns how long after the power-off the waiter's
// command started.
func lockFreedAfterPowerOff(c *cluster, holder, waiter *harness.Host, tag string) time.Duration {
	c.t.Helper()
	mark := "holding-" + tag
	// not c.lr: its ssh session dies with the host's power, and the test must not fail
	// (or be touched at all) by a session it means to kill
	go holder.Run("cd " + harness.RemoteDir + " && ./lite-raft-client lock job --ttl 3s -- sh -c 'touch " + mark + "; sleep 60'")
	c.eventually(10*time.Second, holder.Name+" holds the lock", func() (bool, string) {
		_, err := os.Stat(filepath.Join(holder.Dir, mark))
		return err == nil, fmt.Sprint(err)
	})
	started := queueWaiter(c, waiter, "job")
	// held past its ttl first: what keeps it from here on is the holder's renewals
	c.eventually(10*time.Second, holder.Name+" held the lock longer than its ttl", func() (bool, string) {
		fi, err := os.Stat(filepath.Join(holder.Dir, mark))
		return err == nil && time.Since(fi.ModTime()) > 3*time.Second+500*time.Millisecond, fmt.Sprint(err)
	})
	off := time.Now()
	if err := holder.PowerOff(); err != nil {
		c.t.Fatal(err)
	}
	return time.Unix(0, started(holder.Name+"'s power-off")).Sub(off)
}

// TestTTLKeyGoesEverywhere: a key set with a ttl goes on every member at the same log
// index (the leader's revoke), and not before its time; then keys go within their bound
// across leader transfers and a leader killed.
func TestTTLKeyGoesEverywhere(t *testing.T) {
	c := newCluster(t, 3, 3, "0.5", 1000)
	for _, h := range c.Hosts {
		c.must(h, "./lite-raft first-boot")
	}
	c.leader(c.Hosts, 20*time.Second)
	var set time.Time
	c.eventually(10*time.Second, "set --ttl accepted", func() (bool, string) {
		set = time.Now()
		_, e, code := c.lr(c.Hosts[1], "./lite-raft-client set --ttl 2s t v")
		return code == 0, e
	})
	c.expect(c.Hosts[2], "./lite-raft-client get t", 0, "v")
	revoke := regexp.MustCompile(`(?m)^\s*(\d+)\s+term \d+\s+\S+\s+revoke lease \d+`)
	index := map[string]string{}
	for _, h := range c.Hosts {
		c.eventually(10*time.Second, "t gone on "+h.Name, func() (bool, string) {
			_, _, code := c.lr(h, "./lite-raft-client --stale get t")
			return code == 9, fmt.Sprintf("exit %d", code)
		})
		m := revoke.FindStringSubmatch(c.must(h, "./lite-raft debug log --from 1"))
		if m == nil {
			t.Fatalf("%s: no revoke in the log", h.Name)
		}
		index[h.Name] = m[1]
	}
	if d := time.Since(set); d < 2*time.Second {
		t.Fatalf("a key with a 2 s ttl gone after %v", d)
	}
	for _, h := range c.Hosts[1:] {
		if index[h.Name] != index[c.Hosts[0].Name] {
			t.Fatalf("the revoke is at %v", index)
		}
	}
	t.Logf("ttl key gone on every member at index %s", index[c.Hosts[0].Name])
	ttlKeysAcrossLeaderChanges(c)
}

// ttlKeysAcrossLeaderChanges: keys set with a ttl go within their bound across three
// leader transfers and a kill -9 of the leader: last renewal + ttl + 1 s when the leader
// was only handed over since, + 2 election timeouts (0.5 s each here) more when a leader
// died; and never before their ttl. A new leader that gave every lease its whole ttl again
// (as before command version 6) keeps a 6 s key till about 10.5 s and a 2 s one till 4.5 s.
func ttlKeysAcrossLeaderChanges(c *cluster) {
	t := c.t
	watcher := c.Hosts[0] // never killed: every read is made there
	type key struct {
		name           string
		ttl            time.Duration
		sent, acked    time.Time
		died           bool // a leader died after its set, before its bound
		lastSeen, gone time.Time
		lateSeen       time.Time // a read started after the bound that still saw it
	}
	set := func(name string, ttl time.Duration) *key {
		k := &key{name: name, ttl: ttl, sent: time.Now()}
		c.must(watcher, fmt.Sprintf("./lite-raft-client set --ttl %s %s v", ttl, name))
		k.acked = time.Now()
		return k
	}
	bound := func(k *key) time.Time {
		b := k.acked.Add(k.ttl + time.Second)
		if k.died {
			b = b.Add(2 * 500 * time.Millisecond)
		}
		return b
	}
	var mu sync.Mutex
	var keys []*key
	stop := make(chan struct{})
	var wg sync.WaitGroup
	poll := func(k *key) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			_, _, code := c.lr(watcher, "./lite-raft-client get "+k.name)
			end := time.Now()
			mu.Lock()
			switch {
			case code == 0 && k.gone.IsZero():
				k.lastSeen = end
				if start.After(bound(k)) && k.lateSeen.IsZero() {
					k.lateSeen = start
				}
			case code == 9 && k.gone.IsZero():
				k.gone = end
				if end.Before(k.sent.Add(k.ttl)) {
					t.Errorf("%s (ttl %v) gone %v after its set was sent: before its ttl", k.name, k.ttl, end.Sub(k.sent))
				}
				mu.Unlock()
				return
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond) // the poll's pace, not a wait for a condition
		}
	}
	track := func(k *key) {
		mu.Lock()
		keys = append(keys, k)
		mu.Unlock()
		wg.Add(1)
		go poll(k)
	}
	transfer := func(avoid ...*harness.Host) {
		lead := c.leader(c.Hosts, 10*time.Second)
		to := others(c.Hosts, append(avoid, lead)...)
		if len(to) == 0 {
			to = others(c.Hosts, lead)
		}
		c.must(watcher, "./lite-raft-client transfer-leader "+to[0].Name)
		c.eventually(10*time.Second, "leadership on "+to[0].Name, func() (bool, string) {
			st, ok := c.status(watcher)
			return ok && st.Leader == to[0].Name, st.Leader
		})
	}
	start := time.Now()
	a := set("ttl-a", 6*time.Second)
	track(a)
	transfer()
	b := set("ttl-b", 2*time.Second)
	track(b)
	transfer()
	transfer(watcher) // the next leader is killed: not the host the reads are made on
	for time.Since(start) < 4*time.Second && time.Now().Before(bound(b)) {
		time.Sleep(50 * time.Millisecond) // b's bound passes with only transfers since its set
	}
	lead := c.leader(c.Hosts, 10*time.Second)
	if lead == watcher {
		t.Fatalf("the leader is %s, the host the reads are made on", lead.Name)
	}
	mu.Lock()
	a.died = true
	if b.gone.IsZero() && time.Now().Before(bound(b)) {
		b.died = true // the kill came before b's bound: b gets the death's allowance too
	}
	mu.Unlock()
	if n, err := lead.Signal(`lite-raft .*agent --foreground`, 9); err != nil || n != 1 {
		t.Fatalf("kill -9 the leader's agent: %d %v", n, err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		close(stop)
		wg.Wait()
	}
	c.restartAgent(lead)
	mu.Lock()
	defer mu.Unlock()
	for _, k := range keys {
		switch {
		case k.gone.IsZero():
			t.Errorf("%s (ttl %v) still there 30 s on", k.name, k.ttl)
		case !k.lateSeen.IsZero():
			t.Errorf("%s (ttl %v, acked %s): a read started %v after its bound (%v from the ack) still saw it; gone by %v",
				k.name, k.ttl, k.acked.Format("15:04:05.000"), k.lateSeen.Sub(bound(k)).Round(time.Millisecond),
				bound(k).Sub(k.acked), k.gone.Sub(k.acked).Round(time.Millisecond))
		default:
			t.Logf("%s (ttl %v): last seen %v after its ack, gone by %v (bound %v%s)", k.name, k.ttl,
				k.lastSeen.Sub(k.acked).Round(time.Millisecond), k.gone.Sub(k.acked).Round(time.Millisecond),
				bound(k).Sub(k.acked), map[bool]string{true: ", a leader killed meanwhile"}[k.died])
		}
	}
}

// TestRemoteLockKeptAcrossLeaderPowerOff: a lock held through lite-raft-remote is kept
// when the leader's host, the one the remote asks first, loses power: its renewals go to
// the other members (a renewal has only a third of the ttl, less than the remote gives
// one host, so asking the dead host first every time would lose the lock).
func TestRemoteLockKeptAcrossLeaderPowerOff(t *testing.T) {
	c := newCluster(t, 4, 3, "0.5", 1000)
	members, outside := c.Hosts[:3], c.Hosts[3]
	for _, h := range members {
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(members, 20*time.Second)
	c.remoteOn(outside, "host1 host2 host3", lead)
	c.eventually(10*time.Second, "create accepted", func() (bool, string) {
		_, e, code := c.lr(outside, "./lite-raft-remote create ready 1")
		return code == 0 || code == 13, e
	})
	done := c.runUntilHeld(outside, "./lite-raft-remote lock job --ttl 6s -- sh -c 'touch held; sleep 12; echo done'")
	if err := lead.PowerOff(); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if !strings.HasPrefix(res, "done\n|") || !strings.HasSuffix(res, "|0|<nil>") {
			t.Fatalf("lite-raft-remote lock across %s's power-off: stdout|stderr|exit|error %q, want done and exit 0", lead.Name, res)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("lite-raft-remote lock still running 40 s after its 12 s command started")
	}
	t.Logf("a lock held through lite-raft-remote kept across the power-off of the leader's host (%s)", lead.Name)
}

// lockHolderSignalled has holder run lock kf with a COMMAND that appends the time to a
// file every 0.1 s from a pipeline (its work in grandchildren), waiter queue behind it,
// and, once the lease was renewed, the holding lock process get SIGKILL or SIGSTOP (how),
// or (how "cut") holder cut off from the other hosts while its COMMAND ignores SIGTERM.
// The waiter's command must start after COMMAND's last write, and COMMAND's whole group
// be gone.
func lockHolderSignalled(c *cluster, holder, waiter *harness.Host, how string) {
	c.t.Helper()
	sig := how
	writes, pidFile := "kf-writes-"+how, "kf-pid-"+how
	trap := ""
	if how == "cut" {
		trap = "trap \"\" TERM; "
	}
	// exec: the lock process is the ssh session's, and pkill finds it alone (its pattern
	// in brackets does not match pkill's own shell)
	go holder.Run("cd " + harness.RemoteDir + " && exec ./lite-raft-client lock kf --ttl 3s -- sh -c '" + trap + "echo $$ >" + pidFile +
		"; while :; do date +%s%N >>" + writes + "; sleep 0.1; done | cat'")
	c.eventually(10*time.Second, holder.Name+" runs the COMMAND of lock kf", func() (bool, string) {
		_, err := os.Stat(filepath.Join(holder.Dir, writes))
		return err == nil, fmt.Sprint(err)
	})
	waited := queueWaiter(c, waiter, "kf")
	// renewed since it began: its deadline is one its renewals moved
	c.eventually(10*time.Second, holder.Name+" held lock kf past a renewal", func() (bool, string) {
		fi, err := os.Stat(filepath.Join(holder.Dir, pidFile))
		return err == nil && time.Since(fi.ModTime()) > 1500*time.Millisecond, fmt.Sprint(err)
	})
	if how == "cut" {
		if err := c.Isolate(holder); err != nil {
			c.t.Fatal(err)
		}
		defer c.Heal()
	} else if _, e, code, err := holder.Run("pkill -" + sig + " -f '[l]ite-raft-client lock kf --ttl 3s -- sh'"); code != 0 || err != nil {
		c.t.Fatalf("%s: pkill -%s of the lock process: exit %d %v %s", holder.Name, sig, code, err, e)
	}
	started := waited("holder's " + how)
	b, _ := os.ReadFile(filepath.Join(holder.Dir, pidFile))
	group := strings.TrimSpace(string(b))
	c.eventually(5*time.Second, "COMMAND's group gone on "+holder.Name, func() (bool, string) {
		_, _, code, _ := holder.Run("kill -0 -- -" + group)
		ps, _, _, _ := holder.Run("ps -eo pid,ppid,pgid,stat,args")
		return code != 0, "kill -0 -" + group + " succeeds:\n" + ps
	})
	wb, err := os.ReadFile(filepath.Join(holder.Dir, writes))
	lines := strings.Fields(string(wb))
	if err != nil || len(lines) == 0 {
		c.t.Fatalf("%s: COMMAND's writes: %v %q", holder.Name, err, wb)
	}
	last, _ := strconv.ParseInt(lines[len(lines)-1], 10, 64)
	if last >= started {
		c.t.Fatalf("lock kf: the holder's (%s) COMMAND wrote at %d, %v after the next holder's started", how, last, time.Duration(last-started))
	}
	holder.Run("pkill -KILL -f '[l]ite-raft-client lock kf --ttl 3s -- sh'") // a stopped one stays stopped: end it
	c.t.Logf("lock kf: holder %s, its COMMAND's last write %v before the next holder's start", how, time.Duration(started-last).Round(time.Millisecond))
}

// queueWaiter has waiter queue for lock name behind its holder (lock --ttl 3s --wait 30s,
// its COMMAND printing the time it starts) and returns once it waits; the function it
// returns waits for that COMMAND and gives the time it started (after what: for messages).
func queueWaiter(c *cluster, waiter *harness.Host, name string) func(after string) int64 {
	c.t.Helper()
	type result struct {
		out, errOut string
		code        int
		err         error
	}
	done := make(chan result, 1)
	go func() {
		o, e, code, err := waiter.Run("cd " + harness.RemoteDir + " && ./lite-raft-client lock " + name + " --ttl 3s --wait 30s -- date +%s%N")
		done <- result{o, e, code, err}
	}()
	c.eventually(10*time.Second, waiter.Name+" waits for lock "+name, func() (bool, string) {
		out, e, code := c.lr(waiter, "./lite-raft-client --json locks "+name)
		var l api.LockStatus
		if code != 0 || json.Unmarshal([]byte(out), &l) != nil {
			return false, fmt.Sprintf("exit %d %s%s", code, out, e)
		}
		return len(l.Waiting) == 1, out
	})
	return func(after string) int64 {
		c.t.Helper()
		var r result
		select {
		case r = <-done:
		case <-time.After(40 * time.Second):
			c.t.Fatalf("%s: lock %s --wait 30s still running 40 s after the %s", waiter.Name, name, after)
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(r.out), 10, 64)
		if r.err != nil || r.code != 0 || err != nil {
			c.t.Fatalf("%s: lock %s after the %s: exit %d %v %s%s", waiter.Name, name, after, r.code, r.err, r.out, r.errOut)
		}
		return ns
	}
}
