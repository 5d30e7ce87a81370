package api

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

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

// Request is one client request. Besides Key, Value and the condition, an op carries
// the typed arguments its catalogue entry names (Host, Arg); the others stay empty.
type Request struct {
	Op        Op
	Key       string
	Value     []byte
	Cond      string
	CondValue []byte

	Member string // HostMember: a member (membership verbs), the member holding a file (snapshot-read)
	Holder string // HostHolder: who asks for a lock

	Steps    uint64 // ArgSteps: change-wait answers once the change has more steps than this
	TTLMs    uint64 // ArgTTL: the new lease's time to live
	Lease    uint64 // ArgLease: the lease (0 with a key: the key's lease)
	From     uint64 // ArgFrom: the changes after this log index, if FromSet ...
	FromSet  bool   // ... else from now
	Backup   string // ArgPiece: the snapshot save's file (its ID)
	Offset   uint64 // ArgPiece: where the piece starts ...
	Describe bool   // ... or: how the file stands, no piece

	// FenceName and FenceGen make a write conditional on lock FenceName being held at
	// generation FenceGen when it is applied (OpInfo.Fence)
	FenceName string
	FenceGen  uint64
	// Token is a lease's token, as its lock's acquire returned it (OpInfo.Token): a
	// revoke of a lease that has one must present it
	Token uint64
	// Expect is the value a counter must stand at for counter raise (ArgExpect)
	Expect uint64
	// After is the key a page of get --prefix starts after (ArgAfter; "": the first)
	After string
	// Txn is a transaction's conditions and actions (OpInfo.Txn)
	Txn Txn
	// Batch is an atomic batch's writes (OpInfo.Batch)
	Batch []BatchOp

	Stale    bool // read local state, without asking the leader
	ClientID uint64
	Seq      uint64
	// FirstSentMs is when the client first sent this ClientID and Seq (its wall clock,
	// Unix milliseconds; 0: not said), kept across its retries: a write the state
	// machine no longer holds a session for is a late retry, not a new client, once this
	// is older than api.SessionHorizonMs (FirstSentRequests)
	FirstSentMs uint64
	Hops        uint8 // forwards so far; bounded so a confused cluster cannot loop
	TimeoutMs   uint32
}

// Encode renders r as: op, hops, flags, uvarints and length-prefixed fields in a fixed
// order. The typed arguments travel in the two text fields every build has, host and
// args, as the builds before them wrote those (TestGoldenEncodings keeps the bytes).
func (r Request) Encode() []byte {
	host, args := r.hostArgs()
	b := make([]byte, 0, 48+len(r.Key)+len(r.Value)+len(r.CondValue)+len(host)+len(args))
	b = append(b, byte(r.Op), r.Hops)
	var flags byte
	if r.Stale {
		flags |= flagStale
	}
	if r.FenceName != "" {
		flags |= flagFence
	}
	if r.Token != 0 {
		flags |= flagToken
	}
	if !r.Txn.empty() {
		flags |= flagTxn
	}
	if r.FirstSentMs != 0 {
		flags |= flagFirstSent
	}
	if len(r.Batch) > 0 {
		flags |= flagBatch
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, r.ClientID)
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendUvarint(b, uint64(r.TimeoutMs))
	b = wire.AppendString(b, r.Key)
	b = wire.AppendBytes(b, r.Value)
	b = wire.AppendString(b, r.Cond)
	b = wire.AppendBytes(b, r.CondValue)
	b = wire.AppendString(b, host)
	b = wire.AppendString(b, args)
	if r.FenceName != "" {
		// after the fields every build reads: one that does not know the fence refuses
		// the flag as a field it does not know (14), never takes the write unfenced
		b = wire.AppendString(b, r.FenceName)
		b = binary.AppendUvarint(b, r.FenceGen)
	}
	if r.Token != 0 {
		// after the fence, for the same reason: a build that does not know tokens
		// refuses the request (14), never revokes without checking one
		b = binary.AppendUvarint(b, r.Token)
	}
	if !r.Txn.empty() {
		// after the token: a build that does not know transactions refuses the flag
		b = AppendTxn(b, r.Txn)
	}
	if r.FirstSentMs != 0 {
		// after the transaction: a build that does not know the field refuses the flag
		// (14), and a member drops it before it forwards to one (the field is advice)
		b = binary.AppendUvarint(b, r.FirstSentMs)
	}
	if len(r.Batch) > 0 {
		// after the first-send time: a build that does not know batches refuses the flag
		b = AppendBatch(b, r.Batch)
	}
	return b
}

// The flags byte: what a request has beyond the fields every build reads.
const (
	flagStale byte = 1
	flagFence byte = 2 // a fence follows the args (request version 3)
	flagToken byte = 4 // a token follows the fence (request version 4)
	flagTxn   byte = 8 // a transaction follows the token (request version 5)
	// the first-send time follows the transaction (request version 7)
	flagFirstSent byte = 16
	flagBatch     byte = 32 // an atomic batch follows the first-send time (request version 9)
	flagsKnown         = flagStale | flagFence | flagToken | flagTxn | flagFirstSent | flagBatch
)

// hostArgs renders the typed arguments as the host and args text fields.
func (r Request) hostArgs() (host, args string) {
	info := byOp[r.Op]
	if info == nil {
		return "", ""
	}
	switch info.Host {
	case HostMember:
		host = r.Member
	case HostHolder:
		host = r.Holder
	}
	num := func(n uint64) string { return strconv.FormatUint(n, 10) }
	switch info.Arg {
	case ArgSteps:
		args = num(r.Steps)
	case ArgTTL:
		args = num(r.TTLMs)
	case ArgLease:
		if r.Lease != 0 || info.Key != KeyOrLease {
			args = num(r.Lease)
		}
	case ArgFrom:
		if r.FromSet {
			args = num(r.From)
		}
	case ArgPiece:
		args = r.Backup
		if !r.Describe {
			args += " " + num(r.Offset)
		}
	case ArgExpect:
		args = num(r.Expect)
	case ArgAfter:
		args = r.After
	}
	return host, args
}

// setHostArgs parses the host and args text fields into r's typed arguments.
func (r *Request) setHostArgs(info *OpInfo, host, args string) error {
	if info.Host == HostNone && host != "" || info.Arg == ArgNone && args != "" {
		return ErrUnknownField
	}
	switch info.Host {
	case HostMember:
		r.Member = host
	case HostHolder:
		r.Holder = host
	}
	num := func(what, s string) (uint64, error) {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s %q: not a number", what, s)
		}
		return n, nil
	}
	var err error
	switch info.Arg {
	case ArgSteps:
		if args != "" { // "": none seen (the builds before typed arguments sent "0")
			r.Steps, err = num("steps", args)
		}
	case ArgTTL:
		r.TTLMs, err = num("ttl in milliseconds", args)
	case ArgLease:
		if args != "" || info.Key != KeyOrLease {
			r.Lease, err = num("lease", args)
		}
	case ArgFrom:
		r.FromSet = args != ""
		if r.FromSet {
			r.From, err = num("log index", args)
		}
	case ArgPiece:
		id, off, ok := strings.Cut(args, " ")
		r.Backup, r.Describe = id, !ok
		if ok {
			r.Offset, err = num("offset", off)
		}
	case ArgExpect:
		r.Expect, err = num("expected value", args)
	case ArgAfter:
		r.After = args
	}
	return err
}

// ErrUnknownOp and ErrUnknownField are the errors of a request that this build cannot
// read because a newer one wrote it: an agent answers CodeUpgrade ("upgrade me first"),
// not CodeUsage.
var (
	ErrUnknownOp    = errors.New("an operation this build does not know")
	ErrUnknownField = errors.New("a field this build does not know")
)

// DecodeRequest parses Encode's output. It checks the request's shape, not its keys:
// Validate does. An op or a field this build does not know is an error matching
// ErrUnknownOp or ErrUnknownField: an older build than the sender's.
func DecodeRequest(b []byte) (Request, error) {
	var r Request
	d := wire.Decoder{B: b}
	r.Op = Op(d.Byte())
	r.Hops = d.Byte()
	flags := d.Byte()
	r.Stale = flags&flagStale != 0
	r.ClientID, r.Seq = d.Uvarint(), d.Uvarint()
	t := d.Uvarint()
	if t > 1<<32-1 {
		d.Fail(errors.New("timeout out of range"))
	}
	r.TimeoutMs = uint32(t)
	r.Key = d.String(2048)
	r.Value = d.Bytes(2 << 20)
	r.Cond = d.String(16)
	r.CondValue = d.Bytes(2 << 20)
	host := d.String(256)
	args := d.String(4096)
	if flags&flagFence != 0 {
		r.FenceName = d.String(MaxKeyLen)
		r.FenceGen = d.Uvarint()
		if d.Err == nil && r.FenceName == "" {
			d.Fail(errors.New("a fence without a lock name"))
		}
	}
	if flags&flagToken != 0 {
		r.Token = d.Uvarint()
		if d.Err == nil && r.Token == 0 {
			d.Fail(errors.New("a token flag without a token"))
		}
	}
	if flags&flagTxn != 0 {
		r.Txn = ReadTxn(&d)
		if d.Err == nil && r.Txn.empty() {
			d.Fail(errors.New("a txn flag without a transaction"))
		}
	}
	if flags&flagFirstSent != 0 {
		r.FirstSentMs = d.Uvarint()
		if d.Err == nil && r.FirstSentMs == 0 {
			d.Fail(errors.New("a first-send flag without a time"))
		}
	}
	if flags&flagBatch != 0 {
		r.Batch = ReadBatch(&d)
		if d.Err == nil && len(r.Batch) == 0 {
			d.Fail(errors.New("a batch flag without a batch"))
		}
	}
	info := byOp[r.Op]
	switch {
	case d.Err != nil:
	case info == nil:
		d.Fail(fmt.Errorf("%w (%d)", ErrUnknownOp, r.Op))
	case flags&^flagsKnown != 0 || len(d.B) != 0 || (r.FenceName != "" && !info.Fence) || (r.Token != 0 && !info.Token) || (!r.Txn.empty() && !info.Txn) || (len(r.Batch) > 0 && !info.Batch):
		// a later build's fields follow the ones we know, or set a flag we do not
		d.Fail(ErrUnknownField)
	default:
		if err := r.setHostArgs(info, host, args); err != nil {
			d.Fail(fmt.Errorf("%s: %w", r.Op, err))
		}
	}
	if d.Err != nil {
		return Request{}, fmt.Errorf("decode request: %w", d.Err)
	}
	return r, nil
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
	Commands int    // CommandVersion of its build
	Build    string // its build (git describe), for status
	// Requests is RequestVersion of its build; 0 from a build from before request
	// versions, which understands version 1 (RequestsOr1)
	Requests int
	// DataBytes and DiskBytes are the sizes of its state machine's keys and values and
	// of its Raft files, as it last measured them: an agent says itself again every
	// AnnounceEvery, so that the leader's status shows every member's (0: not said, or
	// a build from before sizes).
	DataBytes, DiskBytes uint64
}

// AnnounceEveryMs is how often an agent says its Version again to its peers, with its
// sizes measured anew.
const AnnounceEveryMs = 10_000

// WithoutSizes is v as a build's versions go: what it understands, not how big it is.
func (v Version) WithoutSizes() Version {
	v.DataBytes, v.DiskBytes = 0, 0
	return v
}

// RequestsOr1 is the request version v says it understands.
func (v Version) RequestsOr1() int { return max(v.Requests, 1) }

// Encode renders v as uvarint commands, length-prefixed id and build, then uvarint
// requests, data bytes and disk bytes (which builds before them ignore, as they ignore
// whatever follows what they know).
func (v Version) Encode() []byte {
	b := binary.AppendUvarint(nil, uint64(v.Commands))
	b = wire.AppendBytes(b, []byte(v.ID))
	b = wire.AppendBytes(b, []byte(v.Build))
	b = binary.AppendUvarint(b, uint64(v.Requests))
	b = binary.AppendUvarint(b, v.DataBytes)
	return binary.AppendUvarint(b, v.DiskBytes)
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
	if d.Err == nil && len(d.B) > 0 {
		if r := d.Uvarint(); r <= 1<<16 {
			v.Requests = int(r)
		}
	}
	if d.Err == nil && len(d.B) > 0 {
		v.DataBytes = d.Uvarint()
	}
	if d.Err == nil && len(d.B) > 0 {
		v.DiskBytes = d.Uvarint()
	}
	if d.Err != nil {
		return Version{}, fmt.Errorf("decode version: %w", d.Err)
	}
	return v, nil
}
