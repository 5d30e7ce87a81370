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
	"sync"
	"sync/atomic"
	"time"

	"lite-raft/agent/core"
	"lite-raft/api"
	"lite-raft/conf"
	"lite-raft/internal/logsink"
	"lite-raft/internal/sshcmd"
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
	// Build is this build's version (git describe), which the agent tells its peers.
	Build string
}

// Agent is a running node: the driver of a core.Core.
type Agent struct {
	receiving time.Time // when the snapshot being received began to arrive (for its log line)
	// linksDown is the loop's: peers whose link went down and has not been retried since.
	// Not the core's view of the links: a message from such a peer retries the link once
	// per time it goes down, not on every message while it stays down (a one-way
	// partition would redial at each of them).
	linksDown map[raftcore.NodeID]bool

	allowLists  sync.Map     // a restricted stream's list (string) → api.Allowed (frames.go)
	allowListsN atomic.Int64 // lists parsed into allowLists
	dir         string
	remoteDir   string
	id          raftcore.NodeID
	cfg         conf.Config
	log         *log.Logger

	core      *core.Core
	store     Storage
	transport Transport
	clock     Clock
	start     time.Time
	server    *sshrpc.Server
	linked    map[raftcore.NodeID]bool
	build     string // this build's version, for peers and status
	peers     *peerVersions

	events chan event
	done   chan struct{}

	// replies maps the core's ReplyTo tokens to the streams that wait for them
	nextReply core.ReplyTo
	replies   map[core.ReplyTo]pending

	metrics driverMetrics
	sizes   sizes
	// announceEvery is how often it says its version and sizes again (api.AnnounceEveryMs)
	announceEvery time.Duration

	status  statusFiles
	hints   *hintWriter
	backups backupFiles
	lock    *os.File
}

// pending is a request waiting for the core's answer. write: a write from this agent's
// own client (not one forwarded to it), whose failure metrics count.
type pending struct {
	to    replyTo
	write bool
}

// replyTo is where a request's answer goes: a frame on the stream it came on, or a
// function (the in-memory transport's). Not a closure over the stream: the loop takes
// tens of thousands of requests a second, and each closure was an allocation.
type replyTo struct {
	conn *sshrpc.Conn
	id   uint64
	fn   func(api.Response)
}

// requestEvent is req as an event whose answer goes to fn.
func requestEvent(req api.Request, fn func(api.Response)) event {
	return event{req: req, isReq: true, replyTo: replyTo{fn: fn}}
}

func (t replyTo) send(r api.Response) {
	switch {
	case t.fn != nil:
		t.fn(r)
	case t.conn != nil:
		t.conn.Reply(t.id, api.FrameRequest, r.Encode())
	}
}

// event is one input for the loop, posted by the socket handlers, the links and the
// goroutines that make calls and runs.
type event struct {
	msg *raftcore.Message
	// a request, by value: a pointer to it was an allocation per request (isReq says
	// the event is one)
	req     api.Request
	isReq   bool
	replyTo replyTo
	link    *LinkEvent
	version *api.Version
	call    *callDone
	run     *runDone
	snap    *snapDone
	backup  *backupDone
	piece   *backupPiece
	rtt     *rttSample
}

// rttSample is a round trip measured on the link to a peer (its ssh keep-alive).
type rttSample struct {
	peer raftcore.NodeID
	rtt  time.Duration
}

type callDone struct {
	id   core.CallID
	res  core.CallResult
	resp api.Response
	err  error
}

// snapDone is a snapshot written away from the loop, to commit on it.
type snapDone struct {
	snap   raftcore.Snapshot
	commit func() error
	err    error
}

type runDone struct {
	id  core.CallID
	out []byte
	err error
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
	a = newAgent(opt.Dir, opt.ID, opt.Log)
	a.build = opt.Build
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
		a.log = logsink.Logger(logsink.To(f))
	}
	dialer := opt.Dialer
	var transport *sshTransport // made below, before anything is dialled
	if dialer == nil {
		// a link that stalls is given up after an election timeout, and redialled
		// and its keep-alives measure the link's round trip, which status shows and the
		// transport sizes its streams by
		onRTT := func(alias string, rtt time.Duration) {
			transport.observeRTT(raftcore.NodeID(alias), rtt)
			select { // never blocks a keep-alive: a sample more or less changes nothing
			case a.events <- event{rtt: &rttSample{raftcore.NodeID(alias), rtt}}:
			default:
			}
		}
		if dialer, err = sshrpc.NewDialer(sshrpc.DialerOptions{Logf: a.log.Printf, Liveness: a.cfg.ElectionTimeout, OnRTT: onRTT}); err != nil {
			return nil, err
		}
	}
	store, st, err := statefile.Open(a.dir, statefile.Options{})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	transport = newSSHTransport(dialer, a.peerCommand, a.log, a.version())
	if err = a.init(store, st, transport, systemClock{}); err != nil {
		return nil, err
	}
	a.server, err = sshrpc.Listen(filepath.Join(a.dir, "temp", "agent.sock"), sshrpc.ConnOptions{
		Handler: a.handleFrame, Logf: a.log.Printf})
	if err != nil {
		return nil, err
	}
	if opt.Ready != nil {
		close(opt.Ready)
	}
	return a, nil
}

func newAgent(dir string, id raftcore.NodeID, lg *log.Logger) *Agent {
	return &Agent{dir: dir, id: id, log: lg, linked: map[raftcore.NodeID]bool{}, linksDown: map[raftcore.NodeID]bool{},
		events: make(chan event, 4096), done: make(chan struct{}), replies: map[core.ReplyTo]pending{}, metrics: newDriverMetrics(),
		announceEvery: announceEvery}
}

// init builds the core from the durable state st and wires the seams.
func (a *Agent) init(store Storage, st raftcore.State, tr Transport, clock Clock) error {
	a.store, a.transport, a.clock = store, tr, clock
	a.status = statusFiles{dir: filepath.Join(a.dir, "temp")}
	a.backups = backupFiles{dir: filepath.Join(a.dir, "temp")}
	if err := a.backups.removeAll(); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.log.Printf(logsink.Warn+"remove the snapshot files of clients a previous agent left: %v", err)
	}
	tick := a.tickInterval()
	rp := a.replayChanges(st)
	kv := a.replayedState(rp, st.Snapshot)
	var err error
	if kv == nil {
		rp = nil // without its state, its changes are not taken either
		if kv, err = a.loadSnapshot(); err != nil {
			return err
		}
	}
	a.core, err = core.New(core.Config{
		Raft: raftcore.Config{ID: a.id, ElectionTicks: 10, HeartbeatTicks: 1,
			Rand:    rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid()))),
			Storage: store, KeepEntries: a.cfg.SnapshotPeriod, KeepPrevious: true},
		TickMs:         tick.Milliseconds(),
		SnapshotPeriod: a.cfg.SnapshotPeriod,
		Build:          a.build,
		StartedAtNs:    a.clock.Now().UnixNano(),
		Metrics: func(m *api.Metrics) {
			a.metrics.fill(m)
			m.DiskBytes = a.sizes.disk.Load()
		},
	}, st, kv)
	if err != nil {
		return err
	}
	if rp != nil {
		if err := a.core.LoadReplay(rp); err != nil {
			a.log.Printf(logsink.Warn+"watch history: %v", err)
		}
	}
	if fi, err := os.Stat(statefile.SnapshotPath(a.dir)); err == nil && st.Snapshot.Meta.Index > 0 {
		// stored before this start: its file's time is when
		a.metrics.snapshotAt = fi.ModTime()
	}
	a.peers = newPeerVersions(a.dir, a.log)
	for _, v := range a.peers.load() {
		a.core.PeerVersion(0, v)
	}
	node := a.core.Node()
	m := node.Members()
	if len(m.Voters) > 0 && !m.Contains(a.id) {
		a.log.Printf(logsink.Warn+"this host (%s) is not a member (%s): it will not vote or campaign", a.id, m)
	}
	a.log.Printf("agent %s started: term %d, log %d..%d, snapshot at %d, members %s, tick %v",
		a.id, st.HardState.Term, node.Status().Snapshot.Index+1, node.Status().LastIndex,
		st.Snapshot.Meta.Index, m, tick)
	return nil
}

// version is what this agent says of itself to its peers.
func (a *Agent) version() api.Version {
	return api.Version{ID: string(a.id), Commands: api.CommandVersion, Build: a.build, Requests: api.RequestVersion,
		DataBytes: a.sizes.data.Load(), DiskBytes: a.sizes.disk.Load()}
}

// announceEvery is api.AnnounceEveryMs (a test makes it shorter).
var announceEvery = api.AnnounceEveryMs * time.Millisecond

// sizes are this agent's, as it says them to its peers (Version) every announceEvery:
// the data's, taken on the loop, and the Raft files', measured away from it.
type sizes struct {
	data, disk atomic.Uint64
	measuring  atomic.Bool
	last       time.Time // the loop's
}

// announce measures the sizes and says them to the peers, if announceEvery has passed
// since it last did and no measure is under way.
func (a *Agent) announce() {
	now := a.clock.Now()
	if now.Sub(a.sizes.last) < a.announceEvery || !a.sizes.measuring.CompareAndSwap(false, true) {
		return
	}
	a.sizes.last = now
	a.sizes.data.Store(a.core.DataBytes())
	go func() {
		defer a.sizes.measuring.Store(false)
		a.sizes.disk.Store(statefile.DiskBytes(a.dir))
		a.transport.Announce(a.version())
	}()
}

// loadSnapshot reads the state machine back from the stored snapshot, streamed.
func (a *Agent) loadSnapshot() (*kvstore.Store, error) {
	r, snap, err := a.store.SnapshotData()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	began := a.clock.Now()
	kv, err := kvstore.Restore(r)
	if err != nil {
		return nil, fmt.Errorf("load the snapshot at %d: %w", snap.Meta.Index, err)
	}
	if d := a.clock.Now().Sub(began); d >= time.Second {
		a.log.Printf("loaded the snapshot at %d (%.1f MB) in %v", snap.Meta.Index, float64(snap.Size)/1e6, d.Round(time.Millisecond))
	}
	return kv, nil
}

func (a *Agent) tickInterval() time.Duration {
	return max(a.cfg.ElectionTimeout/10, time.Millisecond)
}

// now is the core's time: milliseconds since the agent started.
func (a *Agent) now() core.Time { return core.Time(a.clock.Now().Sub(a.start).Milliseconds()) }

// run is the loop; it alone calls the core.
func (a *Agent) run(ctx context.Context) error {
	a.start = a.clock.Now()
	defer a.shutdown()
	ticks, stopTicks := a.clock.Ticker(a.tickInterval())
	defer stopTicks()
	node := a.core.Node()
	a.status.write(node, true)
	a.status.put("commit_index", strconv.FormatUint(node.Commit(), 10))
	// the hints are rewritten at most ten a second (and once more at shutdown)
	a.hints = newHintWriter(func(c uint64) { a.store.SaveCommit(c) }, &a.status, 100*time.Millisecond)
	if m := node.Members(); m.Contains(a.id) {
		a.linkMembers(m)
	}
	for {
		// work processReady left for events that were waiting: do not wait for the next
		var more <-chan struct{}
		if a.core.HasReady() {
			more = closed
		}
		select {
		case <-ctx.Done():
			a.log.Printf("stopping: %v", context.Cause(ctx))
			return nil
		case <-ticks:
			a.core.Tick(a.now())
			a.announce()
		case ev := <-a.events:
			a.handleEvent(ev)
		case <-more:
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
			a.log.Printf(logsink.Error+"fatal: %v", err)
			return err
		}
	}
}

// heard notes that a peer reached this agent: if the link to it is down, it is back, and
// need not wait out its backoff.
func (a *Agent) heard(id raftcore.NodeID) {
	if a.linksDown[id] {
		delete(a.linksDown, id)
		a.transport.Heard(id)
	}
}

func (a *Agent) handleEvent(ev event) {
	now := a.now()
	switch {
	case ev.msg != nil:
		a.heard(ev.msg.From)
		a.core.Step(now, *ev.msg)
	case ev.isReq:
		if a.cfg.LogLevel >= logsink.LevelDebug { // guarded: the formatting would cost every request
			a.log.Printf(logsink.Debug+"request %s %q (client %d, seq %d)", ev.req.Op, ev.req.Key, ev.req.ClientID, ev.req.Seq)
		}
		a.nextReply++
		info, _ := ev.req.Op.Info()
		a.replies[a.nextReply] = pending{to: ev.replyTo, write: info.Command != 0 && ev.req.Hops == 0}
		a.core.Request(now, a.nextReply, ev.req)
	case ev.link != nil:
		a.log.Printf(logsink.Debug+"link to %s: %s", ev.link.Peer, ev.link)
		if ev.link.Gone {
			a.core.LeaderGone(now, ev.link.Peer)
		}
		a.core.Link(now, ev.link.Peer, ev.link.Up)
		if ev.link.Up {
			delete(a.linksDown, ev.link.Peer)
		} else if len(a.linksDown) < 1024 {
			a.linksDown[ev.link.Peer] = true
		}
	case ev.version != nil:
		// a restarted peer says hello first: a leader sends to it now, not after its
		// backoff or the peer's election timeout (its first message otherwise)
		a.heard(raftcore.NodeID(ev.version.ID))
		a.core.PeerVersion(now, *ev.version)
		a.peers.note(*ev.version)
	case ev.call != nil:
		a.core.CallDone(now, ev.call.id, ev.call.res, ev.call.resp, ev.call.err)
	case ev.run != nil:
		a.core.RunDone(now, ev.run.id, ev.run.out, ev.run.err)
	case ev.snap != nil:
		err := ev.snap.err
		if err == nil {
			err = ev.snap.commit() // the rename: quick, and the loop's
		}
		if err == nil {
			a.metrics.snapshotAt = a.clock.Now()
		}
		a.core.SnapshotSaved(now, ev.snap.snap, err)
	case ev.backup != nil:
		a.core.BackupWritten(now, ev.backup.id, ev.backup.snap, uint64(ev.backup.size), ev.backup.err)
	case ev.piece != nil:
		a.core.BackupRead(now, ev.piece.tok, ev.piece.data, ev.piece.err)
	case ev.rtt != nil:
		a.core.LinkRTT(now, ev.rtt.peer, ev.rtt.rtt.Microseconds())
	}
}

// readyBudget is how long processReady goes on while events wait. Under load a Ready
// takes a fsync and well under this; applying a backlog takes about 0.1 s a Ready.
const readyBudget = 10 * time.Millisecond

// closed is a channel that is always ready.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// processReady does the core's work until it has none, or until events have waited for
// readyBudget, each batch in the order core.Ready gives: replies, calls and runs;
// messages, the save, the snapshot from the leader loaded, persisted messages; logs,
// members, compaction; Advance; then the snapshot save and the backup work, away from
// the loop.
func (a *Agent) processReady() error {
	began := a.clock.Now()
	for i := 0; i < 8 && a.core.HasReady(); i++ {
		if i > 0 && len(a.events) > 0 && a.clock.Now().Sub(began) >= readyBudget {
			// a backlog of committed entries (a restart applies the log after its
			// snapshot, 16 MiB a Ready) would keep the leader's messages waiting for
			// seconds: take them first, and come back (run does not wait then)
			break
		}
		rd := a.core.Ready()
		a.deliver(rd.Replies)
		for _, c := range rd.Calls {
			go a.call(c)
		}
		for _, r := range rd.Runs {
			go a.runOnHost(r)
		}
		for _, m := range rd.Messages {
			a.transport.Send(m)
		}
		durable := rd.HardState != nil || len(rd.SnapshotChunks) > 0 || rd.Ready.Snapshot != nil || len(rd.Entries) > 0
		began := a.clock.Now()
		if err := a.store.Save(rd.HardState, rd.SnapshotChunks, rd.Ready.Snapshot, rd.Entries); err != nil {
			return fmt.Errorf("persist: %w", err)
		}
		if durable {
			// a Ready with nothing durable writes nothing: timing it would fill the
			// lowest bucket with saves that never reached the disk
			a.metrics.fsync.observe(a.clock.Now().Sub(began))
		}
		for _, c := range rd.SnapshotChunks {
			if c.Offset == 0 {
				a.receiving = began
				a.log.Printf("receiving the leader's snapshot at %d (%.1f MB)", c.Meta.Index, float64(c.Total)/1e6)
			}
		}
		if s := rd.Ready.Snapshot; s != nil {
			a.metrics.snapshotAt = a.clock.Now()
			// a snapshot from the leader: the state machine is read back from it (this
			// host is behind anyway; the loop waits for it)
			kv, err := a.loadSnapshot()
			if err != nil {
				return err
			}
			rd.Restored = kv
			received := "resumed after a restart"
			if !a.receiving.IsZero() {
				d := a.metrics.snapshotAt.Sub(a.receiving)
				received = fmt.Sprintf("received in %v (%.1f MB/s)", d.Round(time.Millisecond), float64(s.Size)/1e6/max(d.Seconds(), 1e-3))
			}
			a.receiving = time.Time{}
			a.log.Printf("the leader's snapshot at %d (%.1f MB): %s, loaded in %v", s.Meta.Index,
				float64(s.Size)/1e6, received, a.clock.Now().Sub(a.metrics.snapshotAt).Round(time.Millisecond))
		}
		for _, m := range rd.PersistedMessages {
			a.transport.Send(m)
		}
		for _, l := range rd.Logs {
			a.log.Print(l)
		}
		if rd.Members != nil {
			a.membersChanged(*rd.Members)
		}
		if rd.CompactLog > 0 {
			if err := a.store.CompactLog(rd.CompactLog); err != nil {
				return fmt.Errorf("compact the log: %w", err)
			}
		}
		// The apply time is Advance's, for a batch with committed entries: that is where
		// they are applied and their clients answered, and it delays the next batch.
		// Commit-to-apply would tell little more: entries are applied in the Ready that
		// brings their commit, right after its save, which the fsync histogram times.
		began = a.clock.Now()
		if err := a.core.Advance(a.now(), rd); err != nil {
			return err
		}
		if len(rd.CommittedEntries) > 0 {
			a.metrics.apply.observe(a.clock.Now().Sub(began))
		}
		if job := rd.SaveSnapshot; job != nil {
			go a.saveSnapshot(job)
		}
		a.doBackups(rd)
		node := a.core.Node()
		a.metrics.leaderIs(node.Lead())
		a.status.write(node, false)
		if len(rd.CommittedEntries) > 0 {
			a.hints.post(min(rd.Commit, a.core.Applied()), node.Commit())
		}
	}
	return nil
}

func (a *Agent) deliver(rs []core.Reply) {
	for _, r := range rs {
		if p, ok := a.replies[r.To]; ok {
			delete(a.replies, r.To)
			if p.write && api.ProposalFailed(r.Resp.Code) {
				a.metrics.proposalsFailed++
			}
			p.to.send(r.Resp)
		}
	}
}

// call forwards a request for the core and reports how it ended.
func (a *Agent) call(c core.Call) {
	ctx, cancel := context.WithDeadline(context.Background(), a.start.Add(time.Duration(c.Deadline)*time.Millisecond))
	defer cancel()
	resp, err := a.transport.Call(ctx, c.To, c.Req)
	d := callDone{id: c.ID, res: core.Answered, resp: resp, err: err}
	switch {
	case err == nil:
	case errors.Is(err, api.ErrNotSent):
		d.res = core.NotSent
	default:
		d.res = core.Broken
	}
	a.post(event{call: &d})
}

// saveSnapshot serializes and writes a snapshot away from the loop: the loop goes on
// taking requests and appending while it is encoded and fsynced.
func (a *Agent) saveSnapshot(job *core.SnapshotJob) {
	snap, commit, err := a.store.WriteSnapshot(job.Meta, job.State.WriteSnapshot)
	snap.Meta = job.Meta
	a.post(event{snap: &snapDone{snap: snap, commit: commit, err: err}})
}

func (a *Agent) runOnHost(r core.Run) {
	ctx, cancel := context.WithDeadline(context.Background(), a.start.Add(time.Duration(r.Deadline)*time.Millisecond))
	defer cancel()
	out, err := a.transport.Run(ctx, r.Host, r.Args)
	if err != nil {
		err = fmt.Errorf("%s on %s: %w", r.Args, r.Host, err)
	}
	a.post(event{run: &runDone{id: r.ID, out: out, err: err}})
}

// membersChanged rewrites conf/cluster_nodes and opens links to new members.
func (a *Agent) membersChanged(m raftcore.Membership) {
	names := make([]string, len(m.Voters))
	for i, v := range m.Voters {
		names[i] = string(v)
	}
	slices.Sort(names)
	if len(names) > 0 {
		if err := statefile.WriteFileAtomic(conf.Path(a.dir, "cluster_nodes"), conf.FormatClusterNodes(names), 0o644); err != nil {
			a.log.Printf(logsink.Error+"rewrite conf/cluster_nodes: %v", err)
		}
	}
	for id := range a.linked {
		if !m.Contains(id) {
			a.transport.Disconnect(id)
			delete(a.linked, id)
		}
	}
	a.linkMembers(m)
}

// linkMembers opens a stream to every other member now, not at the first message: a
// vote request to a follower that never spoke to this one would otherwise be lost to
// the connection set-up, just when an election is under way.
func (a *Agent) linkMembers(m raftcore.Membership) {
	for _, id := range m.All() {
		if id != a.id && !a.linked[id] {
			a.linked[id] = true
			a.transport.Connect(id, func(ev LinkEvent) { a.post(event{link: &ev}) })
		}
	}
}

func (a *Agent) shutdown() {
	if a.server != nil {
		a.server.Close()
	}
	if a.hints != nil {
		a.hints.stop()
	}
	a.store.SaveCommit(min(a.core.Node().Commit(), a.core.Applied()))
	a.transport.Close()
	a.core.Stop(a.now())
	a.deliver(a.core.Ready().Replies)
	a.store.Close()
	a.status.remove()
	a.backups.removeAll()
	os.Remove(filepath.Join(a.dir, "temp", "agent.pid"))
	close(a.done)
	if a.lock != nil {
		a.lock.Close()
	}
}

// peerCommand is what the agent runs on a peer over ssh: args are a verb's fixed words
// ("rpc", "first-boot --join", "stop").
func (a *Agent) peerCommand(args string) string {
	return sshcmd.Command(a.remoteDir, strings.Fields(args)...)
}
