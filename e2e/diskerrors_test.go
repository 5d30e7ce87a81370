//go:build linux

package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"lite-raft/internal/harness"
)

// The disk errors of issue 15, injected through lazyfs under a real cluster: an fsync
// that fails (EIO), a full disk (ENOSPC), and snapshot fsyncs that keep failing.

// agentGone waits until h's agent has exited (its socket no longer answers: exit 12).
func (lc *lazyCluster) agentGone(h *lazyHost, within time.Duration) {
	lc.t.Helper()
	lc.eventually(within, h.Name+"'s agent stopped", func() (bool, string) {
		_, _, code := lc.lr(h.Host, "./lite-raft-client --stale status")
		return code == 12, fmt.Sprintf("status exit %d", code)
	})
}

// caughtUp waits until the leader sees h with its whole log.
func (lc *lazyCluster) caughtUp(hosts []*harness.Host, h *lazyHost, within time.Duration) {
	lc.t.Helper()
	lc.eventually(within, h.Name+" caught up", func() (bool, string) {
		lead := lc.leader(hosts, 10*time.Second)
		st, ok := lc.status(lead)
		if !ok {
			return false, "no status"
		}
		for _, n := range st.Nodes {
			if n.Name == h.Name {
				return n.Lag == 0 && n.Match == st.LastIndex, fmt.Sprintf("match %d lag %d (%s), leader's last index %d", n.Match, n.Lag, n.State, st.LastIndex)
			}
		}
		return false, h.Name + " not in the leader's status"
	})
}

// mustHave fails the test if an acknowledged write of ws is missing, and returns how
// many were acknowledged.
func (lc *lazyCluster) mustHave(h *harness.Host, dir string, ws []*writeLog) int {
	lc.t.Helper()
	acked, lost := lc.checkWrites(h, dir, ws)
	if len(lost) > 0 {
		lc.t.Fatalf("%d of %d acknowledged writes lost: %s", len(lost), acked, strings.Join(lost[:min(len(lost), 10)], ", "))
	}
	return acked
}

// TestFsyncEIO: the leader's log fsync fails. Its agent must stop at once (after a
// failed fsync what reached the disk is unknown) without acknowledging the write of that
// batch, which exits 2 (it may or may not be applied: the followers may have it); the
// other two go on; once the fault is gone `./lite-raft start` brings it back, it catches
// up, and no acknowledged write is lost, also across a power cut of every host after
// that.
func TestFsyncEIO(t *testing.T) {
	lc := newLazyCluster(t, 3, 3, "0.5", 1000)
	for _, h := range lc.Hosts {
		lc.must(h, "./lite-raft first-boot")
	}
	lead := lc.lazyHostOf(lc.leader(lc.Hosts, 20*time.Second))
	rest := others(lc.Hosts, lead.Host)
	// one writer, on the leader, while the fault comes: its next write is the one the
	// failing fsync is for
	onLeader := startWrites(lc.cluster, lead.Host, "eio/leader", 0, 0, 0)
	ws := []*writeLog{onLeader}
	defer func() {
		for _, w := range ws {
			w.stop()
		}
	}()
	onLeader.waitAcked(lc.cluster, 20, 30*time.Second)
	onLeader.mu.Lock()
	startedBefore := onLeader.last
	onLeader.mu.Unlock()
	lead.fs.FailSyncsOf(regexp.MustCompile(`^state-machine-log/`))
	lc.agentGone(lead, 20*time.Second)
	failed := lead.fs.Stats().FailedSyncs
	log := lead.agentLog()
	said := regexp.MustCompile(`fatal: persist: fsync \S+state-machine-log/\S+\.log: .*input/output error.*`).FindString(log)
	if said == "" {
		t.Fatalf("%s's agent stopped without saying that the fsync of its log failed:\n%s", lead.Name, tail(log, 15))
	}
	// the cluster goes on without it
	onFollower := startWrites(lc.cluster, rest[0], "eio/follower", 0, 0, 0)
	ws = append(ws, onFollower)
	onFollower.waitAcked(lc.cluster, 10, 30*time.Second)
	onLeader.stop()
	// The write in flight when the fault came may have been made durable before it, and
	// so may the next one (its start may not have reached the test yet). From there on,
	// the first write that does not exit 0 is the one whose fsync failed: 2, and none
	// after it may exit 0.
	var codes []int
	for i := startedBefore; i <= onLeader.last; i++ {
		if c, ok := onLeader.codes[i]; ok {
			codes = append(codes, c)
		}
	}
	first := slices.IndexFunc(codes, func(c int) bool { return c != 0 })
	if first < 0 || first > 1 || codes[first] != 2 || slices.Contains(codes[first:], 0) {
		t.Fatalf("exit codes of %s's writes from the one in flight at the fault on: %v; want at most two 0s, then 2 "+
			"(the write whose fsync failed), then no 0", lead.Name, codes)
	}
	lead.fs.ClearFaults()
	lc.must(lead.Host, "./lite-raft start")
	lc.caughtUp(lc.Hosts, lead, 60*time.Second)
	onFollower.waitAcked(lc.cluster, onFollower.ackedCount()+10, 30*time.Second)
	onFollower.stop()
	newLead := lc.leader(lc.Hosts, 20*time.Second)
	acked := lc.mustHave(newLead, "eio", ws)
	// and once more after the power of every host is cut
	lc.powerCut(1, nil)
	lc.powerOn()
	lc.start(lc.hosts)
	newLead = lc.leader(lc.Hosts, 30*time.Second)
	lc.mustHave(newLead, "eio", ws)
	lc.must(newLead, "./lite-raft-client set eio/after yes")
	t.Logf("%s stopped after %d failed fsync(s) of its log (%q); its client's writes from the fault on exited %v; "+
		"%d writes acknowledged, none lost, also after a power cut", lead.Name, failed, said, codes, acked)
}

// TestDiskFull: a follower's disk fills up, then the leader's. Each agent stops with a
// message that says so; once space is freed `./lite-raft start` brings it back, it
// catches up, and no acknowledged write is lost.
func TestDiskFull(t *testing.T) {
	// no snapshot in the test's length: the budget goes to the log's appends alone
	lc := newLazyCluster(t, 3, 3, "0.5", 100000)
	for _, h := range lc.Hosts {
		lc.must(h, "./lite-raft first-boot")
	}
	var ws []*writeLog
	defer func() {
		for _, w := range ws {
			w.stop()
		}
	}()
	lead := lc.lazyHostOf(lc.leader(lc.Hosts, 20*time.Second))
	for round, full := range []string{"follower", "leader"} {
		var victim *lazyHost
		var writerHost *harness.Host
		if full == "leader" {
			victim = lead
			writerHost = others(lc.Hosts, lead.Host)[0]
		} else {
			victim = lc.lazyHostOf(others(lc.Hosts, lead.Host)[0])
			writerHost = lead.Host
		}
		// values of 100 KB, one write(2) and one FUSE request each, and a budget of
		// ten of them and a half: the append that does not fit fails whole and leaves
		// room for the agent's last words in its log (on the same disk, as usual)
		const value = 100_000
		w := startWrites(lc.cluster, writerHost, fmt.Sprintf("full/%d", round), value, 0, 0)
		ws = append(ws, w)
		w.waitAcked(lc.cluster, 3, 30*time.Second)
		victim.fs.LimitWrites(10*value + value/2)
		lc.agentGone(victim, 60*time.Second)
		log := victim.agentLog()
		said := regexp.MustCompile(`fatal: persist: .*state-machine-log.*: no space left on device.*`).FindString(log)
		if said == "" {
			t.Fatalf("the %s's agent stopped without saying its disk is full:\n%s", full, tail(log, 15))
		}
		rest := others(lc.Hosts, victim.Host)
		// the two others go on
		w.waitAcked(lc.cluster, w.ackedCount()+5, 30*time.Second)
		victim.fs.ClearFaults()
		lc.must(victim.Host, "./lite-raft start")
		lc.caughtUp(lc.Hosts, victim, 60*time.Second)
		w.waitAcked(lc.cluster, w.ackedCount()+3, 30*time.Second)
		w.stop()
		lead = lc.lazyHostOf(lc.leader(lc.Hosts, 20*time.Second))
		acked := lc.mustHave(lead.Host, "full", ws)
		t.Logf("the %s (%s) stopped on a full disk (%q), came back and caught up; %d writes acknowledged, none lost (the others: %s, %s)",
			full, victim.Name, said, acked, rest[0].Name, rest[1].Name)
	}
}

// TestSnapshotFsyncBackoff: the leader's snapshot fsyncs fail for a while under writes
// that make a snapshot due at every batch. The agent goes on serving, tries again after
// 1 s, 2 s, 4 s ... (not at every batch, which would rewrite the whole state each time),
// and takes its snapshot once the fault is gone.
func TestSnapshotFsyncBackoff(t *testing.T) {
	lc := newLazyCluster(t, 3, 3, "0.5", 20)
	for _, h := range lc.Hosts {
		lc.must(h, "./lite-raft first-boot")
	}
	lead := lc.lazyHostOf(lc.leader(lc.Hosts, 20*time.Second))
	var ws []*writeLog
	for i, h := range lc.Hosts {
		ws = append(ws, startWrites(lc.cluster, h, fmt.Sprintf("snap/%d", i), 0, 0, 0))
	}
	defer func() {
		for _, w := range ws {
			w.stop()
		}
	}()
	for _, w := range ws {
		w.waitAcked(lc.cluster, 10, 30*time.Second)
	}
	// The fsyncs of the new snapshot's own file fail: the write fails before anything is
	// replaced. (One that fails once the new file is in place stops the agent, as a
	// failed fsync of the log does: TestStatefileSnapshotReplacedNotDurably.)
	lead.fs.FailSyncsOf(regexp.MustCompile(`^state-machine-snapshot/\.snapshot\.tmp`))
	lc.eventually(30*time.Second, "a snapshot attempt failing", func() (bool, string) {
		return lead.fs.Stats().FailedSyncs > 0, "no failed fsync yet"
	})
	// a snapshot that was being committed when the fault came is stored by now: the
	// next attempt waits for it
	before, _ := snapshotMeta(lead)
	ackedBefore := ws[0].ackedCount()
	// the fault's length, not a wait for a condition: with back-off doubling from 1 s,
	// the tries fall at 0 (seen), 1, 3 and 7 s (one per batch would be hundreds)
	const window = 6 * time.Second
	time.Sleep(window)
	failed := lead.fs.Stats().FailedSyncs
	if failed < 2 || failed > 4 {
		t.Fatalf("%d snapshot fsyncs failed in %v of writes; with back-off doubling from 1 s, want 3 (2 to 4 for timing)", failed, window)
	}
	if _, ok := lc.status(lead.Host); !ok {
		t.Fatalf("%s's agent does not answer while its snapshots fail", lead.Name)
	}
	if n := ws[0].ackedCount(); n < ackedBefore+10 {
		t.Fatalf("only %d writes acknowledged while snapshots failed", n-ackedBefore)
	}
	if log := lead.agentLog(); !regexp.MustCompile(`store snapshot at \d+: .*input/output error \(next try in \d+ s\)`).MatchString(log) {
		t.Fatalf("no log line of a failed snapshot:\n%s", tail(log, 15))
	}
	if i, _ := snapshotMeta(lead); i != before {
		t.Fatalf("a snapshot at %d was stored while every snapshot fsync failed (it was at %d)", i, before)
	}
	lead.fs.ClearFaults()
	lc.eventually(70*time.Second, "a snapshot once the fault is gone", func() (bool, string) {
		i, _ := snapshotMeta(lead)
		return i > before, fmt.Sprintf("snapshot at %d", i)
	})
	for _, w := range ws {
		w.stop()
	}
	acked := lc.mustHave(lead.Host, "snap", ws)
	t.Logf("%d snapshot fsyncs failed in %v under writes (%d acknowledged, none lost); a snapshot was stored after the fault", failed, window, acked)
}
