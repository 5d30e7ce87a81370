package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"lite-raft/agent"
	"lite-raft/internal/lockfile"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
	"lite-raft/statefile"
)

// savedFile writes a snapshot file as snapshot save makes one, with n keys.
func savedFile(t *testing.T, n int) string {
	t.Helper()
	kv := kvstore.New()
	for i := 0; i < n; i++ {
		kv.Apply(uint64(i+1), kvstore.Command{Op: kvstore.OpSet, Key: fmt.Sprintf("k%d", i), Value: []byte("v")})
	}
	path := filepath.Join(t.TempDir(), "backup.snap")
	meta := raftcore.SnapshotMeta{Index: uint64(n + 7), Term: 3, Members: raftcore.Membership{Voters: []raftcore.NodeID{"old1", "old2"}}}
	if _, _, err := statefile.WriteSnapshotFile(path, meta, kv.WriteSnapshot); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRestoreWritesTheState: the snapshot at FILE's index and term with the new members,
// FILE's term, an empty log and conf/cluster_nodes; flags before or after FILE.
func TestRestoreWritesTheState(t *testing.T) {
	file := savedFile(t, 40)
	for _, args := range [][]string{{"restore", file, "--members", thisHost() + " other"}, {"restore", "--members", thisHost() + " other", file},
		{"restore", file, "--members=" + thisHost() + " other"}} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "conf"), 0o755)
		out, code := runApp(t, append([]string{"--dir", dir}, args...)...)
		if code != 0 || !strings.Contains(out, "index 47 (term 3), 40 keys") {
			t.Fatalf("%v: exit %d %s", args, code, out)
		}
		s, st, err := statefile.Open(dir, statefile.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		m := st.Snapshot.Meta
		voters := []string{thisHost(), "other"}
		slices.Sort(voters)
		if m.Index != 47 || m.Term != 3 || m.Members.String() != "voters="+strings.Join(voters, ",")+" outgoing= learners=" ||
			st.HardState.Term != 3 || st.HardState.Vote != "" || len(st.Terms) != 0 {
			t.Fatalf("%v: state %+v", args, st)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "conf", "cluster_nodes")); strings.TrimSpace(string(b)) != thisHost()+" other" {
			t.Fatalf("%v: conf/cluster_nodes %q", args, b)
		}
	}
}

// TestRestoreRefuses: existing state (unless --force), a damaged FILE, a running agent,
// members without this host: each is refused with its reason, and nothing changes.
func TestRestoreRefuses(t *testing.T) {
	file := savedFile(t, 5)
	me := thisHost()

	dir := t.TempDir()
	if err := statefile.Bootstrap(dir, raftcore.Membership{Voters: []raftcore.NodeID{"x"}}); err != nil {
		t.Fatal(err)
	}
	out, code := runApp(t, "--dir", dir, "restore", file, "--members", me)
	if code != 1 || !strings.Contains(out, "already has state") || !strings.Contains(out, "--force") {
		t.Fatalf("restore over existing state: exit %d %s", code, out)
	}
	if _, st, _ := statefile.Open(dir, statefile.Options{ReadOnly: true}); st.Snapshot.Meta.Members.String() != "voters=x outgoing= learners=" {
		t.Fatalf("the refused restore changed the state: %+v", st.Snapshot.Meta)
	}
	if out, code := runApp(t, "--dir", dir, "restore", file, "--members", me, "--force"); code != 0 {
		t.Fatalf("restore --force: exit %d %s", code, out)
	}

	b, _ := os.ReadFile(file)
	for name, damage := range map[string]func([]byte) []byte{
		"a flipped data byte":   func(b []byte) []byte { b[len(b)-3] ^= 0x10; return b },
		"cut short":             func(b []byte) []byte { return b[:len(b)-1] },
		"a flipped header byte": func(b []byte) []byte { b[30] ^= 1; return b },
		"not a snapshot":        func([]byte) []byte { return []byte("hello\n") },
	} {
		bad := filepath.Join(t.TempDir(), "bad.snap")
		os.WriteFile(bad, damage(append([]byte(nil), b...)), 0o600)
		empty := t.TempDir()
		out, code := runApp(t, "--dir", empty, "restore", bad, "--members", me)
		if code != 1 || !strings.Contains(out, "bad.snap") {
			t.Errorf("restore of a FILE with %s: exit %d %s", name, code, out)
		}
		if ents, _ := os.ReadDir(empty); len(ents) != 0 {
			t.Errorf("restore of a FILE with %s created %d entries", name, len(ents))
		}
	}

	for _, args := range [][]string{{"restore", file}, {"restore", "--members", me}, {"restore", file, "--members", "someone else"},
		{"restore", file, file, "--members", me}, {"restore", file, "--members"}, {"restore", file, "--bogus", "--members", me}} {
		if out, code := runApp(t, append([]string{"--dir", t.TempDir()}, args...)...); code != 10 {
			t.Errorf("%v: exit %d %s; want 10", args, code, out)
		}
	}

	// an agent's lock held by another process (in this one, asking would drop it: fcntl)
	running := t.TempDir()
	os.MkdirAll(filepath.Join(running, "temp"), 0o700)
	holder := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	holder.Env = append(os.Environ(), "LITE_RAFT_HOLD_LOCK="+agent.LockPath(running))
	stdin, _ := holder.StdinPipe()
	stdout, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	defer stdin.Close()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("the lock holder says %q %v", line, err)
	}
	if out, code := runApp(t, "--dir", running, "restore", file, "--members", me, "--force"); code != 1 || !strings.Contains(out, "lite-raft is running") {
		t.Errorf("restore with the agent running: exit %d %s", code, out)
	}
	if ents, _ := os.ReadDir(running); len(ents) != 1 {
		t.Errorf("restore with the agent running left %d entries, want temp/ alone", len(ents))
	}
}

// TestHelperHoldLock is the process TestRestoreRefuses runs to hold an agent's lock.
func TestHelperHoldLock(t *testing.T) {
	path := os.Getenv("LITE_RAFT_HOLD_LOCK")
	if path == "" {
		t.Skip("the lock holder of TestRestoreRefuses")
	}
	f, err := lockfile.TryLock(path)
	if err != nil {
		fmt.Println(err)
		os.Exit(3)
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin) // until the test closes it
	f.Close()
	os.Exit(0)
}

// storedState reads the state machine of dir's stored snapshot.
func storedState(t *testing.T, dir string) (*kvstore.Store, []byte) {
	t.Helper()
	s, _, err := statefile.Open(dir, statefile.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, _, err := s.SnapshotData()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := kvstore.Restore(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return kv, b
}

// TestRestoreAndRecoverMoveGenerations: restore writes the same state on every member,
// marked to move its generations past the old cluster's when it first has a leader
// (the epoch cannot come from each member's clock); recover, whose state the others
// take from it, moves them at once, with its own clock. A lock held in the backup is
// past the epoch then (issue 24).
func TestRestoreAndRecoverMoveGenerations(t *testing.T) {
	kv := kvstore.New()
	kv.Apply(5, kvstore.Command{Op: kvstore.OpLockAcquire, Key: "job", TTLMs: 3000})
	path := filepath.Join(t.TempDir(), "backup.snap")
	meta := raftcore.SnapshotMeta{Index: 5, Term: 2, Members: raftcore.Membership{Voters: []raftcore.NodeID{"old1"}}}
	if _, _, err := statefile.WriteSnapshotFile(path, meta, kv.WriteSnapshot); err != nil {
		t.Fatal(err)
	}
	var states [][]byte
	var dir string
	for i := 0; i < 2; i++ {
		dir = t.TempDir()
		os.MkdirAll(filepath.Join(dir, "conf"), 0o755)
		if out, code := runApp(t, "--dir", dir, "restore", path, "--members", thisHost()+" other"); code != 0 {
			t.Fatalf("restore: exit %d %s", code, out)
		}
		got, b := storedState(t, dir)
		if !got.RebasePending() || got.Base() != 0 {
			t.Fatalf("restored: rebase pending %v, base %d", got.RebasePending(), got.Base())
		}
		states = append(states, b)
	}
	if string(states[0]) != string(states[1]) {
		t.Fatal("two members restored from one file hold different states")
	}
	before := uint64(time.Now().UnixNano())
	if out, code := runApp(t, "--dir", dir, "recover", "--members", thisHost()); code != 0 {
		t.Fatalf("recover: exit %d %s", code, out)
	}
	got, _ := storedState(t, dir)
	var gen uint64
	got.Locks(func(name string, l kvstore.Lock) bool { gen = l.Generation; return true })
	if got.RebasePending() || got.Base() < before || gen < got.Base() {
		t.Fatalf("recovered: rebase pending %v, base %d (recover started at %d), the held lock at %d", got.RebasePending(), got.Base(), before, gen)
	}
}
