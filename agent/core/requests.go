package core

import (
	"encoding/json"
	"fmt"
	"strconv"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
)

// Backoff of a request that could not be forwarded: doubling between these bounds.
const (
	minBackoffMs = 20
	maxBackoffMs = 1000
)

// waiter is a client request the core holds until it can answer.
type waiter struct {
	req      api.Request
	to       ReplyTo
	deadline Time
	replied  bool
	// outcome is NotSent until the request was proposed here or handed to a transport
	// toward a leader; from then on it is MaybeApplied for good.
	outcome client.Outcome
	term    uint64 // of the proposed entry
	// readTerm is the term a read's index was asked in (a lease keep must still lead it)
	readTerm uint64
	index    uint64 // proposed entry, or read index once known
	cond     func() (api.Response, bool)
	// a watch: the index it asks from, once known (from its --from, or "now")
	watchFrom  uint64
	watchKnown bool

	// retry bookkeeping
	notBefore Time            // do not try again before (backoff)
	backoff   int64           // the last backoff, in ms
	waitFor   raftcore.NodeID // the peer whose link it waits for, if any
	backedOff bool            // its backoff is over: try even a link reported down
	call      CallID          // the call in flight, while forwarded
	callTo    raftcore.NodeID // where it went: the leader, or a member relaying to it

	backup *backup // the snapshot save file it waits for (backup.go)
}

// Request takes a client's request (from the local socket, a remote client, or another
// agent forwarding it). Its answer comes out of Ready as a Reply to to.
func (c *Core) Request(now Time, to ReplyTo, req api.Request) {
	c.at(now)
	timeout := c.cfg.DefaultTimeoutMs
	if req.TimeoutMs > 0 {
		timeout = int64(req.TimeoutMs)
	}
	w := &waiter{req: req, to: to, deadline: c.now + Time(timeout), outcome: client.NotSent}
	c.handle(w)
}

func (c *Core) reply(w *waiter, r api.Response) {
	if w.replied {
		return
	}
	w.replied = true
	if r.Leader == "" {
		// remote clients remember who leads, to ask there first next time
		r.Leader = string(c.node.Lead())
	}
	c.out.Replies = append(c.out.Replies, Reply{To: w.to, Resp: r})
}

// serving is how the core serves each op of the catalogue that proposes no command
// (those all go through propose): served at a read index confirmed by the leader
// (atRead; with --stale, where the op allows it, from this member's state at once), or
// by serve where the request arrives (forwarded first to the leader for the catalogue's
// Leader ops). TestEveryOpIsServed checks it covers the catalogue.
var serving = map[api.Op]struct {
	atRead bool
	serve  func(c *Core, w *waiter)
}{
	api.OpGet:          {true, (*Core).replyRead},
	api.OpExists:       {true, (*Core).replyRead},
	api.OpList:         {true, (*Core).replyRead},
	api.OpListValues:   {true, (*Core).replyRead},
	api.OpGetPrefix:    {true, (*Core).replyRead},
	api.OpLocks:        {true, (*Core).replyRead},
	api.OpCounter:      {true, (*Core).replyRead},
	api.OpLeaseKeep:    {true, (*Core).keepLease},
	api.OpLockWait:     {true, (*Core).lockWait},
	api.OpSnapshot:     {true, (*Core).makeBackup},
	api.OpStatus:       {false, (*Core).status},
	api.OpTransfer:     {false, (*Core).transfer},
	api.OpAddMember:    {false, (*Core).startChange},
	api.OpDelMember:    {false, (*Core).startChange},
	api.OpChangeWait:   {false, (*Core).waitChange},
	api.OpWatch:        {false, (*Core).watchValue},
	api.OpWatchLog:     {false, (*Core).logWatch},
	api.OpSnapshotRead: {false, (*Core).snapshotRead},
}

func (c *Core) handle(w *waiter) {
	if w.replied {
		return
	}
	if c.now >= w.deadline {
		c.timeout(w)
		return
	}
	r := w.req
	info, ok := r.Op.Info()
	s, served := serving[r.Op]
	if !ok || (!served && info.Command == 0) {
		c.reply(w, api.Response{Code: api.CodeUpgrade, Msg: fmt.Sprintf(
			"%s does not know operation %s: upgrade it first (nothing was done)", c.id, r.Op)})
		return
	}
	if err := r.Validate(); err != nil {
		c.reply(w, api.Response{Code: api.CodeUsage, Msg: err.Error()})
		return
	}
	local := r.Stale && info.Stale == api.StaleLocal
	switch {
	case info.Command != 0:
		c.propose(w)
	case r.Op == api.OpStatus && (local || c.node.Lead() == raftcore.None):
		// with no leader, the member's own view is the answer that helps
		c.status(w)
	case local && s.atRead:
		s.serve(c, w)
	case info.Leader && c.node.Role() != raftcore.Leader:
		c.forward(w)
	case s.atRead && !(c.bugs.staleLeaderRead && r.Op != api.OpSnapshot):
		c.readAtLeader(w)
	default:
		s.serve(c, w)
	}
}

// propose proposes a write's command on the leader (a follower forwards it), once every
// member understands it.
func (c *Core) propose(w *waiter) {
	r := w.req
	cmd, err := commandOf(r)
	if err != nil {
		c.reply(w, api.Response{Code: api.CodeUsage, Msg: err.Error()})
		return
	}
	// checked here too when a follower would forward it: a leader on an older build
	// could not even read the request
	if cmd.Op.Version() > 1 && c.refuseNewer(w, cmd.Op) {
		return
	}
	if c.node.Role() != raftcore.Leader {
		c.forward(w)
		return
	}
	if cmd.Op == kvstore.OpRevoke && cmd.Lease == 0 {
		if cmd.Lease = c.kv.LeaseOf(r.Key); cmd.Lease == 0 {
			c.reply(w, api.Response{Code: api.CodeNotFound, Msg: fmt.Sprintf("key %s has no lease", r.Key)})
			return
		}
	}
	if cmd.Op == kvstore.OpRevoke {
		// refused here when this leader knows the lease (and at apply when it did not
		// yet, by OpRevokeV4): nothing appended for a revoke that cannot succeed
		if msg, refused := c.kv.TokenRefusal(cmd.Lease, cmd.Token); refused {
			c.reply(w, api.Response{Code: api.CodeUsage, Msg: "lease revoke: " + msg})
			return
		}
	}
	c.successor(r.Op, &cmd)
	c.stamp(&cmd, r)
	index, term, err := c.node.Propose(cmd.Encode())
	if err != nil {
		c.wait(w, raftcore.None) // a transfer in progress: the next leader takes it
		return
	}
	w.outcome = client.MaybeApplied
	w.index, w.term = index, term
	c.proposals[index] = w
}

func (c *Core) status(w *waiter) { c.reply(w, c.statusResponse()) }

func (c *Core) replyRead(w *waiter) { c.reply(w, c.read(w.req)) }

// watchValue answers watch-value once Key no longer holds the value it names.
func (c *Core) watchValue(w *waiter) {
	if v, _ := c.kv.Get(w.req.Key); string(v) != string(w.req.CondValue) {
		c.reply(w, api.Response{Value: v})
		return
	}
	c.watches[w.req.Key] = append(c.watches[w.req.Key], w)
}

// readAtLeader serves a request from the leader's state once a read index confirmed it
// still leads (serveReads goes on with it once that index is applied); a follower
// forwards it.
func (c *Core) readAtLeader(w *waiter) {
	if c.node.Role() != raftcore.Leader {
		c.forward(w)
		return
	}
	c.nextReadID++
	w.readTerm = c.node.Term()
	if err := c.node.ReadIndex(c.nextReadID); err != nil {
		c.wait(w, raftcore.None)
		return
	}
	c.reads[c.nextReadID] = w
}

// read answers get, list and locks from the local state.
func (c *Core) read(r api.Request) api.Response {
	switch r.Op {
	case api.OpGet:
		v, ok := c.kv.Get(r.Key)
		if !ok {
			return api.Response{Code: api.CodeNotFound, Msg: fmt.Sprintf("key %s not found", r.Key)}
		}
		return api.Response{Value: v, JSON: c.ttlOf(r.Key)}
	case api.OpLocks:
		return c.locksResponse()
	case api.OpCounter:
		return api.Response{Value: []byte(strconv.FormatUint(c.kv.Counter(r.Key), 10))}
	case api.OpExists:
		if _, ok := c.kv.Get(r.Key); !ok {
			return api.Response{Code: api.CodeNotFound, Msg: fmt.Sprintf("key %s not found", r.Key)}
		}
		return api.Response{}
	case api.OpListValues:
		return c.readDir(r.Key)
	case api.OpGetPrefix:
		p := c.kv.ReadPrefix(r.Key, r.After, api.MaxDirAnswer)
		p.Index = c.applied
		js, err := json.Marshal(p)
		if err != nil {
			return api.Response{Code: api.CodeFailed, Msg: fmt.Sprintf("encode a page of %s: %v", orDash(r.Key), err)}
		}
		return api.Response{JSON: js}
	}
	names, ok := c.kv.List(r.Key)
	if !ok {
		return api.Response{Code: api.CodeNoDir, Msg: fmt.Sprintf("%s: no such folder", orDash(r.Key))}
	}
	return api.Response{Names: names}
}

// readDir answers list --values: folder dir, its keys, values and counters, all from
// the state at one applied index (the answer says which), in one answer bounded by
// api.MaxDirAnswer.
func (c *Core) readDir(dir string) api.Response {
	d, ok, err := c.kv.ReadDir(dir, api.MaxDirAnswer)
	if err != nil {
		return api.Response{Code: api.CodeFailed, Msg: err.Error()}
	}
	if !ok {
		return api.Response{Code: api.CodeNoDir, Msg: fmt.Sprintf("%s: no such folder", orDash(dir))}
	}
	d.Index = c.applied
	js, err := api.EncodeDirEntries(d)
	if err == nil && len(js) > api.MaxDirAnswer {
		err = &kvstore.ErrDirTooLarge{Dir: dir, Limit: api.MaxDirAnswer} // the estimate is an upper bound: never
	}
	if err != nil {
		return api.Response{Code: api.CodeFailed, Msg: err.Error()}
	}
	return api.Response{JSON: js}
}

func (c *Core) readState(rs raftcore.ReadState) {
	w := c.reads[rs.ID]
	if w == nil {
		return
	}
	delete(c.reads, rs.ID)
	if rs.Lost {
		c.wait(w, raftcore.None)
		return
	}
	w.index = rs.Index
	if c.bugs.readBeforeApplied {
		serving[w.req.Op].serve(c, w)
		return
	}
	c.readyReads = append(c.readyReads, w)
}

func (c *Core) serveReads() {
	kept := c.readyReads[:0]
	for _, w := range c.readyReads {
		switch {
		case w.replied:
		case w.index <= c.applied:
			serving[w.req.Op].serve(c, w)
		default:
			kept = append(kept, w)
		}
	}
	c.readyReads = kept
}

// forward asks the driver to send the request to the leader, whose answer is returned
// unchanged. When this host's link to the leader is down (its ssh there refused, say)
// the request goes through another member that can reach it; failing that, it waits.
func (c *Core) forward(w *waiter) {
	lead := c.node.Lead()
	if w.req.Op == api.OpSnapshotRead {
		lead = raftcore.NodeID(w.req.Member) // the host holding the file, leader or not
	}
	if lead == raftcore.None || lead == c.id || w.req.Hops >= 3 {
		c.wait(w, raftcore.None)
		return
	}
	if c.refuseUnknownTo(w, lead) {
		return
	}
	to := lead
	// a link reported down is not tried until it comes back or the backoff is over:
	// then it is tried anyway, in case its report was stale
	if c.linkDown[lead] && !w.backedOff && !c.bugs.noBackoff {
		if to = c.relay(w, lead); to == raftcore.None {
			c.wait(w, lead)
			return
		}
	}
	w.backedOff = false
	req := w.req.WithoutNewerFields(c.requestsOf(to)) // the first-send time, for an older peer
	req.Hops++
	// the leader gives up a little before we do, so that its answer arrives in time
	left := int64(w.deadline - c.now)
	req.TimeoutMs = uint32(max(1, left-min(left/10, 200)))
	if c.bugs.retryNewID && w.backoff > 0 {
		req.ClientID ^= 1 << 62
	}
	c.nextCall++
	w.call, w.callTo = c.nextCall, to
	c.calls[c.nextCall] = w
	c.out.Calls = append(c.out.Calls, Call{ID: c.nextCall, To: to, Req: req, Deadline: w.deadline})
}

// relay picks a member to pass a request on to the leader, one whose link is up. Only
// the host a request first reached relays it, so a request is never passed around.
func (c *Core) relay(w *waiter, lead raftcore.NodeID) raftcore.NodeID {
	if w.req.Hops > 0 {
		return raftcore.None
	}
	var ok []raftcore.NodeID
	for _, id := range c.node.Members().Voters {
		if id != c.id && id != lead && !c.linkDown[id] && c.understands(id, w) {
			ok = append(ok, id)
		}
	}
	if len(ok) == 0 {
		return raftcore.None
	}
	return ok[c.rand.IntN(len(ok))]
}

// CallDone reports how a call ended: an answer, or a failure before or after the
// request was handed to the transport.
func (c *Core) CallDone(now Time, id CallID, res CallResult, resp api.Response, err error) {
	c.at(now)
	w := c.calls[id]
	if w == nil {
		return
	}
	delete(c.calls, id)
	w.call = 0
	if w.replied {
		return
	}
	to := c.node.Lead()
	switch res {
	case Answered:
		c.reply(w, client.Downgrade(w.req.Op, w.outcome, resp))
		return
	case Broken:
		if api.IsWrite(w.req.Op) && !c.bugs.brokenIsNotSent {
			w.outcome = client.MaybeApplied
		}
		if c.now >= w.deadline {
			// the call ran out with the request's own time (its end reached us before
			// our tick did): the request's timeout, not a fault of the link to report
			c.timeout(w)
			return
		}
		c.warnf("forward:"+string(to), "forward %s to %s: %v (it may have arrived; trying again)", w.req.Op, w.callTo, err)
	default:
		// the transport says so: take the link as down until it reports it up
		c.linkDown[w.callTo] = true
		c.warnf("forward:"+string(to), "forward %s to %s: %v", w.req.Op, w.callTo, err)
	}
	if c.bugs.noBackoff {
		c.handle(w)
		return
	}
	c.wait(w, to)
}

// reforward gives up the forwards still in flight when a new leader is known: the old
// leader may be gone without a word (a host powered off answers nothing until the
// call's deadline), and the request goes to the new one instead. Only requests that are
// safe to send twice: reads, and writes of the state machine, which a retry with the
// same client ID and sequence number cannot apply twice (such a write stays
// MaybeApplied). The old call's late end is ignored.
func (c *Core) reforward() {
	for _, id := range sortedKeys(c.calls) {
		w := c.calls[id]
		if w.replied || (api.IsWrite(w.req.Op) && !isStateMachineWrite(w.req.Op)) {
			continue
		}
		delete(c.calls, id)
		w.call = 0
		if api.IsWrite(w.req.Op) {
			w.outcome = client.MaybeApplied
		}
		c.wait(w, raftcore.None)
	}
}

func isStateMachineWrite(op api.Op) bool {
	info, _ := op.Info()
	return info.Command != 0
}

// RunDone reports the end of a Run: its output, and an error if it failed.
func (c *Core) RunDone(now Time, id CallID, out []byte, err error) {
	c.at(now)
	c.changeRunDone(id, err)
}

// wait parks a request until it may be tried again: when peer's link comes up (if peer
// is set), when a leader is known or changes, or after its backoff, whichever is first.
func (c *Core) wait(w *waiter, peer raftcore.NodeID) {
	if w.replied {
		return
	}
	w.backoff = min(max(2*w.backoff, minBackoffMs), maxBackoffMs)
	// ±25% jitter: requests that failed together do not come back together
	j := w.backoff * int64(75+c.rand.IntN(51)) / 100
	w.notBefore = c.now + Time(j)
	w.waitFor = peer
	c.waiting = append(c.waiting, w)
}

// retryDue tries again the waiting requests whose backoff is over.
func (c *Core) retryDue() {
	c.retryFor(func(w *waiter) bool {
		if c.now >= w.notBefore {
			w.backedOff = true
			return true
		}
		return false
	})
}

// retryFor tries again the waiting requests that match. Those that fail again are parked
// with a longer backoff by wait, never retried in the same pass.
func (c *Core) retryFor(match func(*waiter) bool) {
	if len(c.waiting) == 0 {
		return
	}
	var now []*waiter
	kept := c.waiting[:0]
	for _, w := range c.waiting {
		switch {
		case w.replied:
		case match(w):
			now = append(now, w)
		default:
			kept = append(kept, w)
		}
	}
	c.waiting = kept
	for _, w := range now {
		c.handle(w)
	}
}

func (c *Core) timeout(w *waiter) {
	switch {
	case w.req.Op == api.OpWatch:
		v, _ := c.kv.Get(w.req.Key) // nothing changed: the value as it is
		c.reply(w, api.Response{Value: v})
	case w.req.Op == api.OpWatchLog:
		// nothing for it up to here: the next watch asks from here on (never from before
		// where it asked: a member behind another answers with where the watch was)
		c.reply(w, api.Response{Value: api.EncodeChanges(nil), Msg: strconv.FormatUint(max(c.applied, w.watchFrom), 10)})
	case w.req.Op == api.OpLockWait:
		// still waiting: where it stands (the client asks again)
		p, ok := c.kv.LockPlaceOf(w.req.Key, c.leaseOf(w.req))
		if !ok {
			c.lockWait(w) // gone meanwhile: says so
			return
		}
		js, _ := json.Marshal(p)
		c.reply(w, api.Response{JSON: js})
	case w.req.Op == api.OpSnapshot || w.req.Op == api.OpSnapshotRead:
		c.reply(w, c.backupTimeout(w))
	case w.call != 0 && api.IsWrite(w.req.Op):
		// still in flight toward the leader: it may arrive
		c.reply(w, client.Fail(w.req.Op, client.MaybeApplied, client.FailTimeout, string(c.id)))
	default:
		c.reply(w, client.Fail(w.req.Op, w.outcome, client.FailTimeout, string(c.id)))
	}
}

// expire answers every request whose deadline passed.
func (c *Core) expire() {
	now := c.now
	for _, idx := range sortedKeys(c.proposals) {
		if w := c.proposals[idx]; now >= w.deadline {
			delete(c.proposals, idx)
			c.timeout(w)
		}
	}
	for _, id := range sortedKeys(c.reads) {
		if w := c.reads[id]; now >= w.deadline {
			delete(c.reads, id)
			c.timeout(w)
		}
	}
	for _, id := range sortedKeys(c.calls) {
		if w := c.calls[id]; now >= w.deadline {
			c.timeout(w)
			delete(c.calls, id)
		}
	}
	keep := func(ws []*waiter) []*waiter {
		out := ws[:0]
		for _, w := range ws {
			switch {
			case w.replied:
			case now >= w.deadline:
				c.timeout(w)
			default:
				out = append(out, w)
			}
		}
		return out
	}
	for _, k := range sortedKeys(c.watches) {
		if ws := keep(c.watches[k]); len(ws) == 0 {
			delete(c.watches, k)
		} else {
			c.watches[k] = ws
		}
	}
	for _, k := range sortedKeys(c.lockWaits) {
		if ws := keep(c.lockWaits[k]); len(ws) == 0 {
			delete(c.lockWaits, k)
		} else {
			c.lockWaits[k] = ws
		}
	}
	if ch := c.change; ch != nil {
		// a client following a change is told where it stands, not that it failed
		kept := ch.waiters[:0]
		for _, w := range ch.waiters {
			switch {
			case w.replied:
			case now >= w.deadline:
				c.reply(w, ch.response())
			default:
				kept = append(kept, w)
			}
		}
		ch.waiters = kept
	}
	c.readyReads = keep(c.readyReads)
	c.logWatches.expire(keep)
	c.keeps = keep(c.keeps)
	for _, i := range sortedKeys(c.keepBatches) {
		b := c.keepBatches[i]
		b.waiters = keep(b.waiters) // the batch stays: it still renews when applied
	}
	c.waiting = keep(c.waiting)
	c.conditions = keep(c.conditions)
}

// wakeWatches answers the watches of key whose value changed.
func (c *Core) wakeWatches(key string) {
	v, _ := c.kv.Get(key)
	kept := c.watches[key][:0]
	for _, w := range c.watches[key] {
		if string(v) != string(w.req.CondValue) {
			c.reply(w, api.Response{Value: v})
		} else if !w.replied {
			kept = append(kept, w)
		}
	}
	if len(kept) == 0 {
		delete(c.watches, key)
	} else {
		c.watches[key] = kept
	}
}

// transfer hands leadership to the host named, and answers once it leads.
func (c *Core) transfer(w *waiter) {
	host := raftcore.NodeID(w.req.Member)
	if err := raftcore.ValidateID(host); err != nil {
		c.reply(w, api.Response{Code: api.CodeUsage, Msg: err.Error()})
		return
	}
	if err := c.node.TransferLeadership(host); err != nil {
		c.reply(w, api.Response{Code: api.CodeFailed, Msg: err.Error()})
		return
	}
	w.outcome = client.MaybeApplied
	w.cond = func() (api.Response, bool) {
		if c.node.Lead() == host {
			return api.Response{Msg: fmt.Sprintf("%s is the leader", host)}, true
		}
		return api.Response{}, false
	}
	c.conditions = append(c.conditions, w)
}

func (c *Core) checkConditions() {
	kept := c.conditions[:0]
	for _, w := range c.conditions {
		if w.replied {
			continue
		}
		if resp, ok := w.cond(); ok {
			c.reply(w, resp)
		} else {
			kept = append(kept, w)
		}
	}
	c.conditions = kept
}
