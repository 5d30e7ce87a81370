//go:build linux

package lazyfs

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"lite-raft/internal/lockfile"
)

// inCI reports whether a missing prerequisite must fail the test instead of skipping it
// (the rule of internal/harness).
func inCI() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv("CI")))
	return v == "true" || v == "1"
}

func requireFUSE(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if inCI() {
			t.Fatalf("%v (CI is set, so this fails instead of skipping)", err)
		}
		t.Skipf("%v (skipping; with CI=true this would fail)", err)
	}
}

// mountT mounts f on a new temporary directory for the test's length.
func mountT(t *testing.T, f *FS) string {
	t.Helper()
	requireFUSE(t)
	dir := t.TempDir()
	m, err := f.Mount(dir)
	if err != nil {
		t.Fatal(err)
	}
	// registered after TempDir's, so it runs before the directory's removal
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return dir
}

func newMount(t *testing.T) (*FS, string) {
	f := New()
	return f, mountT(t, f)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeSync replaces path's content and fsyncs the file (not its directory).
func writeSync(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func mustSync(t *testing.T, path string) {
	t.Helper()
	if err := syncPath(path); err != nil {
		t.Fatal(err)
	}
}

// content reads path, or "<absent>" if it does not exist.
func content(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "<absent>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestSyncedWriteSurvives(t *testing.T) {
	f, dir := newMount(t)
	p := filepath.Join(dir, "a")
	writeSync(t, p, "durable")
	mustSync(t, dir)
	cs := f.PowerCut()
	if got := content(t, p); got != "durable" {
		t.Fatalf("after the cut %q, want %q", got, "durable")
	}
	if cs.BytesDropped != 0 || cs.EntriesUndone != 0 || cs.FilesLost != 0 {
		t.Errorf("nothing was unsynced, yet the cut reports %+v", cs)
	}
	if s := f.Stats(); s.FileSyncs != 1 || s.DirSyncs != 1 || s.Cuts != 1 {
		t.Errorf("stats %+v, want 1 file sync, 1 dir sync, 1 cut", s)
	}
	// Attributes are durable with the file's fsync, not before.
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	f.PowerCut()
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("an unsynced chmod survived the cut: %v %v", fi, err)
	}
}

func TestUnsyncedWriteLost(t *testing.T) {
	f, dir := newMount(t)
	// A synced file of three pages and a bit; then writes without fsync: a few bytes in
	// the middle of a page, a page boundary crossed, and the tail.
	p := filepath.Join(dir, "synced")
	orig := bytes.Repeat([]byte("0123456789abcdef"), (3*pageSize+100)/16)
	writeSync(t, p, string(orig))
	mustSync(t, dir)
	// A new file never synced at all vanishes.
	writeFile(t, filepath.Join(dir, "never"), "gone")
	fh, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{5, pageSize - 2, 3*pageSize + 50} {
		if _, err := fh.WriteAt([]byte("XXXX"), off); err != nil {
			t.Fatal(err)
		}
	}
	fh.Close()
	if got := content(t, p); got == string(orig) {
		t.Fatal("the writes did not show before the cut")
	}
	cs := f.PowerCut()
	if got := content(t, p); got != string(orig) {
		t.Fatalf("after the cut the file differs from its synced content (len %d, want %d)", len(got), len(orig))
	}
	if got := content(t, filepath.Join(dir, "never")); got != "<absent>" {
		t.Fatalf("a file never synced survived: %q", got)
	}
	if cs.BytesDropped != 3*4+4 || cs.FilesReverted != 1 || cs.FilesLost != 1 || cs.EntriesUndone != 1 {
		t.Errorf("cut stats %+v, want 16 bytes dropped, 1 file reverted, 1 lost, 1 entry undone", cs)
	}
}

func TestAppendAfterSyncLosesOnlyTheAppend(t *testing.T) {
	f, dir := newMount(t)
	p := filepath.Join(dir, "log")
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	fh.WriteString("first batch;")
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	mustSync(t, dir)
	fh.WriteString("second batch, never synced")
	f.PowerCut()
	if got := content(t, p); got != "first batch;" {
		t.Fatalf("after the cut %q", got)
	}
	if fi, err := os.Stat(p); err != nil || fi.Size() != int64(len("first batch;")) {
		t.Fatalf("size after the cut %v %v", fi, err)
	}
	// The handle from before the cut is stale.
	if _, err := fh.WriteString("more"); !errors.Is(err, syscall.EIO) {
		t.Errorf("write on a handle from before the cut: %v, want EIO", err)
	}
	if err := fh.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("fsync on a handle from before the cut: %v, want EIO", err)
	}
}

// The rule: a new name is durable only once its directory is fsynced, however often the
// file itself was.
func TestCreateNeedsDirSync(t *testing.T) {
	f, dir := newMount(t)
	writeSync(t, filepath.Join(dir, "nodirsync"), "a")
	writeSync(t, filepath.Join(dir, "dirsynced"), "b")
	mustSync(t, dir)
	writeSync(t, filepath.Join(dir, "after"), "c")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeSync(t, filepath.Join(dir, "sub", "inner"), "d")
	mustSync(t, filepath.Join(dir, "sub")) // the subdirectory's entries, not its own name
	f.PowerCut()
	if got := names(t, dir); !slices.Equal(got, []string{"dirsynced", "nodirsync"}) {
		t.Fatalf("after the cut the directory holds %v", got)
	}
	if content(t, filepath.Join(dir, "nodirsync")) != "a" || content(t, filepath.Join(dir, "dirsynced")) != "b" {
		t.Fatal("contents wrong")
	}
}

// A name made durable while the file's data never was comes back empty.
func TestDurableNameUnsyncedData(t *testing.T) {
	f, dir := newMount(t)
	writeFile(t, filepath.Join(dir, "a"), "data never synced")
	mustSync(t, dir)
	f.PowerCut()
	if got := content(t, filepath.Join(dir, "a")); got != "" {
		t.Fatalf("got %q, want an empty file", got)
	}
}

func TestRenameOverFile(t *testing.T) {
	f, dir := newMount(t)
	cur := filepath.Join(dir, "current")
	writeSync(t, cur, "old")
	mustSync(t, dir)

	// The atomic replace without its last step, the directory's fsync.
	tmp := filepath.Join(dir, ".current.tmp")
	writeSync(t, tmp, "new")
	if err := os.Rename(tmp, cur); err != nil {
		t.Fatal(err)
	}
	if got := content(t, cur); got != "new" {
		t.Fatalf("before the cut %q", got)
	}
	cs := f.PowerCut()
	if got := content(t, cur); got != "old" {
		t.Fatalf("rename without directory fsync: after the cut %q, want the old content back", got)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"current"}) {
		t.Fatalf("after the cut the directory holds %v", got)
	}
	if cs.EntriesUndone != 1 {
		t.Errorf("entries undone %d, want 1 (current's target)", cs.EntriesUndone)
	}

	// The whole replace, as statefile.WriteFileAtomic does it.
	writeSync(t, tmp, "new")
	if err := os.Rename(tmp, cur); err != nil {
		t.Fatal(err)
	}
	mustSync(t, dir)
	f.PowerCut()
	if got := content(t, cur); got != "new" {
		t.Fatalf("rename with directory fsync: after the cut %q", got)
	}
}

// Renames, creations and removals in one directory, in an order that makes a chain, are
// all undone at once.
func TestManyRenamesUndone(t *testing.T) {
	f, dir := newMount(t)
	for _, n := range []string{"a", "b", "c", "d"} {
		writeSync(t, filepath.Join(dir, n), "content of "+n)
	}
	if err := os.Mkdir(filepath.Join(dir, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustSync(t, dir)
	mustSync(t, filepath.Join(dir, "other"))
	ren := func(a, b string) {
		if err := os.Rename(filepath.Join(dir, a), filepath.Join(dir, b)); err != nil {
			t.Fatal(err)
		}
	}
	ren("a", "x")       // a -> x
	ren("b", "a")       // b -> a
	ren("c", "b")       // c -> b
	ren("x", "c")       // old a -> c
	ren("d", "other/d") // out of the directory
	writeSync(t, filepath.Join(dir, "e"), "new")
	ren("e", "a") // over the old b
	if err := os.Remove(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	cs := f.PowerCut()
	for _, n := range []string{"a", "b", "c", "d"} {
		if got := content(t, filepath.Join(dir, n)); got != "content of "+n {
			t.Errorf("%s after the cut: %q", n, got)
		}
	}
	if got := names(t, dir); !slices.Equal(got, []string{"a", "b", "c", "d", "other"}) {
		t.Errorf("after the cut the directory holds %v", got)
	}
	if got := names(t, filepath.Join(dir, "other")); len(got) != 0 {
		t.Errorf("other/ holds %v", got)
	}
	if cs.EntriesUndone != 5 { // a, b, c, d changed in dir; d in other
		t.Errorf("entries undone %d, want 5", cs.EntriesUndone)
	}
}

func TestUnlinkUndone(t *testing.T) {
	f, dir := newMount(t)
	writeSync(t, filepath.Join(dir, "seg1"), "one")
	writeSync(t, filepath.Join(dir, "seg2"), "two")
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustSync(t, dir)
	for _, n := range []string{"seg1", "seg2", "d"} {
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	f.PowerCut()
	if got := names(t, dir); !slices.Equal(got, []string{"d", "seg1", "seg2"}) {
		t.Fatalf("after the cut %v", got)
	}
	if content(t, filepath.Join(dir, "seg2")) != "two" {
		t.Fatal("seg2 came back with other content")
	}
	os.Remove(filepath.Join(dir, "seg1"))
	mustSync(t, dir)
	f.PowerCut()
	if got := names(t, dir); !slices.Equal(got, []string{"d", "seg2"}) {
		t.Fatalf("after a synced unlink and a cut %v", got)
	}
}

func TestRemountKeepsDurableState(t *testing.T) {
	requireFUSE(t)
	f := New()
	dir := t.TempDir()
	m, err := f.Mount(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unmount()
	writeSync(t, filepath.Join(dir, "kept"), "kept")
	writeFile(t, filepath.Join(dir, "unsynced"), "x")
	mustSync(t, dir)
	writeFile(t, filepath.Join(dir, "kept"), "overwritten, unsynced")
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kept")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after unmount the directory still shows the file system (%v)", err)
	}
	// Mounted again without a cut: the live image as it was.
	if m, err = f.Mount(dir); err != nil {
		t.Fatal(err)
	}
	if got := content(t, filepath.Join(dir, "kept")); got != "overwritten, unsynced" {
		t.Fatalf("remount without a cut shows %q", got)
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	// A cut while unmounted, then mounted elsewhere.
	f.PowerCut()
	dir2 := t.TempDir()
	m2, err := f.Mount(dir2)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Unmount()
	if got := content(t, filepath.Join(dir2, "kept")); got != "kept" {
		t.Fatalf("after cut and remount %q", got)
	}
	if got := content(t, filepath.Join(dir2, "unsynced")); got != "" {
		t.Fatalf("a durable name whose data was never synced: %q, want empty", got)
	}
	if _, err := f.Mount(dir); err == nil {
		t.Fatal("a second mount of the same FS succeeded")
	}
}

func TestFsyncEIO(t *testing.T) {
	f, dir := newMount(t)
	if err := os.Mkdir(filepath.Join(dir, "log"), 0o755); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, "log", "00001.log")
	writeSync(t, seg, "synced;")
	mustSync(t, filepath.Join(dir, "log"))
	mustSync(t, dir)

	f.FailSyncsOf(regexp.MustCompile(`^log/.*\.log$`))
	fh, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	fh.WriteString("failed;")
	if err := fh.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fsync of a matching path: %v, want EIO", err)
	}
	if err := syncPath(filepath.Join(dir, "log")); err != nil {
		t.Fatalf("fsync of the directory, which does not match: %v", err)
	}
	f.FailSyncsOf(nil)
	f.PowerCut()
	if got := content(t, seg); got != "synced;" {
		t.Fatalf("after an EIO fsync and a cut: %q", got)
	}

	// The next two fsyncs fail, whatever they are; the third succeeds.
	f.FailSyncs(2)
	p := filepath.Join(dir, "log", "00002.log")
	writeFile(t, p, "x")
	if err := syncPath(p); !errors.Is(err, syscall.EIO) {
		t.Fatalf("first fsync: %v", err)
	}
	if err := syncPath(filepath.Join(dir, "log")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("second fsync (a directory): %v", err)
	}
	mustSync(t, p)
	mustSync(t, filepath.Join(dir, "log"))
	if s := f.Stats(); s.FailedSyncs != 3 {
		t.Errorf("failed syncs %d, want 3", s.FailedSyncs)
	}
	f.PowerCut()
	if got := content(t, p); got != "x" {
		t.Fatalf("after successful fsyncs: %q", got)
	}
}

func TestENOSPC(t *testing.T) {
	f, dir := newMount(t)
	p := filepath.Join(dir, "big")
	fh, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	// Page-aligned writes, each one request; an unaligned write(2) is split by the
	// kernel at a page boundary, and may then come out short.
	f.LimitWrites(3 * pageSize)
	if _, err := fh.Write(make([]byte, 2*pageSize)); err != nil {
		t.Fatal(err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Bavail != 1 {
		t.Errorf("statfs under a budget of one page left: %d blocks available, %v", st.Bavail, err)
	}
	if n, err := fh.Write(make([]byte, 2*pageSize)); !errors.Is(err, syscall.ENOSPC) || n != 0 {
		t.Fatalf("write over the budget: %d, %v, want 0 and ENOSPC", n, err)
	}
	if _, err := fh.Write(make([]byte, pageSize)); err != nil {
		t.Fatalf("write within what is left: %v", err)
	}
	if _, err := fh.Write([]byte{1}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write with the budget spent: %v", err)
	}
	f.LimitWrites(-1)
	if _, err := fh.Write(make([]byte, 5000)); err != nil {
		t.Fatalf("write with the limit lifted: %v", err)
	}
	if fi, _ := fh.Stat(); fi.Size() != 3*pageSize+5000 {
		t.Errorf("size %d, want %d", fi.Size(), 3*pageSize+5000)
	}
	if s := f.Stats(); s.FailedWrites != 2 {
		t.Errorf("failed writes %d, want 2", s.FailedWrites)
	}
}

// What lite-raft and the shell do, beyond the durability rules.
func TestPOSIX(t *testing.T) {
	f, dir := newMount(t)
	p := filepath.Join(dir, "f")
	if _, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); !errors.Is(err, os.ErrExist) {
		t.Errorf("O_EXCL on an existing file: %v", err)
	}
	writeFile(t, p, "0123456789")
	if err := os.Truncate(p, 4); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 8); err != nil {
		t.Fatal(err)
	}
	if got := content(t, p); got != "0123\x00\x00\x00\x00" {
		t.Errorf("shrink then grow: %q", got)
	}
	fh, err := os.OpenFile(p, os.O_RDWR|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteAt([]byte("abc"), 2*pageSize+10) // a sparse file
	b := make([]byte, 3)
	if _, err := fh.ReadAt(b, 2*pageSize+10); err != nil || string(b) != "abc" {
		t.Errorf("ReadAt: %q %v", b, err)
	}
	if fi, err := fh.Stat(); err != nil || fi.Size() != 2*pageSize+13 || fi.Mode().Perm() != 0o600 {
		t.Errorf("fstat: %v %v", fi, err)
	}
	if err := fh.Chmod(0o640); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("after chmod: %v %v", fi, err)
	}
	// O_APPEND
	ap, err := os.OpenFile(filepath.Join(dir, "ap"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ap.WriteString("a")
	ap.WriteString("b")
	ap.Close()
	if got := content(t, filepath.Join(dir, "ap")); got != "ab" {
		t.Errorf("appends: %q", got)
	}
	// directories
	if err := os.MkdirAll(filepath.Join(dir, "x", "y"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "x")); err == nil {
		t.Error("rmdir of a non-empty directory succeeded")
	}
	if err := os.Rename(filepath.Join(dir, "x"), filepath.Join(dir, "x", "y", "z")); err == nil {
		t.Error("moved a directory under itself")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 3 {
		t.Errorf("glob: %v", m)
	}
	// symlinks and hard links
	if err := os.Symlink("f", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	if tgt, err := os.Readlink(filepath.Join(dir, "l")); err != nil || tgt != "f" {
		t.Errorf("readlink: %q %v", tgt, err)
	}
	if err := os.Link(p, filepath.Join(dir, "hard")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Sys().(*syscall.Stat_t).Nlink != 2 {
		t.Errorf("nlink after link: %v", err)
	}
	if content(t, filepath.Join(dir, "l")) != content(t, filepath.Join(dir, "hard")) {
		t.Error("symlink and hard link disagree")
	}
	// a unix socket (lite-raft's agent listens on one in temp/)
	sock := filepath.Join(dir, "x", "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("listen on a unix socket in the mount: %v", err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("dial the unix socket: %v", err)
	}
	if b, err := readAll(c); err != nil || string(b) != "hi" {
		t.Errorf("through the socket: %q %v", b, err)
	}
	// lite-raft's lock file (fcntl locks, handled by the kernel)
	lk, err := lockfile.TryLock(filepath.Join(dir, "x", "agent.lock"))
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	lk.Close()
	// a program run from the mount (a host's lite-raft binary may live there)
	if sh, err := exec.LookPath("true"); err == nil {
		data, err := os.ReadFile(sh)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "true"), data, 0o755); err != nil {
			t.Fatal(err)
		}
		// through sh: the process serving the mount must not start a program on it itself
		if out, err := exec.Command("sh", "-c", filepath.Join(dir, "true")).CombinedOutput(); err != nil {
			t.Errorf("running a program from the mount: %v %s", err, out)
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Bsize != pageSize || st.Bavail == 0 {
		t.Errorf("statfs: %+v %v", st, err)
	}
	if s := f.Stats(); s.Writes == 0 || s.UnsyncedBytes == 0 {
		t.Errorf("stats %+v", s)
	}
}

func readAll(c net.Conn) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(c)
	return buf.Bytes(), err
}

// SyncAll is the clean shutdown: everything so far survives.
func TestSyncAll(t *testing.T) {
	f, dir := newMount(t)
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "a", "b", "c"), "c")
	f.SyncAll()
	writeFile(t, filepath.Join(dir, "a", "later"), "later")
	f.PowerCut()
	if got := content(t, filepath.Join(dir, "a", "b", "c")); got != "c" {
		t.Fatalf("after SyncAll and a cut: %q", got)
	}
	if got := content(t, filepath.Join(dir, "a", "later")); got != "<absent>" {
		t.Fatalf("written after SyncAll: %q", got)
	}
}

func TestImport(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "conf"), 0o700)
	os.WriteFile(filepath.Join(src, "conf", "cluster_nodes"), []byte("host1\n"), 0o600)
	os.WriteFile(filepath.Join(src, "lite-raft"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.Symlink("lite-raft", filepath.Join(src, "lite-raft-client"))
	f := New()
	if err := f.Import(src); err != nil {
		t.Fatal(err)
	}
	if err := f.Import(src); err == nil {
		t.Error("a second import into a non-empty FS succeeded")
	}
	f.PowerCut() // imported files are durable
	dir := mountT(t, f)
	if got := content(t, filepath.Join(dir, "conf", "cluster_nodes")); got != "host1\n" {
		t.Errorf("imported file: %q", got)
	}
	if fi, err := os.Stat(filepath.Join(dir, "conf")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("imported directory: %v %v", fi, err)
	}
	if out, err := exec.Command("sh", "-c", filepath.Join(dir, "lite-raft-client")).Output(); err != nil || string(out) != "hi\n" {
		t.Errorf("imported script through its symlink: %q %v", out, err)
	}
}

// Unmount of a busy mount (a file still open) detaches it and aborts the connection: the
// open file fails, nothing hangs, no mount is left.
func TestUnmountBusy(t *testing.T) {
	requireFUSE(t)
	f := New()
	dir := t.TempDir()
	m, err := f.Mount(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unmount()
	fh, err := os.Create(filepath.Join(dir, "open"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write([]byte("x")); !errors.Is(err, syscall.ENOTCONN) {
		t.Errorf("write on a file left open across Unmount: %v, want ENOTCONN", err)
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), dir) {
		t.Errorf("%s is still mounted", dir)
	}
	// The FS itself is fine: mount it again.
	m2, err := f.Mount(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Unmount()
	if _, err := os.Stat(filepath.Join(dir, "open")); err != nil {
		t.Errorf("after remounting: %v", err)
	}
}

// Wild offsets are refused, not allocated for.
func TestHugeOffsets(t *testing.T) {
	_, dir := newMount(t)
	fh, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt([]byte("x"), 1<<40); !errors.Is(err, syscall.EFBIG) {
		t.Errorf("write at 1 TiB: %v, want EFBIG", err)
	}
	if err := fh.Truncate(1 << 40); !errors.Is(err, syscall.EFBIG) {
		t.Errorf("truncate to 1 TiB: %v, want EFBIG", err)
	}
	if _, err := fh.WriteAt([]byte("x"), 1<<30); err != nil {
		t.Errorf("write at 1 GiB (sparse): %v", err)
	}
	if fi, err := fh.Stat(); err != nil || fi.Size() != 1<<30+1 {
		t.Errorf("size %v %v", fi, err)
	}
}
