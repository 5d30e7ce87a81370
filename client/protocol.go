package client

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Frame types on an sshrpc stream to an agent.
const (
	FrameRaft    uint8 = 1 // one-way: an encoded raftcore.Message between agents
	FrameRequest uint8 = 2 // request/response: a Request, answered by a Response
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
	OpAddLearner // membership steps of add-member/del-member, run by the leader
	OpPromote
	OpRemove
	OpTransfer
	OpRunOnHost // run a lite-raft verb on another host over ssh (boot --join, stop)
	OpWatch     // answer when Key no longer holds CondValue (or at the deadline), from local state
	opEnd
)

var opNames = [...]string{"", "get", "list", "set", "unset", "if", "noop", "status", "add-learner",
	"promote", "remove", "transfer-leader", "run-on-host", "watch"}

func (o Op) String() string {
	if o > 0 && o < opEnd {
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
)

// Request is one client request.
type Request struct {
	Op        Op
	Key       string
	Value     []byte
	Cond      string
	CondValue []byte
	Host      string // membership and run-on-host verbs
	Args      string // run-on-host: the lite-raft arguments to run there
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
		b = appendBytes(b, f)
	}
	return b
}

// DecodeRequest parses Encode's output (it does not validate keys: the agent does).
func DecodeRequest(b []byte) (Request, error) {
	var r Request
	d := decoder{b: b}
	r.Op = Op(d.byte())
	r.Hops = d.byte()
	flags := d.byte()
	r.Stale = flags&1 != 0
	r.ClientID, r.Seq = d.uvarint(), d.uvarint()
	t := d.uvarint()
	if t > 1<<32-1 {
		d.fail("timeout out of range")
	}
	r.TimeoutMs = uint32(t)
	r.Key = string(d.bytes(2048))
	r.Value = d.bytes(2 << 20)
	r.Cond = string(d.bytes(16))
	r.CondValue = d.bytes(2 << 20)
	r.Host = string(d.bytes(256))
	r.Args = string(d.bytes(4096))
	if d.err == nil && (r.Op == 0 || r.Op >= opEnd) {
		d.fail(fmt.Sprintf("unknown operation %d", r.Op))
	}
	if d.err == nil && (flags&^1 != 0 || len(d.b) != 0) {
		d.fail("trailing or unknown fields")
	}
	if d.err != nil {
		return Request{}, fmt.Errorf("decode request: %w", d.err)
	}
	return r, nil
}

// Encode renders a response.
func (r Response) Encode() []byte {
	b := make([]byte, 0, 32+len(r.Msg)+len(r.Value)+len(r.JSON))
	b = binary.AppendUvarint(b, uint64(r.Code))
	b = appendBytes(b, []byte(r.Msg))
	b = appendBytes(b, r.Value)
	b = binary.AppendUvarint(b, uint64(len(r.Names)))
	for _, n := range r.Names {
		b = appendBytes(b, []byte(n))
	}
	b = appendBytes(b, []byte(r.Leader))
	return appendBytes(b, r.JSON)
}

// DecodeResponse parses Response.Encode's output.
func DecodeResponse(b []byte) (Response, error) {
	var r Response
	d := decoder{b: b}
	code := d.uvarint()
	if code > 255 {
		d.fail("code out of range")
	}
	r.Code = int(code)
	r.Msg = string(d.bytes(1 << 16))
	r.Value = d.bytes(2 << 20)
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("name count beyond the data")
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		r.Names = append(r.Names, string(d.bytes(2048)))
	}
	r.Leader = string(d.bytes(256))
	r.JSON = d.bytes(16 << 20)
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return Response{}, fmt.Errorf("decode response: %w", d.err)
	}
	return r, nil
}

func appendBytes(b, f []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(f)))
	return append(b, f...)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail("cut short")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("cut short")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(limit int) []byte {
	l := d.uvarint()
	if d.err != nil {
		return nil
	}
	if l > uint64(limit) || l > uint64(len(d.b)) {
		d.fail(fmt.Sprintf("field of %d bytes cut short or over the limit", l))
		return nil
	}
	if l == 0 {
		return nil
	}
	v := d.b[:l:l]
	d.b = d.b[l:]
	return v
}
