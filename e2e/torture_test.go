package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"lite-raft/internal/harness"
)

// The torture test runs concurrent clients against a five-host cluster while a nemesis
// kills, freezes, partitions and reconfigures it, records every operation's invocation
// and completion, and checks the history for linearizability with porcupine against a
// key-value model with conditional set. `make torture DURATION=30m` runs it longer.
//
// Outcomes are taken at the exit codes' word (kvClassify): a write that exits 2 or got no
// answer is unknown (it may take effect at any time, or never); one that exits 1, 3, 4,
// 10, 11 or 12 is recorded as not applied, a no-op in the model, so that a later read of
// its (unique) value fails the check; a read that failed is left out. A checker that
// gives up (porcupine's Unknown) fails the test: the history is cut into keys of at most
// a few hundred operations so that the check is quick. TestKVModel shows the model
// rejecting what it must.

var (
	tortureDuration = flag.Duration("torture.duration", 60*time.Second, "how long TestTorture's clients run")
	tortureSeed     = flag.Uint64("torture.seed", 0, "nemesis and client seed (0: from the clock)")
)

type kvInput struct {
	Op    string // get, set, cas
	Key   string
	Value string // set/cas: the new value (unique to the operation)
	Cond  string // cas: the expected value
}

type kvOutput struct {
	Code  int
	Value string // get: what it printed
	// Unknown: a write whose outcome is unknown (exit 2, or no answer): it may take effect
	// at any time from its call on, or never; its return is the end of the history.
	Unknown bool
	// NotApplied: a write that failed with a code that promises it was not applied (1, 3,
	// 4, 10, 11, 12). The model accepts it only as a no-op, so a later read of its value
	// (unique to it) makes the history illegal: a wrong 11 or 12 is caught.
	NotApplied bool
}

// absent is the model's state of a key that does not exist (values are never empty).
const absent = ""

// kvOutcome is what an operation's exit code says about it.
type kvOutcome int

const (
	kvOK         kvOutcome = iota // applied (write) or observed (read: the value, or exit 9 missing)
	kvUnknown                     // a write that may or may not have been applied
	kvNotApplied                  // a write that was not applied
	kvReadFailed                  // a read that observed nothing: left out of the history
)

// kvClassify applies the exit-code rules (README): a write that exits 2, or got no answer
// at all (killed, the loop's timeout: 124/137, ssh: 255, a code no write returns), may or
// may not have been applied; one that exits 1, 3, 4, 10, 11 or 12 was not; 0 is done, and
// 5, 6, 7 are conditional-set results (the model decides whether they fit the state; for
// a plain set they never do). A read that exits 0 or 9 (no such key) observed the state;
// any other read imposes no constraint.
func kvClassify(op string, code int, answered bool) kvOutcome {
	if op == "get" {
		if answered && (code == 0 || code == 9) {
			return kvOK
		}
		return kvReadFailed
	}
	if !answered {
		return kvUnknown
	}
	switch code {
	case 0, 5, 6, 7:
		return kvOK
	case 1, 3, 4, 10, 11, 12:
		return kvNotApplied
	}
	return kvUnknown // 2, or no answer
}

// kvOperation makes the history entry of one operation; ok is false for a read left out.
// An unknown write's return is the end of the history (math.MaxInt64).
func kvOperation(client int, in kvInput, call, ret int64, code int, answered bool, value string) (porcupine.Operation, kvOutcome) {
	o := kvClassify(in.Op, code, answered)
	out := kvOutput{Code: code, Value: value}
	switch o {
	case kvUnknown:
		out.Unknown, ret = true, math.MaxInt64
	case kvNotApplied:
		out.NotApplied = true
	}
	return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}, o
}

var kvModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(kvInput).Key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() []interface{} { return []interface{}{absent} }, // the test's keys start missing
	Step: func(state, input, output interface{}) []interface{} {
		s, in, out := state.(string), input.(kvInput), output.(kvOutput)
		if in.Op != "get" && out.NotApplied {
			return []interface{}{s} // only as a no-op
		}
		switch in.Op {
		case "get":
			switch {
			case out.Code == 0 && s != absent && out.Value == s, out.Code == 9 && s == absent:
				return []interface{}{s}
			}
			return nil
		case "set":
			switch {
			case out.Unknown:
				return []interface{}{in.Value, s}
			case out.Code == 0:
				return []interface{}{in.Value}
			}
			return nil // a set never exits 5, 6 or 7
		default: // cas: if KEY = Cond set Value
			holds := s != absent && s == in.Cond
			switch {
			case out.Unknown && holds:
				return []interface{}{in.Value, s}
			case out.Unknown:
				return []interface{}{s}
			case out.Code == 0 && holds && s != in.Value:
				return []interface{}{in.Value}
			case out.Code == 5 && holds && s == in.Value:
				return []interface{}{s}
			case out.Code == 6 && s != absent && !holds:
				return []interface{}{s}
			case out.Code == 7 && s == absent:
				return []interface{}{s}
			}
			return nil
		}
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(kvInput), output.(kvOutput)
		res := fmt.Sprintf("exit %d", out.Code)
		if out.Unknown {
			res += ": unknown"
		} else if out.NotApplied {
			res += ": not applied"
		}
		switch in.Op {
		case "get":
			return fmt.Sprintf("get %s → %q (%s)", in.Key, out.Value, res)
		case "set":
			return fmt.Sprintf("set %s %s (%s)", in.Key, in.Value, res)
		}
		return fmt.Sprintf("if %s = %s set %s (%s)", in.Key, in.Cond, in.Value, res)
	},
	DescribeState: func(state interface{}) string {
		if state.(string) == absent {
			return "(missing)"
		}
		return state.(string)
	},
}

func TestTorture(t *testing.T) {
	if testing.Short() {
		t.Skip("torture test skipped in -short mode")
	}
	seed := *tortureSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("torture seed %d (replay the nemesis and clients' choices with -torture.seed=%d)", seed, seed)
	c := newCluster(t, 6, 5, "0.5", 200)
	members, clientHost := c.Hosts[:5], c.Hosts[5]
	for _, h := range members {
		c.must(h, "./lite-raft first-boot")
	}
	c.leader(members, 30*time.Second)
	// Three logical keys, each a series of fresh keys k<i>-<generation> of opsPerKey
	// operations each (counted when issued): porcupine checks each key on its own, so
	// however long the run, no partition holds more than opsPerKey operations and the
	// check stays fast. (Rotating by count rather than by time window gives a hard bound
	// whatever the throughput.) Every key starts missing; gets exit 9 and conditional sets
	// exit 7 until a write creates it.
	const nKeys, opsPerKey = 3, 200
	var issued [nKeys]atomic.Int64
	os.Remove(filepath.Join(clientHost.Dir, "conf", "cluster_nodes"))
	os.WriteFile(filepath.Join(clientHost.Dir, "conf", "remote_hosts"), []byte("host1 host2 host3 host4 host5\n"), 0o644)

	var mu sync.Mutex
	var history []porcupine.Operation
	codes := map[string]int{} // "set 11": how many
	var nOK, nUnknown, nNotApplied, nReadFailed, nFaults, nMembership atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup

	// The clients. Each keeps one ssh session to its host running a small loop that reads
	// an operation per line, runs the lite-raft tool on it and prints the wall clock around
	// it: the hosts share this machine's clock, and no ssh handshake sits inside the
	// recorded interval. A tool that hangs past its own --timeout is killed by timeout(1)
	// (exit 124 or 137): no answer, as for a session that ends.
	loop := `cd ` + harness.RemoteDir + ` && while read -r tool args; do s=$(date +%s%N); out=$(timeout -k 5 30 $tool --timeout 3 $args 2>/dev/null); code=$?; e=$(date +%s%N); echo "$s $e $code $out"; done`
	for id := 0; id < 5; id++ {
		h, tool := clientHost, "./lite-raft-remote"
		if id >= 2 {
			h, tool = members[id-2], "./lite-raft-client"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ssh := h.SSHCommand(ctx, loop)
			stdin, _ := ssh.StdinPipe()
			stdout, _ := ssh.StdoutPipe()
			if err := ssh.Start(); err != nil {
				t.Errorf("client %d: %v", id, err)
				return
			}
			lines := bufio.NewScanner(stdout)
			rng := rand.New(rand.NewPCG(seed, uint64(id)))
			last := map[string]string{}
			record := func(in kvInput, call, ret int64, code int, answered bool, value string) {
				op, o := kvOperation(id, in, call, ret, code, answered, value)
				mu.Lock()
				defer mu.Unlock()
				if answered {
					codes[fmt.Sprintf("%s %d", in.Op, code)]++
				} else {
					codes[in.Op+" (no answer)"]++
				}
				switch o {
				case kvOK:
					nOK.Add(1)
				case kvUnknown:
					nUnknown.Add(1)
				case kvNotApplied:
					nNotApplied.Add(1)
				case kvReadFailed:
					nReadFailed.Add(1)
					return // a read that observed nothing constrains nothing
				}
				history = append(history, op)
			}
			for n := 0; ; n++ {
				select {
				case <-stop:
					stdin.Close()
					ssh.Wait()
					return
				default:
				}
				i := rng.IntN(nKeys)
				k := fmt.Sprintf("k%d-%d", i, (issued[i].Add(1)-1)/opsPerKey)
				in := kvInput{Key: k}
				// values are unique to the operation (client id, operation number), so a
				// read tells which write it saw
				value := fmt.Sprintf("c%d-%d", id, n)
				var cmd string
				switch x := rng.IntN(10); {
				case x < 4:
					in.Op, cmd = "get", "get "+k
				case x < 7:
					in.Op, in.Value = "set", value
					cmd = "set " + k + " " + in.Value
				default:
					cond := last[k]
					if cond == "" {
						cond = "0" // never written: the key is missing or holds another value
					}
					in.Op, in.Cond, in.Value = "cas", cond, value
					cmd = fmt.Sprintf("if %s = %s set %s", k, cond, in.Value)
				}
				sent := time.Now().UnixNano() // no later than the tool's start
				fmt.Fprintf(stdin, "%s %s\n", tool, cmd)
				if !lines.Scan() {
					record(in, sent, 0, -1, false, "")
					t.Errorf("client %d: the session to %s ended: %v", id, h.Name, lines.Err())
					return
				}
				f := strings.SplitN(lines.Text(), " ", 4)
				call, err1 := strconv.ParseInt(f[0], 10, 64)
				var ret int64
				var code int
				var err2, err3 error
				if len(f) >= 3 {
					ret, err2 = strconv.ParseInt(f[1], 10, 64)
					code, err3 = strconv.Atoi(f[2])
				}
				if len(f) < 3 || err1 != nil || err2 != nil || err3 != nil {
					record(in, sent, 0, -1, false, "")
					t.Errorf("client %d: bad line %q", id, lines.Text())
					return
				}
				var printed string
				if len(f) == 4 {
					printed = f[3]
				}
				record(in, call, ret, code, true, printed)
				if in.Op == "get" && code == 0 {
					last[k] = printed
				} else if in.Op != "get" && code == 0 {
					last[k] = in.Value
				}
			}
		}()
	}

	// the nemesis
	rng := rand.New(rand.NewPCG(seed, 99))
	deadline := time.Now().Add(*tortureDuration)
	killed := map[*harness.Host]bool{}
	restart := func(h *harness.Host) {
		h.Signal(`lite-raft .*agent --foreground`, syscall.SIGCONT)
		if killed[h] {
			h.Exec("sh", "-c", "cd "+harness.RemoteDir+" && ./lite-raft start")
			delete(killed, h)
		}
	}
	for time.Now().Before(deadline) {
		// one fault at a time: it lasts a while, then is undone, then a calm spell
		hold := time.Duration(1000+rng.IntN(2500)) * time.Millisecond
		h := members[rng.IntN(len(members))]
		if st, ok := c.status(members[rng.IntN(len(members))]); ok && st.Leader != "" && rng.IntN(2) == 0 {
			if l := c.Host(st.Leader); l != nil && l != clientHost {
				h = l // the leader, as often as not
			}
		}
		undo := func() {}
		x := rng.IntN(9)
		if nFaults.Load()%5 == 2 {
			x = 8 // a membership change at least every fifth fault, so short runs have some
		}
		switch {
		case x < 2: // kill -9 an agent, then start it again
			h.Signal(`lite-raft .*agent --foreground`, syscall.SIGKILL)
			killed[h] = true
			undo = func() { restart(h) }
		case x < 4: // freeze an agent
			h.Signal(`lite-raft .*agent --foreground`, syscall.SIGSTOP)
			undo = func() { h.Signal(`lite-raft .*agent --foreground`, syscall.SIGCONT) }
		case x < 5: // isolate one host (often the leader)
			c.Isolate(h)
			undo = func() { c.Heal() }
		case x < 7: // minority/majority, or a bridge host in no group that sees both sides
			perm := rng.Perm(len(members))
			if rng.IntN(3) == 0 {
				c.Partition([]*harness.Host{members[perm[0]], members[perm[1]]}, []*harness.Host{members[perm[3]], members[perm[4]]})
			} else {
				c.Partition([]*harness.Host{members[perm[0]], members[perm[1]]}, []*harness.Host{members[perm[2]], members[perm[3]], members[perm[4]]})
			}
			undo = func() { c.Heal() }
		case x < 8: // leadership transfer
			c.lr(members[rng.IntN(len(members))], "./lite-raft-client --timeout 5 transfer-leader "+h.Name)
		default: // del-member a host (often the leader) while clients run, then add it back
			from := others(members, h)[rng.IntN(len(members)-1)]
			start := time.Now()
			_, _, code := c.lr(from, "./lite-raft-client --timeout 10 del-member "+h.Name)
			nMembership.Add(1)
			t.Logf("nemesis: del-member %s on %s: exit %d after %v", h.Name, from.Name, code, time.Since(start).Round(time.Millisecond))
			undo = func() {
				start := time.Now()
				c.rejoin(members, h)
				t.Logf("nemesis: %s a voter again after %v", h.Name, time.Since(start).Round(time.Millisecond))
			}
		}
		nFaults.Add(1)
		time.Sleep(hold) // how long the fault lasts, by design
		undo()
		time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Millisecond) // a calm spell, by design
	}
	c.Heal()
	for _, h := range members {
		restart(h)
	}
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	var summary []string
	for k, n := range codes {
		summary = append(summary, fmt.Sprintf("%s: %d", k, n))
	}
	slices.Sort(summary)
	t.Logf("exit codes: %s", strings.Join(summary, ", "))
	model := kvModel.ToModel()
	perKey := map[string]int{}
	for _, op := range history {
		perKey[op.Input.(kvInput).Key]++
	}
	longest := 0
	for _, n := range perKey {
		longest = max(longest, n)
	}
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, history, 2*time.Minute)
	took := time.Since(start)
	dir := os.Getenv("LITE_RAFT_TORTURE_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	base := filepath.Join(dir, "lite-raft-torture-"+strconv.FormatUint(seed, 10))
	if b, err := json.Marshal(history); err == nil {
		os.WriteFile(base+".json", b, 0o644)
	}
	fmt.Printf("history: ops=%d ok=%d unknown=%d notapplied=%d faults=%d (membership changes %d) linearizable=%v (%s.json)\n",
		len(history), nOK.Load(), nUnknown.Load(), nNotApplied.Load(), nFaults.Load(), nMembership.Load(), res == porcupine.Ok, base)
	fmt.Printf("check: %s in %v; %d keys, at most %d operations each; %d failed reads left out\n",
		res, took.Round(time.Millisecond), len(perKey), longest, nReadFailed.Load())
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		f, _ := os.Create(base + ".html")
		porcupine.Visualize(model, info, f)
		f.Close()
		t.Fatalf("the history is NOT linearizable: see %s.html (seed %d)", base, seed)
	default:
		t.Fatalf("the checker gave up after %v (%s): linearizability unknown (seed %d, history %s.json)", took.Round(time.Millisecond), res, seed, base)
	}
	if nOK.Load() < 100 {
		t.Fatalf("only %d operations succeeded: the cluster did not serve under faults", nOK.Load())
	}
}

// rejoin makes h a voter again after a del-member, whatever that del-member's outcome
// was (it may have timed out with the change committed or not, with h stopped or not): it
// asks the members that remain until one reports h among the voters of a settled
// configuration, with h's agent serving. Otherwise it stops h and runs add-member, which
// boots h empty with first-boot --join; h then catches up from the leader.
func (c *cluster) rejoin(members []*harness.Host, h *harness.Host) {
	c.t.Helper()
	c.eventually(90*time.Second, h.Name+" a voter again", func() (bool, string) {
		for _, m := range others(members, h) {
			st, ok := c.status(m)
			if !ok || st.Role != "leader" {
				continue // only the leader's configuration is the latest
			}
			sets := map[string][]string{}
			for _, f := range strings.Fields(st.Members) {
				k, v, _ := strings.Cut(f, "=")
				sets[k] = strings.Split(v, ",")
			}
			if slices.ContainsFunc(sets["outgoing"], func(s string) bool { return s != "" }) {
				// joint: the leader is still moving h in or out; never wipe a host that
				// may hold votes, wait for the configuration to settle
				return false, "joint configuration " + st.Members
			}
			if slices.Contains(sets["voters"], h.Name) {
				if st2, ok := c.status(h); ok && st2.Leader != "" {
					return true, ""
				}
				// still a voter (the removal did not commit) but stopped, or
				// restarting: start it (refused harmlessly if it runs)
				c.lr(h, "./lite-raft start")
				return false, h.Name + " is a voter, its agent not serving yet"
			}
			c.lr(h, "./lite-raft stop")
			o, e, code := c.lr(m, "./lite-raft-client --timeout 20 add-member "+h.Name)
			return false, fmt.Sprintf("members %q; add-member on %s: exit %d %s%s", st.Members, m.Name, code, o, e)
		}
		return false, "no leader among the members that remain"
	})
}

// TestKVModel feeds the torture test's model hand-made histories, classified by the same
// exit-code rules (kvOperation), to show that the check can fail. No cluster, no root.
func TestKVModel(t *testing.T) {
	type op struct {
		client    int
		in        kvInput
		call, ret int64
		code      int
		answered  bool
		value     string
	}
	set := func(c int, v string, call, ret int64, code int) op {
		return op{c, kvInput{Op: "set", Key: "k", Value: v}, call, ret, code, true, ""}
	}
	cas := func(c int, cond, v string, call, ret int64, code int) op {
		return op{c, kvInput{Op: "cas", Key: "k", Cond: cond, Value: v}, call, ret, code, true, ""}
	}
	get := func(c int, v string, call, ret int64, code int) op {
		return op{c, kvInput{Op: "get", Key: "k"}, call, ret, code, true, v}
	}
	noAnswer := func(o op) op { o.answered, o.code = false, -1; return o }
	for _, tc := range []struct {
		name string
		ops  []op
		want porcupine.CheckResult
	}{
		{"(a) set exit 11, its value read later", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 30, 11), get(0, "b", 40, 50, 0)}, porcupine.Illegal},
		{"(a) set exit 12, its value read while it runs", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 60, 12), get(0, "b", 40, 50, 0)}, porcupine.Illegal},
		{"set exit 1, its value read later", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 30, 1), get(0, "b", 40, 50, 0)}, porcupine.Illegal},
		{"cas exit 11, its value read later", []op{
			set(0, "a", 0, 10, 0), cas(1, "a", "b", 20, 30, 11), get(0, "b", 40, 50, 0)}, porcupine.Illegal},
		{"set exit 11, never observed", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 30, 11), get(0, "a", 40, 50, 0)}, porcupine.Ok},
		{"(b) set exit 2, its value read later", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 30, 2), get(0, "b", 40, 50, 0)}, porcupine.Ok},
		{"(b) set exit 2, its value read long after, following other reads", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 30, 2), get(0, "a", 40, 50, 0), get(0, "b", 60, 70, 0)}, porcupine.Ok},
		{"set with no answer, its value read later", []op{
			set(0, "a", 0, 10, 0), noAnswer(set(1, "b", 20, 0, 0)), get(0, "b", 40, 50, 0)}, porcupine.Ok},
		{"(c) set exit 2, never observed", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 30, 2), get(0, "a", 40, 50, 0), get(0, "a", 60, 70, 0)}, porcupine.Ok},
		{"set exit 2 read, then the value before it again", []op{
			set(0, "a", 0, 10, 0), set(1, "b", 20, 30, 2), get(0, "b", 40, 50, 0), get(0, "a", 60, 70, 0)}, porcupine.Illegal},
		{"(d) cas exit 6, the condition false", []op{
			set(0, "a", 0, 10, 0), cas(1, "x", "b", 20, 30, 6), get(0, "a", 40, 50, 0)}, porcupine.Ok},
		{"cas exit 6, the condition true", []op{
			set(0, "a", 0, 10, 0), cas(1, "a", "b", 20, 30, 6)}, porcupine.Illegal},
		{"cas exit 0 when the condition holds", []op{
			set(0, "a", 0, 10, 0), cas(1, "a", "b", 20, 30, 0), get(0, "b", 40, 50, 0)}, porcupine.Ok},
		{"cas exit 7 and get exit 9 on a missing key", []op{
			cas(1, "0", "b", 0, 10, 7), get(0, "", 20, 30, 9), set(0, "a", 40, 50, 0)}, porcupine.Ok},
		{"get exit 9 on a key that exists", []op{
			set(0, "a", 0, 10, 0), get(0, "", 20, 30, 9)}, porcupine.Illegal},
		{"get of a value never written", []op{
			set(0, "a", 0, 10, 0), get(0, "z", 20, 30, 0)}, porcupine.Illegal},
		{"set exit 5", []op{set(0, "a", 0, 10, 5)}, porcupine.Illegal},
		{"a failed read is left out", []op{
			set(0, "a", 0, 10, 0), get(0, "z", 20, 30, 11), get(0, "z", 20, 30, 1), get(0, "a", 40, 50, 0)}, porcupine.Ok},
	} {
		var h []porcupine.Operation
		for _, o := range tc.ops {
			p, out := kvOperation(o.client, o.in, o.call, o.ret, o.code, o.answered, o.value)
			if out != kvReadFailed {
				h = append(h, p)
			}
		}
		if got := porcupine.CheckOperationsTimeout(kvModel.ToModel(), h, 10*time.Second); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	// the outcome rules themselves
	for _, tc := range []struct {
		op       string
		code     int
		answered bool
		want     kvOutcome
	}{
		{"set", 0, true, kvOK}, {"set", 2, true, kvUnknown}, {"set", 0, false, kvUnknown},
		{"cas", 124, true, kvUnknown}, {"cas", 5, true, kvOK}, {"cas", 6, true, kvOK}, {"cas", 7, true, kvOK},
		{"set", 1, true, kvNotApplied}, {"set", 3, true, kvNotApplied}, {"cas", 4, true, kvNotApplied},
		{"set", 10, true, kvNotApplied}, {"set", 11, true, kvNotApplied}, {"cas", 12, true, kvNotApplied},
		{"get", 0, true, kvOK}, {"get", 9, true, kvOK}, {"get", 1, true, kvReadFailed},
		{"get", 11, true, kvReadFailed}, {"get", 12, true, kvReadFailed}, {"get", 0, false, kvReadFailed},
	} {
		if got := kvClassify(tc.op, tc.code, tc.answered); got != tc.want {
			t.Errorf("%s exit %d (answered %v): outcome %d, want %d", tc.op, tc.code, tc.answered, got, tc.want)
		}
	}
}
