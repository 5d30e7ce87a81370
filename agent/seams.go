package agent

import (
	"context"
	"io"
	"time"

	"lite-raft/api"
	"lite-raft/raftcore"
)

// The driver reaches the world through three small interfaces. The real ones are ssh
// (sshTransport), statefile (*statefile.Store) and the system clock; tests use the
// in-memory ones in memory.go.

// Transport reaches the other members.
type Transport interface {
	// Send queues a Raft message for its peer and never blocks; a message that cannot
	// go (a full queue, no link) is dropped: Raft sends again what still matters.
	Send(m raftcore.Message)
	// Call sends a request to peer's agent and waits for its answer until ctx ends. An
	// error matching api.ErrNotSent means the request never left this host.
	Call(ctx context.Context, peer raftcore.NodeID, req api.Request) (api.Response, error)
	// Run runs `lite-raft ARGS` on host over ssh and returns what it printed.
	Run(ctx context.Context, host, args string) ([]byte, error)
	// Connect keeps a link open to peer (until Disconnect) and reports on it: up or down
	// with each change, and gone when peer's host says no agent runs there.
	Connect(peer raftcore.NodeID, report func(LinkEvent))
	Disconnect(peer raftcore.NodeID)
	// Heard says a message came from peer while its link was down: a link waiting out
	// its backoff is tried again now (a restarted member is back).
	Heard(peer raftcore.NodeID)
	// Announce says v (what this agent says of itself, with its sizes) to every peer it
	// links to, now and first on each new stream. Any goroutine may call it.
	Announce(v api.Version)
	Close()
}

// LinkEvent is what a link reports.
type LinkEvent struct {
	Peer raftcore.NodeID
	Up   bool
	Gone bool // the peer's host runs no agent (implies down)
}

func (e LinkEvent) String() string {
	switch {
	case e.Up:
		return "up"
	case e.Gone:
		return "down (no agent runs on its host)"
	}
	return "down"
}

// Storage is what the agent persists, and reads back for Raft (raftcore.Storage: old
// entries, snapshot data to send). *statefile.Store implements it.
type Storage interface {
	raftcore.Storage
	// Save makes a Ready's durable parts durable: hard state, snapshot pieces received,
	// a complete snapshot received, entries.
	Save(hs *raftcore.HardState, chunks []raftcore.SnapshotChunk, snap *raftcore.Snapshot, ents []raftcore.Entry) error
	// WriteSnapshot streams what write produces into a snapshot at meta beside the current
	// one and makes it durable, on any goroutine; the commit it returns, called on the
	// loop, puts it in place.
	WriteSnapshot(meta raftcore.SnapshotMeta, write func(io.Writer) error) (raftcore.Snapshot, func() error, error)
	// CompactLog drops the log before keepFrom.
	CompactLog(keepFrom uint64) error
	// SnapshotData reads the stored snapshot's data back (to load the state machine).
	SnapshotData() (io.ReadCloser, raftcore.Snapshot, error)
	// PreviousSnapshotData reads back the snapshot before the latest, kept when the
	// latest replaced it (the log runs from it: a restart replays the log from it to know
	// what each entry changed, for watch); an error when there is none.
	PreviousSnapshotData() (io.ReadCloser, raftcore.Snapshot, error)
	// SaveCommit records a hint of the commit index for the next start (not fsynced).
	SaveCommit(c uint64) error
	Close() error
}

// Clock is the driver's time.
type Clock interface {
	Now() time.Time
	// Ticker delivers ticks every d until stop is called.
	Ticker(d time.Duration) (ticks <-chan time.Time, stop func())
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Ticker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}
