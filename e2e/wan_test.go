package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/internal/harness"
	"lite-raft/statefile"
)

// TestWAN (issue 30): a cluster whose hosts are 50 ms apart, then 100 ms (round trips,
// through the harness's delay proxies: no netem here), keeps every outcome and exit code
// of the LAN: writes forwarded to the leader, the conditional writes' codes, a lock, a
// read from outside through lite-raft-remote, a leadership transfer, and a leader killed
// (its successor elected, the write in flight 0 or 2, the next ones 0). It asserts
// outcomes, not times.
func TestWAN(t *testing.T) {
	c := newCluster(t, 4, 3, "2", 1000)
	members, outside := c.Hosts[:3], c.Hosts[3]
	c.remoteOn(outside, "host1 host2 host3", nil)
	for _, rtt := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond} {
		t.Logf("round trip %v between hosts", rtt)
		if err := c.SetDelay(rtt/2, rtt/20); err != nil {
			t.Fatal(err)
		}
		// the multiplexer of the last round keeps its connections (made before the delay)
		if _, err := outside.Signal(`remote-mux`, 15); err != nil {
			t.Fatal(err)
		}
		// the agents' links are made at their start: start them behind the new delay
		for _, h := range members {
			if rtt == 50*time.Millisecond {
				c.must(h, "./lite-raft first-boot")
			} else {
				c.must(h, "./lite-raft start")
			}
		}
		lead := c.leader(members, 60*time.Second)
		fs := others(members, lead)
		// the leader measures its links' round trips (their ssh keep-alives, every half
		// election timeout) and shows them in status
		c.eventually(20*time.Second, "the round trips in the leader's status", func() (bool, string) {
			st, ok := c.status(lead)
			if !ok {
				return false, "no status"
			}
			measured := 0
			for _, n := range st.Nodes {
				if n.Name == lead.Name {
					continue
				}
				d := time.Duration(n.RTTUs) * time.Microsecond
				// at least the link's round trip; far more is a unit mixed up, not load
				if d < rtt || d > rtt+time.Second {
					return false, fmt.Sprintf("%s: %v", n.Name, d)
				}
				measured++
			}
			return measured == len(fs), fmt.Sprintf("%d measured", measured)
		})
		k := fmt.Sprintf("wan/%d", rtt.Milliseconds())
		// the links are long: a follower's write (forwarded, then replicated) takes two
		// round trips at least (a lower bound: load only adds to it)
		// (timed on the host, without the test's own ssh session)
		out := c.must(fs[0], "s=$(date +%s%N); ./lite-raft-client set "+k+" 1 && echo $(( $(date +%s%N) - s ))")
		if ns, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64); err != nil || time.Duration(ns) < 2*rtt {
			t.Fatalf("a follower's write took %q ns (%v) at a round trip of %v: the links are not delayed", out, err, rtt)
		}
		c.expect(fs[1], "./lite-raft-client get "+k, 0, "1")
		c.expect(fs[0], "./lite-raft-client if "+k+" = 2 set 3", api.CodeCondFalse, "")
		c.expect(fs[1], "./lite-raft-client if "+k+"/none = 2 set 3", api.CodeNoKey, "")
		c.expect(fs[0], "./lite-raft-client create "+k+" 4", api.CodeExists, "")
		// the first remote call starts the multiplexer, in the background: a command
		// substitution of it must not wait for it
		c.expect(outside, "timeout 20 sh -c 'v=$(./lite-raft-remote get "+k+"); echo $v'", 0, "1")
		c.must(outside, "./lite-raft-remote set "+k+"/outside yes")
		// the next ones reuse its connections: a linearizable get costs its round trip to
		// the leader and the leader's heartbeat round, not an ssh handshake (about 12)
		timed := func(env string) time.Duration {
			out := c.must(outside, "s=$(date +%s%N); "+env+" ./lite-raft-remote get "+k+" >/dev/null && echo $(( $(date +%s%N) - s ))")
			ns, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
			if err != nil {
				t.Fatalf("a timed remote get: %q", out)
			}
			return time.Duration(ns)
		}
		var best time.Duration
		for i := 0; i < 5; i++ {
			if d := timed(""); i == 0 || d < best {
				best = d
			}
		}
		direct := timed("LITE_RAFT_REMOTE_MUX=off")
		t.Logf("a remote get at %v: %v through the multiplexer (best of 5), %v straight", rtt, best, direct)
		// (a ratio in one run, not a time: the machine is shared; a get through a new ssh
		// connection costs about 12 round trips, through the multiplexer about 2)
		if 2*best > direct {
			t.Errorf("a remote get at %v took %v through the multiplexer, %v straight: want under half", rtt, best, direct)
		}
		c.expect(fs[1], "./lite-raft-client get "+k+"/outside", 0, "yes")
		// a batch through the remote keeps 4,000 commands in flight: far more than one
		// a round trip (issue 31 asks 10,000 sets/s at 100 ms; make bench judges it)
		var in strings.Builder
		const n = 20000
		for i := range n {
			fmt.Fprintf(&in, "set %s/batch/%d v\n", k, i)
		}
		if err := os.WriteFile(filepath.Join(outside.Dir, "wb.in"), []byte(in.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		out = c.must(outside, "s=$(date +%s%N); ./lite-raft-remote batch < wb.in | sort | uniq -c | tr -s ' '; echo $(( $(date +%s%N) - s ))")
		res, took, _ := strings.Cut(strings.TrimSpace(out), "\n")
		if strings.TrimSpace(res) != fmt.Sprintf("%d 0", n) {
			t.Fatalf("a batch of %d sets through the remote at %v: %q", n, rtt, out)
		}
		if ns, err := strconv.ParseInt(took, 10, 64); err == nil {
			t.Logf("a batch of %d sets through the remote at %v: %.0f sets/s", n, rtt, n/time.Duration(ns).Seconds())
		}
		c.expect(fs[1], "./lite-raft-client lock "+k+"/lock --ttl 5s -- sh -c 'echo held $LITE_RAFT_LOCK_GENERATION'", 0, "")

		c.must(lead, "./lite-raft-client transfer-leader "+fs[0].Name)
		lead = c.leader(members, 30*time.Second)
		if lead != fs[0] {
			t.Fatalf("transfer to %s: %s leads", fs[0].Name, lead.Name)
		}
		fs = others(members, lead)
		if n, err := lead.Signal(`lite-raft .*agent --foreground`, 9); err != nil || n != 1 {
			t.Fatalf("kill -9 of %s's agent: %d killed, %v", lead.Name, n, err)
		}
		// the write in flight when its leader died: done or unknown, never "not done"
		_, _, code := c.lr(fs[0], "./lite-raft-client --timeout 20 set "+k+"/after-kill 1")
		if code != 0 && code != api.CodeTimeout {
			t.Fatalf("the first write after the leader was killed: exit %d, want 0 or 2", code)
		}
		next := c.leader(fs, 60*time.Second)
		c.must(next, "./lite-raft-client set "+k+"/after-kill 2")
		c.expect(fs[0], "./lite-raft-client get "+k+"/after-kill", 0, "2")
		c.must(lead, "./lite-raft start")
		c.leader(members, 60*time.Second)
		c.expect(lead, "./lite-raft-client get "+k+"/after-kill", 0, "2")
		if rtt == 100*time.Millisecond {
			wanCatchUp(t, c, members)
		}
		for _, h := range members {
			c.must(h, "./lite-raft stop")
		}
	}
	wanFar(t, c, members)
	// the multiplexer goes once idle for its time (LITE_RAFT_REMOTE_MUX_IDLE), its socket
	// with it; its folder is private
	if _, err := outside.Signal(`remote-mux`, 15); err != nil {
		t.Fatal(err)
	}
	c.lr(outside, "LITE_RAFT_REMOTE_MUX_IDLE=1s ./lite-raft-remote --timeout 2 get wan/none")
	c.expect(outside, "stat -c %a /tmp/lite-raft-mux-0", 0, "700")
	c.eventually(15*time.Second, "the idle multiplexer gone", func() (bool, string) {
		procs, err := outside.Procs()
		for _, p := range procs {
			if strings.Contains(p.Cmdline, "remote-mux") {
				return false, p.Cmdline
			}
		}
		return err == nil, fmt.Sprint(err)
	})
	c.expect(outside, "ls /tmp/lite-raft-mux-0 | wc -l", 0, "0")

	// no agent anywhere: the multiplexer's verdict is the one a direct call gets (nothing
	// was sent: not "maybe applied")
	for _, verb := range []string{"set wan/none 1", "get wan/none"} {
		_, _, viaMux := c.lr(outside, "./lite-raft-remote --timeout 5 "+verb)
		_, _, direct := c.lr(outside, "LITE_RAFT_REMOTE_MUX=off ./lite-raft-remote --timeout 5 "+verb)
		if viaMux != direct || viaMux == api.CodeTimeout || viaMux == 0 {
			t.Errorf("%s with no agent: exit %d through the multiplexer, %d straight", verb, viaMux, direct)
		}
	}
}

// wanFar: hosts 600 ms apart, with the election timeout at 1 s. The agents connect (an
// ssh handshake takes several round trips), elect, write, and when the leader is cut
// off the other two elect one of them by timeout without splitting the vote (each stands
// within the other's pre-vote round trip more often than not at this distance), and it
// writes. Times are logged, not asserted.
func wanFar(t *testing.T, c *cluster, members []*harness.Host) {
	const rtt = 600 * time.Millisecond
	if err := c.SetDelay(rtt/2, rtt/20); err != nil {
		t.Fatal(err)
	}
	for _, h := range members {
		c.must(h, "./lite-raft start")
	}
	lead := c.leader(members, 90*time.Second)
	fs := others(members, lead)
	c.must(fs[0], "./lite-raft-client --timeout 20 set wan/far 1")
	c.expect(fs[1], "./lite-raft-client get wan/far", 0, "1")
	if err := c.Isolate(lead); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	next := c.leader(fs, 60*time.Second)
	t.Logf("at %v round trips, election timeout 1 s: %s elected %v after %s was cut off", rtt, next.Name, time.Since(cut).Round(10*time.Millisecond), lead.Name)
	c.must(next, "./lite-raft-client --timeout 20 set wan/far 2")
	c.expect(others(fs, next)[0], "./lite-raft-client get wan/far", 0, "2")
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	c.leader(members, 60*time.Second)
	c.expect(lead, "./lite-raft-client --timeout 20 get wan/far", 0, "2")
	for _, h := range members {
		c.must(h, "./lite-raft stop")
	}
}

// wanCatchUp: a follower stopped while the leader takes in 120 MB catches up from a
// snapshot sent over the long link, in pieces spread over several streams; the rate is
// logged (make bench judges it: ≥ 40 MiB/s at 100 ms).
func wanCatchUp(t *testing.T, c *cluster, members []*harness.Host) {
	lead := c.leader(members, 60*time.Second)
	f := others(members, lead)[0]
	st, ok := c.status(f)
	if !ok {
		t.Fatalf("no status from %s", f.Name)
	}
	c.must(f, "./lite-raft stop")
	c.must(lead, "./lite-raft bench --fill --keys 3000 --value-size 40000 --key-prefix wan/fill/ --clients 32 --conns 4")
	// a snapshot 1500 entries past what f holds: the leader keeps 1000 entries behind its
	// snapshot (snapshot_period), so its log no longer has what f lacks
	var commit uint64
	c.eventually(60*time.Second, "the leader's snapshot past "+f.Name+"'s log", func() (bool, string) {
		ls, ok := c.status(lead)
		commit = ls.Commit
		return ok && ls.Snapshot > st.LastIndex+1500, fmt.Sprintf("snapshot at %d, %s at %d", ls.Snapshot, f.Name, st.LastIndex)
	})
	fi, err := os.Stat(filepath.Join(lead.Dir, statefile.SnapshotDir, "snapshot"))
	var size int64
	if err == nil {
		size = fi.Size()
	}
	if err != nil || size < 60<<20 {
		t.Fatalf("the leader's snapshot: %d bytes (%v), want most of the 120 MB written", size, err)
	}
	start := time.Now()
	c.must(f, "./lite-raft start")
	c.eventually(120*time.Second, f.Name+" caught up", func() (bool, string) {
		fs, ok := c.status(f)
		return ok && fs.Applied >= commit, fmt.Sprintf("applied %d of %d", fs.Applied, commit)
	})
	took := time.Since(start)
	t.Logf("catch-up at 100 ms: a snapshot of %.1f MiB in %v (%.1f MiB/s, from the start of the agent)",
		float64(size)/(1<<20), took.Round(time.Millisecond), float64(size)/(1<<20)/took.Seconds())
	t.Logf("%s's log:\n%s", f.Name, c.must(f, "grep -E 'started|snapshot|reached' message-log/lite-raft-server.log | tail -n 6"))
	c.expect(f, "./lite-raft-client --stale get wan/fill/2999 | wc -c", 0, "40001")
}
