// Package api is what a lite-raft client and an agent say to each other, declared once:
// the catalogue of operations (ops.go), the request and answer frames and their encoding
// (protocol.go), the result codes that the command line exits with (codes.go), the
// payloads that answers carry (payloads.go), and the marker of a request that never left
// this host (ErrNotSent). It sits below client, agent, kvstore and sshrpc and imports
// none of them.
//
// The catalogue names every operation's wire number, its kind (read, write, held by the
// agent, local), whether the leader serves it, the state machine command it proposes and
// the command version that brought that command, the request version that brought the
// operation, who may run it, and the shape of its request: which of the key, value,
// condition and typed arguments it carries. Everything that used to be a hand-kept list
// of operations is read from it: IsWrite (and so the exit code table), names, request
// validation, the core's routing, and the two version gates of a rolling upgrade. A
// new operation is one entry, the code that serves it, and its command-line verb.
//
// Rolling upgrades. Encodings never change under a member: the request's typed
// arguments travel in the host and args text fields that every build has, as the builds
// before them wrote those (TestGoldenEncodings pins the bytes). A state machine command
// is proposed only once every member said it understands its command version; a request
// is forwarded only to a member that said it understands its request version. A build
// that receives an op or a field it does not know (ErrUnknownOp, ErrUnknownField)
// answers 14, "upgrade me first", never 10.
package api
