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
	if c.Allow != "" {
		a.handleRestricted(c, f)
		return
	}
	a.serveFrame(c, f)
}

func (a *Agent) serveFrame(c *sshrpc.Conn, f sshrpc.Frame) {
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
		req, err := api.DecodeRequest(f.Payload)
		a.serveRequest(c, f.ID, req, err)
	case api.FrameVersion:
		v, err := api.DecodeVersion(f.Payload)
		if err != nil {
			a.log.Printf(logsink.Warn+"dropped a version from %s: %v", c.Peer, err)
			return
		}
		a.post(event{version: &v})
	}
}

// serveRequest answers a request frame (id) whose payload decoded to req, or err.
func (a *Agent) serveRequest(c *sshrpc.Conn, id uint64, req api.Request, err error) {
	to := replyTo{conn: c, id: id}
	if errors.Is(err, api.ErrUnknownOp) || errors.Is(err, api.ErrUnknownField) {
		// a newer build sent it: nothing was done here, and the fix is an upgrade
		build := a.build
		if build == "" {
			build = "a build"
		}
		to.send(api.Response{Code: api.CodeUpgrade, Msg: fmt.Sprintf(
			"%s runs lite-raft %s, which cannot read this request (%v): upgrade it first (nothing was done)", a.id, build, err)})
		return
	}
	if err != nil {
		to.send(api.Response{Code: api.CodeUsage, Msg: err.Error()})
		return
	}
	a.post(event{req: req, isReq: true, replyTo: to})
}

// handleRestricted serves a stream opened for a key that authorized_keys restricts
// (ssh-command --allow): requests for the ops it allows, as any other stream's, and
// nothing else. Such a key is not a member's: its Raft messages and versions are dropped.
func (a *Agent) handleRestricted(c *sshrpc.Conn, f sshrpc.Frame) {
	if f.Type != api.FrameRequest || f.Kind != sshrpc.KindRequest {
		a.log.Printf(logsink.Debug+"dropped a frame of type %d from a restricted stream (--allow %s)", f.Type, c.Allow)
		return
	}
	allowed, err := a.allowed(c.Allow)
	if err == nil {
		req, derr := api.DecodeRequest(f.Payload)
		if derr != nil || allowed.Permits(req.Op) {
			a.serveRequest(c, f.ID, req, derr) // as any stream's: the same answers to the same bytes
			return
		}
		err = fmt.Errorf("this ssh key may run only %s (ssh-command --allow), not %s: nothing was done", allowed, req.Op)
	}
	c.Reply(f.ID, api.FrameRequest, api.Response{Code: api.CodeDenied, Msg: err.Error()}.Encode())
}

// allowed is the restriction list parsed, once per list: a restricted stream's every
// request is checked against it, and parsing walks the whole catalogue.
func (a *Agent) allowed(list string) (api.Allowed, error) {
	if v, ok := a.allowLists.Load(list); ok {
		return v.(api.Allowed), nil
	}
	allowed, err := api.ParseAllow(list)
	if err == nil && a.allowListsN.Add(1) <= maxAllowLists {
		a.allowLists.Store(list, allowed) // a few keys' lists: bounded, whatever the streams say
	}
	return allowed, err
}

// maxAllowLists bounds the parsed lists kept (one per restricted key's list).
const maxAllowLists = 64

// post hands an event to the loop. Once the loop has ended, a request is answered here:
// it never reached the core, so nothing can have been appended.
func (a *Agent) post(ev event) {
	select {
	case a.events <- ev:
	case <-a.done:
		if ev.isReq {
			ev.replyTo.send(client.Fail(ev.req.Op, client.NotSent, client.FailNoServer, string(a.id)))
		}
	}
}
