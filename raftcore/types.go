package raftcore

import (
	"errors"
	"fmt"
)

// NodeID names a member. lite-raft uses the short host name, so IDs are strings.
type NodeID string

// None is the absent node: no vote cast, no leader known.
const None NodeID = ""

// EntryType tells the application how to read an entry's Data.
type EntryType uint8

const (
	// EntryNormal carries application data. A new leader appends one with empty Data so that
	// it has an entry of its own term to commit; applications skip empty ones.
	EntryNormal EntryType = iota
	// EntryMembership carries an encoded Membership (see EncodeMembership). It takes effect
	// as soon as it is in the log, committed or not, as the Raft dissertation prescribes.
	EntryMembership
)

func (t EntryType) String() string {
	switch t {
	case EntryNormal:
		return "normal"
	case EntryMembership:
		return "membership"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Entry is one record of the replicated log.
type Entry struct {
	Index uint64
	Term  uint64
	Type  EntryType
	Data  []byte
}

// Role is the part a node plays in its current term.
type Role uint8

const (
	Follower Role = iota
	PreCandidate
	Candidate
	Leader
)

func (r Role) String() string {
	switch r {
	case Follower:
		return "follower"
	case PreCandidate:
		return "pre-candidate"
	case Candidate:
		return "candidate"
	case Leader:
		return "leader"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// HardState is what must be durable before a node answers a vote or an append:
// the current term and the vote cast in it.
type HardState struct {
	Term uint64
	Vote NodeID
}

// SoftState is volatile and reported only so that callers can react to changes.
type SoftState struct {
	Lead NodeID
	Role Role
}

// SnapshotMeta describes the state a snapshot stands for.
type SnapshotMeta struct {
	Index   uint64 // last log index the snapshot includes
	Term    uint64 // term of that entry
	Members Membership
}

// Snapshot is the application's state as of Meta.Index. The state itself stays with the
// caller (in a file): raftcore knows only its size and CRC-32C, has a leader's Storage read
// it piece by piece for sending, and hands a follower the pieces it receives to write.
type Snapshot struct {
	Meta     SnapshotMeta
	Size     uint64
	Checksum uint32
}

// IncomingSnapshot is a snapshot a follower is receiving and has part of on disk: Have
// bytes whose CRC-32C is Sum, out of Size (the whole's checksum is Checksum). Given back
// in State, it lets a transfer resume after a restart.
type IncomingSnapshot struct {
	Meta     SnapshotMeta
	Size     uint64
	Checksum uint32
	Have     uint64
	Sum      uint32
}

// SnapshotChunk is one piece of a snapshot in flight from the leader to a follower.
// Offset is where Data starts in the whole snapshot; Done marks the last piece. Total and
// Checksum (CRC-32C) describe the whole snapshot data, which the follower verifies. In a
// Ready's SnapshotChunks it is a piece to write: at Offset 0 it starts a new partial
// snapshot (dropping any other), otherwise it follows the piece before.
type SnapshotChunk struct {
	Meta     SnapshotMeta
	Offset   uint64
	Data     []byte
	Done     bool
	Total    uint64
	Checksum uint32
}

// MsgType enumerates the messages nodes exchange.
type MsgType uint8

const (
	MsgApp           MsgType = iota + 1 // leader → follower: entries after (Index, LogTerm); Context = appPipelined if it may travel out of order
	MsgAppResp                          // follower → leader: Index matched, or Reject with hint
	MsgHeartbeat                        // leader → follower: Commit, Context = read round
	MsgHeartbeatResp                    // follower → leader: echoes Context
	MsgPreVote                          // would-be candidate → voters: Term = the term it would use
	MsgPreVoteResp                      //
	MsgVote                             // candidate → voters: (Index, LogTerm) = its last entry
	MsgVoteResp                         //
	MsgSnap                             // leader → follower: one SnapshotChunk, Context = the sender's round
	MsgSnapResp                         // follower → leader: (Index, LogTerm) = the snapshot, Context = bytes held; Reject: the chunk did not fit, RejectHint = its round
	MsgTimeoutNow                       // leader → transfer target: campaign now
	msgTypeEnd
)

var msgNames = [...]string{"", "MsgApp", "MsgAppResp", "MsgHeartbeat", "MsgHeartbeatResp",
	"MsgPreVote", "MsgPreVoteResp", "MsgVote", "MsgVoteResp", "MsgSnap", "MsgSnapResp",
	"MsgTimeoutNow"}

func (t MsgType) String() string {
	if t > 0 && t < msgTypeEnd {
		return msgNames[t]
	}
	return fmt.Sprintf("MsgType(%d)", uint8(t))
}

// Valid reports whether t is a message type this package knows.
func (t MsgType) Valid() bool { return t > 0 && t < msgTypeEnd }

// appPipelined in an append's Context marks one a leader sent while replicating to the
// follower, of at least Config.BulkAppendBytes, that may travel out of order: a follower
// holds it after a gap (appAhead) instead of refusing it. A probe, which must be
// answered, is not marked, nor are small appends, which keep their order.
const appPipelined = 1

// Unordered reports whether m may travel out of order with the messages before it: a
// snapshot piece, or an append marked so (Config.BulkAppendBytes). A driver may send
// those over streams of their own, in parallel.
func Unordered(m Message) bool {
	return m.Type == MsgSnap || (m.Type == MsgApp && m.Context == appPipelined)
}

// campaignTransfer in a vote request's Context marks an election started by a leadership
// transfer: voters grant it even while they still hear from the old leader.
const campaignTransfer = 1

// Message is the only thing nodes send each other. Which fields matter depends on Type;
// the comments on the MsgType constants say which.
type Message struct {
	Type       MsgType
	From       NodeID
	To         NodeID
	Term       uint64
	LogTerm    uint64
	Index      uint64
	Entries    []Entry
	Commit     uint64
	Reject     bool
	RejectHint uint64
	Context    uint64
	Snapshot   *SnapshotChunk
}

func (m Message) String() string {
	s := fmt.Sprintf("%s %s→%s t%d i%d lt%d c%d", m.Type, m.From, m.To, m.Term, m.Index, m.LogTerm, m.Commit)
	if len(m.Entries) > 0 {
		s += fmt.Sprintf(" ents[%d..%d]", m.Entries[0].Index, m.Entries[len(m.Entries)-1].Index)
	}
	if m.Reject {
		s += fmt.Sprintf(" reject hint%d", m.RejectHint)
	}
	if m.Context != 0 {
		s += fmt.Sprintf(" ctx%d", m.Context)
	}
	if m.Snapshot != nil {
		s += fmt.Sprintf(" snap(i%d t%d off%d len%d done=%v)", m.Snapshot.Meta.Index, m.Snapshot.Meta.Term,
			m.Snapshot.Offset, len(m.Snapshot.Data), m.Snapshot.Done)
	}
	return s
}

// ReadState says that a read request may be served once the state machine has applied
// Index. Lost means the request was dropped (leadership lost) and must be retried.
type ReadState struct {
	ID    uint64
	Index uint64
	Lost  bool
}

// Ready is a batch of work for the caller. Handle it in this order:
//  1. send Messages (they do not depend on this batch being durable; a leader's appends
//     go out while it writes the same entries to its own disk);
//  2. make HardState durable; write SnapshotChunks to the partial snapshot; make
//     Snapshot (a complete partial one, which replaces the stored snapshot and the whole
//     stored log) and then Entries (which replace any stored entries from
//     Entries[0].Index on) durable;
//  3. send PersistedMessages;
//  4. restore the state machine from Snapshot, if any, then apply CommittedEntries;
//  5. call Advance with this Ready.
//
// Ready may be called again before Advance (to overlap the next batch's writes with this
// one's fsync); Advance must then be called for each batch, in order.
type Ready struct {
	SoftState         *SoftState // non-nil when leader or role changed
	HardState         *HardState // non-nil when term or vote changed
	Entries           []Entry
	SnapshotChunks    []SnapshotChunk
	Snapshot          *Snapshot
	Messages          []Message
	PersistedMessages []Message
	CommittedEntries  []Entry
	ReadStates        []ReadState
	// Commit is the commit index, no larger than the last entry of this batch. It may be
	// stored lazily (after Entries are durable) and given back in State.Commit at restart.
	Commit uint64
	// StorageErr is set when Storage failed to give back what it holds: the node cannot
	// go on sending it (a damaged disk); the caller should stop.
	StorageErr error
}

// Errors returned to callers of the proposal API. Errors from Step describe bad messages;
// they never leave the node in a changed state.
var (
	ErrNotLeader        = errors.New("not the leader")
	ErrTransferring     = errors.New("leadership transfer in progress")
	ErrMembershipChange = errors.New("a membership change is already in progress")
	ErrCompacted        = errors.New("index already compacted")
	ErrUnavailable      = errors.New("index not available")
)
