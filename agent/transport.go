package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"lite-raft/client"
	"lite-raft/raftcore"
	"lite-raft/sshrpc"
)

// peerLink is the way to one peer: its SSH stream and a goroutine that feeds it, so
// that the loop only ever drops an encoded message into a queue.
type peerLink struct {
	peer  *sshrpc.Peer
	queue chan []byte
	quit  chan struct{}
}

func (a *Agent) link(id raftcore.NodeID) *peerLink {
	if p := a.peers[id]; p != nil {
		return p
	}
	p := &peerLink{
		peer:  sshrpc.NewPeer(string(id), a.dialer, a.peerCommand("rpc"), sshrpc.ConnOptions{Logf: a.log.Printf}),
		queue: make(chan []byte, 4096),
		quit:  make(chan struct{}),
	}
	a.peers[id] = p
	go p.run(a, id)
	go p.watch(a, id)
	return p
}

// watch keeps the stream to the peer open: when it ends, it reconnects at once (then with
// the peer's backoff) rather than at the next message. A follower sends its leader
// nothing unless asked, so this is how it learns soon that the leader's agent died: the
// leader's host still answers, and its bridge says no agent runs there. The loop then
// lets the node stand for election without waiting out a whole election timeout.
func (p *peerLink) watch(a *Agent, id raftcore.NodeID) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-p.quit; cancel() }()
	for {
		c, err := p.peer.Conn(ctx)
		if ctx.Err() != nil || errors.Is(err, sshrpc.ErrClosed) {
			return
		}
		var gone *sshrpc.NoAgentError
		if errors.As(err, &gone) {
			select {
			case a.events <- event{gone: id}:
			case <-p.quit:
				return
			}
		}
		if c == nil {
			continue // Conn waited out the backoff before this attempt
		}
		select {
		case <-c.Done():
		case <-p.quit:
			return
		}
	}
}

func (p *peerLink) run(a *Agent, id raftcore.NodeID) {
	var lastErr string
	for {
		select {
		case b := <-p.queue:
			if err := p.peer.Send(client.FrameRaft, b); err != nil {
				// Raft resends what matters; note the reason once, not per message
				if e := fmt.Sprint(p.peer.LastError()); e != lastErr && p.peer.LastError() != nil {
					lastErr = e
					a.log.Printf("cannot reach %s: %v", id, p.peer.LastError())
				}
			} else if lastErr != "" {
				lastErr = ""
				a.log.Printf("reached %s again", id)
			}
		case <-p.quit:
			p.peer.Close()
			return
		}
	}
}

func (p *peerLink) close() {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
}

// send queues messages for their peers. A full queue drops the message: the peer is
// slow or gone, and Raft will send again what is still needed.
func (a *Agent) send(msgs []raftcore.Message) {
	for _, m := range msgs {
		p := a.link(m.To)
		select {
		case p.queue <- raftcore.EncodeMessage(nil, m):
		default:
		}
	}
}

// runOnHost runs a lite-raft verb on another host over ssh: the first boot of a host
// joining the cluster, or the stop of one leaving it.
func (a *Agent) runOnHost(w *waiter) {
	host, args := w.req.Host, w.req.Args
	switch args {
	case "first-boot --join", "stop", "status":
	default:
		w.reply(client.Response{Code: client.CodeUsage, Msg: fmt.Sprintf("will not run %q on another host", args)})
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), w.deadline)
	defer cancel()
	out, err := a.runRemote(ctx, host, a.peerCommand(args))
	if err != nil {
		w.reply(client.Response{Code: client.CodeFailed, Msg: fmt.Sprintf("%s on %s: %v", args, host, err), Value: out})
		return
	}
	w.reply(client.Response{Msg: fmt.Sprintf("%s on %s: done", args, host), Value: out})
}

func (a *Agent) runRemote(ctx context.Context, host, command string) ([]byte, error) {
	c, err := a.dialer.Dial(ctx, host)
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
	go func() { done <- s.Run(command) }()
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
