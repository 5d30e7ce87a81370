package client

import (
	"encoding/binary"
	"errors"
	"fmt"

	"lite-raft/internal/wire"
)

// Frame types on an sshrpc stream to an agent.
const (
	FrameRaft    uint8 = 1 // one-way: an encoded raftcore.Message between agents
	FrameRequest uint8 = 2 // request/response: a Request, answered by a Response
	// FrameVersion is one-way, sent by an agent first on each stream it opens to a peer:
	// a Version. Builds from before it ignore it (they ignore every frame type they do
	// not know), so a peer that never sent one runs such a build.
	FrameVersion uint8 = 3
)

// Op is the verb of a request.
type Op uint8

const (
	OpGet Op = iota + 1
	OpList
	OpSet
	OpUnset
	OpIfSet
	OpNoop
	OpStatus
	// OpAddMember starts add-member Host, which the leader's agent carries out to the end
	// (boot over ssh, learner, caught up, voter) even if the client goes away; the answer
	// is a ChangeStatus (JSON) at once.
	OpAddMember
	// OpChangeWait answers with the ChangeStatus of Host's change once it has more steps
	// than Args (a decimal count) or is done, or at the deadline as it is.
	OpChangeWait
	OpDelMember // del-member Host, carried out by the leader's agent like OpAddMember
	OpTransfer
	_         // 12 was run-on-host, now done by the leader's agent itself
	OpWatch   // answer when Key no longer holds CondValue (or at the deadline), from local state
	OpCreate  // set Key to Value if it does not exist
	OpIfUnset // remove Key if "Key Cond CondValue" holds
	// OpSetLease sets Key to Value under a new lease of Args milliseconds; the answer's
	// Value is the lease's number.
	OpSetLease
	// OpLeaseKeep renews lease Args (a number), or Key's lease; answered (JSON: lease,
	// ttl_ms) once the leader confirmed it still leads.
	OpLeaseKeep
	OpRevoke // ends lease Args (a number), or Key's lease: its keys go, its lock places too
	// OpLockAcquire queues for lock Key with a new lease of Args milliseconds, Host naming
	// the holder; the answer's JSON is a kvstore.LockPlace.
	OpLockAcquire
	// OpLockWait answers (a LockPlace) once lease Args holds lock Key, or at the deadline
	// as it stands; 9 if the lease is no longer in the queue.
	OpLockWait
	OpLocks // every held lock: holder, generation, queue (JSON)
	// OpWatchLog answers the changes to Key (or below it, with a trailing slash) after
	// log index Args ("": from now), from this member's applied state, once there are
	// some or at the deadline; Value holds them (core.EncodeChanges), Msg the index they
	// run through (the next watch asks from there). CodeCompacted if this member no
	// longer keeps the changes after Args.
	OpWatchLog
	// OpSnapshot (snapshot save) has the leader write a snapshot of the state as of a read
	// index to a file of its own; the answer is a BackupInfo (JSON) naming it
	OpSnapshot
	OpSnapshotRead // a piece of that file: Host holds it, Args "ID OFFSET" (at its end: release it), or "ID": how it stands
	opEnd
)

var opNames = [...]string{"", "get", "list", "set", "unset", "if", "noop", "status", "add-member",
	"change-wait", "del-member", "transfer-leader", "", "watch-value", "create", "if-unset",
	"set --ttl", "lease keep", "lease revoke", "lock", "lock-wait", "locks", "watch",
	"snapshot", "snapshot-read"}

func (o Op) String() string {
	if o > 0 && o < opEnd && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Exit codes of the original (SPEC.md); the command line exits with them.
const (
	CodeOK           = 0
	CodeFailed       = 1 // includes "leader is stale. try again."
	CodeTimeout      = 2 // the outcome is unknown: the write may or may not have been applied
	CodeAppendFailed = 3
	CodeNotLeader    = 4
	CodeAlreadyHolds = 5
	CodeCondFalse    = 6
	CodeNoKey        = 7
	CodeNoDir        = 8
	CodeNotFound     = 9
	CodeUsage        = 10
	CodeNoLeader     = 11
	CodeNoServer     = 12
	CodeExists       = 13 // create: KEY already exists
	// CodeUpgrade: a member does not understand this kind of command yet (it runs an
	// older build): nothing was appended, upgrade it first
	CodeUpgrade = 14
	// lock: --wait ran out before the lock was ours (our place was given up), and the
	// lock was lost (our lease ran out: COMMAND, if started, was stopped)
	CodeLockTimeout = 15
	CodeLockLost    = 16
	// CodeCompacted: watch --from N: the changes after N are no longer kept
	CodeCompacted = 17
)

// Request is one client request.
type Request struct {
	Op        Op
	Key       string
	Value     []byte
	Cond      string
	CondValue []byte
	Host      string // membership verbs
	Args      string // change-wait: the number of steps the client has seen
	Stale     bool   // read local state, without asking the leader
	ClientID  uint64
	Seq       uint64
	Hops      uint8 // forwards so far; bounded so a confused cluster cannot loop
	TimeoutMs uint32
}

// Response is an agent's answer.
type Response struct {
	Code   int
	Msg    string
	Value  []byte
	Names  []string
	Leader string
	JSON   []byte // status: a JSON document
}

// Encode renders r as: op, then uvarints and length-prefixed fields in a fixed order.
func (r Request) Encode() []byte {
	b := make([]byte, 0, 48+len(r.Key)+len(r.Value)+len(r.CondValue)+len(r.Host)+len(r.Args))
	b = append(b, byte(r.Op), r.Hops)
	var flags byte
	if r.Stale {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, r.ClientID)
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendUvarint(b, uint64(r.TimeoutMs))
	for _, f := range [][]byte{[]byte(r.Key), r.Value, []byte(r.Cond), r.CondValue, []byte(r.Host), []byte(r.Args)} {
		b = wire.AppendBytes(b, f)
	}
	return b
}

// DecodeRequest parses Encode's output (it does not validate keys: the agent does).
func DecodeRequest(b []byte) (Request, error) {
	var r Request
	d := wire.Decoder{B: b}
	r.Op = Op(d.Byte())
	r.Hops = d.Byte()
	flags := d.Byte()
	r.Stale = flags&1 != 0
	r.ClientID, r.Seq = d.Uvarint(), d.Uvarint()
	t := d.Uvarint()
	if t > 1<<32-1 {
		d.Fail(errors.New("timeout out of range"))
	}
	r.TimeoutMs = uint32(t)
	r.Key = string(d.Bytes(2048))
	r.Value = d.Bytes(2 << 20)
	r.Cond = string(d.Bytes(16))
	r.CondValue = d.Bytes(2 << 20)
	r.Host = string(d.Bytes(256))
	r.Args = string(d.Bytes(4096))
	if d.Err == nil && (r.Op == 0 || r.Op >= opEnd || opNames[r.Op] == "") {
		d.Fail(errors.New(fmt.Sprintf("unknown operation %d", r.Op)))
	}
	if d.Err == nil && (flags&^1 != 0 || len(d.B) != 0) {
		d.Fail(errors.New("trailing or unknown fields"))
	}
	if d.Err != nil {
		return Request{}, fmt.Errorf("decode request: %w", d.Err)
	}
	return r, nil
}

// Encode renders a response.
func (r Response) Encode() []byte {
	b := make([]byte, 0, 32+len(r.Msg)+len(r.Value)+len(r.JSON))
	b = binary.AppendUvarint(b, uint64(r.Code))
	b = wire.AppendBytes(b, []byte(r.Msg))
	b = wire.AppendBytes(b, r.Value)
	b = binary.AppendUvarint(b, uint64(len(r.Names)))
	for _, n := range r.Names {
		b = wire.AppendBytes(b, []byte(n))
	}
	b = wire.AppendBytes(b, []byte(r.Leader))
	return wire.AppendBytes(b, r.JSON)
}

// DecodeResponse parses Response.Encode's output.
func DecodeResponse(b []byte) (Response, error) {
	var r Response
	d := wire.Decoder{B: b}
	code := d.Uvarint()
	if code > 255 {
		d.Fail(errors.New("code out of range"))
	}
	r.Code = int(code)
	r.Msg = string(d.Bytes(1 << 16))
	r.Value = d.Bytes(2 << 20)
	n := d.Uvarint()
	if d.Err == nil && n > uint64(len(d.B)) {
		d.Fail(errors.New("name count beyond the data"))
	}
	for i := uint64(0); i < n && d.Err == nil; i++ {
		r.Names = append(r.Names, string(d.Bytes(2048)))
	}
	r.Leader = string(d.Bytes(256))
	r.JSON = d.Bytes(16 << 20)
	if d.Err == nil && len(d.B) != 0 {
		d.Fail(errors.New("trailing bytes"))
	}
	if d.Err != nil {
		return Response{}, fmt.Errorf("decode response: %w", d.Err)
	}
	return r, nil
}

// Version is what an agent says of itself to its peers in a FrameVersion.
type Version struct {
	ID       string // the sender's host name
	Commands int    // kvstore.CommandVersion of its build
	Build    string // its build (git describe), for status
}

// Encode renders v as uvarint commands, then length-prefixed id and build.
func (v Version) Encode() []byte {
	b := binary.AppendUvarint(nil, uint64(v.Commands))
	b = wire.AppendBytes(b, []byte(v.ID))
	return wire.AppendBytes(b, []byte(v.Build))
}

// DecodeVersion parses Version.Encode's output. Fields a later build appends are ignored,
// so that it can say more without older builds refusing what it says.
func DecodeVersion(b []byte) (Version, error) {
	var v Version
	d := wire.Decoder{B: b}
	n := d.Uvarint()
	if d.Err == nil && n > 1<<16 {
		d.Fail(errors.New("command version out of range"))
	}
	v.Commands = int(n)
	v.ID = string(d.Bytes(256))
	v.Build = string(d.Bytes(256))
	if d.Err != nil {
		return Version{}, fmt.Errorf("decode version: %w", d.Err)
	}
	return v, nil
}
