package api

import "fmt"

// Op is the verb of a request, as numbered on the wire. Numbers are never reused.
type Op uint8

const (
	OpGet Op = iota + 1
	OpList
	OpSet
	OpUnset
	OpIfSet
	OpNoop
	OpStatus
	OpAddMember
	OpChangeWait
	OpDelMember
	OpTransfer
	_ // 12 was run-on-host, now done by the leader's agent itself
	OpWatch
	OpCreate
	OpIfUnset
	OpSetLease
	OpLeaseKeep
	OpRevoke
	OpLockAcquire
	OpLockWait
	OpLocks
	OpWatchLog
	OpSnapshot
	OpSnapshotRead
	OpExists
	OpCounterRaise
	OpCounter
	OpListValues
	OpTxn
	OpGetPrefix
	OpUnsetPrefix
	OpBatch
)

// Kind is how an agent serves an op. Its zero value is no kind: an entry must say.
type Kind uint8

const (
	_ Kind = iota
	// Read: answered from the replicated state, at a read index the leader confirmed
	// (or from this member's state with --stale where the op allows it). Never exits 2.
	Read
	// Write: may change the replicated state or the membership; an unknown outcome exits 2.
	Write
	// Held: the agent holds the request until something happens or its time runs out.
	Held
	// Local: answered by the agent asked, from its own state or files.
	Local
)

func (k Kind) String() string {
	switch k {
	case Read:
		return "read"
	case Write:
		return "write"
	case Held:
		return "held"
	case Local:
		return "local"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Access is the least a key restricted by ssh-command must be allowed to run an op.
type Access uint8

const (
	_           Access = iota
	AccessRead         // reads the state: what a monitoring host's key may do
	AccessWrite        // changes keys, leases and locks
	AccessAdmin        // changes the cluster or copies all of it: membership, leadership, backups
)

// KeyShape is what an op's Key may hold.
type KeyShape uint8

const (
	KeyNone     KeyShape = iota
	KeyRequired          // a key (ValidateKey)
	KeyDir               // a folder: a key, or "" for the top
	KeyPattern           // a key, or a folder with a trailing slash ("/": everything)
	KeyOrLease           // a key, or none when Lease names the lease
)

// Arg is the typed argument an op carries besides its key and value.
type Arg uint8

const (
	ArgNone   Arg = iota
	ArgSteps      // Steps: the steps of a membership change the client has seen
	ArgTTL        // TTLMs: a new lease's time to live
	ArgLease      // Lease: a lease number (with KeyOrLease, 0 means the key's lease)
	ArgFrom       // From (if FromSet; else now): where a watch starts
	ArgPiece      // Backup, Offset, Describe: a piece of a snapshot save's file
	ArgExpect     // Expect: the value a counter must stand at (0: never raised)
	ArgAfter      // After: the key a page starts after ("": the first page)
)

// HostArg is what an op's host field names.
type HostArg uint8

const (
	HostNone   HostArg = iota
	HostMember         // Member: a member, or the member holding a file
	HostHolder         // Holder: who asks for a lock (user@host pid), for locks' output
)

// StaleRule is what --stale does to an op.
type StaleRule uint8

const (
	StaleIgnored StaleRule = iota // nothing: writes, and requests served where they must be
	StaleLocal                    // answered from this member's state, without the leader
	StaleRefused                  // refused: only the leader can answer it
)

// OpInfo declares one op: everything an agent or a client needs to know of it.
type OpInfo struct {
	Op   Op
	Name string // as the command line and the logs name it
	Kind Kind
	// Leader: served by the leader, to which any other member forwards it.
	Leader bool
	// Command is the state machine command it proposes (kvstore.Op), 0 if none, and
	// Commands the command version that brought that command: the leader proposes it
	// only once every member has said it understands that version.
	Command  uint8
	Commands int
	// Requests is the request version that brought the op (or a field it carries): a
	// member forwards it only to a peer that said it understands that version.
	Requests int
	Access   Access
	// Verb is the word of ssh-command --allow that lets a restricted key send it: the
	// command-line verb that sends it (alternatives separated by commas).
	Verb  string
	Stale StaleRule
	// The request's shape: which fields it carries; the others must be empty.
	Key       KeyShape
	Value     bool // Value
	Cond      bool // Cond (a test(1) operator) and CondValue
	CondValue bool // CondValue alone (watch-value: the value it waits to change)
	Fence     bool // FenceName and FenceGen may make it conditional on a lock's generation
	Token     bool // Token: the lease's token, which its acquire returned (TokenRequests)
	Txn       bool // Txn: a transaction's conditions and actions (api.Txn)
	Batch     bool // Batch: an atomic batch's writes (api.BatchOp)
	Host      HostArg
	Arg       Arg
}

// catalogue is every op, declared once; IsWrite, names, validation, the core's routing
// and the version gates are all read from it. TestCatalogue fails on a half-declared entry.
var catalogue = [...]OpInfo{
	{Op: OpGet, Name: "get", Kind: Read, Leader: true, Requests: 1, Verb: "get", Access: AccessRead, Stale: StaleLocal, Key: KeyRequired},
	{Op: OpExists, Name: "exists", Kind: Read, Leader: true, Requests: 2, Verb: "exists", Access: AccessRead, Stale: StaleLocal, Key: KeyRequired},
	{Op: OpList, Name: "list", Kind: Read, Leader: true, Requests: 1, Verb: "list", Access: AccessRead, Stale: StaleLocal, Key: KeyDir},
	{Op: OpLocks, Name: "locks", Kind: Read, Leader: true, Requests: 1, Verb: "locks", Access: AccessRead, Stale: StaleLocal},
	{Op: OpStatus, Name: "status", Kind: Read, Leader: true, Requests: 1, Verb: "status", Access: AccessRead, Stale: StaleLocal},
	{Op: OpLeaseKeep, Name: "lease keep", Kind: Read, Leader: true, Requests: 1, Verb: "lease,lock,set", Access: AccessWrite, Stale: StaleRefused, Key: KeyOrLease, Arg: ArgLease, Token: true},
	{Op: OpCounter, Name: "counter", Kind: Read, Leader: true, Requests: 4, Verb: "pkg", Access: AccessRead, Stale: StaleLocal, Key: KeyRequired},
	{Op: OpListValues, Name: "list --values", Kind: Read, Leader: true, Requests: 5, Verb: "list", Access: AccessRead, Stale: StaleLocal, Key: KeyDir},
	{Op: OpGetPrefix, Name: "get --prefix", Kind: Read, Leader: true, Requests: 8, Verb: "get,list", Access: AccessRead, Stale: StaleLocal, Key: KeyDir, Arg: ArgAfter},
	{Op: OpSnapshot, Name: "snapshot", Kind: Read, Leader: true, Requests: 1, Verb: "snapshot", Access: AccessAdmin, Stale: StaleLocal},

	{Op: OpSet, Name: "set", Kind: Write, Leader: true, Command: 1, Commands: 1, Requests: 1, Verb: "set", Access: AccessWrite, Key: KeyRequired, Value: true, Fence: true},
	{Op: OpUnset, Name: "unset", Kind: Write, Leader: true, Command: 2, Commands: 1, Requests: 1, Verb: "unset", Access: AccessWrite, Key: KeyRequired, Fence: true},
	{Op: OpIfSet, Name: "if", Kind: Write, Leader: true, Command: 3, Commands: 1, Requests: 1, Verb: "if", Access: AccessWrite, Key: KeyRequired, Value: true, Cond: true, Fence: true},
	{Op: OpUnsetPrefix, Name: "unset --prefix", Kind: Write, Leader: true, Command: 17, Commands: 8, Requests: 8, Verb: "unset", Access: AccessWrite, Key: KeyRequired},
	{Op: OpBatch, Name: "batch --atomic", Kind: Write, Leader: true, Command: 18, Commands: 9, Requests: 9, Verb: "batch", Access: AccessWrite, Batch: true},
	{Op: OpNoop, Name: "noop", Kind: Write, Leader: true, Command: 4, Commands: 1, Requests: 1, Verb: "noop", Access: AccessWrite},
	{Op: OpCreate, Name: "create", Kind: Write, Leader: true, Command: 5, Commands: 2, Requests: 1, Verb: "create", Access: AccessWrite, Key: KeyRequired, Value: true, Fence: true},
	{Op: OpIfUnset, Name: "if-unset", Kind: Write, Leader: true, Command: 6, Commands: 2, Requests: 1, Verb: "if", Access: AccessWrite, Key: KeyRequired, Cond: true, Fence: true},
	{Op: OpSetLease, Name: "set --ttl", Kind: Write, Leader: true, Command: 7, Commands: 2, Requests: 1, Verb: "set", Access: AccessWrite, Key: KeyRequired, Value: true, Arg: ArgTTL},
	{Op: OpRevoke, Name: "lease revoke", Kind: Write, Leader: true, Command: 8, Commands: 2, Requests: 1, Verb: "lease,lock", Access: AccessWrite, Key: KeyOrLease, Arg: ArgLease, Token: true},
	{Op: OpLockAcquire, Name: "lock", Kind: Write, Leader: true, Command: 9, Commands: 2, Requests: 1, Verb: "lock", Access: AccessWrite, Key: KeyRequired, Host: HostHolder, Arg: ArgTTL},
	{Op: OpCounterRaise, Name: "counter raise", Kind: Write, Leader: true, Command: 13, Commands: 4, Requests: 4, Verb: "pkg", Access: AccessWrite, Key: KeyRequired, Arg: ArgExpect},
	{Op: OpTxn, Name: "txn", Kind: Write, Leader: true, Command: 15, Commands: 5, Requests: 5, Verb: "txn", Access: AccessWrite, Txn: true},
	{Op: OpAddMember, Name: "add-member", Kind: Write, Leader: true, Requests: 1, Verb: "add-member", Access: AccessAdmin, Host: HostMember},
	{Op: OpDelMember, Name: "del-member", Kind: Write, Leader: true, Requests: 1, Verb: "del-member", Access: AccessAdmin, Host: HostMember},
	{Op: OpTransfer, Name: "transfer-leader", Kind: Write, Leader: true, Requests: 1, Verb: "transfer-leader", Access: AccessAdmin, Host: HostMember},

	{Op: OpChangeWait, Name: "change-wait", Kind: Held, Leader: true, Requests: 1, Verb: "add-member,del-member", Access: AccessRead, Host: HostMember, Arg: ArgSteps},
	{Op: OpLockWait, Name: "lock-wait", Kind: Held, Leader: true, Requests: 1, Verb: "lock", Access: AccessWrite, Stale: StaleRefused, Key: KeyRequired, Arg: ArgLease},
	{Op: OpWatch, Name: "watch-value", Kind: Held, Requests: 1, Verb: "pkg", Access: AccessRead, Key: KeyRequired, CondValue: true},
	{Op: OpWatchLog, Name: "watch", Kind: Held, Requests: 1, Verb: "watch", Access: AccessRead, Key: KeyPattern, Arg: ArgFrom},

	{Op: OpSnapshotRead, Name: "snapshot-read", Kind: Local, Requests: 1, Verb: "snapshot", Access: AccessAdmin, Host: HostMember, Arg: ArgPiece},
}

// A fence is the one field that several ops carry: a write made conditional on a lock's
// generation (set --fence NAME=GEN) travels as a command of its own that wraps the
// write's, so the version gates see it as a new command and a new request.
const (
	FenceCommand  uint8 = 10 // kvstore.OpFenced
	FenceCommands       = 3  // the command version that brought it
	FenceRequests       = 3  // the request version that brought the field
)

// A restored cluster's first leader moves its generations past the old cluster's with a
// command no request proposes (kvstore.OpRebase).
const (
	RebaseCommand  uint8 = 14
	RebaseCommands       = 4
)

// Lease renewals go through the log, batched: the leader proposes, once a tick, one
// command naming every lease kept in that tick (kvstore.OpLeaseKeepBatch), and each
// member counts those leases down again from when it applies it. No request proposes it
// directly: lease keep stays a read for the exit codes (an unknown outcome is never 2),
// as a keep applied twice only renews twice, and the leader turns it into one. Version 6;
// until every member has it, a lease is renewed on the leader's clock only, as before.
const (
	LeaseKeepCommand  uint8 = 16
	LeaseKeepCommands       = 6
)

// A lease's token is another field that several ops carry (revoke, lease keep): the
// request version that brought it.
const TokenRequests = 4

// Successor is a command that takes the place of an op's own (OpInfo.Command) once every
// member understands its version: the same request under a new apply rule. Until then
// the leader proposes the op's own command, whose rule the older builds apply alike, so
// a mixed cluster never diverges and the op goes on working while it is upgraded.
type Successor struct {
	Op       Op
	Command  uint8 // kvstore.Op
	Commands int   // the command version that brought it
}

// successors: lock (kvstore.OpLockAcquireV4: a token with the lease, generations from
// the index and the base, empty locks dropped) and lease revoke (kvstore.OpRevokeV4:
// the token checked, the same generation rule).
var successors = [...]Successor{
	{Op: OpLockAcquire, Command: 11, Commands: 4},
	{Op: OpRevoke, Command: 12, Commands: 4},
}

// Successors is every successor command, in order.
func Successors() []Successor { return append([]Successor(nil), successors[:]...) }

// SuccessorOf is op's successor command, if it has one.
func SuccessorOf(op Op) (Successor, bool) {
	for _, s := range successors {
		if s.Op == op {
			return s, true
		}
	}
	return Successor{}, false
}

// Stamped commands (issue 26, sessions that expire by time): once every member
// understands version StampCommands, the leader stamps each command it proposes for a
// request with its clock (Unix milliseconds) and the request's first-send time
// (Request.FirstSentMs). The state machine has no clock: its time is the largest stamp
// it applied, the same on every member, and by it the deduplication table forgets a
// client SessionKeepMs after its last write and answers a request from a client it no
// longer holds, first sent more than SessionHorizonMs before that time, as a late retry
// (CodeTimeout: it may have been applied; it is never applied again). The stamp is a
// flag on any command, not a command of its own, so it is a version, not an op; it is 7,
// as 6 goes to the leases of the same issue, built beside it.
const StampCommands = 7

// FirstSentRequests is the request version that brought Request.FirstSentMs (7, as
// StampCommands). The field is advice: a member forwards it only to a peer that
// understands it and drops it for an older one, and a request without it is taken as
// before (a client the table does not hold is a new one).
const FirstSentRequests = 7

// The session horizon: a retry of a write is told from a new client for SessionHorizonMs
// after its first send (by the cluster's time); the table keeps a client SessionKeepMs
// after its last write, a minute more, so that a clock of a client up to a minute ahead
// of the leader's cannot make a forgotten write look new. Every retry ends well within
// the horizon: the command line caps --timeout at MaxClientTimeoutMs (a write's
// retries, over one host or several, all end by its timeout), and an agent holds a
// request only until the deadline its client sent.
const (
	SessionHorizonMs   = 10 * 60 * 1000
	SessionKeepMs      = SessionHorizonMs + 60*1000
	MaxClientTimeoutMs = 5 * 60 * 1000
)

// CommandVersion is the newest set of state machine commands this build understands:
// 1 is set, unset, if ... set and noop (every build before versions existed); 2 adds
// create, if ... unset, leases and locks; 3 adds fenced writes; 4 the successors of lock
// and lease revoke (tokens, generations that never repeat) and counter raise; 5 txn; 6
// lease keeps through the log (LeaseKeepCommand); 7 stamped commands (StampCommands); 8
// unset --prefix; 9 batch --atomic. It is the largest Commands of the catalogue, the
// fence, the rebase, the lease keep batch, the successors and the stamp.
const CommandVersion = 9

// MaxUnsetPrefix is the most keys one unset --prefix deletes: its entry is small, but
// every member applies it at once, holding its loop meanwhile; a folder with more is
// refused (CodeFailed, saying how many it holds), nothing deleted.
const MaxUnsetPrefix = 10_000

// RequestVersion is the newest set of requests this build understands: 1 is every op up
// to snapshot-read (builds that never said); 2 adds exists; 3 the fence field; 4 the
// token field, counter raise and counter; 5 list --values and txn (with its field); 7
// the first-send time (FirstSentRequests; 6 is left to the rest of issue 26); 8 get
// --prefix; 9 batch --atomic (with its field). It is the largest Requests of the
// catalogue, the fence, the token and the first-send time.
const RequestVersion = 9

// byOp indexes the catalogue by wire number.
var byOp = func() (t [256]*OpInfo) {
	for i := range catalogue {
		t[catalogue[i].Op] = &catalogue[i]
	}
	return t
}()

// Info is op's entry, and false for an op this build does not know.
func (o Op) Info() (OpInfo, bool) {
	if p := byOp[o]; p != nil {
		return *p, true
	}
	return OpInfo{}, false
}

// Known reports whether this build knows o.
func (o Op) Known() bool { return byOp[o] != nil }

func (o Op) String() string {
	if p := byOp[o]; p != nil {
		return p.Name
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// IsWrite reports whether op may change state: an unknown outcome of it exits 2. Every
// other op is a read for the exit code table and never exits 2.
func IsWrite(op Op) bool {
	p := byOp[op]
	return p != nil && p.Kind == Write
}

// Ops is every op of the catalogue, in its order.
func Ops() []OpInfo { return append([]OpInfo(nil), catalogue[:]...) }

// CommandVersionOf is the command version that brought state machine command cmd (0:
// a command this build does not know).
func CommandVersionOf(cmd uint8) int {
	if cmd == FenceCommand {
		return FenceCommands
	}
	if cmd == RebaseCommand {
		return RebaseCommands
	}
	if cmd == LeaseKeepCommand {
		return LeaseKeepCommands
	}
	for _, s := range successors {
		if s.Command == cmd {
			return s.Commands
		}
	}
	for _, e := range catalogue {
		if e.Command == cmd && cmd != 0 {
			return e.Commands
		}
	}
	return 0
}

// RequestVersion is the request version a member must understand to read r: its op's,
// or the fence's or the token's if it carries one. The first-send time does not count:
// it is dropped for a member that does not understand it (WithoutNewerFields).
func (r Request) RequestVersion() int {
	v := 1
	if p := byOp[r.Op]; p != nil {
		v = p.Requests
	}
	if r.FenceName != "" {
		v = max(v, FenceRequests)
	}
	if r.Token != 0 {
		v = max(v, TokenRequests)
	}
	return v
}

// WithoutNewerFields is r as a member that understands request version v can read it,
// with only the advisory fields dropped (the first-send time, before version 7): the
// others are needed, and RequestVersion says so.
func (r Request) WithoutNewerFields(v int) Request {
	if v < FirstSentRequests {
		r.FirstSentMs = 0
	}
	return r
}
