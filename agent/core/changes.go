package core

import (
	"fmt"
	"strconv"
	"strings"

	"lite-raft/api"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
)

// The changes ring is what `watch` reads: every change the state machine made, as it
// applied it (a conditional write that did not hold changes nothing; a revoke deletes its
// lease's keys), in index order. The log alone could not say: whether an `if` held
// depends on the state of its time. The ring lives in memory and is bounded; a watch
// asking from before what it holds is told so (compacted) rather than given a gap. After
// a restart the ring refills with what the entries after the snapshot change as they are
// applied again, and the driver rebuilds the changes of the entries the log holds before
// that snapshot with a Replay from the snapshot before it (the log is kept from there).

// Bounds of the ring: changes and bytes of values.
const (
	maxChanges     = 100_000
	maxChangeBytes = 64 << 20
)

// maxWatchAnswer bounds the values in one watch answer (one change always goes).
const maxWatchAnswer = 1 << 20

type changeRing struct {
	ch    []api.Change
	bytes int
	// since: the ring holds every change after this index
	since uint64
}

func (r *changeRing) add(c api.Change) {
	r.ch = append(r.ch, c)
	r.bytes += len(c.Value) + len(c.Key)
	n := 0
	for len(r.ch)-n > maxChanges || (r.bytes > maxChangeBytes && len(r.ch)-n > 1) {
		r.bytes -= len(r.ch[n].Value) + len(r.ch[n].Key)
		r.since = r.ch[n].Index
		n++
	}
	if n > 0 {
		// sliced off; the dropped values go when appends move the slice
		clear(r.ch[:n])
		r.ch = r.ch[n:]
	}
}

// reset forgets everything up to index (a snapshot was installed: what it replaced is
// not known change by change).
func (r *changeRing) reset(index uint64) {
	r.ch, r.bytes, r.since = nil, 0, index
}

// record notes what an applied command changed (the changes of one entry), as the store
// reports it (no command needs code here), and wakes the watches those changes answer:
// found through the index of parked watches, by each change's key and the folders above
// it, so a change costs the same however many watches wait and however long they have.
func (c *Core) record(changes []api.Change) {
	var woken []*waiter
	for _, ch := range changes {
		c.changes.add(ch)
		if ch.Prefix {
			// a folder's keys all went: the watches of any of them, and of any folder
			// below it, as well as those above
			for _, k := range sortedKeys(c.watches) {
				if strings.HasPrefix(k, ch.Key) {
					c.wakeWatches(k)
				}
			}
			woken = c.logWatches.takeUnder(ch.Key, woken)
		} else if len(c.watches[ch.Key]) > 0 {
			c.wakeWatches(ch.Key)
		}
		woken = c.logWatches.take(ch.Key, woken)
	}
	for _, w := range woken {
		if w.replied {
			continue
		}
		// Nothing it asked for changed between where it asked from and this entry (it
		// would have been answered then), so it looks from just before this entry: no
		// rescan of the changes that went by while it waited. Never back from where it
		// asked (a member behind the index asked from).
		if len(changes) > 0 {
			w.watchFrom = max(w.watchFrom, changes[0].Index-1)
		}
		c.logWatch(w)
	}
}

// parkedWatches indexes the watches that wait for a change: by exact key, and by folder
// (its name with the trailing slash; "" for everything), so that a change finds the
// watches it concerns by its key and its parent folders alone.
type parkedWatches struct {
	keys    map[string][]*waiter
	folders map[string][]*waiter
	n       int
}

// watchFolder says whether pattern names a folder, and which ("" for everything).
func watchFolder(pattern string) (string, bool) {
	if pattern == "" || pattern == "/" {
		return "", true
	}
	if strings.HasSuffix(pattern, "/") {
		return pattern, true
	}
	return "", false
}

func (p *parkedWatches) park(w *waiter) {
	if p.keys == nil {
		p.keys, p.folders = map[string][]*waiter{}, map[string][]*waiter{}
	}
	if f, ok := watchFolder(w.req.Key); ok {
		p.folders[f] = append(p.folders[f], w)
	} else {
		p.keys[w.req.Key] = append(p.keys[w.req.Key], w)
	}
	p.n++
}

// take removes the watches a change of key concerns and appends them to out: those of
// the key, of each folder above it, and of everything. Each is taken once, so a watch
// concerned by several changes of one entry is answered once, with all of them.
func (p *parkedWatches) take(key string, out []*waiter) []*waiter {
	if p.n == 0 {
		return out
	}
	out = p.takeFrom(p.keys, key, out)
	out = p.takeFrom(p.folders, "", out)
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			out = p.takeFrom(p.folders, key[:i+1], out)
		}
	}
	return out
}

// takeUnder removes the watches of the keys and folders under folder prefix (not the
// folder itself, which take finds) and appends them to out, in an order that depends
// only on the core's state.
func (p *parkedWatches) takeUnder(prefix string, out []*waiter) []*waiter {
	if p.n == 0 {
		return out
	}
	for _, m := range []map[string][]*waiter{p.keys, p.folders} {
		for _, k := range sortedKeys(m) {
			if k != prefix && strings.HasPrefix(k, prefix) {
				out = p.takeFrom(m, k, out)
			}
		}
	}
	return out
}

func (p *parkedWatches) takeFrom(m map[string][]*waiter, k string, out []*waiter) []*waiter {
	ws, ok := m[k]
	if !ok {
		return out
	}
	delete(m, k)
	p.n -= len(ws)
	return append(out, ws...)
}

// all removes and returns every parked watch, in an order that depends only on the
// core's state (keys, then folders, each sorted).
func (p *parkedWatches) all() []*waiter {
	var out []*waiter
	for _, m := range []map[string][]*waiter{p.keys, p.folders} {
		for _, k := range sortedKeys(m) {
			out = append(out, m[k]...)
		}
	}
	p.keys, p.folders, p.n = nil, nil, 0
	return out
}

// expire keeps the watches keep keeps (it answers those whose time ran out).
func (p *parkedWatches) expire(keep func([]*waiter) []*waiter) {
	for _, m := range []map[string][]*waiter{p.keys, p.folders} {
		for _, k := range sortedKeys(m) {
			before := len(m[k])
			ws := keep(m[k])
			p.n -= before - len(ws)
			if len(ws) == 0 {
				delete(m, k)
			} else {
				m[k] = ws
			}
		}
	}
}

// matches reports whether key is what a watch asked for: the key itself, or anything
// below a folder asked for with a trailing slash ("" or "/": everything).
func matches(pattern, key string) bool {
	if pattern == "" || pattern == "/" {
		return true
	}
	if strings.HasSuffix(pattern, "/") {
		return strings.HasPrefix(key, pattern)
	}
	return key == pattern
}

// concerns reports whether ch changed something a watch of pattern asked for: a key it
// matches, or, for a folder deleted whole, a key under it that it could match (the
// folder is in the pattern's, or the pattern's key or folder is in it).
func concerns(pattern string, ch api.Change) bool {
	if !ch.Prefix {
		return matches(pattern, ch.Key)
	}
	return matches(pattern, ch.Key) || strings.HasPrefix(pattern, ch.Key)
}

// logWatch answers a watch with the changes after its index (Args; "" for now), or
// parks it until there are some, or its deadline (then an empty answer that says how
// far it looked). One that asks from before what the ring holds gets CodeCompacted.
func (c *Core) logWatch(w *waiter) {
	if !w.watchKnown {
		w.watchFrom, w.watchKnown = c.applied, true
		if w.req.FromSet {
			w.watchFrom = w.req.From
		}
	}
	from := w.watchFrom
	if from < c.changes.since {
		c.reply(w, api.Response{Code: api.CodeCompacted, Msg: fmt.Sprintf(
			"this member keeps the changes after index %d only, and the watch asks from %d: read the current state and watch from its index (status shows applied)",
			c.changes.since, from)})
		return
	}
	var out []api.Change
	size := 0
	start := searchChanges(c.changes.ch, from)
	through := c.applied
	for _, ch := range c.changes.ch[start:] {
		c.watchScanned++
		if !concerns(w.req.Key, ch) {
			continue
		}
		if len(out) > 0 && size+len(ch.Value) > maxWatchAnswer && ch.Index != out[len(out)-1].Index {
			// the rest next time; never half of one index's changes (a revoke's keys),
			// since the next watch asks from after it
			through = out[len(out)-1].Index
			break
		}
		out = append(out, ch)
		size += len(ch.Value) + len(ch.Key)
	}
	if len(out) == 0 {
		c.logWatches.park(w)
		return
	}
	c.reply(w, api.Response{Value: api.EncodeChanges(out), Msg: strconv.FormatUint(through, 10)})
}

// searchChanges is the position of the first change after index.
func searchChanges(ch []api.Change, index uint64) int {
	lo, hi := 0, len(ch)
	for lo < hi {
		m := (lo + hi) / 2
		if ch[m].Index <= index {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// wakeLogWatches answers every parked watch again (a snapshot replaced the changes they
// wait after: those from before it are told so).
func (c *Core) wakeLogWatches() {
	for _, w := range c.logWatches.all() {
		if !w.replied {
			c.logWatch(w)
		}
	}
}

// Replay rebuilds, at a restart, the changes of the entries the log holds before the
// snapshot the state machine starts from. An entry alone does not say what it changed
// (an `if` that failed, a `create` of a key that was there, the keys a revoke took), but
// applied again to the state it was applied to, it changes exactly that again: the
// driver loads the snapshot the log starts from (the one before the latest) into a
// scratch store, hands the entries from there to the latest snapshot to Apply, in order
// and in as many batches as it likes, and gives the result to the core with LoadReplay
// before anything else. The changes are bounded as the core's are (the oldest go).
type Replay struct {
	kv   *kvstore.Store
	ring changeRing
	next uint64 // the index the next entry must have
}

// NewReplay starts a replay from kv, the state machine as of index since (a scratch
// store: Apply changes it).
func NewReplay(kv *kvstore.Store, since uint64) *Replay {
	return &Replay{kv: kv, ring: changeRing{since: since}, next: since + 1}
}

// Apply applies the next entries of the log to the scratch store and keeps what they
// changed, as the core's apply does.
func (r *Replay) Apply(ents []raftcore.Entry) error {
	for _, e := range ents {
		if e.Index != r.next {
			return fmt.Errorf("replay the log for watch: entry %d where %d was due", e.Index, r.next)
		}
		r.next++
		if e.Type == raftcore.EntryMembership || len(e.Data) == 0 {
			continue
		}
		cmd, err := kvstore.Decode(e.Data)
		if err != nil {
			return fmt.Errorf("replay the log for watch: entry %d: %w", e.Index, err)
		}
		for _, ch := range r.kv.Apply(e.Index, cmd).Changes {
			r.ring.add(ch)
		}
	}
	return nil
}

// Next is the index of the entry Apply wants next.
func (r *Replay) Next() uint64 { return r.next }

// State is the scratch store, as of the last entry applied (nil once LoadReplay took the
// changes).
func (r *Replay) State() *kvstore.Store { return r.kv }

// LoadReplay gives a core just made the changes a replay rebuilt, which must run up to
// the snapshot the core starts from: watches from as far back as the replay began are
// served, not refused with 17.
func (c *Core) LoadReplay(r *Replay) error {
	if r.next != c.changes.since+1 || len(c.changes.ch) > 0 || c.applied != c.changes.since {
		return fmt.Errorf("load the replayed changes: they run to index %d, the core starts after %d (with %d changes, applied %d)",
			r.next-1, c.changes.since, len(c.changes.ch), c.applied)
	}
	c.changes = r.ring
	r.kv, r.ring = nil, changeRing{}
	return nil
}
