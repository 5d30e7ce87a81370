//go:build linux

package lazyfs

import (
	"maps"
	"slices"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// server answers the kernel's FUSE requests from an FS. Every request takes the FS's
// lock for its whole length: the requests are small and an in-memory image has nothing
// to wait for, so one lock keeps the two images consistent without any cleverness.
//
// Entries and attributes are given with a validity of zero, so the kernel asks again
// every time: that costs a round trip per path component, and buys a kernel view that
// can never be older than the live image, in particular right after PowerCut replaced
// it. Data goes through the page cache (so that binaries on the mount can be executed,
// which direct I/O would forbid) in write-through mode (no writeback cache), so every
// write(2) has reached the FS when it returns. The kernel drops a file's cached pages at
// each open, and after PowerCut every file is a new inode to it (see there), so no page
// of the lost live image stays cached.
type server struct {
	fuse.RawFileSystem // ENOSYS for what is not implemented (xattrs, locks, ioctl...)
	f                  *FS
}

func newServer(f *FS) *server {
	return &server{RawFileSystem: fuse.NewDefaultRawFileSystem(), f: f}
}

func (s *server) String() string { return "lazyfs" }

// lock takes the FS's lock; the function it returns collects garbage if the operation
// made some, and unlocks.
func (s *server) lock() func() {
	s.f.mu.Lock()
	return func() {
		s.f.endOp()
		s.f.mu.Unlock()
	}
}

func status(errno syscall.Errno) fuse.Status { return fuse.Status(errno) }

func (f *FS) fillAttr(n *inode, a *fuse.Attr) {
	*a = fuse.Attr{Ino: n.ino, Mode: n.live.mode, Nlink: n.nlink, Blksize: pageSize}
	a.Uid, a.Gid = n.live.uid, n.live.gid
	switch n.kind {
	case kindFile:
		a.Size = uint64(n.file.live.size)
	case kindDir:
		a.Size = pageSize
		if n.nlink > 0 {
			a.Nlink = 2
			for _, ino := range n.dir.live {
				if c := f.inodes[ino]; c != nil && c.kind == kindDir {
					a.Nlink++
				}
			}
		}
	case kindSymlink:
		a.Size = uint64(len(n.target))
	}
	a.Blocks = (a.Size + 511) / 512
	a.SetTimes(&n.live.atime, &n.live.mtime, &n.live.ctime)
}

// entry fills a reply that hands the kernel a reference to n (LOOKUP, CREATE, MKDIR...).
func (f *FS) entry(n *inode, out *fuse.EntryOut) {
	n.lookups++
	*out = fuse.EntryOut{NodeId: n.node}
	f.fillAttr(n, &out.Attr)
}

// openHandle registers an open file or directory.
func (f *FS) openHandle(n *inode, flags uint32) uint64 {
	fh := f.nextFh
	f.nextFh++
	f.handles[fh] = &handle{ino: n.ino, flags: flags}
	n.opens++
	return fh
}

// handle returns an open handle and its inode; EIO once a power cut made it stale.
func (f *FS) handle(fh uint64) (*handle, *inode, syscall.Errno) {
	h := f.handles[fh]
	if h == nil {
		return nil, nil, syscall.EIO
	}
	n := f.inodes[h.ino]
	if n == nil {
		return nil, nil, syscall.EIO
	}
	return h, n, 0
}

func (f *FS) release(fh uint64) {
	h := f.handles[fh]
	if h == nil {
		return
	}
	delete(f.handles, fh)
	if n := f.inodes[h.ino]; n != nil {
		n.opens--
		if n.opens == 0 && n.nlink == 0 {
			f.garbage = true
		}
	}
}

func (f *FS) truncate(n *inode, size uint64) syscall.Errno {
	if n.kind != kindFile {
		return syscall.EINVAL
	}
	if size > maxFileSize {
		return syscall.EFBIG
	}
	n.file.truncate(int64(size))
	n.touch(time.Now())
	return 0
}

func (s *server) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	defer s.lock()()
	d, errno := s.f.dirNode(h.NodeId)
	if errno != 0 {
		return status(errno)
	}
	n := s.f.inodes[d.dir.live[name]]
	if n == nil {
		return fuse.ENOENT
	}
	s.f.entry(n, out)
	return fuse.OK
}

func (s *server) Forget(nodeid, nlookup uint64) {
	defer s.lock()()
	if n := s.f.nodes[nodeid]; n != nil {
		n.lookups -= min(n.lookups, nlookup)
		if n.lookups == 0 && n.nlink == 0 {
			s.f.garbage = true
		}
	}
}

func (s *server) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	defer s.lock()()
	n, errno := s.f.node(in.NodeId)
	if errno != 0 {
		return status(errno)
	}
	s.f.fillAttr(n, &out.Attr)
	return fuse.OK
}

func (s *server) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	defer s.lock()()
	f := s.f
	n, errno := f.node(in.NodeId)
	if errno != 0 {
		return status(errno)
	}
	if fh, ok := in.GetFh(); ok {
		if _, _, errno := f.handle(fh); errno != 0 {
			return status(errno)
		}
	}
	now := time.Now()
	if size, ok := in.GetSize(); ok {
		if errno := f.truncate(n, size); errno != 0 {
			return status(errno)
		}
	}
	if mode, ok := in.GetMode(); ok {
		n.live.mode = n.live.mode&syscall.S_IFMT | mode
	}
	if uid, ok := in.GetUID(); ok {
		n.live.uid = uid
	}
	if gid, ok := in.GetGID(); ok {
		n.live.gid = gid
	}
	if t, ok := in.GetATime(); ok {
		n.live.atime = t
	}
	if t, ok := in.GetMTime(); ok {
		n.live.mtime = t
	}
	n.live.ctime = now
	if n.kind == kindSpecial || n.kind == kindSymlink {
		n.durable = n.live
	}
	f.fillAttr(n, &out.Attr)
	return fuse.OK
}

// newNode is the common part of MKDIR, MKNOD, SYMLINK and CREATE.
func (s *server) newNode(h *fuse.InHeader, name string, k kind, mode uint32, out *fuse.EntryOut) (*inode, fuse.Status) {
	d, errno := s.f.dirNode(h.NodeId)
	if errno != 0 {
		return nil, status(errno)
	}
	n, errno := s.f.create(d, name, k, mode, h.Uid, h.Gid)
	if errno != 0 {
		return nil, status(errno)
	}
	s.f.entry(n, out)
	return n, fuse.OK
}

func (s *server) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	defer s.lock()()
	_, st := s.newNode(&in.InHeader, name, kindDir, syscall.S_IFDIR|in.Mode&0o7777, out)
	return st
}

// Mknod makes regular files, fifos and sockets (bind(2) of a unix socket comes here);
// no devices.
func (s *server) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	defer s.lock()()
	k := kindSpecial
	switch in.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		k = kindFile
	case syscall.S_IFIFO, syscall.S_IFSOCK:
	default:
		return fuse.EPERM
	}
	_, st := s.newNode(&in.InHeader, name, k, in.Mode&(syscall.S_IFMT|0o7777), out)
	return st
}

func (s *server) Symlink(cancel <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	defer s.lock()()
	if len(target) > 4095 {
		return fuse.Status(syscall.ENAMETOOLONG)
	}
	n, st := s.newNode(h, name, kindSymlink, syscall.S_IFLNK|0o777, out)
	if st.Ok() {
		n.target = target
		out.Attr.Size = uint64(len(target))
	}
	return st
}

func (s *server) Readlink(cancel <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	defer s.lock()()
	n, errno := s.f.node(h.NodeId)
	if errno != 0 {
		return nil, status(errno)
	}
	if n.kind != kindSymlink {
		return nil, fuse.EINVAL
	}
	return []byte(n.target), fuse.OK
}

func (s *server) Link(cancel <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	defer s.lock()()
	n, errno := s.f.node(in.Oldnodeid)
	if errno != 0 {
		return status(errno)
	}
	d, errno := s.f.dirNode(in.NodeId)
	if errno != 0 {
		return status(errno)
	}
	if errno := s.f.hardLink(n, d, name); errno != 0 {
		return status(errno)
	}
	s.f.entry(n, out)
	return fuse.OK
}

func (s *server) Unlink(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return s.remove(h, name, false)
}

func (s *server) Rmdir(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return s.remove(h, name, true)
}

func (s *server) remove(h *fuse.InHeader, name string, dir bool) fuse.Status {
	defer s.lock()()
	d, errno := s.f.dirNode(h.NodeId)
	if errno != 0 {
		return status(errno)
	}
	return status(s.f.remove(d, name, dir))
}

func (s *server) Rename(cancel <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	defer s.lock()()
	src, errno := s.f.dirNode(in.NodeId)
	if errno != 0 {
		return status(errno)
	}
	dst, errno := s.f.dirNode(in.Newdir)
	if errno != 0 {
		return status(errno)
	}
	return status(s.f.rename(src, oldName, dst, newName, in.Flags))
}

func (s *server) Access(cancel <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	defer s.lock()()
	_, errno := s.f.node(in.NodeId)
	return status(errno)
}

// openFile is the common part of OPEN and of CREATE on an existing name.
func (f *FS) openFile(n *inode, flags uint32) (uint64, syscall.Errno) {
	switch n.kind {
	case kindDir:
		return 0, syscall.EISDIR
	case kindFile:
	default:
		return 0, syscall.ENXIO
	}
	if flags&syscall.O_TRUNC != 0 {
		if errno := f.truncate(n, 0); errno != 0 {
			return 0, errno
		}
	}
	return f.openHandle(n, flags), 0
}

func (s *server) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	defer s.lock()()
	f := s.f
	d, errno := f.dirNode(in.NodeId)
	if errno != 0 {
		return status(errno)
	}
	n := f.inodes[d.dir.live[name]]
	if n != nil {
		if in.Flags&syscall.O_EXCL != 0 {
			return fuse.Status(syscall.EEXIST)
		}
	} else if n, errno = f.create(d, name, kindFile, syscall.S_IFREG|in.Mode&0o7777, in.Uid, in.Gid); errno != 0 {
		return status(errno)
	}
	fh, errno := f.openFile(n, in.Flags)
	if errno != 0 {
		return status(errno)
	}
	f.entry(n, &out.EntryOut)
	out.OpenOut = fuse.OpenOut{Fh: fh}
	return fuse.OK
}

func (s *server) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	defer s.lock()()
	n, errno := s.f.node(in.NodeId)
	if errno != 0 {
		return status(errno)
	}
	fh, errno := s.f.openFile(n, in.Flags)
	if errno != 0 {
		return status(errno)
	}
	*out = fuse.OpenOut{Fh: fh}
	return fuse.OK
}

func (s *server) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	defer s.lock()()
	_, n, errno := s.f.handle(in.Fh)
	if errno != 0 {
		return nil, status(errno)
	}
	if n.kind != kindFile {
		return nil, fuse.Status(syscall.EISDIR)
	}
	b := buf[:min(len(buf), int(in.Size))]
	return fuse.ReadResultData(b[:n.file.readAt(b, int64(in.Offset))]), fuse.OK
}

func (s *server) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	defer s.lock()()
	h, n, errno := s.f.handle(in.Fh)
	if errno != 0 {
		return 0, status(errno)
	}
	if n.kind != kindFile {
		return 0, fuse.Status(syscall.EISDIR)
	}
	off := int64(in.Offset)
	if h.flags&syscall.O_APPEND != 0 {
		off = n.file.live.size
	}
	if errno := s.f.write(n, data, off); errno != 0 {
		return 0, status(errno)
	}
	return uint32(len(data)), fuse.OK
}

func (s *server) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status { return fuse.OK }

func (s *server) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	defer s.lock()()
	s.f.release(in.Fh)
}

func (s *server) Fsync(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	defer s.lock()()
	_, n, errno := s.f.handle(in.Fh)
	if errno != 0 {
		return status(errno)
	}
	return status(s.f.fsync(n))
}

// Fallocate supports plain allocation (which may grow the file) and FALLOC_FL_KEEP_SIZE
// (which has nothing to do in memory).
func (s *server) Fallocate(cancel <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	defer s.lock()()
	_, n, errno := s.f.handle(in.Fh)
	if errno != 0 {
		return status(errno)
	}
	const keepSize = 1 // FALLOC_FL_KEEP_SIZE
	switch {
	case in.Mode == keepSize:
		return fuse.OK
	case in.Mode != 0:
		return fuse.Status(syscall.EOPNOTSUPP)
	case n.kind != kindFile:
		return fuse.Status(syscall.ENODEV)
	}
	if end := in.Offset + in.Length; end > uint64(n.file.live.size) {
		return status(s.f.truncate(n, end))
	}
	return fuse.OK
}

func (s *server) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	defer s.lock()()
	f := s.f
	d, errno := f.dirNode(in.NodeId)
	if errno != 0 {
		return status(errno)
	}
	// The listing is taken at opendir, so that a directory changing while it is read
	// neither repeats nor skips names (readdir(3) allows either; this is simplest).
	parent := d.parent
	if d.ino == rootIno {
		parent = rootIno
	}
	listing := []dirent{{".", d.ino, syscall.S_IFDIR}, {"..", parent, syscall.S_IFDIR}}
	for _, name := range slices.Sorted(maps.Keys(d.dir.live)) {
		if c := f.inodes[d.dir.live[name]]; c != nil {
			listing = append(listing, dirent{name, c.ino, c.live.mode})
		}
	}
	fh := f.openHandle(d, in.Flags)
	f.handles[fh].listing = listing
	*out = fuse.OpenOut{Fh: fh}
	return fuse.OK
}

func (s *server) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	defer s.lock()()
	h, _, errno := s.f.handle(in.Fh)
	if errno != 0 {
		return status(errno)
	}
	for i := in.Offset; i < uint64(len(h.listing)); i++ {
		e := h.listing[i]
		if !out.AddDirEntry(fuse.DirEntry{Name: e.name, Ino: e.ino, Mode: e.mode, Off: i + 1}) {
			break
		}
	}
	return fuse.OK
}

func (s *server) ReleaseDir(in *fuse.ReleaseIn) {
	defer s.lock()()
	s.f.release(in.Fh)
}

func (s *server) FsyncDir(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	defer s.lock()()
	_, n, errno := s.f.handle(in.Fh)
	if errno != 0 {
		return status(errno)
	}
	return status(s.f.fsync(n))
}

// StatFs reports a disk of 1 TiB (or, under LimitWrites, one whose free space is the
// budget left), with the live image's data as used.
func (s *server) StatFs(cancel <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	defer s.lock()()
	f := s.f
	var used uint64
	for _, n := range f.inodes {
		if n.kind == kindFile {
			used += (uint64(n.file.live.size) + pageSize - 1) / pageSize
		}
	}
	const total = 1 << 40 / pageSize
	free := uint64(total) - min(used, total)
	if f.faults.budget >= 0 {
		free = min(free, uint64(f.faults.budget)/pageSize)
	}
	const files = 1 << 20
	*out = fuse.StatfsOut{Blocks: total, Bfree: free, Bavail: free, Files: files,
		Ffree: files - min(uint64(len(f.inodes)), files), Bsize: pageSize, Frsize: pageSize, NameLen: 255}
	return fuse.OK
}
