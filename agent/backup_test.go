package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/kvstore"
	"lite-raft/raftcore"
	"lite-raft/statefile"
)

// Snapshot save through real drivers: asked of a follower (which forwards it to the
// leader), read through the other follower (which forwards each piece to the holder),
// with leadership moved away from the holder halfway. The file is a snapshot file with
// every key written before, and the holder removes it once read to its end.
func TestMemClusterBackup(t *testing.T) {
	ids := []raftcore.NodeID{"m1", "m2", "m3"}
	c := startMemCluster(t, systemClock{}, ids...)
	lead := c.leader()
	fs := others(ids, lead)
	big := strings.Repeat("v", 600_000)
	for i := 0; i < 4; i++ {
		if r := c.do(lead, api.Request{Op: api.OpSet, Key: fmt.Sprintf("big/%d", i), Value: []byte(big), TimeoutMs: 5000}); r.Code != 0 {
			t.Fatalf("set: %d %s", r.Code, r.Msg)
		}
	}
	if r := c.do(fs[0], api.Request{Op: api.OpSet, Key: "last", Value: []byte("before"), TimeoutMs: 5000}); r.Code != 0 {
		t.Fatalf("set: %d %s", r.Code, r.Msg)
	}
	r := c.do(fs[0], api.Request{Op: api.OpSnapshot, TimeoutMs: 10_000})
	if r.Code != 0 {
		t.Fatalf("snapshot through %s: exit %d %s", fs[0], r.Code, r.Msg)
	}
	var info api.BackupInfo
	if err := json.Unmarshal(r.JSON, &info); err != nil {
		t.Fatal(err)
	}
	if info.Host != string(lead) || info.Keys != 5 || info.Size < 2_400_000 {
		t.Fatalf("backup %+v: want it held by the leader %s, 5 keys, more than 2.4 MB", info, lead)
	}
	holderFile := filepath.Join(c.agents[lead].dir, "temp", "backup-"+info.ID+".snapshot")
	if _, err := os.Stat(holderFile); err != nil {
		t.Fatalf("the holder's file: %v", err)
	}
	c.do(lead, api.Request{Op: api.OpSet, Key: "last", Value: []byte("after"), TimeoutMs: 5000})

	out := filepath.Join(t.TempDir(), "backup")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	moved := false
	for off := uint64(0); off < info.Size; {
		if off > 0 && !moved {
			// the holder no longer leads: its file is still the snapshot as of its index
			if r := c.do(lead, api.Request{Op: api.OpTransfer, Member: string(fs[0]), TimeoutMs: 5000}); r.Code != 0 {
				t.Fatalf("transfer-leader: %d %s", r.Code, r.Msg)
			}
			moved = true
		}
		r := c.do(fs[1], api.Request{Op: api.OpSnapshotRead, Member: info.Host, Backup: info.ID, Offset: off, TimeoutMs: 5000})
		if r.Code != 0 || len(r.Value) == 0 {
			t.Fatalf("snapshot-read at %d through %s: exit %d %s", off, fs[1], r.Code, r.Msg)
		}
		f.Write(r.Value)
		off += uint64(len(r.Value))
	}
	f.Close()
	if r := c.do(fs[1], api.Request{Op: api.OpSnapshotRead, Member: info.Host, Backup: info.ID, Offset: info.Size, TimeoutMs: 5000}); r.Code != 0 {
		t.Fatalf("snapshot-read at the end: %d %s", r.Code, r.Msg)
	}
	sf, err := statefile.OpenSnapshotFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	if err := sf.Check(); err != nil {
		t.Fatalf("the file read back: %v", err)
	}
	if sf.Snapshot.Meta.Index != info.Index || sf.Snapshot.Checksum != info.Checksum {
		t.Fatalf("file header %+v, announced %+v", sf.Snapshot, info)
	}
	kv, err := kvstore.Restore(sf.Data())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := kv.Get("last"); string(v) != "before" {
		t.Fatalf("last = %q in the backup, want the value acknowledged before it was asked for", v)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(holderFile); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the holder still has %s after it was read to its end", holderFile)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline: the removal follows the reply
	}
}

// --stale: a follower makes the backup of its own state at once, without the leader, and
// holds it itself.
func TestMemClusterBackupStale(t *testing.T) {
	ids := []raftcore.NodeID{"m1", "m2", "m3"}
	c := startMemCluster(t, systemClock{}, ids...)
	lead := c.leader()
	f := others(ids, lead)[0]
	if r := c.do(lead, api.Request{Op: api.OpSet, Key: "k", Value: []byte("v"), TimeoutMs: 5000}); r.Code != 0 {
		t.Fatalf("set: %d %s", r.Code, r.Msg)
	}
	r := c.do(f, api.Request{Op: api.OpSnapshot, Stale: true, TimeoutMs: 5000})
	var info api.BackupInfo
	if r.Code != 0 || json.Unmarshal(r.JSON, &info) != nil || info.Host != string(f) || !info.Written {
		t.Fatalf("stale snapshot on %s: exit %d %s %+v", f, r.Code, r.Msg, info)
	}
	if _, err := os.Stat(filepath.Join(c.agents[f].dir, "temp", "backup-"+info.ID+".snapshot")); err != nil {
		t.Fatalf("the follower's file: %v", err)
	}
	r = c.do(lead, api.Request{Op: api.OpSnapshotRead, Member: info.Host, Backup: info.ID, Offset: 0, TimeoutMs: 5000})
	if r.Code != 0 || uint64(len(r.Value)) != info.Size {
		t.Fatalf("read through the leader of the follower's file: exit %d %s, %d bytes of %d", r.Code, r.Msg, len(r.Value), info.Size)
	}
}
