// Package sshrpc is lite-raft's transport: framed, pipelined streams between agents,
// carried by SSH sessions to peers and by a unix socket to local clients.
//
// A peer is reached the way a sysadmin's own ssh reaches it: the host name goes through
// ssh_config (HostName, Port, User, IdentityFile, IdentityAgent, ProxyJump, BindAddress,
// ConnectTimeout, ServerAlive*), keys come from ssh-agent and the identity files, and
// host keys are checked against known_hosts, accepting new ones and refusing changed
// ones with a message that says what to do. Each Peer keeps one connection and on it one
// long-lived session running `DIR/lite-raft rpc`, reopened with backoff and jitter when
// it breaks.
//
// `lite-raft rpc` (Bridge) connects to the local agent's socket (0600, in a 0700 folder)
// and hands it the session's standard input and output, so that frames go from sshd
// straight to the agent; it copies bytes only for an agent that does not take them. If
// no agent runs, it says so in a frame that the caller's handshake turns into a
// NoAgentError: the host answered, so its agent is gone, not merely unreachable.
//
// On every stream both ends first exchange a hello with the protocol versions they
// speak. Frames then carry a kind (one-way, request, response, error), a type for the
// layer above and a request id, so any number of calls can be in flight and answered in
// any order (Conn). A frame that is malformed or over the size limit closes its stream
// with a logged reason, never the agent.
//
// An error of Call or Send says whether the frame left: api.ErrNotSent (errors.Is) marks
// the failures from before it was handed to the stream's writer, so the far end cannot
// have got it; any other error after a request was handed over means it may have been
// carried out. Clients build their exit codes on that difference.
package sshrpc
