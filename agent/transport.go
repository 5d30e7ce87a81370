package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"lite-raft/agent/core"
	"lite-raft/api"
	"lite-raft/internal/logsink"
	"lite-raft/raftcore"
	"lite-raft/sshrpc"
)

// sshTransport reaches peers over ssh: one sshrpc.Peer (an SSH connection and a
// `lite-raft rpc` session) per member, each fed by a goroutine of its own so that a slow
// or dead peer never stalls the loop, and snapshot pieces over streams of their own
// (bulk.go).
type sshTransport struct {
	dialer  *sshrpc.Dialer
	command func(args string) string // the shell command that runs lite-raft ARGS on a peer
	log     *log.Logger

	mu    sync.Mutex
	links map[raftcore.NodeID]*peerLink
	hello []byte // this agent's api.Version, said first on every stream to a peer
}

// peerLink is the way to one peer: its stream and a goroutine that feeds it, so that the
// loop only ever drops an encoded message into a queue.
type peerLink struct {
	peer    *sshrpc.Peer
	bulk    *bulk
	srtt    atomic.Int64 // the link's smoothed round trip (ns), from its keep-alives
	queue   chan queued
	quit    chan struct{}
	watched bool // watch runs (sshTransport.mu)
}

func newSSHTransport(d *sshrpc.Dialer, command func(string) string, lg *log.Logger, v api.Version) *sshTransport {
	return &sshTransport{dialer: d, command: command, log: lg, hello: v.Encode(), links: map[raftcore.NodeID]*peerLink{}}
}

func (t *sshTransport) link(id raftcore.NodeID) *peerLink {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.links[id]; p != nil {
		return p
	}
	peer := sshrpc.NewPeer(string(id), t.dialer, t.command("rpc"), sshrpc.ConnOptions{Logf: t.log.Printf})
	p := &peerLink{
		peer:  peer,
		bulk:  &bulk{open: peer.Side},
		queue: make(chan queued, 4096),
		quit:  make(chan struct{}),
	}
	t.links[id] = p
	go p.run(t.log, id)
	return p
}

// Connect watches the link to a member, also one that a message or a call made first (a
// host that joined sends its leader answers before it learns who the members are): the
// watch is what says hello on each of its streams, without which the peer refuses the
// newer commands (exit 14) for as long as that stream lives.
func (t *sshTransport) Connect(id raftcore.NodeID, report func(LinkEvent)) {
	p := t.link(id)
	t.mu.Lock()
	start := !p.watched && t.links[id] == p
	p.watched = true
	t.mu.Unlock()
	if start {
		go p.watch(id, t.helloNow, report)
	}
}

// queued is a frame waiting to go to a peer: a Raft message, or this agent's version.
type queued struct {
	typ uint8
	b   []byte
}

func (t *sshTransport) helloNow() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hello
}

// Announce says v on every stream open to a peer, and first on each new one from now on.
func (t *sshTransport) Announce(v api.Version) {
	b := v.Encode()
	t.mu.Lock()
	t.hello = b
	links := make([]*peerLink, 0, len(t.links))
	for _, p := range t.links {
		if p.watched {
			links = append(links, p)
		}
	}
	t.mu.Unlock()
	for _, p := range links {
		select {
		case p.queue <- queued{typ: api.FrameVersion, b: b}:
		default: // the peer is slow or gone; its next stream says it
		}
	}
}

// observeRTT takes a round trip measured on the link to id, smoothed as the core smooths
// the same samples for status. Any goroutine may call it, also on a nil transport.
func (t *sshTransport) observeRTT(id raftcore.NodeID, rtt time.Duration) {
	if t == nil {
		return
	}
	t.mu.Lock()
	p := t.links[id]
	t.mu.Unlock()
	if p == nil {
		return
	}
	p.srtt.Store(core.SmoothRTT(p.srtt.Load(), int64(rtt)))
}

func (t *sshTransport) Heard(id raftcore.NodeID) {
	t.mu.Lock()
	p := t.links[id]
	t.mu.Unlock()
	if p != nil {
		p.peer.Retry()
	}
}

func (t *sshTransport) Disconnect(id raftcore.NodeID) {
	t.mu.Lock()
	p := t.links[id]
	delete(t.links, id)
	t.mu.Unlock()
	if p != nil {
		p.close()
	}
}

func (t *sshTransport) Close() {
	t.mu.Lock()
	links := t.links
	t.links = map[raftcore.NodeID]*peerLink{}
	t.mu.Unlock()
	for _, p := range links {
		p.close()
	}
}

// Send queues m for its peer. A full queue drops the message: the peer is slow or gone,
// and Raft will send again what is still needed.
func (t *sshTransport) Send(m raftcore.Message) {
	p := t.link(m.To)
	if raftcore.Unordered(m) && time.Duration(p.srtt.Load()) >= bulkRTT {
		p.bulk.send(raftcore.EncodeMessage(nil, m))
		return
	}
	select {
	case p.queue <- queued{typ: api.FrameRaft, b: raftcore.EncodeMessage(nil, m)}:
	default:
	}
}

func (t *sshTransport) Call(ctx context.Context, id raftcore.NodeID, req api.Request) (api.Response, error) {
	f, err := t.link(id).peer.Call(ctx, api.FrameRequest, req.Encode())
	if err != nil {
		return api.Response{}, err
	}
	return api.DecodeResponse(f.Payload)
}

// watch keeps the stream to the peer open: when it ends, it reconnects at once (then with
// the peer's backoff) rather than at the next message, and reports each change. A
// follower sends its leader nothing unless asked, so this is how it learns soon that the
// leader's agent died: the leader's host still answers, and its bridge says no agent runs
// there. On each new stream it first says who this agent is and what it understands
// (hello, a api.FrameVersion).
func (p *peerLink) watch(id raftcore.NodeID, hello func() []byte, report func(LinkEvent)) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-p.quit; cancel() }()
	up := false
	for {
		c, err := p.peer.Conn(ctx)
		if ctx.Err() != nil || errors.Is(err, sshrpc.ErrClosed) {
			return
		}
		var gone *sshrpc.NoAgentError
		if errors.As(err, &gone) {
			report(LinkEvent{Peer: id, Gone: true})
			up = false
		} else if c == nil && up {
			report(LinkEvent{Peer: id})
			up = false
		}
		if c == nil {
			continue // Conn waited out the backoff before this attempt
		}
		c.Send(api.FrameVersion, hello()) // if the stream is already gone, the next one says it
		if !up {
			report(LinkEvent{Peer: id, Up: true})
			up = true
		}
		select {
		case <-c.Done():
			report(LinkEvent{Peer: id})
			up = false
		case <-p.quit:
			return
		}
	}
}

// run feeds the stream. A peer that cannot be reached is logged when that starts, then
// at most every linkLogEvery with the count of messages dropped meanwhile, and once more
// when it is reached again: a link that stays broken never floods the log.
func (p *peerLink) run(lg *log.Logger, id raftcore.NodeID) {
	var down bool
	var dropped int
	var lastLog time.Time
	for {
		select {
		case q := <-p.queue:
			if err := p.peer.Send(q.typ, q.b); err != nil {
				dropped++
				if !down || time.Since(lastLog) >= linkLogEvery {
					why := p.peer.LastError()
					if why == nil {
						why = err
					}
					if !down {
						lg.Printf(logsink.Warn+"cannot reach %s: %v", id, why)
					} else {
						lg.Printf(logsink.Warn+"still cannot reach %s: %v (%d messages dropped in %v)", id, why, dropped, time.Since(lastLog).Round(time.Second))
					}
					down, dropped, lastLog = true, 0, time.Now()
				}
			} else if down {
				down = false
				lg.Printf("reached %s again", id)
			}
		case <-p.quit:
			p.peer.Close()
			return
		}
	}
}

// linkLogEvery is how often a link that stays broken is logged.
const linkLogEvery = 10 * time.Second

func (p *peerLink) close() {
	select {
	case <-p.quit:
	default:
		close(p.quit)
		p.bulk.close()
	}
}

// Run runs a lite-raft verb on another host over ssh: the first boot of a host joining
// the cluster, or the stop of one leaving it.
func (t *sshTransport) Run(ctx context.Context, host, args string) ([]byte, error) {
	c, err := t.dialer.Dial(ctx, host)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var out bytes.Buffer
	s.Stdout, s.Stderr = &out, &out
	done := make(chan error, 1)
	go func() { done <- s.Run(t.command(args)) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("%w: %s", err, strings.TrimSpace(out.String()))
	}
	return out.Bytes(), nil
}
