package agent

import (
	"errors"
	"fmt"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/internal/logsink"
	"lite-raft/raftcore"
	"lite-raft/sshrpc"
)

// handleFrame runs on a stream's reading goroutine: decode and hand to the loop.
func (a *Agent) handleFrame(c *sshrpc.Conn, f sshrpc.Frame) {
	switch f.Type {
	case api.FrameRaft:
		m, err := raftcore.DecodeMessage(f.Payload)
		if err != nil {
			a.log.Printf(logsink.Warn+"dropped a message from %s: %v", c.Peer, err)
			return
		}
		a.post(event{msg: &m})
	case api.FrameRequest:
		if f.Kind != sshrpc.KindRequest {
			return
		}
		id := f.ID
		reply := func(r api.Response) { c.Reply(id, api.FrameRequest, r.Encode()) }
		req, err := api.DecodeRequest(f.Payload)
		if errors.Is(err, api.ErrUnknownOp) || errors.Is(err, api.ErrUnknownField) {
			// a newer build sent it: nothing was done here, and the fix is an upgrade
			build := a.build
			if build == "" {
				build = "a build"
			}
			reply(api.Response{Code: api.CodeUpgrade, Msg: fmt.Sprintf(
				"%s runs lite-raft %s, which cannot read this request (%v): upgrade it first (nothing was done)", a.id, build, err)})
			return
		}
		if err != nil {
			reply(api.Response{Code: api.CodeUsage, Msg: err.Error()})
			return
		}
		a.post(event{req: &req, replyFn: reply})
	case api.FrameVersion:
		v, err := api.DecodeVersion(f.Payload)
		if err != nil {
			a.log.Printf(logsink.Warn+"dropped a version from %s: %v", c.Peer, err)
			return
		}
		a.post(event{version: &v})
	}
}

// post hands an event to the loop. Once the loop has ended, a request is answered here:
// it never reached the core, so nothing can have been appended.
func (a *Agent) post(ev event) {
	select {
	case a.events <- ev:
	case <-a.done:
		if ev.req != nil {
			ev.replyFn(client.Fail(ev.req.Op, client.NotSent, client.FailNoServer, string(a.id)))
		}
	}
}
