package api

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"lite-raft/internal/wire"
)

// The answers' payloads that are more than a value or a list of names: JSON documents
// (status, a membership change, locks, a lock's place, a snapshot save's file) and the
// changes of a watch.

// Status is the JSON document `lite-raft client status --json` prints.
type Status struct {
	ID        string `json:"id"`
	Role      string `json:"role"`
	Term      uint64 `json:"term"`
	Leader    string `json:"leader"`
	Commit    uint64 `json:"commit"`
	Applied   uint64 `json:"applied"`
	LastIndex uint64 `json:"last_index"`
	Snapshot  uint64 `json:"snapshot_index"`
	Members   string `json:"members"`
	// Build is this agent's build and Commands the newest command version it understands.
	Build    string `json:"build"`
	Commands int    `json:"commands"`
	// ElectionTimeoutMs is conf/election_timeout, which tells how long a member may stay
	// silent before it counts as unreachable (lite-raft-client check).
	ElectionTimeoutMs int64          `json:"election_timeout_ms"`
	Nodes             []MemberStatus `json:"nodes,omitempty"`
	// Change is the membership change this leader drives, or drove last.
	Change *ChangeStatus `json:"change,omitempty"`
	// Metrics are what the agent that answered (ID) counted; absent from an agent built
	// before them, which is why a reader must take nil as "not known", never as zeros.
	Metrics *Metrics `json:"metrics,omitempty"`
}

// Metrics are one agent's counters since it started, and the size of what it holds
// (lite-raft-client check --prom writes them for Prometheus).
type Metrics struct {
	// LeaderChanges counts the times this member saw the leader change (to none
	// included: an election in progress is one), since it started.
	LeaderChanges uint64 `json:"leader_changes"`
	// ProposalsFailed counts the writes this agent's own clients sent (not those
	// forwarded to it) answered with a code for which ProposalFailed holds.
	ProposalsFailed uint64 `json:"proposals_failed"`
	// Fsync is the time each durable save of a batch took (log entries, hard state, a
	// snapshot received), Apply the time each batch of committed entries took to apply.
	Fsync Histogram `json:"fsync"`
	Apply Histogram `json:"apply"`
	// DataBytes is the bytes of the keys and values in the state machine, DiskBytes of
	// the Raft files (state, log, snapshots) as last measured (0: not yet).
	DataBytes uint64 `json:"data_bytes"`
	DiskBytes uint64 `json:"disk_bytes,omitempty"`
	// SnapshotBytes is the stored snapshot's size; SnapshotUnixMs when this member
	// stored it (0: not known).
	SnapshotBytes  uint64 `json:"snapshot_bytes"`
	SnapshotUnixMs int64  `json:"snapshot_unix_ms,omitempty"`
}

// Histogram is a latency distribution: Counts[i] observations fell in the bucket whose
// upper bound is Bounds[i] seconds (and above Bounds[i-1]), Counts[len(Bounds)] above
// the last bound. The counts are per bucket, not cumulative: Prometheus' form is made
// from them when written. The bounds travel with the counts so that a reader never
// labels one agent's buckets with another build's bounds.
type Histogram struct {
	Bounds []float64 `json:"le"`
	Counts []uint64  `json:"counts"`
	Sum    float64   `json:"sum_seconds"`
}

// Count is the number of observations.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// LatencyBounds are the buckets' upper bounds (seconds) of the agents' latency
// histograms: from half a millisecond (a write cache's fsync) to 5 s (a disk in trouble).
var LatencyBounds = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// MemberStatus is the leader's view of one member.
type MemberStatus struct {
	Name          string `json:"name"`
	Role          string `json:"role"`
	Match         uint64 `json:"match"`
	Lag           uint64 `json:"lag"`
	State         string `json:"state"`
	LastContactMs int64  `json:"last_contact_ms"`
	// SnapshotBytes of SnapshotSize: how far a snapshot being sent to it is
	SnapshotBytes uint64 `json:"snapshot_bytes,omitempty"`
	SnapshotSize  uint64 `json:"snapshot_size,omitempty"`
	// DataBytes and DiskBytes are the member's sizes as it last said them (Version):
	// its keys and values, and its Raft files on disk (0: not known)
	DataBytes uint64 `json:"data_bytes,omitempty"`
	DiskBytes uint64 `json:"disk_bytes,omitempty"`
	// RTTUs is the round trip of this member's link to it, smoothed, in microseconds (0:
	// not measured: itself, or no keep-alive answered yet)
	RTTUs int64 `json:"rtt_us,omitempty"`
	// Build and Commands are what the member said of itself (empty and 1: a build from
	// before versions, or not heard from since this agent started)
	Build    string `json:"build"`
	Commands int    `json:"commands"`
}

// ChangeStatus is a membership change as the CLI and status see it (JSON).
type ChangeStatus struct {
	ID    string   `json:"id"`
	Op    string   `json:"op"` // add-member or del-member
	Host  string   `json:"host"`
	Steps []string `json:"steps"`
	// Stopping is set while the change stops lite-raft on Host (the last step of
	// del-member): a CLI on Host then loses its agent, which is the step working.
	Stopping bool   `json:"stopping,omitempty"`
	Done     bool   `json:"done"`
	Code     int    `json:"code"` // exit code once done
	Msg      string `json:"msg,omitempty"`
}

// LockStatus is one lock in `locks`.
type LockStatus struct {
	Name       string `json:"name"`
	Generation uint64 `json:"generation"`
	Holder     string `json:"holder"`
	Lease      uint64 `json:"lease"`
	// TTLMs is the holder's lease time left, known on the leader only (-1 elsewhere)
	TTLMs   int64    `json:"ttl_ms"`
	Since   uint64   `json:"since_index"`
	Waiting []string `json:"waiting"`
}

// BackupInfo is the answer to a snapshot request (JSON): the file the holder wrote and
// what it holds.
type BackupInfo struct {
	ID      string `json:"id"`
	Host    string `json:"host"` // the agent holding the file: snapshot-read asks there
	Index   uint64 `json:"index"`
	Term    uint64 `json:"term"`
	Members string `json:"members"`
	Keys    int    `json:"keys"`
	// Size is the whole file's, header included; DataSize and Checksum (CRC-32C) are the
	// data's, as the file's header gives them.
	Size     uint64 `json:"size"`
	DataSize uint64 `json:"data_size"`
	Checksum uint32 `json:"checksum"`
	// Written is false while the file is being written: its sizes and checksum are not
	// known yet; ask again (snapshot-read with the ID alone).
	Written bool `json:"written"`
}

// LockPlace is OpLockAcquire's result (JSON in Result.Value): the lease granted and
// where it stands. Position 0 holds the lock, with Generation its fencing number. Token
// is the lease's token, which its revoke must present: in the acquire's answer only
// (never in a lock-wait's), and 0 from a cluster with a member older than command
// version 4 (its lease needs none).
type LockPlace struct {
	Lease      uint64 `json:"lease"`
	Position   int    `json:"position"`
	Generation uint64 `json:"generation"`
	Token      uint64 `json:"token,omitempty"`
}

// DirEntries is OpListValues' answer (JSON in Response.JSON): a folder as it stood at
// one applied index, read in one go so that a reader (a package monitor reading
// packages/NAME/owner, state, tick, ...) never sees half of one write and half of the
// next. Keys are the keys directly under Dir with their values (JSON renders the bytes
// in base64); Dirs are the names of its subfolders, whose keys are not read (ask for
// each); Counters are the counters whose names lie directly under Dir, as keys would
// (failover's package generation, counter packages/NAME/generation, comes with folder
// packages/NAME): counters live apart from the keys, and a takeover decides on both.
type DirEntries struct {
	Dir      string       `json:"dir"`
	Index    uint64       `json:"index"` // the applied index the folder was read at
	Keys     []DirKey     `json:"keys"`
	Dirs     []string     `json:"dirs,omitempty"`
	Counters []DirCounter `json:"counters,omitempty"`
}

// DirKey is one key of a folder and its value.
type DirKey struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// DirCounter is one counter of a folder and its value.
type DirCounter struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// Value is the value of key (a full key) and whether d holds it.
func (d DirEntries) Value(key string) ([]byte, bool) {
	for _, k := range d.Keys {
		if k.Key == key {
			return k.Value, true
		}
	}
	return nil, false
}

// Counter is the value of counter name (0: not in d, never raised).
func (d DirEntries) Counter(name string) uint64 {
	for _, c := range d.Counters {
		if c.Name == name {
			return c.Value
		}
	}
	return 0
}

// PrefixPage is a page of OpGetPrefix's answer (JSON in Response.JSON): keys under Prefix
// (at any depth) in key order, from after the request's After, with their values, read at
// one applied index; Next is the key to ask the next page after ("" when this page ends
// the prefix). A page holds at most MaxDirAnswer of JSON, and always one key at least.
type PrefixPage struct {
	Prefix string   `json:"prefix"`
	Index  uint64   `json:"index"`
	Keys   []DirKey `json:"keys"`
	Next   string   `json:"next,omitempty"`
}

// MaxDirAnswer bounds OpListValues' answer: half of sshrpc's frame limit (8 MiB), so a
// forwarded answer, which crosses two hops in a response of its own, fits with room to
// spare. A folder whose answer would be larger is refused (CodeFailed), never cut short:
// a reader could not tell a cut answer from the whole.
const MaxDirAnswer = 4 << 20

// DirAnswerSize is what key and value add to a DirEntries' JSON, or a little more:
// base64 of the value, the key escaped at worst, and the field names.
func DirAnswerSize(key string, value []byte) int {
	return 6*len(key) + (len(value)+2)/3*4 + 32
}

// EncodeDirEntries renders d for an answer.
func EncodeDirEntries(d DirEntries) ([]byte, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode folder %s: %w", d.Dir, err)
	}
	return b, nil
}

// DecodeDirEntries parses EncodeDirEntries' output.
func DecodeDirEntries(b []byte) (DirEntries, error) {
	var d DirEntries
	if err := json.Unmarshal(b, &d); err != nil {
		return DirEntries{}, fmt.Errorf("decode folder answer: %w", err)
	}
	return d, nil
}

// Change is one key's change at a log index.
type Change struct {
	Index   uint64
	Key     string
	Value   []byte // shared with the store, never written to
	Deleted bool
	// Prefix: every key under folder Key (which ends in "/") was deleted, by one unset
	// --prefix (Deleted is set too): one change, not one a key
	Prefix bool
}

// EncodeChanges renders changes for a watch answer: a count, then for each the index,
// the key, a deleted flag and the value.
func EncodeChanges(chs []Change) []byte {
	b := binary.AppendUvarint(nil, uint64(len(chs)))
	for _, ch := range chs {
		b = binary.AppendUvarint(b, ch.Index)
		b = wire.AppendBytes(b, []byte(ch.Key))
		del := byte(0)
		switch {
		case ch.Prefix:
			del = 2 // builds before unset --prefix read it as a set of the folder's name
		case ch.Deleted:
			del = 1
		}
		b = append(b, del)
		b = wire.AppendBytes(b, ch.Value)
	}
	return b
}

// DecodeChanges parses EncodeChanges' output.
func DecodeChanges(b []byte) ([]Change, error) {
	d := wire.Decoder{B: b}
	n := d.Uvarint()
	if d.Err == nil && n > uint64(len(b)) {
		d.Fail(fmt.Errorf("%d changes in %d bytes", n, len(b)))
	}
	var out []Change
	for i := uint64(0); i < n && d.Err == nil; i++ {
		ch := Change{Index: d.Uvarint(), Key: d.String(MaxKeyLen)}
		switch d.Byte() {
		case 1:
			ch.Deleted = true
		case 2:
			ch.Deleted, ch.Prefix = true, true
		}
		ch.Value = d.Bytes(MaxValueLen)
		out = append(out, ch)
	}
	d.End()
	if d.Err != nil {
		return nil, fmt.Errorf("decode changes: %w", d.Err)
	}
	return out, nil
}
