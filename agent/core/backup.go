package core

import (
	"encoding/json"
	"fmt"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
)

// Backups: `lite-raft-client snapshot save FILE`.
//
// A backup is a snapshot of the state machine as of a linearizable read, not the node's
// last snapshot file (which lags by up to snapshot_period entries): the leader takes a
// read index as for a get, and once it has applied that far it hands the driver an O(1)
// clone of the state (Ready.Backups). The driver writes it to a file under temp/, away
// from the loop, and reports the result (BackupWritten). The request is answered with a
// api.BackupInfo naming the file once it is written, or after backupAnswerMs with one that says
// it is not yet (Written false): the client then asks how it stands (snapshot-read with
// the ID alone, answered the same way), so that no request waits for the whole of a large
// write (lite-raft-remote gives each host a few seconds). The client reads the file in
// pieces by offset (snapshot-read ID OFFSET), which any member forwards to the host holding
// it, leader or not any more: the file stays a snapshot as of its index whoever leads. Each
// piece is read by the driver off the loop too (Ready.BackupReads, reported by BackupRead),
// so that neither the loop nor any message ever holds more than a piece (BackupChunk) of a
// large state.
//
// A file is dropped (Ready.DropBackups) when the client reads at its end, when no one asked
// for it for Config.BackupIdleMs, or when writing it failed (its error is kept as long, for
// the client to be told); the driver removes any left over at start and at shutdown. At
// most maxBackups are held at once: each costs disk the size of the state, and memory for
// what the clone keeps alive until it is written.

// BackupChunk is the most one snapshot-read returns: well within a response's value limit
// (2 MiB) and sshrpc's frame limit (8 MiB), so a forwarded piece crosses two hops easily.
const BackupChunk = 1 << 20

const (
	maxBackups          = 2
	defaultBackupIdleMs = 60_000
	// backupAnswerMs is the longest a request waits for a file being written: then it is
	// told so, and asks again
	backupAnswerMs = 2000
)

// BackupJob is a backup to write to the file of ID: the state machine as of Meta.Index
// (an O(1) clone: serialize it on any goroutine). Report the end with BackupWritten.
type BackupJob struct {
	ID    string
	Meta  raftcore.SnapshotMeta
	State *kvstore.Store
}

// BackupRead asks for Len bytes at Offset of backup ID's file. Report them with
// BackupRead(Token).
type BackupRead struct {
	Token  CallID
	ID     string
	Offset uint64
	Len    int
}

// backups is what a core holds for snapshot save.
type backups struct {
	held  map[string]*backup
	reads map[CallID]*pieceRead
	seq   uint64
}

type backup struct {
	info     api.BackupInfo // Written once BackupWritten came
	err      string         // why writing it failed
	lastUsed Time
}

type pieceRead struct {
	done bool
	data []byte
	err  error
}

func (c *Core) backupIdle() Time {
	if c.cfg.BackupIdleMs > 0 {
		return Time(c.cfg.BackupIdleMs)
	}
	return defaultBackupIdleMs
}

// makeBackup clones the state as applied (at or past the request's read index) and has
// the driver write it; the request is answered once it is written.
func (c *Core) makeBackup(w *waiter) {
	n := 0
	for _, b := range c.backups.held {
		if b.err == "" {
			n++
		}
	}
	if n >= maxBackups {
		c.reply(w, api.Response{Code: api.CodeFailed, Msg: fmt.Sprintf(
			"%s already holds %d snapshots for clients (each goes once read to its end, or after %d s unused): try again later",
			c.id, n, c.backupIdle()/1000)})
		return
	}
	meta, err := c.node.SnapshotMetaAt(c.applied)
	if err != nil {
		c.reply(w, api.Response{Code: api.CodeFailed, Msg: fmt.Sprintf("snapshot on %s: %v", c.id, err)})
		return
	}
	if c.backups.held == nil {
		c.backups.held, c.backups.reads = map[string]*backup{}, map[CallID]*pieceRead{}
	}
	c.backups.seq++
	// The sequence number restarts with the agent, but an ID names a file only on this
	// host and with its index: a client that asks an agent restarted since with an ID it
	// reuses gets the same state at the same index, whose file has the same bytes (its
	// encoding is sorted, its header a function of the index).
	id := fmt.Sprintf("%d.%d", meta.Index, c.backups.seq)
	b := &backup{lastUsed: c.now, info: api.BackupInfo{ID: id, Host: string(c.id), Index: meta.Index, Term: meta.Term,
		Members: meta.Members.String(), Keys: c.kv.Len()}}
	c.backups.held[id] = b
	c.out.Backups = append(c.out.Backups, BackupJob{ID: id, Meta: meta, State: c.kv.Clone()})
	c.logf("", "snapshot %s for a client: index %d (term %d), %d keys", id, meta.Index, meta.Term, b.info.Keys)
	c.awaitWritten(w, b)
}

// awaitWritten answers w with b as it stands once b is written, or at backupAnswerMs
// (backupTimeout) with b not written yet.
func (c *Core) awaitWritten(w *waiter, b *backup) {
	if b.info.Written {
		c.reply(w, c.describe(b))
		return
	}
	w.backup = b
	w.deadline = min(w.deadline, c.now+backupAnswerMs)
	w.cond = func() (api.Response, bool) {
		if !b.info.Written {
			return api.Response{}, false
		}
		return c.describe(b), true
	}
	c.conditions = append(c.conditions, w)
}

// describe is the answer that says how backup b stands.
func (c *Core) describe(b *backup) api.Response {
	if b.err != "" {
		return api.Response{Code: api.CodeFailed, Msg: b.err}
	}
	js, _ := json.Marshal(b.info)
	return api.Response{JSON: js}
}

// BackupWritten reports the end of a Backups job: the snapshot written (its data's size
// and checksum) and the size of the whole file, or why it failed.
func (c *Core) BackupWritten(now Time, id string, snap raftcore.Snapshot, fileSize uint64, err error) {
	c.at(now)
	b := c.backups.held[id]
	if b == nil {
		return
	}
	b.info.Written, b.lastUsed = true, c.now
	if err != nil {
		// kept, without its file, until the idle time: the client is told why
		b.err = fmt.Sprintf("write the snapshot at %d on %s: %v", b.info.Index, c.id, err)
		c.out.DropBackups = append(c.out.DropBackups, id)
		c.warnf("backup-fail", "snapshot %s for a client: %v", id, err)
	} else {
		b.info.Size, b.info.DataSize, b.info.Checksum = fileSize, snap.Size, snap.Checksum
	}
	c.checkConditions()
}

// snapshotRead answers snapshot-read: a piece of a backup file held here, read by the
// driver, or with the ID alone how it stands; a request for another host's file goes
// there (forward picks the holder).
func (c *Core) snapshotRead(w *waiter) {
	r := w.req
	id, off, describe := r.Backup, r.Offset, r.Describe
	if err := raftcore.ValidateID(raftcore.NodeID(r.Member)); err != nil {
		c.reply(w, api.Response{Code: api.CodeUsage, Msg: fmt.Sprintf("snapshot-read: %v", err)})
		return
	}
	if raftcore.NodeID(r.Member) != c.id {
		c.forward(w)
		return
	}
	b := c.backups.held[id]
	switch {
	case b == nil:
		c.reply(w, api.Response{Code: api.CodeFailed, Msg: fmt.Sprintf(
			"snapshot %s is not held on %s any more (a snapshot goes once read to its end, after %d s unused, or when the agent restarts): save again",
			id, c.id, c.backupIdle()/1000)})
		return
	case describe:
		b.lastUsed = c.now
		c.awaitWritten(w, b)
		return
	case b.err != "":
		c.reply(w, c.describe(b))
		return
	case !b.info.Written:
		c.reply(w, api.Response{Code: api.CodeFailed, Msg: fmt.Sprintf("snapshot %s on %s is still being written", id, c.id)})
		return
	case off > b.info.Size:
		c.reply(w, api.Response{Code: api.CodeUsage, Msg: fmt.Sprintf("snapshot %s holds %d bytes: no offset %d", id, b.info.Size, off)})
		return
	case off == b.info.Size:
		// the client has it all
		delete(c.backups.held, id)
		c.out.DropBackups = append(c.out.DropBackups, id)
		c.logf("", "snapshot %s read to its end by a client: released", id)
		c.reply(w, api.Response{})
		return
	}
	b.lastUsed = c.now
	c.nextCall++
	tok := c.nextCall
	pr := &pieceRead{}
	c.backups.reads[tok] = pr
	c.out.BackupReads = append(c.out.BackupReads, BackupRead{Token: tok, ID: id, Offset: off, Len: int(min(BackupChunk, b.info.Size-off))})
	w.cond = func() (api.Response, bool) {
		if !pr.done {
			return api.Response{}, false
		}
		if pr.err != nil {
			return api.Response{Code: api.CodeFailed, Msg: fmt.Sprintf("read snapshot %s on %s at %d: %v", id, c.id, off, pr.err)}, true
		}
		return api.Response{Value: pr.data}, true
	}
	c.conditions = append(c.conditions, w)
}

// BackupRead reports a BackupReads piece: its bytes, or why it could not be read.
func (c *Core) BackupRead(now Time, tok CallID, data []byte, err error) {
	c.at(now)
	pr := c.backups.reads[tok]
	if pr == nil {
		return
	}
	delete(c.backups.reads, tok)
	pr.done, pr.data, pr.err = true, data, err
	c.checkConditions()
}

// sweepBackups drops the backups no client read for the idle time: a client that died or
// gave up halfway leaves nothing behind for long.
func (c *Core) sweepBackups() {
	for _, id := range sortedKeys(c.backups.held) {
		if b := c.backups.held[id]; b.info.Written && c.now-b.lastUsed > c.backupIdle() {
			delete(c.backups.held, id)
			c.out.DropBackups = append(c.out.DropBackups, id)
			c.logf("", "snapshot %s unused for %d s: released", id, c.backupIdle()/1000)
		}
	}
}

// backupTimeout answers a snapshot or snapshot-read whose time ran out while it waited
// for its file to be written (it is told how the file stands) or a piece read (or for the
// holder, when forwarded). Waiting for a read index, it is a read that could not be
// confirmed, as the table says.
func (c *Core) backupTimeout(w *waiter) api.Response {
	switch {
	case w.call != 0:
		return api.Response{Code: api.CodeFailed, Msg: fmt.Sprintf("%s: no answer from %s in time", w.req.Op, w.callTo)}
	case w.backup != nil:
		return c.describe(w.backup)
	case w.cond != nil:
		return api.Response{Code: api.CodeFailed, Msg: fmt.Sprintf("snapshot-read: the piece was not read on %s in time", c.id)}
	}
	return client.Fail(w.req.Op, w.outcome, client.FailTimeout, string(c.id))
}
