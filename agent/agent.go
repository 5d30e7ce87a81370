package agent

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"lite-raft/client"
	"lite-raft/conf"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
	"lite-raft/sshrpc"
	"lite-raft/statefile"
)

// Options start an agent.
type Options struct {
	Dir string          // the lite-raft directory
	ID  raftcore.NodeID // this host's name (default: the short host name)
	Log *log.Logger     // default: message-log/lite-raft-server.log
	// Dialer reaches peers (default: the user's ssh set-up).
	Dialer *sshrpc.Dialer
	// Ready, if set, is closed once the agent answers on its socket.
	Ready chan struct{}
}

// Agent is a running node.
type Agent struct {
	dir       string
	remoteDir string
	id        raftcore.NodeID
	cfg       conf.Config
	log       *log.Logger

	store *statefile.Store
	node  *raftcore.Node
	kv    *kvstore.Store

	server *sshrpc.Server
	dialer *sshrpc.Dialer
	peers  map[raftcore.NodeID]*peerLink

	events chan event
	done   chan struct{}

	applied      uint64
	lastSnapshot uint64
	// appliedMembers is the membership as of the applied index
	appliedMembers raftcore.Membership

	// clients waiting in the loop
	nextReadID uint64
	proposals  map[uint64]*waiter   // log index → write waiting for its entry
	reads      map[uint64]*waiter   // read ID → read waiting for its ReadState
	readyReads []*waiter            // reads with an index, waiting for it to be applied
	conditions []*waiter            // membership and transfer steps waiting for a state
	watches    map[string][]*waiter // watch requests by key
	retry      []*waiter            // requests to try again (no leader yet, proposal lost)

	status statusFiles
	hints  *hintWriter
	lock   *os.File
	// leadHint is the last known leader, readable outside the loop
	leadHint atomic.Value
}

type event struct {
	msg  *raftcore.Message
	req  *waiter
	stop bool
	// gone: that peer's host says no agent runs there
	gone raftcore.NodeID
}

// Run starts the agent and serves until ctx ends.
func Run(ctx context.Context, opt Options) error {
	a, err := start(opt)
	if err != nil {
		return err
	}
	return a.run(ctx)
}

func start(opt Options) (a *Agent, err error) {
	a = &Agent{dir: opt.Dir, id: opt.ID, log: opt.Log, dialer: opt.Dialer,
		peers: map[raftcore.NodeID]*peerLink{}, events: make(chan event, 4096), done: make(chan struct{}),
		proposals: map[uint64]*waiter{}, reads: map[uint64]*waiter{}, watches: map[string][]*waiter{}}
	a.leadHint.Store(raftcore.None)
	if a.id == "" {
		h, err := conf.ShortHostname()
		if err != nil {
			return nil, err
		}
		a.id = raftcore.NodeID(h)
	}
	if a.cfg, err = conf.Load(a.dir); err != nil {
		return nil, err
	}
	a.remoteDir = a.cfg.RemoteDir
	if a.remoteDir == "" {
		a.remoteDir = a.dir
	}
	for _, d := range []string{"temp", "message-log"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	lock, err := lockDir(a.dir)
	if err != nil {
		return nil, err
	}
	a.lock = lock
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	for _, d := range []string{"temp", statefile.StateDir} {
		if err := sshrpc.CheckPrivate(filepath.Join(a.dir, d)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if a.log == nil {
		f, err := os.OpenFile(filepath.Join(a.dir, "message-log", "lite-raft-server.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		a.log = log.New(f, "", log.LstdFlags|log.Lmicroseconds)
	}
	if a.dialer == nil {
		if a.dialer, err = sshrpc.NewDialer(sshrpc.DialerOptions{Logf: a.log.Printf}); err != nil {
			return nil, err
		}
	}
	store, st, err := statefile.Open(a.dir, statefile.Options{})
	if err != nil {
		return nil, err
	}
	a.store = store
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	if a.kv, err = kvstore.Restore(st.Snapshot.Data); err != nil {
		return nil, fmt.Errorf("snapshot at %d: %w", st.Snapshot.Meta.Index, err)
	}
	a.applied, a.lastSnapshot = st.Snapshot.Meta.Index, st.Snapshot.Meta.Index
	a.appliedMembers = st.Snapshot.Meta.Members
	tick := a.tickInterval()
	a.node, err = raftcore.NewNode(raftcore.Config{
		ID: a.id, ElectionTicks: 10, HeartbeatTicks: 1,
		Rand: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid()))),
	}, st)
	if err != nil {
		return nil, fmt.Errorf("restore the node: %w", err)
	}
	m := a.node.Status().Members
	if len(m.Voters) > 0 && !m.Contains(a.id) {
		a.log.Printf("warning: this host (%s) is not a member (%s): it will not vote or campaign", a.id, m)
	}
	a.server, err = sshrpc.Listen(filepath.Join(a.dir, "temp", "agent.sock"), sshrpc.ConnOptions{
		Handler: a.handleFrame, Logf: a.log.Printf})
	if err != nil {
		return nil, err
	}
	a.status = statusFiles{dir: filepath.Join(a.dir, "temp")}
	a.log.Printf("agent %s started: term %d, log %d..%d, snapshot at %d, members %s, tick %v",
		a.id, st.HardState.Term, a.node.Status().Snapshot.Index+1, a.node.Status().LastIndex,
		st.Snapshot.Meta.Index, m, tick)
	if opt.Ready != nil {
		close(opt.Ready)
	}
	return a, nil
}

func (a *Agent) tickInterval() time.Duration {
	return max(a.cfg.ElectionTimeout/10, time.Millisecond)
}

// run is the loop; it owns node, kv and the waiters.
func (a *Agent) run(ctx context.Context) error {
	defer a.shutdown()
	ticker := time.NewTicker(a.tickInterval())
	defer ticker.Stop()
	a.status.write(a.node, true)
	a.status.put("commit_index", strconv.FormatUint(a.node.Commit(), 10))
	// the hints are rewritten at most ten a second (and once more at shutdown)
	a.hints = newHintWriter(func(c uint64) { a.store.SaveCommit(c) }, &a.status, 100*time.Millisecond)
	if m := a.node.Members(); m.Contains(a.id) {
		a.linkMembers(m)
	}
	for {
		select {
		case <-ctx.Done():
			a.log.Printf("stopping: %v", context.Cause(ctx))
			return nil
		case <-ticker.C:
			a.node.Tick()
			a.expire(time.Now())
		case ev := <-a.events:
			a.handleEvent(ev)
		}
		// take everything else that is waiting: it all goes into one Ready
	drain:
		for i := 0; i < 4096; i++ {
			select {
			case ev := <-a.events:
				a.handleEvent(ev)
			default:
				break drain
			}
		}
		if err := a.processReady(); err != nil {
			a.log.Printf("fatal: %v", err)
			return err
		}
	}
}

func (a *Agent) handleEvent(ev event) {
	switch {
	case ev.msg != nil:
		if err := a.node.Step(*ev.msg); err != nil {
			a.log.Printf("refused a message from %s: %v", ev.msg.From, err)
		}
	case ev.req != nil:
		a.handleRequest(ev.req)
	case ev.gone != raftcore.None:
		if a.node.LeaderGone(ev.gone) {
			a.log.Printf("the agent of leader %s is gone (its host says no server runs there): standing for election early", ev.gone)
		}
	}
}

// processReady handles the node's Ready batches until it has none.
func (a *Agent) processReady() error {
	for i := 0; i < 8 && a.node.HasReady(); i++ {
		rd := a.node.Ready()
		a.send(rd.Messages)
		if err := a.store.Save(rd.HardState, rd.Snapshot, rd.Entries); err != nil {
			return fmt.Errorf("persist: %w", err)
		}
		a.send(rd.PersistedMessages)
		if rd.Snapshot != nil {
			if err := a.installSnapshot(*rd.Snapshot); err != nil {
				return err
			}
		}
		a.apply(rd.CommittedEntries)
		for _, rs := range rd.ReadStates {
			a.readState(rs)
		}
		if rd.SoftState != nil {
			a.roleChanged(*rd.SoftState)
		}
		a.node.Advance(rd)
		a.serveReads()
		a.checkConditions()
		a.status.write(a.node, rd.SoftState != nil)
		if len(rd.CommittedEntries) > 0 {
			a.hints.post(min(rd.Commit, a.applied), a.node.Commit())
			a.maybeSnapshot()
		}
	}
	a.retryWaiting()
	return nil
}

func (a *Agent) installSnapshot(s raftcore.Snapshot) error {
	kv, err := kvstore.Restore(s.Data)
	if err != nil {
		return fmt.Errorf("install snapshot at %d from the leader: %w", s.Meta.Index, err)
	}
	a.kv = kv
	a.applied, a.lastSnapshot = s.Meta.Index, s.Meta.Index
	a.appliedMembers = s.Meta.Members
	a.log.Printf("installed a snapshot at %d (term %d, %d bytes) from the leader", s.Meta.Index, s.Meta.Term, len(s.Data))
	a.membersChanged(s.Meta.Members)
	return nil
}

func (a *Agent) apply(ents []raftcore.Entry) {
	for _, e := range ents {
		a.applied = e.Index
		var res kvstore.Result
		switch {
		case e.Type == raftcore.EntryMembership:
			m, err := raftcore.DecodeMembership(e.Data)
			if err == nil {
				a.appliedMembers = m
				a.log.Printf("membership committed at %d: %s", e.Index, m)
				a.membersChanged(m)
			}
		case len(e.Data) == 0:
			// a new leader's empty entry
		default:
			cmd, err := kvstore.Decode(e.Data)
			if err != nil {
				// every member skips it alike: it was checked before it was proposed
				a.log.Printf("entry %d: %v (skipped)", e.Index, err)
				res = kvstore.Result{Code: client.CodeFailed, Msg: err.Error()}
			} else {
				res = a.kv.Apply(e.Index, cmd)
				if ws := a.watches[cmd.Key]; len(ws) > 0 {
					a.wakeWatches(cmd.Key)
				}
			}
		}
		if w := a.proposals[e.Index]; w != nil {
			delete(a.proposals, e.Index)
			if w.term == e.Term {
				w.reply(client.Response{Code: res.Code, Msg: res.Msg})
			} else {
				// another leader's entry took its place: try again (deduplicated)
				a.retryLater(w)
			}
		}
	}
}

// membersChanged rewrites conf/cluster_nodes and opens links to new members.
func (a *Agent) membersChanged(m raftcore.Membership) {
	if m.Joint() {
		return
	}
	names := make([]string, len(m.Voters))
	for i, v := range m.Voters {
		names[i] = string(v)
	}
	slices.Sort(names)
	if len(names) > 0 {
		if err := statefile.WriteFileAtomic(conf.Path(a.dir, "cluster_nodes"), conf.FormatClusterNodes(names), 0o644); err != nil {
			a.log.Printf("rewrite conf/cluster_nodes: %v", err)
		}
	}
	for id, p := range a.peers {
		if !m.Contains(id) {
			p.close()
			delete(a.peers, id)
		}
	}
	a.linkMembers(m)
}

// linkMembers opens a stream to every other member now, not at the first message: a
// vote request to a follower that never spoke to this one would otherwise be lost to
// the connection set-up, just when an election is under way.
func (a *Agent) linkMembers(m raftcore.Membership) {
	for _, id := range m.All() {
		if id != a.id {
			a.link(id)
		}
	}
}

func (a *Agent) maybeSnapshot() {
	if a.applied-a.lastSnapshot < a.cfg.SnapshotPeriod {
		return
	}
	data := a.kv.Snapshot()
	meta, err := a.node.Compact(a.applied, data)
	if err != nil {
		a.log.Printf("snapshot at %d: %v", a.applied, err)
		return
	}
	if err := a.store.Compact(raftcore.Snapshot{Meta: meta, Data: data}); err != nil {
		a.log.Printf("store snapshot at %d: %v", a.applied, err)
		return
	}
	a.lastSnapshot = meta.Index
	a.log.Printf("snapshot at %d (term %d, %d keys, %d bytes)", meta.Index, meta.Term, a.kv.Len(), len(data))
}

// roleChanged runs for each SoftState, which the node emits only when role or leader
// changed.
func (a *Agent) roleChanged(ss raftcore.SoftState) {
	a.log.Printf("now %s in term %d, leader %s", ss.Role, a.node.Term(), orDash(string(ss.Lead)))
	a.leadHint.Store(ss.Lead)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *Agent) shutdown() {
	a.server.Close()
	if a.hints != nil {
		a.hints.stop()
	}
	a.store.SaveCommit(min(a.node.Commit(), a.applied))
	for _, p := range a.peers {
		p.close()
	}
	for _, w := range a.allWaiters() {
		w.reply(client.Response{Code: client.CodeNoServer, Msg: fmt.Sprintf("the server on %s is stopping", a.id)})
	}
	a.store.Close()
	a.status.remove()
	os.Remove(filepath.Join(a.dir, "temp", "agent.pid"))
	close(a.done)
	a.lock.Close()
}

// peerCommand is what the agent runs on a peer over ssh.
func (a *Agent) peerCommand(args string) string {
	return "exec " + shellQuote(filepath.Join(a.remoteDir, "lite-raft")) + " " + args
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// wakeWatches answers the watches of key whose value changed.
func (a *Agent) wakeWatches(key string) {
	v, _ := a.kv.Get(key)
	kept := a.watches[key][:0]
	for _, w := range a.watches[key] {
		if string(v) != string(w.req.CondValue) {
			w.reply(client.Response{Value: v})
		} else {
			kept = append(kept, w)
		}
	}
	if len(kept) == 0 {
		delete(a.watches, key)
	} else {
		a.watches[key] = kept
	}
}
