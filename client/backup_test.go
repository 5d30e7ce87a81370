package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/raftcore"
	"lite-raft/sshrpc"
	"lite-raft/statefile"
)

// fakeHolder is the agent a backup asks, holding a real snapshot file of 2.5 MB (three
// pieces), announced as written after `describes` requests asking how it stands.
type fakeHolder struct {
	file      []byte
	info      api.BackupInfo
	describes int                                  // answers "writing" this many times (-1: for ever)
	piece     func(off int, b []byte) api.Response // a piece's answer (nil: as it is)
	mu        sync.Mutex
	asked     []api.Request
}

func newFakeHolder(t *testing.T) *fakeHolder {
	t.Helper()
	path := filepath.Join(t.TempDir(), "held")
	data := bytes.Repeat([]byte("0123456789"), 250_000)
	meta := raftcore.SnapshotMeta{Index: 3, Term: 2, Members: raftcore.Membership{Voters: []raftcore.NodeID{"h1"}}}
	snap, size, err := statefile.WriteSnapshotFile(path, meta, func(w io.Writer) error { _, err := w.Write(data); return err })
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeHolder{file: file, info: api.BackupInfo{ID: "3.1", Host: "h1", Index: 3, Term: 2, Keys: 1,
		Size: uint64(size), DataSize: snap.Size, Checksum: snap.Checksum, Written: true}}
}

func (h *fakeHolder) Call(_ context.Context, _ uint8, payload []byte) (sshrpc.Frame, error) {
	req, err := api.DecodeRequest(payload)
	if err != nil {
		return sshrpc.Frame{}, err
	}
	h.mu.Lock()
	h.asked = append(h.asked, req)
	h.mu.Unlock()
	writing := h.info
	writing.Size, writing.DataSize, writing.Checksum, writing.Written = 0, 0, 0, false
	var resp api.Response
	switch {
	case req.Op == api.OpSnapshot || req.Describe:
		resp.JSON, _ = json.Marshal(h.info)
		if h.describes != 0 {
			h.describes--
			resp.JSON, _ = json.Marshal(writing)
		}
	case req.Op == api.OpSnapshotRead:
		off := int(req.Offset)
		end := min(off+1<<20, len(h.file))
		resp.Value = bytes.Clone(h.file[min(off, end):end])
		if h.piece != nil && off < len(h.file) {
			resp = h.piece(off, resp.Value)
		}
	}
	return sshrpc.Frame{Kind: sshrpc.KindResponse, Type: api.FrameRequest, Payload: resp.Encode()}, nil
}

// steppingClock moves a minute each time it is read.
type steppingClock struct{ t time.Time }

func (c *steppingClock) Now() time.Time { c.t = c.t.Add(time.Minute); return c.t }

func saveTo(t *testing.T, h *fakeHolder, o BackupOptions) (*os.File, api.BackupInfo, error) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "backup.snap"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	info, err := New(h).SaveBackup(context.Background(), f, o)
	return f, info, err
}

// TestSaveBackup: the snapshot asked for, waited for while the holder writes it, read in
// pieces into the file, which holds it byte for byte; progress starts at 0 once it is
// written and ends at its size; the release is a read at its end.
func TestSaveBackup(t *testing.T) {
	h := newFakeHolder(t)
	h.describes = 2
	var reports []uint64
	f, info, err := saveTo(t, h, BackupOptions{WriteTimeout: time.Hour,
		Progress: func(i api.BackupInfo, done uint64) {
			if !i.Written || i.Size != h.info.Size {
				t.Errorf("progress told of %+v", i)
			}
			reports = append(reports, done)
		}})
	if err != nil || info != h.info {
		t.Fatalf("SaveBackup: %+v %v", info, err)
	}
	if b, _ := os.ReadFile(f.Name()); !bytes.Equal(b, h.file) {
		t.Fatalf("the file holds %d bytes, not the %d held", len(b), len(h.file))
	}
	if want := []uint64{0, 1 << 20, 2 << 20, info.Size}; !slices.Equal(reports, want) {
		t.Errorf("progress %v, want %v", reports, want)
	}
	if err := New(h).ReleaseBackup(context.Background(), info, time.Second); err != nil {
		t.Fatal(err)
	}
	if last := h.asked[len(h.asked)-1]; last.Op != api.OpSnapshotRead || last.Offset != info.Size || last.Backup != "3.1" || last.Member != "h1" {
		t.Errorf("the release asked %+v", last)
	}
}

// TestSaveBackupWriteTimeout: a holder that never finishes writing is given up on once
// WriteTimeout has passed by the clock, without waiting it out for real.
func TestSaveBackupWriteTimeout(t *testing.T) {
	h := newFakeHolder(t)
	h.describes = -1
	_, _, err := saveTo(t, h, BackupOptions{WriteTimeout: 3 * time.Minute, Clock: &steppingClock{t: time.Now()}})
	if err == nil || !strings.Contains(err.Error(), "h1 has not written the snapshot after 3m0s") || ExitCodeOf(err) != api.CodeFailed {
		t.Fatalf("a holder that never writes it: %v (exit %d)", err, ExitCodeOf(err))
	}
	if n := len(h.asked); n > 4 {
		t.Errorf("asked %d times within a 3-minute limit on a clock that moves a minute a read", n)
	}
}

// TestSaveBackupFails: how a save fails says how far it got, and its exit code is the
// answer's, the table's, or 1, never read from a message.
func TestSaveBackupFails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		piece func(off int, b []byte) api.Response
		code  int
		says  string
	}{
		{"no leader", func(int, []byte) api.Response {
			return api.Response{Code: api.CodeNoLeader, Msg: "leader is not available."}
		},
			api.CodeNoLeader, "failed after 0.0 MB of 2.5 MB: leader is not available."},
		{"not held", func(off int, b []byte) api.Response {
			if off == 0 {
				return api.Response{Value: b}
			}
			return api.Response{Code: api.CodeFailed, Msg: "snapshot 3.1 is not held on h1 any more"}
		}, api.CodeFailed, "failed after 1.0 MB of 2.5 MB: snapshot 3.1 is not held on h1 any more"},
		{"too long", func(off int, b []byte) api.Response {
			if off == 2<<20 {
				b = append(b, "past the end"...)
			}
			return api.Response{Value: b}
		}, api.CodeFailed, "failed after 2.1 MB of 2.5 MB: a piece of"},
		{"flipped", func(off int, b []byte) api.Response {
			if off > 0 {
				b[100] ^= 1
			}
			return api.Response{Value: b}
		}, api.CodeFailed, "data checksum mismatch"},
	} {
		h := newFakeHolder(t)
		h.piece = tc.piece
		_, _, err := saveTo(t, h, BackupOptions{WriteTimeout: time.Hour})
		if err == nil || ExitCodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v (exit %d); want %d and %q", tc.name, err, ExitCodeOf(err), tc.code, tc.says)
		}
		var ae *AnswerError
		if tc.name == "no leader" && !errors.As(err, &ae) {
			t.Errorf("%s: %T, not an *AnswerError", tc.name, err)
		}
	}
}
