package agent

import (
	"sync"
	"time"

	"lite-raft/api"
	"lite-raft/sshrpc"
)

// Snapshot pieces and large appends (a follower catching up: raftcore.Unordered) go to a
// peer over streams of their own, several sessions on the peer's ssh connection
// (sshrpc.Peer.Side):
//
//   - one ssh channel carries at most its window a round trip (OpenSSH's sshd grants
//     2 MiB), 20 MiB/s on a link 100 ms long, so a long link needs several in parallel to
//     move a snapshot or a backlog at its bandwidth (8: 160 MiB/s at 100 ms; measured with
//     the harness's delay, a 79 MB snapshot crossed in 1.9 s over 4 with a window of 13
//     pieces, in 1.0 s over 8 with 26). raftcore's follower takes snapshot pieces in any
//     order within its window (Config.MaxSnapshotAhead) and holds appends that arrive
//     after a gap until the ones before them come (Config.MaxAppendAhead); the core sizes
//     the snapshot window from the link's round trip;
//   - heartbeats, votes and small appends keep the peer's main stream, never queued
//     behind a megabyte of snapshot or backlog: a follower catching up does not make the
//     others miss a heartbeat, and the leader's elections are not lost behind its own
//     snapshot. Steady writes stay there, in order.
//
// Only on a long link (a round trip of bulkRTT or more): on a LAN one window carries
// hundreds of MB/s, and the main stream keeps everything in order, with no held pieces
// or appends (measured on one host, TestScaleCatchUp: caught up in 2.9 s with one stream,
// 3.2-3.5 s over 8 sessions, and the leader's RSS 299 MB against 512).
//
// The streams are opened on the first message and closed after bulkIdle without one, so
// a cluster in steady state keeps one session a peer.
const (
	bulkRTT     = 10 * time.Millisecond // 2 MiB a round trip: 200 MiB/s
	bulkStreams = 8
	bulkQueue   = 4 // messages (up to 1 MiB each) waiting for one stream, besides its own 4 (sshrpc's side queue)
	bulkIdle    = time.Minute
)

// bulk is one peer's bulk streams, used in turn.
type bulk struct {
	open func() *sshrpc.Peer // a new stream to the peer

	mu      sync.Mutex
	streams [bulkStreams]*bulkStream
	next    int
	closed  bool
}

// bulkStream is one of them: a session and the goroutine that feeds it.
type bulkStream struct {
	peer  *sshrpc.Peer
	queue chan []byte
	quit  chan struct{}
}

// send queues an encoded Raft message on the next stream, opening it if needed. A full
// queue drops it, as the main stream's does: Raft sends again what is still needed.
func (b *bulk) send(msg []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	i := b.next
	b.next = (b.next + 1) % bulkStreams
	s := b.streams[i]
	if s == nil {
		s = &bulkStream{peer: b.open(), queue: make(chan []byte, bulkQueue), quit: make(chan struct{})}
		b.streams[i] = s
		go b.run(i, s)
	}
	select {
	case s.queue <- msg:
	default:
	}
}

func (b *bulk) run(i int, s *bulkStream) {
	defer s.peer.Close()
	idle := time.NewTimer(bulkIdle)
	defer idle.Stop()
	for {
		select {
		case msg := <-s.queue:
			s.peer.Send(api.FrameRaft, msg) // an error is a lost piece, sent again after a timeout
			idle.Reset(bulkIdle)
		case <-idle.C:
			b.mu.Lock()
			if len(s.queue) > 0 { // queued while the timer fired
				b.mu.Unlock()
				idle.Reset(bulkIdle)
				continue
			}
			b.streams[i] = nil
			b.mu.Unlock()
			return
		case <-s.quit:
			return
		}
	}
}

// close ends every stream and opens no more.
func (b *bulk) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for i, s := range b.streams {
		if s != nil {
			close(s.quit)
			b.streams[i] = nil
		}
	}
}
