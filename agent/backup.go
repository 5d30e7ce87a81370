package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"lite-raft/agent/core"
	"lite-raft/internal/logsink"
	"lite-raft/raftcore"
	"lite-raft/statefile"
)

// backupFiles does the I/O of snapshot save for the core (agent/core/backup.go): each
// backup is a snapshot file temp/backup-ID.snapshot, written and read in pieces by
// goroutines of their own, so that the loop never waits for them.
type backupFiles struct {
	dir string // the lite-raft directory's temp/
}

const backupPrefix = "backup-"

func (b backupFiles) path(id string) string {
	return filepath.Join(b.dir, backupPrefix+id+".snapshot")
}

type backupDone struct {
	id   string
	snap raftcore.Snapshot
	size int64
	err  error
}

type backupPiece struct {
	tok  core.CallID
	data []byte
	err  error
}

// doBackups starts the Ready's backup work.
func (a *Agent) doBackups(rd core.Ready) {
	for _, id := range rd.DropBackups {
		if err := os.Remove(a.backups.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			a.log.Printf(logsink.Warn+"remove the snapshot file of a client: %v", err)
		}
	}
	for _, job := range rd.Backups {
		go func() {
			snap, size, err := statefile.WriteSnapshotFile(a.backups.path(job.ID), job.Meta, job.State.WriteSnapshot)
			a.post(event{backup: &backupDone{id: job.ID, snap: snap, size: size, err: err}})
		}()
	}
	for _, r := range rd.BackupReads {
		go func() {
			data, err := a.backups.read(r)
			a.post(event{piece: &backupPiece{tok: r.Token, data: data, err: err}})
		}()
	}
}

// read reads one piece. The file is opened for each: a piece is a megabyte, and nothing
// is left open when the core drops the file.
func (b backupFiles) read(r core.BackupRead) ([]byte, error) {
	f, err := os.Open(b.path(r.ID))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data := make([]byte, r.Len)
	n, err := f.ReadAt(data, int64(r.Offset))
	if n == len(data) {
		return data, nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("read %s: %w", f.Name(), err)
}

// removeAll removes every backup file in temp/: at start, those an agent that died left;
// at shutdown, those no client will read any more (the core forgets them).
func (b backupFiles) removeAll() error {
	ents, err := os.ReadDir(b.dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		name := e.Name()
		// the temporary names statefile writes them under too
		if strings.HasPrefix(name, backupPrefix) || strings.HasPrefix(name, "."+backupPrefix) {
			if err := os.Remove(filepath.Join(b.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
