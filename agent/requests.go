package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"lite-raft/client"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
	"lite-raft/sshrpc"
)

// kvOps maps the client's write verbs to the state machine's operations.
var kvOps = [...]kvstore.Op{client.OpSet: kvstore.OpSet, client.OpUnset: kvstore.OpUnset,
	client.OpIfSet: kvstore.OpIfSet, client.OpNoop: kvstore.OpNoop}

// defaultTimeout bounds a request that did not say how long its client waits.
const defaultTimeout = 10 * time.Second

// waiter is a client request the loop holds until it can answer.
type waiter struct {
	req      client.Request
	deadline time.Time
	replyFn  func(client.Response)
	replied  bool
	proposed bool   // a write that may be in the log: its outcome is unknown until applied
	term     uint64 // of the proposed entry
	index    uint64 // proposed entry, or read index once known
	cond     func() (client.Response, bool)
}

func (w *waiter) reply(r client.Response) {
	if !w.replied {
		w.replied = true
		w.replyFn(r)
	}
}

// handleFrame runs on a stream's reading goroutine: decode and hand to the loop.
func (a *Agent) handleFrame(c *sshrpc.Conn, f sshrpc.Frame) {
	switch f.Type {
	case client.FrameRaft:
		m, err := raftcore.DecodeMessage(f.Payload)
		if err != nil {
			a.log.Printf("dropped a message from %s: %v", c.Peer, err)
			return
		}
		a.post(event{msg: &m})
	case client.FrameRequest:
		if f.Kind != sshrpc.KindRequest {
			return
		}
		id := f.ID
		reply := func(r client.Response) {
			if r.Leader == "" {
				// remote clients remember who leads, to ask there first next time
				r.Leader = string(a.leadHint.Load().(raftcore.NodeID))
			}
			c.Reply(id, client.FrameRequest, r.Encode())
		}
		req, err := client.DecodeRequest(f.Payload)
		if err != nil {
			reply(client.Response{Code: client.CodeUsage, Msg: err.Error()})
			return
		}
		timeout := defaultTimeout
		if req.TimeoutMs > 0 {
			timeout = time.Duration(req.TimeoutMs) * time.Millisecond
		}
		a.post(event{req: &waiter{req: req, deadline: time.Now().Add(timeout), replyFn: reply}})
	}
}

func (a *Agent) post(ev event) {
	select {
	case a.events <- ev:
	case <-a.done:
		if ev.req != nil {
			ev.req.reply(client.Response{Code: client.CodeNoServer, Msg: fmt.Sprintf("no server running on %s. cannot process request.", a.id)})
		}
	}
}

func (a *Agent) handleRequest(w *waiter) {
	if w.replied {
		return
	}
	if time.Now().After(w.deadline) {
		a.timeout(w)
		return
	}
	r := w.req
	switch r.Op {
	case client.OpStatus:
		if a.node.Role() == raftcore.Leader || r.Stale || a.node.Lead() == raftcore.None {
			w.reply(a.statusResponse())
			return
		}
		a.forward(w)
	case client.OpGet, client.OpList:
		if r.Op == client.OpGet {
			if err := kvstore.ValidateKey(r.Key); err != nil {
				w.reply(client.Response{Code: client.CodeUsage, Msg: err.Error()})
				return
			}
		}
		if r.Stale {
			w.reply(a.read(r))
			return
		}
		if a.node.Role() != raftcore.Leader {
			a.forward(w)
			return
		}
		a.nextReadID++
		if err := a.node.ReadIndex(a.nextReadID); err != nil {
			a.forward(w)
			return
		}
		a.reads[a.nextReadID] = w
	case client.OpSet, client.OpUnset, client.OpIfSet, client.OpNoop:
		cmd := kvstore.Command{Op: kvOps[r.Op],
			ClientID: r.ClientID, Seq: r.Seq, Key: r.Key, Value: r.Value, Cond: r.Cond, CondValue: r.CondValue}
		if err := cmd.Validate(); err != nil {
			w.reply(client.Response{Code: client.CodeUsage, Msg: err.Error()})
			return
		}
		if a.node.Role() != raftcore.Leader {
			a.forward(w)
			return
		}
		index, term, err := a.node.Propose(cmd.Encode())
		if err != nil {
			a.retryLater(w) // a transfer in progress: the next leader takes it
			return
		}
		w.proposed, w.index, w.term = true, index, term
		a.proposals[index] = w
	case client.OpAddLearner, client.OpPromote, client.OpRemove, client.OpTransfer:
		if a.node.Role() != raftcore.Leader {
			a.forward(w)
			return
		}
		a.membership(w)
	case client.OpRunOnHost:
		go a.runOnHost(w)
	case client.OpWatch:
		if err := kvstore.ValidateKey(r.Key); err != nil {
			w.reply(client.Response{Code: client.CodeUsage, Msg: err.Error()})
			return
		}
		if v, _ := a.kv.Get(r.Key); string(v) != string(r.CondValue) {
			w.reply(client.Response{Value: v})
			return
		}
		a.watches[r.Key] = append(a.watches[r.Key], w)
	default:
		w.reply(client.Response{Code: client.CodeUsage, Msg: fmt.Sprintf("unknown operation %s", r.Op)})
	}
}

// read answers get/list from the local state.
func (a *Agent) read(r client.Request) client.Response {
	if r.Op == client.OpGet {
		v, ok := a.kv.Get(r.Key)
		if !ok {
			return client.Response{Code: client.CodeNotFound, Msg: fmt.Sprintf("key %s not found", r.Key)}
		}
		return client.Response{Value: v}
	}
	names, ok := a.kv.List(r.Key)
	if !ok {
		return client.Response{Code: client.CodeNoDir, Msg: fmt.Sprintf("%s: no such folder", orDash(r.Key))}
	}
	return client.Response{Names: names}
}

func (a *Agent) readState(rs raftcore.ReadState) {
	w := a.reads[rs.ID]
	if w == nil {
		return
	}
	delete(a.reads, rs.ID)
	if rs.Lost {
		a.retryLater(w)
		return
	}
	w.index = rs.Index
	a.readyReads = append(a.readyReads, w)
}

func (a *Agent) serveReads() {
	kept := a.readyReads[:0]
	for _, w := range a.readyReads {
		if w.index <= a.applied {
			w.reply(a.read(w.req))
		} else {
			kept = append(kept, w)
		}
	}
	a.readyReads = kept
}

// forward sends a request to the leader and returns its answer unchanged.
func (a *Agent) forward(w *waiter) {
	lead := a.node.Lead()
	if lead == raftcore.None || lead == a.id || w.req.Hops >= 3 {
		a.retryLater(w)
		return
	}
	p := a.link(lead)
	req := w.req
	req.Hops++
	payload := req.Encode()
	go func() {
		ctx, cancel := context.WithDeadline(context.Background(), w.deadline)
		defer cancel()
		f, err := p.peer.Call(ctx, client.FrameRequest, payload)
		if err == nil {
			resp, derr := client.DecodeResponse(f.Payload)
			if derr == nil {
				w.reply(resp)
				return
			}
			err = derr
		}
		if ctx.Err() != nil {
			// the leader may have applied it: say so rather than guess
			w.proposed = w.proposed || isWrite(w.req.Op)
		}
		a.log.Printf("forward %s to %s: %v", w.req.Op, lead, err)
		a.post(event{req: w})
	}()
}

func isWrite(op client.Op) bool {
	switch op {
	case client.OpSet, client.OpUnset, client.OpIfSet, client.OpNoop:
		return true
	}
	return false
}

func (a *Agent) retryLater(w *waiter) { a.retry = append(a.retry, w) }

// retryWaiting hands back requests that waited for a leader, once there is one.
func (a *Agent) retryWaiting() {
	if len(a.retry) == 0 || a.node.Lead() == raftcore.None {
		return
	}
	if a.node.Role() == raftcore.Leader && a.node.Commit() == 0 {
		return
	}
	ws := a.retry
	a.retry = nil
	for _, w := range ws {
		a.handleRequest(w)
	}
	// whatever came straight back has to wait for the next change
}

func (a *Agent) timeout(w *waiter) {
	switch {
	case w.req.Op == client.OpWatch:
		v, _ := a.kv.Get(w.req.Key) // nothing changed: the value as it is
		w.reply(client.Response{Value: v})
	case w.proposed:
		w.reply(client.Response{Code: client.CodeTimeout,
			Msg: "timed out waiting for the commit: the write may or may not have been applied"})
	case w.req.Op == client.OpGet || w.req.Op == client.OpList:
		w.reply(client.Response{Code: client.CodeFailed, Msg: "leader is stale. try again."})
	case a.node.Lead() == raftcore.None:
		w.reply(client.Response{Code: client.CodeNoLeader, Msg: "leader is not available."})
	default:
		w.reply(client.Response{Code: client.CodeTimeout, Msg: fmt.Sprintf("%s: timed out", w.req.Op)})
	}
}

// expire answers every waiter whose deadline passed.
func (a *Agent) expire(now time.Time) {
	for idx, w := range a.proposals {
		if now.After(w.deadline) {
			delete(a.proposals, idx)
			a.timeout(w)
		}
	}
	for id, w := range a.reads {
		if now.After(w.deadline) {
			delete(a.reads, id)
			a.timeout(w)
		}
	}
	keep := func(ws []*waiter) []*waiter {
		out := ws[:0]
		for _, w := range ws {
			if now.After(w.deadline) {
				a.timeout(w)
			} else {
				out = append(out, w)
			}
		}
		return out
	}
	for k, ws := range a.watches {
		if ws = keep(ws); len(ws) == 0 {
			delete(a.watches, k)
		} else {
			a.watches[k] = ws
		}
	}
	a.readyReads = keep(a.readyReads)
	a.retry = keep(a.retry)
	a.conditions = keep(a.conditions)
	if len(a.retry) > 0 {
		a.retryWaiting()
	}
}

func (a *Agent) allWaiters() []*waiter {
	var all []*waiter
	for _, w := range a.proposals {
		all = append(all, w)
	}
	for _, w := range a.reads {
		all = append(all, w)
	}
	for _, ws := range a.watches {
		all = append(all, ws...)
	}
	all = append(all, a.readyReads...)
	all = append(all, a.retry...)
	return append(all, a.conditions...)
}

// membership runs a membership step on the leader.
func (a *Agent) membership(w *waiter) {
	host := raftcore.NodeID(w.req.Host)
	if err := raftcore.ValidateID(host); err != nil {
		w.reply(client.Response{Code: client.CodeUsage, Msg: err.Error()})
		return
	}
	m := a.node.Members()
	without := func(ids []raftcore.NodeID) []raftcore.NodeID {
		return slices.DeleteFunc(slices.Clone(ids), func(x raftcore.NodeID) bool { return x == host })
	}
	var voters, learners []raftcore.NodeID
	var done func() bool
	switch w.req.Op {
	case client.OpTransfer:
		if err := a.node.TransferLeadership(host); err != nil {
			w.reply(client.Response{Code: client.CodeFailed, Msg: err.Error()})
			return
		}
		w.cond = func() (client.Response, bool) {
			if a.node.Lead() == host {
				return client.Response{Msg: fmt.Sprintf("%s is the leader", host)}, true
			}
			return client.Response{}, false
		}
		a.conditions = append(a.conditions, w)
		return
	case client.OpAddLearner:
		if m.Contains(host) {
			w.reply(client.Response{Msg: fmt.Sprintf("%s is already a member", host)})
			return
		}
		voters, learners = m.Voters, append(slices.Clone(m.Learners), host)
		done = func() bool { return a.committedMembers().Contains(host) }
	case client.OpPromote:
		voters, learners = append(without(m.Voters), host), without(m.Learners)
		done = func() bool { c := a.committedMembers(); return !c.Joint() && slices.Contains(c.Voters, host) }
	case client.OpRemove:
		if host == a.id {
			// hand over first; the next leader removes us
			if err := a.transferAway(); err != nil {
				w.reply(client.Response{Code: client.CodeFailed, Msg: err.Error()})
				return
			}
			a.retryLater(w)
			return
		}
		voters, learners = without(m.Voters), without(m.Learners)
		done = func() bool { c := a.committedMembers(); return !c.Joint() && !c.Contains(host) }
	}
	if done() {
		w.reply(client.Response{Msg: "nothing to change"})
		return
	}
	if _, err := a.node.ProposeMembership(voters, learners); err != nil {
		if errors.Is(err, raftcore.ErrMembershipChange) || errors.Is(err, raftcore.ErrTransferring) {
			a.retryLater(w)
			return
		}
		w.reply(client.Response{Code: client.CodeFailed, Msg: err.Error()})
		return
	}
	w.cond = func() (client.Response, bool) {
		if done() {
			return client.Response{Msg: a.committedMembers().String()}, true
		}
		return client.Response{}, false
	}
	a.conditions = append(a.conditions, w)
}

// transferAway hands leadership to the most up-to-date other voter.
func (a *Agent) transferAway() error {
	st := a.node.Status()
	var best raftcore.NodeID
	var bestMatch uint64
	for _, v := range st.Members.Voters {
		if p, ok := st.Progress[v]; ok && v != a.id && (best == "" || p.Match > bestMatch) {
			best, bestMatch = v, p.Match
		}
	}
	if best == "" {
		return errors.New("no other voter to hand leadership to")
	}
	a.log.Printf("handing leadership to %s before leaving", best)
	return a.node.TransferLeadership(best)
}

// committedMembers is the membership of the last applied membership entry (or snapshot).
func (a *Agent) committedMembers() raftcore.Membership { return a.appliedMembers }

func (a *Agent) checkConditions() {
	kept := a.conditions[:0]
	for _, w := range a.conditions {
		if resp, ok := w.cond(); ok {
			w.reply(resp)
		} else {
			kept = append(kept, w)
		}
	}
	a.conditions = kept
}

// Status is the JSON document `lite-raft client status --json` prints.
type Status struct {
	ID        string         `json:"id"`
	Role      string         `json:"role"`
	Term      uint64         `json:"term"`
	Leader    string         `json:"leader"`
	Commit    uint64         `json:"commit"`
	Applied   uint64         `json:"applied"`
	LastIndex uint64         `json:"last_index"`
	Snapshot  uint64         `json:"snapshot_index"`
	Members   string         `json:"members"`
	Nodes     []MemberStatus `json:"nodes,omitempty"`
}

// MemberStatus is the leader's view of one member.
type MemberStatus struct {
	Name          string `json:"name"`
	Role          string `json:"role"`
	Match         uint64 `json:"match"`
	Lag           uint64 `json:"lag"`
	State         string `json:"state"`
	LastContactMs int64  `json:"last_contact_ms"`
}

func (a *Agent) statusResponse() client.Response {
	st := a.node.Status()
	s := Status{ID: string(st.ID), Role: st.Role.String(), Term: st.Term, Leader: string(st.Lead),
		Commit: st.Commit, Applied: a.applied, LastIndex: st.LastIndex, Snapshot: st.Snapshot.Index,
		Members: st.Members.String()}
	tick := a.tickInterval()
	for _, id := range st.Members.All() {
		p, ok := st.Progress[id]
		if !ok {
			continue
		}
		role := "follower"
		switch {
		case id == st.ID:
			role = "leader"
		case !st.Members.IsVoter(id):
			role = "learner"
		}
		ms := MemberStatus{Name: string(id), Role: role, Match: p.Match, State: p.State,
			LastContactMs: (time.Duration(p.TicksSinceHeard) * tick).Milliseconds()}
		if st.LastIndex > p.Match {
			ms.Lag = st.LastIndex - p.Match
		}
		s.Nodes = append(s.Nodes, ms)
	}
	js, _ := json.Marshal(s)
	return client.Response{JSON: js, Leader: string(st.Lead)}
}
