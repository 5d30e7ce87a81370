package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"lite-raft/api"
	"lite-raft/raftcore"
	"lite-raft/sshrpc"
)

// In-memory versions of the seams, for tests that run several drivers in one process
// with no ssh and no disk: MemStorage, MemNetwork (a Transport per member, with links
// that can be cut one way) and FakeClock.

// MemStorage keeps what an agent persists in memory, in a raftcore.MemoryStorage. State
// gives it back as a restart would read it.
type MemStorage struct {
	mu     sync.Mutex
	hs     raftcore.HardState
	store  *raftcore.MemoryStorage
	commit uint64
	// FailCompact, if set, is returned by WriteSnapshot (a full disk, say).
	FailCompact error
	// the snapshot a newer one of the agent's own replaced (PreviousSnapshotData)
	prev     *raftcore.Snapshot
	prevData []byte
}

// NewMemStorage is a first boot with the given voters.
func NewMemStorage(voters ...raftcore.NodeID) *MemStorage {
	return &MemStorage{store: raftcore.NewMemoryStorage(raftcore.Snapshot{Meta: raftcore.SnapshotMeta{
		Members: raftcore.Membership{Voters: voters}}}, nil)}
}

func (m *MemStorage) Save(hs *raftcore.HardState, chunks []raftcore.SnapshotChunk, snap *raftcore.Snapshot, ents []raftcore.Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if hs != nil {
		m.hs = *hs
	}
	if snap != nil {
		m.prev, m.prevData = nil, nil // the log it ran from is gone
	}
	return m.store.Save(raftcore.Ready{SnapshotChunks: chunks, Snapshot: snap, Entries: ents})
}

func (m *MemStorage) Entries(lo, hi, maxBytes uint64) ([]raftcore.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.store.Entries(lo, hi, maxBytes)
}

func (m *MemStorage) ReadSnapshot(s raftcore.Snapshot, off uint64, p []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.store.ReadSnapshot(s, off, p)
}

func (m *MemStorage) WriteSnapshot(meta raftcore.SnapshotMeta, write func(io.Writer) error) (raftcore.Snapshot, func() error, error) {
	m.mu.Lock()
	fail := m.FailCompact
	m.mu.Unlock()
	if fail != nil {
		return raftcore.Snapshot{}, nil, fail
	}
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return raftcore.Snapshot{}, nil, err
	}
	s := raftcore.SnapshotOf(meta, b.Bytes())
	return s, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if cur, _ := m.store.Snapshot(); s.Meta.Index <= cur.Meta.Index {
			return fmt.Errorf("compact to %d: a newer snapshot (%d) is stored", s.Meta.Index, cur.Meta.Index)
		}
		cur, data := m.store.Snapshot()
		m.prev, m.prevData = &cur, data
		m.store.TakeSnapshot(s, b.Bytes())
		return nil
	}, nil
}

func (m *MemStorage) CompactLog(keepFrom uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.store.CompactLog(keepFrom)
	return nil
}

func (m *MemStorage) SnapshotData() (io.ReadCloser, raftcore.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, data := m.store.Snapshot()
	return io.NopCloser(bytes.NewReader(data)), s, nil
}

func (m *MemStorage) PreviousSnapshotData() (io.ReadCloser, raftcore.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.prev == nil {
		return nil, raftcore.Snapshot{}, errors.New("no previous snapshot")
	}
	return io.NopCloser(bytes.NewReader(m.prevData)), *m.prev, nil
}

func (m *MemStorage) SaveCommit(c uint64) error {
	m.mu.Lock()
	m.commit = c
	m.mu.Unlock()
	return nil
}

func (m *MemStorage) Close() error { return nil }

// State is what a restart reads back.
func (m *MemStorage) State() raftcore.State {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.store.State(m.hs)
	st.Commit = m.commit
	return st
}

// MemNetwork connects in-process agents. A link from a to b can be cut one way: a's
// messages and calls to b fail, b's to a still go.
type MemNetwork struct {
	mu      sync.Mutex
	agents  map[raftcore.NodeID]*Agent
	cut     map[[2]raftcore.NodeID]bool
	reports map[[2]raftcore.NodeID]func(LinkEvent)
	// DropAnswers, while set, loses the answers to calls after the callee got them: the
	// caller sees its stream break (the request may have been carried out).
	DropAnswers bool
	// Silent names agents that run a build from before versions: they say nothing of
	// themselves when they connect.
	Silent map[raftcore.NodeID]bool
	// Older names agents that say an older command and request version than their
	// build's: to the others they run that older build.
	Older map[raftcore.NodeID]int
}

func NewMemNetwork() *MemNetwork {
	return &MemNetwork{agents: map[raftcore.NodeID]*Agent{}, cut: map[[2]raftcore.NodeID]bool{},
		reports: map[[2]raftcore.NodeID]func(LinkEvent){}}
}

// Cut cuts (or, with cut false, restores) the link from a to b, and tells a. A link
// restored is a new stream: a says who it is on it, as over ssh.
func (n *MemNetwork) Cut(a, b raftcore.NodeID, cut bool) {
	n.mu.Lock()
	n.cut[[2]raftcore.NodeID{a, b}] = cut
	report := n.reports[[2]raftcore.NodeID{a, b}]
	n.mu.Unlock()
	if !cut {
		n.hello(a, b)
	}
	if report != nil {
		report(LinkEvent{Peer: b, Up: !cut})
	}
}

// hello tells b what a says of itself, unless a is Silent or cannot reach b.
func (n *MemNetwork) hello(a, b raftcore.NodeID) {
	n.mu.Lock()
	silent, older, from := n.Silent[a], n.Older[a], n.agents[a]
	n.mu.Unlock()
	if to := n.target(a, b); to != nil && from != nil && !silent {
		v := from.version()
		if older > 0 {
			v.Commands, v.Requests = older, older
		}
		to.post(event{version: &v})
	}
}

func (n *MemNetwork) target(from, to raftcore.NodeID) *Agent {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cut[[2]raftcore.NodeID{from, to}] {
		return nil
	}
	return n.agents[to]
}

// Transport is member id's way into the network.
func (n *MemNetwork) Transport(id raftcore.NodeID) Transport { return &memTransport{net: n, id: id} }

type memTransport struct {
	net *MemNetwork
	id  raftcore.NodeID
}

func (t *memTransport) Send(m raftcore.Message) {
	if a := t.net.target(t.id, m.To); a != nil {
		// through the codec, as over ssh: nothing is shared between the two agents
		if dm, err := raftcore.DecodeMessage(raftcore.EncodeMessage(nil, m)); err == nil {
			select {
			case a.events <- event{msg: &dm}:
			default: // a full queue drops it, as the ssh transport does
			}
		}
	}
}

func (t *memTransport) Call(ctx context.Context, peer raftcore.NodeID, req api.Request) (api.Response, error) {
	a := t.net.target(t.id, peer)
	if a == nil {
		return api.Response{}, fmt.Errorf("%s: %w: %w", peer, api.ErrNotSent, sshrpc.ErrNotConnected)
	}
	got := make(chan api.Response, 1)
	dr, err := api.DecodeRequest(req.Encode())
	if err != nil {
		return api.Response{}, fmt.Errorf("%w: %w", api.ErrNotSent, err)
	}
	a.post(requestEvent(dr, func(r api.Response) { got <- r }))
	select {
	case r := <-got:
		t.net.mu.Lock()
		drop := t.net.DropAnswers
		t.net.mu.Unlock()
		if drop {
			return api.Response{}, fmt.Errorf("%s: %w", peer, sshrpc.ErrClosed)
		}
		return r, nil
	case <-ctx.Done():
		return api.Response{}, ctx.Err()
	}
}

func (t *memTransport) Run(ctx context.Context, host, args string) ([]byte, error) {
	return nil, errors.New("the in-memory network runs no commands on hosts")
}

func (t *memTransport) Connect(peer raftcore.NodeID, report func(LinkEvent)) {
	t.net.mu.Lock()
	t.net.reports[[2]raftcore.NodeID{t.id, peer}] = report
	up := !t.net.cut[[2]raftcore.NodeID{t.id, peer}]
	t.net.mu.Unlock()
	t.net.hello(t.id, peer)
	report(LinkEvent{Peer: peer, Up: up})
}

func (t *memTransport) Heard(raftcore.NodeID) {} // links have no backoff here

func (t *memTransport) Disconnect(peer raftcore.NodeID) {
	t.net.mu.Lock()
	delete(t.net.reports, [2]raftcore.NodeID{t.id, peer})
	t.net.mu.Unlock()
}

// Announce says the agent's version again to every peer it links to (hello reads it).
func (t *memTransport) Announce(api.Version) {
	t.net.mu.Lock()
	var peers []raftcore.NodeID
	for k := range t.net.reports {
		if k[0] == t.id {
			peers = append(peers, k[1])
		}
	}
	t.net.mu.Unlock()
	for _, p := range peers {
		t.net.hello(t.id, p)
	}
}

func (t *memTransport) Close() {}

// FakeClock is a clock that moves only when told. Its ticker fires on Advance, once per
// period passed.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
}

type fakeTicker struct {
	every time.Duration
	next  time.Time
	c     chan time.Time
	done  bool
}

func NewFakeClock() *FakeClock { return &FakeClock{now: time.Unix(1_000_000, 0)} }

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *FakeClock) Ticker(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTicker{every: d, next: c.now.Add(d), c: make(chan time.Time, 1)}
	c.tickers = append(c.tickers, t)
	return t.c, func() {
		c.mu.Lock()
		t.done = true
		c.mu.Unlock()
	}
}

// Advance moves the clock on by d and delivers the ticks due (a slow reader misses
// some, as with time.Ticker).
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.tickers {
		for !t.done && !t.next.After(c.now) {
			select {
			case t.c <- t.next:
			default:
			}
			t.next = t.next.Add(t.every)
		}
	}
}
