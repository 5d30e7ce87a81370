package core

import (
	"fmt"
	"strconv"
	"strings"

	"lite-raft/api"
)

// The changes ring is what `watch` reads: every change the state machine made, as it
// applied it (a conditional write that did not hold changes nothing; a revoke deletes its
// lease's keys), in index order. The log alone could not say: whether an `if` held
// depends on the state of its time. The ring lives in memory and is bounded; a watch
// asking from before what it holds is told so (compacted) rather than given a gap. After
// a restart the ring refills from the log replayed since the snapshot.

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

// record notes what an applied command changed, as the store reports it (no command
// needs code here), and wakes the watches those changes answer.
func (c *Core) record(changes []api.Change) {
	for _, ch := range changes {
		c.changes.add(ch)
		if len(c.watches[ch.Key]) > 0 {
			c.wakeWatches(ch.Key)
		}
	}
	if len(changes) > 0 && len(c.logWatches) > 0 {
		c.wakeLogWatches()
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
		if !matches(w.req.Key, ch.Key) {
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
		c.logWatches = append(c.logWatches, w)
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

// wakeLogWatches answers the parked watches that have changes now.
func (c *Core) wakeLogWatches() {
	ws := c.logWatches
	c.logWatches = nil
	for _, w := range ws {
		if !w.replied {
			c.logWatch(w)
		}
	}
}
