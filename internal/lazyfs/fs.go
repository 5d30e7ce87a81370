//go:build linux

package lazyfs

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The root's inode number, and its node id (FUSE's, fixed). Other inodes have node ids
// of their own, which a power cut changes (see PowerCut).
const (
	rootIno  = 1
	rootNode = 1
)

type kind uint8

const (
	kindFile kind = iota
	kindDir
	kindSymlink
	kindSpecial // a fifo or a socket: a name and a mode, no content
)

// meta is an inode's attributes in one image.
type meta struct {
	mode                uint32 // type and permission bits, as in stat(2)
	uid, gid            uint32
	atime, mtime, ctime time.Time
}

// dirEntries is a directory's names in the two images.
type dirEntries struct {
	live, durable map[string]uint64
}

// inode is a file, directory, symlink or special file. It lives as long as a name in
// either image, an open handle or the kernel refers to it (see gc).
type inode struct {
	ino           uint64 // st_ino, for ever
	node          uint64 // the kernel's name for it, until the next power cut
	kind          kind
	live, durable meta
	file          *fileData   // kindFile
	dir           *dirEntries // kindDir
	target        string      // kindSymlink: fixed at creation, so as durable as the name
	nlink         uint32      // names in the live image
	// parent and name are one of the live names, for the paths that fault patterns match
	// and that errors name.
	parent  uint64
	name    string
	lookups uint64 // the kernel's references: LOOKUP-like replies not yet forgotten
	opens   int    // open handles
}

// handle is an open file or directory of the kernel's. A power cut forgets them all
// (handle numbers are never reused, so the kernel's old ones just fail).
type handle struct {
	ino     uint64
	flags   uint32 // open(2) flags
	listing []dirent
}

type dirent struct {
	name string
	ino  uint64
	mode uint32
}

// FS is one simulated disk: a tree of files kept in memory in two images, the live one
// that processes see through a mount and the durable one that survives PowerCut. It can
// be mounted, unmounted and mounted again (one mount at a time); both images stay in the
// FS value, so the durable state outlives any number of mounts in the same process.
// Its methods are safe for concurrent use.
type FS struct {
	mu       sync.Mutex
	inodes   map[uint64]*inode // by inode number
	nodes    map[uint64]*inode // by node id
	nextIno  uint64
	nextNode uint64
	handles  map[uint64]*handle
	nextFh   uint64
	garbage  bool // an inode may have lost its last reference: gc at the end of the op
	faults   faults
	stats    Stats
	mnt      *Mount
}

type faults struct {
	failSyncs  int            // the next n fsyncs fail
	failSyncRe *regexp.Regexp // fsyncs of matching paths fail
	budget     int64          // bytes that writes may still store; < 0: no limit
}

// Stats counts what the file system saw, for tests to assert that they did what they meant.
type Stats struct {
	FileSyncs    int64 // successful fsync and fdatasync calls on files
	DirSyncs     int64 // successful fsync calls on directories
	FailedSyncs  int64 // fsyncs that failed with an injected EIO
	Writes       int64 // write requests that succeeded
	BytesWritten int64
	FailedWrites int64 // writes refused with an injected ENOSPC
	Cuts         int64 // power cuts so far
	// UnsyncedBytes is what a power cut now would drop of the files' data: the bytes
	// written (or cut off by truncate) since each file's last fsync. A file whose name is
	// not durable loses its synced data too, which this does not count.
	UnsyncedBytes int64
	LastCut       CutStats // what the last power cut dropped
}

// CutStats is what one power cut threw away.
type CutStats struct {
	// BytesDropped counts the bytes written (or cut off by truncate) since their file's
	// last fsync, in surviving files and in lost ones (whose synced data is not counted:
	// FilesLost counts those files).
	BytesDropped int64
	// FilesReverted counts surviving files whose content or size went back.
	FilesReverted int
	// FilesLost counts files, directories and symlinks that had a name before the cut
	// and have none after.
	FilesLost int
	// EntriesUndone counts directory entries that differed between the live and the
	// durable image (names added, removed or pointing elsewhere since the directory's
	// last fsync).
	EntriesUndone int
	// StaleHandles counts the open files and directories whose handles now fail (EIO).
	// The kernel releases a closed file's handle asynchronously, so a file closed just
	// before the cut may count.
	StaleHandles int
}

// New returns an empty file system: a root directory, durable, with nothing in it.
func New() *FS {
	f := &FS{inodes: map[uint64]*inode{}, nodes: map[uint64]*inode{}, nextIno: rootIno,
		nextNode: rootNode, handles: map[uint64]*handle{}, nextFh: 1}
	f.faults.budget = -1
	root := f.newInode(kindDir, syscall.S_IFDIR|0o755, 0, 0)
	root.nlink = 1
	return f
}

// newInode makes an inode whose durable attributes are its first ones: if its name
// becomes durable before the inode itself is ever fsynced, it comes back from a cut
// empty, with the mode it was created with (what a journalling file system keeps).
func (f *FS) newInode(k kind, mode, uid, gid uint32) *inode {
	now := time.Now()
	n := &inode{ino: f.nextIno, node: f.nextNode, kind: k}
	f.nextIno++
	f.nextNode++
	n.live = meta{mode: mode, uid: uid, gid: gid, atime: now, mtime: now, ctime: now}
	n.durable = n.live
	switch k {
	case kindFile:
		n.file = newFileData()
	case kindDir:
		n.dir = &dirEntries{live: map[string]uint64{}, durable: map[string]uint64{}}
	}
	f.inodes[n.ino] = n
	f.nodes[n.node] = n
	return n
}

// node returns the inode of a node id the kernel sent: ESTALE for one from before a
// power cut, or one gc dropped.
func (f *FS) node(id uint64) (*inode, syscall.Errno) {
	if n := f.nodes[id]; n != nil {
		return n, 0
	}
	return nil, syscall.ESTALE
}

func (f *FS) dirNode(id uint64) (*inode, syscall.Errno) {
	n, errno := f.node(id)
	if errno == 0 && n.kind != kindDir {
		return nil, syscall.ENOTDIR
	}
	return n, errno
}

// path names n by one of its live names, relative to the root ("" for the root).
func (f *FS) path(n *inode) string {
	var parts []string
	for n != nil && n.ino != rootIno && len(parts) < 256 {
		parts = append(parts, n.name)
		n = f.inodes[n.parent]
	}
	slices.Reverse(parts)
	return strings.Join(parts, "/")
}

func (n *inode) touch(now time.Time) {
	n.live.mtime, n.live.ctime = now, now
	if n.kind == kindSpecial || n.kind == kindSymlink {
		n.durable = n.live
	}
}

// link gives child the live name name in dir.
func (f *FS) link(dir *inode, name string, child *inode) {
	dir.dir.live[name] = child.ino
	child.nlink++
	child.parent, child.name = dir.ino, name
	dir.touch(time.Now())
}

// unlink removes dir's live name name (which must exist).
func (f *FS) unlink(dir *inode, name string) {
	child := f.inodes[dir.dir.live[name]]
	delete(dir.dir.live, name)
	dir.touch(time.Now())
	if child == nil {
		return
	}
	child.nlink--
	child.live.ctime = time.Now()
	if child.nlink == 0 {
		f.garbage = true
	} else if child.parent == dir.ino && child.name == name {
		f.renameAfterUnlink(child)
	}
}

// renameAfterUnlink points a hard-linked inode's path at one of its remaining names.
func (f *FS) renameAfterUnlink(child *inode) {
	for _, d := range f.inodes {
		if d.kind != kindDir {
			continue
		}
		for name, ino := range d.dir.live {
			if ino == child.ino {
				child.parent, child.name = d.ino, name
				return
			}
		}
	}
}

// create makes a new inode under dir.
func (f *FS) create(dir *inode, name string, k kind, mode, uid, gid uint32) (*inode, syscall.Errno) {
	if _, ok := dir.dir.live[name]; ok {
		return nil, syscall.EEXIST
	}
	if len(name) > 255 {
		return nil, syscall.ENAMETOOLONG
	}
	n := f.newInode(k, mode, uid, gid)
	f.link(dir, name, n)
	return n, 0
}

// remove is unlink(2) (dir false) and rmdir(2) (dir true).
func (f *FS) remove(parent *inode, name string, dir bool) syscall.Errno {
	ino, ok := parent.dir.live[name]
	if !ok {
		return syscall.ENOENT
	}
	child := f.inodes[ino]
	switch {
	case child == nil:
	case dir && child.kind != kindDir:
		return syscall.ENOTDIR
	case !dir && child.kind == kindDir:
		return syscall.EISDIR
	case dir && len(child.dir.live) > 0:
		return syscall.ENOTEMPTY
	}
	f.unlink(parent, name)
	return 0
}

const (
	renameNoReplace = 1 // RENAME_NOREPLACE
	renameExchange  = 2 // RENAME_EXCHANGE
)

// rename is rename(2) and renameat2(2) with RENAME_NOREPLACE or RENAME_EXCHANGE.
func (f *FS) rename(src *inode, oldName string, dst *inode, newName string, flags uint32) syscall.Errno {
	if flags&^(renameNoReplace|renameExchange) != 0 || flags == renameNoReplace|renameExchange {
		return syscall.EINVAL
	}
	ino, ok := src.dir.live[oldName]
	if !ok {
		return syscall.ENOENT
	}
	child := f.inodes[ino]
	if child == nil {
		return syscall.ESTALE
	}
	// The kernel refuses to move a directory under itself; this is the same check
	// against our own tree, so that no power cut can ever start from a loop.
	if child.kind == kindDir {
		for a, i := dst, 0; a != nil && a.ino != rootIno && i < 4096; a, i = f.inodes[a.parent], i+1 {
			if a.ino == child.ino {
				return syscall.EINVAL
			}
		}
	}
	tino, exists := dst.dir.live[newName]
	now := time.Now()
	if flags&renameExchange != 0 {
		if !exists {
			return syscall.ENOENT
		}
		other := f.inodes[tino]
		if other == nil {
			return syscall.ESTALE
		}
		src.dir.live[oldName], dst.dir.live[newName] = tino, ino
		child.parent, child.name = dst.ino, newName
		other.parent, other.name = src.ino, oldName
		src.touch(now)
		dst.touch(now)
		return 0
	}
	if exists {
		if flags&renameNoReplace != 0 {
			return syscall.EEXIST
		}
		if tino == ino {
			return 0 // two names of one file: rename(2) does nothing
		}
		if target := f.inodes[tino]; target != nil {
			switch {
			case child.kind == kindDir && target.kind != kindDir:
				return syscall.ENOTDIR
			case child.kind != kindDir && target.kind == kindDir:
				return syscall.EISDIR
			case target.kind == kindDir && len(target.dir.live) > 0:
				return syscall.ENOTEMPTY
			}
		}
		f.unlink(dst, newName)
	}
	delete(src.dir.live, oldName)
	dst.dir.live[newName] = ino
	child.parent, child.name = dst.ino, newName
	child.live.ctime = now
	src.touch(now)
	dst.touch(now)
	return 0
}

// hardLink is link(2).
func (f *FS) hardLink(n, dir *inode, name string) syscall.Errno {
	if n.kind == kindDir {
		return syscall.EPERM
	}
	if _, ok := dir.dir.live[name]; ok {
		return syscall.EEXIST
	}
	f.link(dir, name, n)
	return 0
}

// write stores b at off in n's live image, within the write budget.
func (f *FS) write(n *inode, b []byte, off int64) syscall.Errno {
	if off < 0 || off > maxFileSize || int64(len(b)) > maxFileSize-off {
		return syscall.EFBIG
	}
	if f.faults.budget >= 0 {
		if int64(len(b)) > f.faults.budget {
			f.stats.FailedWrites++
			return syscall.ENOSPC
		}
		f.faults.budget -= int64(len(b))
	}
	n.file.writeAt(b, off)
	n.touch(time.Now())
	f.stats.Writes++
	f.stats.BytesWritten += int64(len(b))
	return 0
}

// syncFault reports whether an fsync of n must fail, counting it.
func (f *FS) syncFault(n *inode) bool {
	fail := false
	if re := f.faults.failSyncRe; re != nil && re.MatchString(f.path(n)) {
		fail = true
	} else if f.faults.failSyncs > 0 {
		f.faults.failSyncs--
		fail = true
	}
	if fail {
		f.stats.FailedSyncs++
	}
	return fail
}

// fsync is fsync(2) and fdatasync(2) of a file, or fsync(2) of a directory: it makes the
// file's data, size and attributes, or the directory's entries and attributes, durable.
// An injected failure leaves everything as unsynced as it was.
func (f *FS) fsync(n *inode) syscall.Errno {
	if f.syncFault(n) {
		return syscall.EIO
	}
	f.syncInode(n)
	switch n.kind {
	case kindFile:
		f.stats.FileSyncs++
	case kindDir:
		f.stats.DirSyncs++
	}
	return 0
}

func (f *FS) syncInode(n *inode) {
	n.durable = n.live
	switch n.kind {
	case kindFile:
		n.file.sync()
	case kindDir:
		for name, ino := range n.dir.durable {
			if n.dir.live[name] != ino {
				f.garbage = true // a name only the durable image held may have been the last one
				break
			}
		}
		n.dir.durable = maps.Clone(n.dir.live)
	}
}

// gc drops the inodes nothing refers to any more: no name in either image (under a
// directory that is itself kept), no open handle, no kernel reference. It marks from the
// root, so its cost is the number of inodes; it runs only when an operation may have
// released one.
func (f *FS) gc() {
	f.garbage = false
	keep := make(map[uint64]bool, len(f.inodes))
	var stack []uint64
	mark := func(ino uint64) {
		if !keep[ino] && f.inodes[ino] != nil {
			keep[ino] = true
			stack = append(stack, ino)
		}
	}
	mark(rootIno)
	for ino, n := range f.inodes {
		if n.lookups > 0 || n.opens > 0 {
			mark(ino)
		}
	}
	for len(stack) > 0 {
		n := f.inodes[stack[len(stack)-1]]
		stack = stack[:len(stack)-1]
		if n.kind == kindDir {
			for _, c := range n.dir.live {
				mark(c)
			}
			for _, c := range n.dir.durable {
				mark(c)
			}
		}
	}
	maps.DeleteFunc(f.inodes, func(ino uint64, _ *inode) bool { return !keep[ino] })
	maps.DeleteFunc(f.nodes, func(_ uint64, n *inode) bool { return !keep[n.ino] })
}

func (f *FS) endOp() {
	if f.garbage {
		f.gc()
	}
}

// PowerCut drops everything that was not made durable, at once, as a power failure of
// the disk would: every file's data, size and attributes go back to their last fsync,
// every directory's entries to its last fsync, whatever order the changes were made in.
// Open files and directories become stale: their reads, writes and fsyncs fail with
// EIO. Kill the processes using the mount first (or expect them to see errors); the
// mount itself stays up.
//
// A directory is kept under the first durable name that a breadth-first walk from the
// root in name order meets: a directory renamed across directories of which only one was
// fsynced would otherwise have two parents (or be its own ancestor).
func (f *FS) PowerCut() CutStats {
	f.mu.Lock()
	var cs CutStats
	wasLinked := map[uint64]bool{}
	for ino, n := range f.inodes {
		if n.nlink > 0 {
			wasLinked[ino] = true
		}
		if n.kind == kindDir {
			cs.EntriesUndone += entryDiff(n.dir.live, n.dir.durable)
		}
	}
	kept := map[uint64]*inode{}
	root := f.inodes[rootIno]
	kept[rootIno] = root
	queue := []*inode{root}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		names := slices.Sorted(maps.Keys(d.dir.durable))
		for _, name := range names {
			c := f.inodes[d.dir.durable[name]]
			if c == nil || (c.kind == kindDir && kept[c.ino] != nil) {
				delete(d.dir.durable, name)
				continue
			}
			if kept[c.ino] == nil {
				kept[c.ino] = c
				c.nlink = 0
				c.parent, c.name = d.ino, name
				if c.kind == kindDir {
					queue = append(queue, c)
				}
			}
			c.nlink++
		}
	}
	root.nlink = 1
	for ino, n := range f.inodes {
		if n.kind == kindFile {
			dropped, changed := n.file.revert()
			cs.BytesDropped += dropped
			if changed && kept[ino] != nil {
				cs.FilesReverted++
			}
		}
		if kept[ino] == nil {
			if wasLinked[ino] {
				cs.FilesLost++
			}
			continue
		}
		n.live = n.durable
		if n.kind == kindDir {
			n.dir.live = maps.Clone(n.dir.durable)
		}
		n.opens = 0
	}
	cs.StaleHandles = len(f.handles)
	clear(f.handles)
	// Every inode kept gets a new node id, as if the machine had rebooted: the kernel's
	// inodes, dentries and cached pages of before the cut all belong to the old ids,
	// which answer ESTALE from now on, so nothing cached can show the lost live image.
	// (Reusing the ids would also bring back directories that the kernel marked dead
	// when they were removed: their readdir fails with ENOENT for ever.) Inodes not kept
	// go now, even those the kernel still refers to.
	f.inodes = kept
	f.nodes = map[uint64]*inode{rootNode: root}
	for _, n := range kept {
		if n != root {
			n.node, n.lookups = f.nextNode, 0
			f.nextNode++
			f.nodes[n.node] = n
		}
	}
	f.stats.Cuts++
	f.stats.LastCut = cs
	f.mu.Unlock()
	return cs
}

// entryDiff counts the names whose target differs between two images of a directory.
func entryDiff(live, durable map[string]uint64) int {
	n := 0
	for name, ino := range live {
		if d, ok := durable[name]; !ok || d != ino {
			n++
		}
	}
	for name := range durable {
		if _, ok := live[name]; !ok {
			n++
		}
	}
	return n
}

// SyncAll makes everything durable, as sync(2) followed by a clean shutdown would: a
// later PowerCut then drops only what was written after it. Injected faults do not apply.
func (f *FS) SyncAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.inodes {
		f.syncInode(n)
	}
	f.endOp()
}

// Stats returns the counters so far.
func (f *FS) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats
	for _, n := range f.inodes {
		if n.kind == kindFile {
			s.UnsyncedBytes += n.file.unsynced
		}
	}
	return s
}

// FailSyncs makes the next n fsyncs (of files or directories, anywhere) fail with EIO;
// 0 stops it. What they would have made durable stays unsynced.
func (f *FS) FailSyncs(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults.failSyncs = max(n, 0)
}

// FailSyncsOf makes every fsync of a file or directory whose path (relative to the
// mount, slash-separated, "" for the root itself) matches re fail with EIO, until it is
// called with nil.
func (f *FS) FailSyncsOf(re *regexp.Regexp) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults.failSyncRe = re
}

// LimitWrites lets writes store n more bytes in all; a write that does not fit fails
// whole with ENOSPC (and stores nothing). Every byte written counts, overwrites too, and
// nothing given back by truncate or unlink returns to the budget: it is a budget, not a
// disk size. The kernel hands a write(2) over in requests of up to 1 MiB, split at a
// page boundary when it does not start on one, so a write(2) may also come out short:
// the requests that fit are stored, the first that does not fails. A negative n lifts
// the limit.
func (f *FS) LimitWrites(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults.budget = max(n, -1)
}

// ClearFaults stops every injected failure.
func (f *FS) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = faults{budget: -1}
}

// Import copies the tree under dir on the real file system into the root of f, as
// durable (as if written and synced long ago), keeping modes, times and symlinks;
// sockets and devices are skipped. It is meant for mounting over a directory that
// already holds files (a host's binary and configuration): import them first. The root
// of f must be empty.
func (f *FS) Import(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	root := f.inodes[rootIno]
	if len(root.dir.live) > 0 || len(root.dir.durable) > 0 {
		return fmt.Errorf("lazyfs: import %s: the file system is not empty", dir)
	}
	if err := f.importDir(root, dir); err != nil {
		return fmt.Errorf("lazyfs: import %s: %w", dir, err)
	}
	return nil
}

func (f *FS) importDir(d *inode, dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		var uid, gid uint32
		perm := uint32(fi.Mode().Perm())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid, perm = st.Uid, st.Gid, st.Mode&0o7777
		}
		var n *inode
		switch {
		case fi.IsDir():
			n, _ = f.create(d, e.Name(), kindDir, syscall.S_IFDIR|perm, uid, gid)
			if err := f.importDir(n, p); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n, _ = f.create(d, e.Name(), kindFile, syscall.S_IFREG|perm, uid, gid)
			n.file.writeAt(b, 0)
		case fi.Mode()&os.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			n, _ = f.create(d, e.Name(), kindSymlink, syscall.S_IFLNK|0o777, uid, gid)
			n.target = t
		default:
			continue
		}
		n.live.mtime, n.live.atime = fi.ModTime(), fi.ModTime()
		f.syncInode(n)
	}
	f.syncInode(d)
	return nil
}
