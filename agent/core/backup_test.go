package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"lite-raft/api"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
)

// backupDriver is a one-member core (its testDriver) that keeps what snapshot save asks
// of the driver: backup jobs to write, pieces to read, files dropped, and the calls.
type backupDriver struct {
	*soloCore
	jobs    []BackupJob
	reads   []BackupRead
	calls   []Call
	dropped []string
	files   map[string][]byte
	nextTo  ReplyTo
}

func newBackupDriver(t *testing.T, idleMs int64) *backupDriver {
	s := newSoloCore(t, 1000)
	s.c.cfg.BackupIdleMs = idleMs
	d := &backupDriver{soloCore: s, files: map[string][]byte{}, nextTo: 100}
	s.d.backup = func(j BackupJob) { d.jobs = append(d.jobs, j) }
	s.d.read = func(r BackupRead) { d.reads = append(d.reads, r) }
	s.d.drop = func(f string) { d.dropped = append(d.dropped, f) }
	s.d.call = func(c Call) { d.calls = append(d.calls, c) }
	return d
}

// request sends req and returns where its answer will go.
func (d *backupDriver) request(req api.Request) ReplyTo {
	d.nextTo++
	d.c.Request(d.now, d.nextTo, req)
	d.pump()
	return d.nextTo
}

func (d *backupDriver) answer(to ReplyTo) (api.Response, bool) {
	r, ok := d.replies[to]
	return r, ok
}

func (d *backupDriver) set(key, value string) {
	to := d.request(api.Request{Op: api.OpSet, Key: key, Value: []byte(value)})
	if r, ok := d.answer(to); !ok || r.Code != 0 {
		d.t.Fatalf("set %s: %+v %v", key, r, ok)
	}
}

// write does the oldest backup job: the file is the state's encoding (the core does not
// look inside).
func (d *backupDriver) write(err error) BackupJob {
	d.t.Helper()
	if len(d.jobs) == 0 {
		d.t.Fatal("no backup job handed out")
	}
	job := d.jobs[0]
	d.jobs = d.jobs[1:]
	var b bytes.Buffer
	if err := job.State.WriteSnapshot(&b); err != nil {
		d.t.Fatal(err)
	}
	d.files[job.ID] = b.Bytes()
	d.c.BackupWritten(d.now, job.ID, raftcore.SnapshotOf(job.Meta, b.Bytes()), uint64(b.Len()), err)
	d.pump()
	return job
}

// readAll reads backup info's file piece by piece through the core, as snapshot save does.
func (d *backupDriver) readAll(info api.BackupInfo) []byte {
	d.t.Helper()
	var got []byte
	for off := uint64(0); off < info.Size; {
		to := d.request(api.Request{Op: api.OpSnapshotRead, Member: info.Host, Backup: info.ID, Offset: off})
		if len(d.reads) != 1 {
			d.t.Fatalf("read at %d: %d pieces asked of the driver, want 1", off, len(d.reads))
		}
		pr := d.reads[0]
		d.reads = nil
		if pr.Offset != off || pr.Len > BackupChunk || pr.Len <= 0 {
			d.t.Fatalf("read at %d: the driver is asked for %d bytes at %d", off, pr.Len, pr.Offset)
		}
		if _, ok := d.answer(to); ok {
			d.t.Fatal("a piece answered before the driver read it")
		}
		file := d.files[pr.ID]
		d.c.BackupRead(d.now, pr.Token, file[pr.Offset:pr.Offset+uint64(pr.Len)], nil)
		d.pump()
		r, ok := d.answer(to)
		if !ok || r.Code != 0 {
			d.t.Fatalf("read at %d: %+v %v", off, r, ok)
		}
		got = append(got, r.Value...)
		off += uint64(len(r.Value))
	}
	return got
}

func (d *backupDriver) start() (api.BackupInfo, BackupJob) {
	d.t.Helper()
	to := d.request(api.Request{Op: api.OpSnapshot})
	if r, ok := d.answer(to); ok {
		d.t.Fatalf("snapshot answered before its file was written: %+v", r)
	}
	job := d.write(nil)
	r, ok := d.answer(to)
	if !ok || r.Code != 0 {
		d.t.Fatalf("snapshot: %+v %v", r, ok)
	}
	var info api.BackupInfo
	if err := json.Unmarshal(r.JSON, &info); err != nil {
		d.t.Fatal(err)
	}
	return info, job
}

// A backup holds every write acknowledged before it was asked for and none made after,
// even though they are applied before its file is written (the clone); it is answered
// only once written, read back piece by piece, and dropped once read to its end.
func TestBackupIsTheStateAsOfTheRequest(t *testing.T) {
	d := newBackupDriver(t, 0)
	big := strings.Repeat("x", 700_000) // three of them: the file takes three pieces
	for i := 0; i < 3; i++ {
		d.set(fmt.Sprintf("big/%d", i), big)
	}
	for i := 0; i < 50; i++ {
		d.set(fmt.Sprintf("k/%d", i), fmt.Sprint(i))
	}
	to := d.request(api.Request{Op: api.OpSnapshot})
	if len(d.jobs) != 1 {
		t.Fatalf("%d backup jobs after one request", len(d.jobs))
	}
	applied := d.c.Applied()
	for i := 0; i < 10; i++ {
		d.set(fmt.Sprintf("after/%d", i), "late") // applied before the file is written
	}
	if _, ok := d.answer(to); ok {
		t.Fatal("answered before the file was written")
	}
	job := d.write(nil)
	if job.Meta.Index != applied || job.Meta.Term == 0 || len(job.Meta.Members.Voters) != 1 {
		t.Fatalf("backup meta %+v; want index %d (applied when it was asked)", job.Meta, applied)
	}
	r, ok := d.answer(to)
	if !ok || r.Code != 0 {
		t.Fatalf("snapshot: %+v %v", r, ok)
	}
	var info api.BackupInfo
	if err := json.Unmarshal(r.JSON, &info); err != nil {
		t.Fatal(err)
	}
	if info.Host != "a" || info.Index != applied || info.Size != uint64(len(d.files[job.ID])) || info.Keys != 53 {
		t.Fatalf("backup info %+v; want host a, index %d, %d bytes, 53 keys", info, applied, len(d.files[job.ID]))
	}
	data := d.readAll(info)
	kv, err := kvstore.Restore(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := kv.Get("k/49"); !ok || string(v) != "49" {
		t.Fatalf("the last write before the request is not in the backup: %q %v", v, ok)
	}
	if _, ok := kv.Get("after/0"); ok {
		t.Fatal("a write made after the request is in the backup")
	}
	if v, _ := kv.Get("big/2"); len(v) != len(big) {
		t.Fatalf("big/2: %d bytes", len(v))
	}
	// read at the end: released, and then gone
	to = d.request(api.Request{Op: api.OpSnapshotRead, Member: "a", Backup: info.ID, Offset: info.Size})
	if r, ok := d.answer(to); !ok || r.Code != 0 || len(d.dropped) != 1 || d.dropped[0] != info.ID {
		t.Fatalf("read at the end: %+v %v, dropped %v", r, ok, d.dropped)
	}
	to = d.request(api.Request{Op: api.OpSnapshotRead, Member: "a", Backup: info.ID, Offset: 0})
	if r, ok := d.answer(to); !ok || r.Code != api.CodeFailed || !strings.Contains(r.Msg, "not held") {
		t.Fatalf("read of a released snapshot: %+v %v", r, ok)
	}
}

// A file no one reads for the idle time is dropped; reading it keeps it; one being written
// is never dropped.
func TestBackupDroppedWhenIdle(t *testing.T) {
	d := newBackupDriver(t, 1000)
	d.set("k", "v")
	to := d.request(api.Request{Op: api.OpSnapshot, TimeoutMs: 60_000})
	d.tick(5000) // still being written: kept
	if len(d.dropped) != 0 {
		t.Fatalf("a backup being written was dropped: %v", d.dropped)
	}
	d.write(nil)
	var info api.BackupInfo
	r, _ := d.answer(to)
	json.Unmarshal(r.JSON, &info)
	d.tick(900)
	d.readAll(api.BackupInfo{ID: info.ID, Host: "a", Size: 1}) // one byte: it was used
	d.tick(900)
	if len(d.dropped) != 0 {
		t.Fatalf("dropped %v though read 900 ms ago (idle time 1 s)", d.dropped)
	}
	d.tick(200)
	if len(d.dropped) != 1 || d.dropped[0] != info.ID {
		t.Fatalf("dropped %v after 1.1 s unused; want %s", d.dropped, info.ID)
	}
}

// A request waits at most backupAnswerMs for a file being written, however long its
// client waits: it is told the file is not written yet (lite-raft-remote gives a host a
// few seconds), asks again, and is answered as soon as it is.
func TestBackupAnswersWhileWriting(t *testing.T) {
	d := newBackupDriver(t, 0)
	d.set("k", "v")
	to := d.request(api.Request{Op: api.OpSnapshot, TimeoutMs: 60_000})
	d.tick(1900)
	if _, ok := d.answer(to); ok {
		t.Fatal("answered before the file was written or 2 s passed")
	}
	d.tick(200)
	r, ok := d.answer(to)
	var info api.BackupInfo
	if !ok || r.Code != 0 || json.Unmarshal(r.JSON, &info) != nil || info.Written || info.ID == "" || info.Host != "a" {
		t.Fatalf("after 2 s of writing: %+v %v (%+v); want the backup named, not written yet", r, ok, info)
	}
	ask := api.Request{Op: api.OpSnapshotRead, Member: "a", Backup: info.ID, Describe: true, TimeoutMs: 60_000}
	to = d.request(ask)
	d.tick(2100)
	if r, ok := d.answer(to); !ok || r.Code != 0 || json.Unmarshal(r.JSON, &info) != nil || info.Written {
		t.Fatalf("asked again while writing: %+v %v", r, ok)
	}
	to = d.request(ask)
	d.tick(500)
	job := d.write(nil)
	r, ok = d.answer(to)
	if !ok || r.Code != 0 || json.Unmarshal(r.JSON, &info) != nil || !info.Written || info.Size != uint64(len(d.files[job.ID])) {
		t.Fatalf("asked while it was written: %+v %v (%+v)", r, ok, info)
	}
	to = d.request(ask)
	if r, ok := d.answer(to); !ok || r.Code != 0 || json.Unmarshal(r.JSON, &info) != nil || !info.Written {
		t.Fatalf("asked once written: %+v %v", r, ok)
	}
}

// The failures: too many held, a write that failed, a bad request, another host's file
// (forwarded there).
func TestBackupFailures(t *testing.T) {
	d := newBackupDriver(t, 0)
	d.set("k", "v")
	d.start()
	d.start()
	to := d.request(api.Request{Op: api.OpSnapshot})
	if r, ok := d.answer(to); !ok || r.Code != api.CodeFailed || !strings.Contains(r.Msg, "try again later") {
		t.Fatalf("a third backup held at once: %+v %v", r, ok)
	}
	if len(d.jobs) != 0 {
		t.Fatal("a refused backup was handed out")
	}

	d = newBackupDriver(t, 0)
	to = d.request(api.Request{Op: api.OpSnapshot})
	job := d.write(fmt.Errorf("disk full"))
	if r, ok := d.answer(to); !ok || r.Code != api.CodeFailed || !strings.Contains(r.Msg, "disk full") {
		t.Fatalf("a backup whose write failed: %+v %v", r, ok)
	}
	if len(d.dropped) != 1 || d.dropped[0] != job.ID {
		t.Fatalf("the failed backup's file is not dropped: %v", d.dropped)
	}
	// its error is kept for a client that asks how it stands, and it holds no place
	to = d.request(api.Request{Op: api.OpSnapshotRead, Member: "a", Backup: job.ID, Describe: true})
	if r, ok := d.answer(to); !ok || r.Code != api.CodeFailed || !strings.Contains(r.Msg, "disk full") {
		t.Fatalf("how a failed backup stands: %+v %v", r, ok)
	}
	d.start()
	d.start()

	// (offsets that are not numbers do not decode: api's TestBadArgumentsDoNotDecode)
	for _, bad := range []api.Request{{Member: "a"}, {Member: "a", Backup: "x"}, {Member: "a", Backup: "../x"}, {Backup: "1.1"}} {
		bad.Op = api.OpSnapshotRead
		to = d.request(bad)
		if r, ok := d.answer(to); !ok || r.Code != api.CodeUsage {
			t.Errorf("snapshot-read %+v: %+v %v; want 10", bad, r, ok)
		}
	}
	to = d.request(api.Request{Op: api.OpSnapshotRead, Member: "b", Backup: "7.1", TimeoutMs: 1000})
	if len(d.calls) != 1 || d.calls[0].To != "b" || d.calls[0].Req.Op != api.OpSnapshotRead {
		t.Fatalf("a read of b's file is not forwarded to b: %+v", d.calls)
	}
	if _, ok := d.answer(to); ok {
		t.Fatal("a forwarded read answered before its call ended")
	}
}
