package e2e

import (
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

	"lite-raft/internal/harness"
)

// TestLock: two hosts running `lock job -- CMD` in a loop never hold it at once, and the
// fencing number grows with every holder; then the holder's host is powered off in the
// middle of its command, and another host gets the lock within its ttl (plus the time a
// new leader takes, if the leader went down with it).
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
	// this machine's clock) to its host's own file
	const runs = 8
	loop := func(h *harness.Host) string {
		ev := harness.RemoteDir + "/lock-events"
		cmd := fmt.Sprintf(`echo "%s start $LITE_RAFT_LOCK_GENERATION $(date +%%s%%N)" >>%s; sleep 0.1; echo "%s end $LITE_RAFT_LOCK_GENERATION $(date +%%s%%N)" >>%s`,
			h.Name, ev, h.Name, ev)
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

	// the holder's host loses power mid-command: another gets the lock within its ttl
	holder := c.Hosts[0]
	// not c.lr: its ssh session dies with the host's power, and the test must not fail
	// (or be touched at all) by a session it means to kill
	go holder.Run("cd " + harness.RemoteDir + " && ./lite-raft-client lock job --ttl 3s -- sh -c 'touch " + harness.RemoteDir + "/holding; sleep 60'")
	c.eventually(10*time.Second, holder.Name+" holds the lock", func() (bool, string) {
		_, err := os.Stat(filepath.Join(holder.Dir, "holding"))
		return err == nil, fmt.Sprint(err)
	})
	if err := holder.PowerOff(); err != nil {
		t.Fatal(err)
	}
	off := time.Now()
	other := c.Hosts[1]
	out, e, code := c.lr(other, "./lite-raft-client lock job --ttl 3s --wait 30s -- sh -c 'echo $LITE_RAFT_LOCK_GENERATION'")
	took := time.Since(off)
	if code != 0 {
		t.Fatalf("%s: lock after %s's power-off: exit %d %s%s", other.Name, holder.Name, code, out, e)
	}
	// ttl 3 s, and a new leader may be elected first (election timeout 0.5 s)
	if took > 3*time.Second+3*time.Second {
		t.Fatalf("the lock came free %v after its holder's power-off (ttl 3s)", took)
	}
	t.Logf("lock: %d runs on 2 hosts, never overlapping, generations 1..%d; freed %.1fs after the holder's power-off (ttl 3s)",
		len(all), all[len(all)-1].gen, took.Seconds())
}

// TestTTLKeyGoesEverywhere: a key set with a ttl goes on every member at the same log
// index (the leader's revoke), and not before its time.
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
}
