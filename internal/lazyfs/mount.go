//go:build linux

package lazyfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Mount is an FS mounted on a directory of the real file system.
type Mount struct {
	f      *FS
	dir    string
	direct bool          // mounted with mount(2) (as root), not fusermount3
	conn   uint32        // the FUSE connection's number, under /sys/fs/fuse/connections
	done   chan struct{} // closed when the server's loop has ended
	once   sync.Once
	err    error
}

const maxWrite = 1 << 20

// mountDirect opens /dev/fuse and mounts it on dir, as fusermount3 would, and returns
// the descriptor.
func mountDirect(dir string) (int, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return -1, err
	}
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	// allow_other: the hosts of internal/harness are other processes, maybe in other
	// mount namespaces; only root may give it without /etc/fuse.conf saying so.
	data := fmt.Sprintf("fd=%d,rootmode=%o,user_id=0,group_id=0,allow_other,max_read=%d", fd, st.Mode&unix.S_IFMT, maxWrite)
	if err := unix.Mount("lazyfs", dir, "fuse.lazyfs", unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("mount(2): %w", err)
	}
	return fd, nil
}

// How long Unmount waits for the kernel to let go of the connection before it aborts
// it, and then for the abort to take.
const (
	releaseWait = 2 * time.Second
	abortWait   = 10 * time.Second
)

// Available reports why this process cannot mount an FS here, or nil if it can: FUSE
// needs /dev/fuse, and either root (which mounts directly) or fusermount3 (fuse3).
func Available() error {
	d, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("lazyfs: FUSE unavailable: %w", err)
	}
	d.Close()
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			return errors.New("lazyfs: not root, and no fusermount3 to mount with (Debian package fuse3)")
		}
	}
	return nil
}

// Mount mounts f on dir, an existing directory, whose own content it hides until
// Unmount (Import it first to keep it visible). One FS has at most one mount at a time.
// Whatever f holds is what the mount shows: mounting again after Unmount shows the
// live image as it was (call PowerCut before, to see only what was durable).
func (f *FS) Mount(dir string) (*Mount, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("lazyfs: mount %s: %w", dir, err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("lazyfs: mount %s: %w", dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("lazyfs: mount %s: not a directory", dir)
	}
	f.mu.Lock()
	if f.mnt != nil {
		f.mu.Unlock()
		return nil, fmt.Errorf("lazyfs: mount %s: already mounted on %s", dir, f.mnt.dir)
	}
	m := &Mount{f: f, dir: dir, done: make(chan struct{})}
	f.mnt = m // reserved while mounting
	f.resetKernelState()
	f.mu.Unlock()

	opts := &fuse.MountOptions{
		FsName:             "lazyfs",
		Name:               "lazyfs",
		DisableXAttrs:      true,
		DisableReadDirPlus: true,
		// lite-raft writes a batch of entries in one write(2): fewer, larger requests.
		MaxWrite: maxWrite,
		Debug:    os.Getenv("LAZYFS_DEBUG") != "",
	}
	mountPoint := dir
	if os.Geteuid() == 0 {
		// Root mounts itself, with a /dev/fuse descriptor it opened close-on-exec, and
		// hands it to go-fuse as /dev/fd/N. go-fuse's own mount(2) path leaves the
		// descriptor inheritable: every process the test starts (sshd, the hosts' init)
		// would hold the connection open, so that when the test process dies its mount
		// hangs instead of failing.
		fd, err := mountDirect(dir)
		if err != nil {
			f.mu.Lock()
			f.mnt = nil
			f.mu.Unlock()
			return nil, fmt.Errorf("lazyfs: mount %s: %w", dir, err)
		}
		mountPoint = "/dev/fd/" + strconv.Itoa(fd)
		m.direct = true
	}
	srv, err := fuse.NewServer(newServer(f), mountPoint, opts)
	if err != nil {
		if m.direct {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
		f.mu.Lock()
		f.mnt = nil
		f.mu.Unlock()
		return nil, fmt.Errorf("lazyfs: mount %s: %w", dir, err)
	}
	go func() {
		srv.Serve()
		close(m.done)
	}()
	if err := srv.WaitMount(); err != nil {
		m.Unmount()
		return nil, fmt.Errorf("lazyfs: mount %s: %w", dir, err)
	}
	if m.direct {
		if err := pollHack(dir); err != nil {
			m.Unmount()
			return nil, fmt.Errorf("lazyfs: mount %s: %w", dir, err)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		m.Unmount()
		return nil, fmt.Errorf("lazyfs: mount %s: %w", dir, err)
	}
	m.conn = unix.Minor(st.Dev)
	return m, nil
}

// pollHack makes the kernel ask for POLL once, on a file go-fuse answers itself, so that
// go-fuse can say ENOSYS and the kernel never asks again. Otherwise the first os.Open of
// a file on the mount by this process registers it with the runtime's epoll, the kernel
// asks this very server whether the file is ready, from inside epoll_ctl, and the
// process can deadlock (golang.org/issue/21014). go-fuse does this itself in WaitMount,
// except for a /dev/fd/N mount point, whose directory it does not know.
func pollHack(dir string) error {
	const name = ".go-fuse-epoll-hack" // go-fuse's fuse.pollHackName
	fd, err := unix.Open(filepath.Join(dir, name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("poll hack: %w", err)
	}
	defer unix.Close(fd)
	unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLPRI | unix.POLLOUT}}, 0)
	return nil
}

// resetKernelState forgets what a previous mount's kernel held: node references and
// open handles die with the connection. f.mu is held.
func (f *FS) resetKernelState() {
	for _, n := range f.inodes {
		n.lookups, n.opens = 0, 0
	}
	clear(f.handles)
	f.gc()
}

// Dir is where the FS is mounted.
func (m *Mount) Dir() string { return m.dir }

// FS is the file system mounted.
func (m *Mount) FS() *FS { return m.f }

// Unmount unmounts and stops the server; it is idempotent, and safe to defer or to
// register with t.Cleanup. If a process still uses the mount, it is detached (MNT_DETACH)
// and the connection aborted, so that such processes see ENOTCONN instead of hanging:
// Unmount never leaves a mount behind in this mount namespace. The same abort ends
// copies of the mount in other mount namespaces (internal/harness hosts) that still
// live; their processes then see ENOTCONN too.
func (m *Mount) Unmount() error {
	m.once.Do(func() { m.err = m.unmount() })
	return m.err
}

func (m *Mount) unmount() error {
	defer func() {
		m.f.mu.Lock()
		if m.f.mnt == m {
			m.f.mnt = nil
			m.f.resetKernelState()
		}
		m.f.mu.Unlock()
	}()
	if !m.direct {
		return m.fusermountUnmount()
	}
	err := unix.Unmount(m.dir, 0)
	busy := errors.Is(err, unix.EBUSY)
	if busy {
		err = unix.Unmount(m.dir, unix.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, unix.EINVAL) { // EINVAL: someone unmounted it already
		return fmt.Errorf("lazyfs: unmount %s: %w", m.dir, err)
	}
	if !busy && wait(m.done, releaseWait) {
		return nil
	}
	// Something still holds the connection: a process with a file open on the detached
	// mount, or another mount namespace's copy of it.
	if err := m.abort(); err != nil {
		return fmt.Errorf("lazyfs: unmount %s: the connection stays open: %w", m.dir, err)
	}
	if !wait(m.done, abortWait) {
		return fmt.Errorf("lazyfs: unmount %s: the server did not stop %v after aborting connection %d", m.dir, abortWait, m.conn)
	}
	return nil
}

// fusermountUnmount is Unmount for users other than root, who may neither unmount
// directly nor abort connections: fusermount3 -u, or -u -z (lazily) when busy.
func (m *Mount) fusermountUnmount() error {
	out, err := exec.Command("fusermount3", "-u", m.dir).CombinedOutput()
	if err != nil {
		if out2, err2 := exec.Command("fusermount3", "-u", "-z", m.dir).CombinedOutput(); err2 != nil {
			return fmt.Errorf("lazyfs: unmount %s: fusermount3: %v %s; with -z: %v %s", m.dir, err, out, err2, out2)
		}
	}
	if !wait(m.done, abortWait) {
		return fmt.Errorf("lazyfs: unmount %s: the server did not stop within %v (a process still uses the mount)", m.dir, abortWait)
	}
	return nil
}

func wait(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// abort aborts the FUSE connection through fusectl, mounting fusectl for the while if
// it is not mounted.
func (m *Mount) abort() error {
	const ctl = "/sys/fs/fuse/connections"
	if m.conn == 0 {
		return errors.New("connection number unknown")
	}
	file := filepath.Join(ctl, strconv.FormatUint(uint64(m.conn), 10), "abort")
	if _, err := os.Stat(file); os.IsNotExist(err) {
		if err := unix.Mount("fusectl", ctl, "fusectl", 0, ""); err != nil {
			return fmt.Errorf("mount fusectl on %s: %w", ctl, err)
		}
		defer unix.Unmount(ctl, 0)
	}
	if err := os.WriteFile(file, []byte("1"), 0); err != nil {
		return fmt.Errorf("abort: %w", err)
	}
	return nil
}
