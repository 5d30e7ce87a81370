package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"lite-raft/api"
	"lite-raft/statefile"
)

// BackupOptions are a backup's: its time limits, where it is read, its progress.
type BackupOptions struct {
	// Timeout is the most each request may take.
	Timeout time.Duration
	// WriteTimeout is the most the leader may take to write the snapshot before the
	// first piece can be read (a large state takes it a while).
	WriteTimeout time.Duration
	// Stale asks this agent's own state, as it has applied it, not the leader's.
	Stale bool
	// Progress, if set, is told what is being fetched once it is written (done 0), then
	// the bytes received after each piece.
	Progress func(info api.BackupInfo, done uint64)
	Clock    Clock // nil: the system's
}

// BackupFile is where a backup is written: in order, from the start. Name is its path,
// to read back what was written as it is on disk.
type BackupFile interface {
	io.Writer
	Name() string
}

// SaveBackup fetches a snapshot of the whole replicated state into f: it asks the leader
// for one (made as of a linearizable read, unless Stale), waits until the holder has
// written it, reads it in pieces through this client's agent, and reads f back to check
// it is the snapshot announced (header, size and CRC-32C). Its errors say how far it got:
// a request with no answer is an *Error, one answered with a failure an *AnswerError
// (ExitCodeOf gives the exit code of both), anything else (an unreadable answer, a piece
// that does not fit, a write to f, a check) is 1.
//
// The holder keeps its file until ReleaseBackup, or a minute without reads.
func (cl *Client) SaveBackup(ctx context.Context, f BackupFile, o BackupOptions) (api.BackupInfo, error) {
	clock := o.Clock
	if clock == nil {
		clock = systemClock{}
	}
	resp, err := cl.answer(ctx, o.Timeout, api.Request{Op: api.OpSnapshot, Stale: o.Stale})
	if err != nil {
		return api.BackupInfo{}, fmt.Errorf("the leader made no snapshot: %w", err)
	}
	var info api.BackupInfo
	if err := json.Unmarshal(resp.JSON, &info); err != nil || info.ID == "" || info.Host == "" {
		return api.BackupInfo{}, fmt.Errorf("unreadable answer from the leader (%v %q)", err, resp.JSON)
	}
	// a large state takes the leader a while to write: it says so every two seconds
	for deadline := clock.Now().Add(o.WriteTimeout); !info.Written; {
		if clock.Now().After(deadline) {
			return info, fmt.Errorf("%s has not written the snapshot after %v", info.Host, o.WriteTimeout)
		}
		resp, err := cl.answer(ctx, o.Timeout, api.Request{Op: api.OpSnapshotRead, Member: info.Host, Backup: info.ID, Describe: true})
		if err != nil {
			return info, fmt.Errorf("the leader was writing it: %w", err)
		}
		id, host := info.ID, info.Host
		if err := json.Unmarshal(resp.JSON, &info); err != nil || info.ID != id || info.Host != host {
			return info, fmt.Errorf("unreadable answer from %s (%v %q)", host, err, resp.JSON)
		}
	}
	progress := func(uint64) {}
	if o.Progress != nil {
		progress = func(done uint64) { o.Progress(info, done) }
	}
	progress(0)
	for off := uint64(0); off < info.Size; {
		r, err := cl.answer(ctx, o.Timeout, api.Request{Op: api.OpSnapshotRead, Member: info.Host, Backup: info.ID, Offset: off})
		if err == nil && (len(r.Value) == 0 || off+uint64(len(r.Value)) > info.Size) {
			err = fmt.Errorf("a piece of %d bytes at %d, of a file of %d", len(r.Value), off, info.Size)
		}
		if err != nil {
			return info, fmt.Errorf("failed after %s of %s: %w", MB(off), MB(info.Size), err)
		}
		if _, err := f.Write(r.Value); err != nil {
			return info, err
		}
		off += uint64(len(r.Value))
		progress(off)
	}
	// what arrived, read back as it is on disk, against its header and what the leader said
	return info, checkBackup(f.Name(), info)
}

// ReleaseBackup tells the holder of a backup that it may remove its file: a read at its
// end. If that is lost, the holder removes it after a minute without reads.
func (cl *Client) ReleaseBackup(ctx context.Context, info api.BackupInfo, timeout time.Duration) error {
	_, err := cl.answer(ctx, timeout, api.Request{Op: api.OpSnapshotRead, Member: info.Host, Backup: info.ID, Offset: info.Size})
	return err
}

// answer makes one request within timeout; an answer other than 0 is an *AnswerError.
func (cl *Client) answer(ctx context.Context, timeout time.Duration, req api.Request) (api.Response, error) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := cl.Do(rctx, req)
	if err == nil && resp.Code != api.CodeOK {
		err = &AnswerError{Op: req.Op, Resp: resp}
	}
	return resp, err
}

// checkBackup reads the file received back and checks it is the snapshot announced.
func checkBackup(path string, info api.BackupInfo) error {
	f, err := statefile.OpenSnapshotFile(path)
	if err != nil {
		return fmt.Errorf("the snapshot received: %w", err)
	}
	defer f.Close()
	s := f.Snapshot
	if s.Meta.Index != info.Index || s.Meta.Term != info.Term || s.Size != info.DataSize || s.Checksum != info.Checksum {
		return fmt.Errorf("the snapshot received is not the one announced: index %d term %d, %d bytes, crc32c %08x; announced index %d term %d, %d bytes, crc32c %08x",
			s.Meta.Index, s.Meta.Term, s.Size, s.Checksum, info.Index, info.Term, info.DataSize, info.Checksum)
	}
	if err := f.Check(); err != nil {
		return fmt.Errorf("the snapshot received: %w", err)
	}
	return nil
}

// MB is n bytes in megabytes, for messages.
func MB(n uint64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
