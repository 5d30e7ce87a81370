package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"lite-raft/internal/harness"
)

// batchPhase (issue 31, part of TestRemoteAndScripts): lite-raft-client batch on real
// hosts. Through lite-raft-remote from outside, 2,000 sets pipelined and read back in
// order by a member's batch; an atomic batch with a failing line does nothing. Then a
// member's agent killed with kill -9 in the middle of a batch of 200,000 sets on its host:
// every line has a result, each 0 (done), 2 (unknown) or 12 (not sent), the batch exits
// 2 (or 12 if nothing was in flight); once the agent is back, a line that said 0 is
// there and a line that said 12 is not.
func batchPhase(c *cluster, members []*harness.Host, outside *harness.Host) {
	t := c.t
	t.Helper()
	write := func(h *harness.Host, name string, lines func(i int) string, n int) {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			b.WriteString(lines(i))
			b.WriteByte('\n')
		}
		if err := os.WriteFile(filepath.Join(h.Dir, name), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const n = 2000
	write(outside, "rb.in", func(i int) string { return fmt.Sprintf("set rb/%d v%d", i, i) }, n)
	c.expect(outside, "./lite-raft-remote batch < rb.in | sort | uniq -c | tr -s ' '", 0, fmt.Sprintf("%d 0", n))
	write(members[0], "rb.get", func(i int) string { return fmt.Sprintf("get rb/%d", i) }, n)
	write(members[0], "rb.want", func(i int) string { return fmt.Sprintf("0 v%d", i) }, n)
	c.must(members[0], "./lite-raft-client batch < rb.get > rb.out && cmp rb.out rb.want")
	c.expect(outside, `printf 'set ra/x 1\ncreate rb/1 z\n' | ./lite-raft-remote batch --atomic`, 13,
		"6 nothing was done: line 2 failed\n13 key rb/1 already exists: nothing was done")
	c.expect(outside, "./lite-raft-remote get ra/x", 9, "")

	lead := c.leader(members, 20*time.Second)
	h := others(members, lead)[0]
	const big = 200_000
	write(h, "kb.in", func(i int) string { return fmt.Sprintf("set kb/%d v%d", i, i) }, big)
	c.must(h, "rm -f kb.out kb.rc; nohup sh -c './lite-raft-client batch --window 500 < kb.in > kb.out; echo $? > kb.rc' > /dev/null 2>&1 &")
	c.eventually(60*time.Second, "5,000 results of the batch", func() (bool, string) {
		b, _ := os.ReadFile(filepath.Join(h.Dir, "kb.out"))
		return strings.Count(string(b), "\n") >= 5000, fmt.Sprintf("%d lines", strings.Count(string(b), "\n"))
	})
	if n, err := h.Signal(`lite-raft .*agent --foreground`, 9); err != nil || n != 1 {
		t.Fatalf("kill -9 of %s's agent: %d killed, %v", h.Name, n, err)
	}
	c.eventually(120*time.Second, "the batch's exit", func() (bool, string) {
		b, err := os.ReadFile(filepath.Join(h.Dir, "kb.rc"))
		return err == nil && len(b) > 0, fmt.Sprint(err)
	})
	out, _ := os.ReadFile(filepath.Join(h.Dir, "kb.out"))
	rc, _ := os.ReadFile(filepath.Join(h.Dir, "kb.rc"))
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	count := map[string]int{}
	for _, l := range lines {
		code, _, _ := strings.Cut(l, " ")
		count[code]++
	}
	t.Logf("a batch of %d sets whose agent was killed: results by code %v, exit %s", big, count, strings.TrimSpace(string(rc)))
	wantRC := "12"
	if count["2"] > 0 {
		wantRC = "2"
	}
	if len(lines) != big || count["0"] < 5000 || count["0"]+count["2"]+count["12"] != big || strings.TrimSpace(string(rc)) != wantRC {
		t.Fatalf("batch with its agent killed: %d result lines for %d commands, by code %v, exit %q (want only 0, 2 and 12, exit %s)",
			len(lines), big, count, rc, wantRC)
	}
	c.must(h, "./lite-raft start")
	c.leader(members, 30*time.Second)
	// a sample of lines that said 0 and that said 12, read back from another member
	var gets, want strings.Builder
	for i, l := range lines {
		if i%97 != 0 || (l != "0" && !strings.HasPrefix(l, "12 ")) {
			continue
		}
		fmt.Fprintf(&gets, "get kb/%d\n", i+1)
		if l == "0" {
			fmt.Fprintf(&want, "0 v%d\n", i+1)
		} else {
			fmt.Fprintf(&want, "9 key kb/%d not found\n", i+1)
		}
	}
	if err := os.WriteFile(filepath.Join(lead.Dir, "kb.get"), []byte(gets.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got, _, _ := c.lr(lead, "./lite-raft-client batch < kb.get")
	if got != want.String() {
		t.Fatalf("after the kill, the lines that said 0 must be there and those that said 12 must not: %s", firstDiff(got, want.String()))
	}
}

// firstDiff is the first line where got and want differ, for a failure message.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d: %q, want %q", i+1, a, b)
		}
	}
	return "none"
}
