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

var (
	tortureDuration = flag.Duration("torture.duration", 60*time.Second, "how long TestTorture's clients run")
	tortureSeed     = flag.Uint64("torture.seed", 0, "nemesis and client seed (0: from the clock)")
)

type kvInput struct {
	Op    string // get, set, cas
	Key   string
	Value string // set/cas: the new value
	Cond  string // cas: the expected value
}

type kvOutput struct {
	Code    int
	Value   string
	Unknown bool // a write whose outcome is unknown (exit 2, or no answer)
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
	Init: func() []interface{} { return []interface{}{"0"} },
	Step: func(state, input, output interface{}) []interface{} {
		s, in, out := state.(string), input.(kvInput), output.(kvOutput)
		switch in.Op {
		case "get":
			if out.Code == 0 && out.Value == s {
				return []interface{}{s}
			}
			return nil
		case "set":
			if out.Unknown {
				return []interface{}{in.Value, s}
			}
			return []interface{}{in.Value}
		default: // cas: if KEY = Cond set Value
			holds := s == in.Cond
			switch {
			case out.Unknown && holds:
				return []interface{}{in.Value, s}
			case out.Unknown:
				return []interface{}{s}
			case out.Code == 0 && holds && s != in.Value:
				return []interface{}{in.Value}
			case out.Code == 5 && holds && s == in.Value:
				return []interface{}{s}
			case out.Code == 6 && !holds:
				return []interface{}{s}
			}
			return nil
		}
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(kvInput), output.(kvOutput)
		res := fmt.Sprintf("exit %d", out.Code)
		if out.Unknown {
			res = "unknown"
		}
		switch in.Op {
		case "get":
			return fmt.Sprintf("get %s → %q (%s)", in.Key, out.Value, res)
		case "set":
			return fmt.Sprintf("set %s %s (%s)", in.Key, in.Value, res)
		}
		return fmt.Sprintf("if %s = %s set %s (%s)", in.Key, in.Cond, in.Value, res)
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
	keys := []string{"k0", "k1", "k2"}
	for _, k := range keys {
		c.must(members[0], "./lite-raft-client set "+k+" 0")
	}
	os.Remove(filepath.Join(clientHost.Dir, "conf", "cluster_nodes"))
	os.WriteFile(filepath.Join(clientHost.Dir, "conf", "remote_hosts"), []byte("host1 host2 host3 host4 host5\n"), 0o644)

	var mu sync.Mutex
	var history []porcupine.Operation
	var nOK, nUnknown, nFaults, nMembership atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup

	// The clients. Each keeps one ssh session to its host running a small loop that reads
	// an operation per line, runs the lite-raft tool on it and prints the wall clock around
	// it: the hosts share this machine's clock, and no ssh handshake sits inside the
	// recorded interval.
	loop := `cd ` + harness.RemoteDir + ` && while read -r tool args; do s=$(date +%s%N); out=$($tool --timeout 3 $args 2>/dev/null); code=$?; e=$(date +%s%N); echo "$s $e $code $out"; done`
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
			for n := 0; ; n++ {
				select {
				case <-stop:
					stdin.Close()
					ssh.Wait()
					return
				default:
				}
				k := keys[rng.IntN(len(keys))]
				in := kvInput{Key: k}
				var cmd string
				switch x := rng.IntN(10); {
				case x < 4:
					in.Op, cmd = "get", "get "+k
				case x < 7:
					in.Op, in.Value = "set", fmt.Sprintf("c%d-%d", id, n)
					cmd = "set " + k + " " + in.Value
				default:
					cond := last[k]
					if cond == "" {
						cond = "0"
					}
					in.Op, in.Cond, in.Value = "cas", cond, fmt.Sprintf("c%d-%d", id, n)
					cmd = fmt.Sprintf("if %s = %s set %s", k, cond, in.Value)
				}
				fmt.Fprintf(stdin, "%s %s\n", tool, cmd)
				if !lines.Scan() {
					t.Errorf("client %d: the session to %s ended: %v", id, h.Name, lines.Err())
					return
				}
				f := strings.SplitN(lines.Text(), " ", 4)
				if len(f) < 3 {
					t.Errorf("client %d: bad line %q", id, lines.Text())
					return
				}
				call, _ := strconv.ParseInt(f[0], 10, 64)
				ret, _ := strconv.ParseInt(f[1], 10, 64)
				code, _ := strconv.Atoi(f[2])
				out := kvOutput{Code: code}
				if len(f) == 4 {
					out.Value = f[3]
				}
				write := in.Op != "get"
				switch {
				case code == 0, write && (code == 5 || code == 6):
					nOK.Add(1)
				case write && code == 2:
					// may or may not have been applied, at any time from now on
					out.Unknown, ret = true, math.MaxInt64
					nUnknown.Add(1)
				default:
					continue // refused or not served (1, 7, 11, 12, ...): nothing happened
				}
				if in.Op == "get" && code == 0 {
					last[k] = out.Value
				} else if write && code == 0 {
					last[k] = in.Value
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
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
	model := kvModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(model, history, 2*time.Minute)
	dir := os.Getenv("LITE_RAFT_TORTURE_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	base := filepath.Join(dir, "lite-raft-torture-"+strconv.FormatUint(seed, 10))
	if b, err := json.Marshal(history); err == nil {
		os.WriteFile(base+".json", b, 0o644)
	}
	fmt.Printf("history: ops=%d ok=%d unknown=%d faults=%d (membership changes %d) linearizable=%v (%s.json)\n",
		len(history), nOK.Load(), nUnknown.Load(), nFaults.Load(), nMembership.Load(), res == porcupine.Ok, base)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		f, _ := os.Create(base + ".html")
		porcupine.Visualize(model, info, f)
		f.Close()
		t.Fatalf("the history is NOT linearizable: see %s.html (seed %d)", base, seed)
	default:
		t.Logf("the checker timed out: linearizability unknown (%s)", res)
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
