// Package lazyfs is a test file system that forgets what was not synced, in the spirit of
// LazyFS (the FUSE file system Jepsen uses): mounted over a test host's lite-raft
// directory, it lets an end-to-end test cut the power of every host at once and find
// afterwards only what was really fsynced.
//
// An FS is a tree kept in memory in two images. The live image is what processes see
// through the mount: an ordinary POSIX file system (files, directories, hard and
// symbolic links, fifos and unix sockets; open with O_CREAT, O_EXCL, O_TRUNC and
// O_APPEND, read and write at offsets, truncate, rename over an existing name, unlink,
// chmod, statfs, fsync and fdatasync of files and of directories). The durable image is
// what survives PowerCut, which replaces the live image by it all at once. An FS outlives
// its mounts: Unmount and Mount again, even on another directory, and the same images are
// there, so a test can unmount, cut, remount.
//
// The durability rule is POSIX's strict reading, stricter than LazyFS's:
//
//   - fsync or fdatasync of a file makes its current data, size and attributes durable;
//   - fsync of a directory makes its current entries durable: names created, removed,
//     renamed in or out since its last fsync, nothing else;
//   - nothing else is ever durable: not a name whose directory was not fsynced (however
//     often the file was), not a rename or a removal, not a chmod; sync(2) and syncfs(2)
//     do nothing (FUSE does not pass them on to an ordinary server).
//
// So a missing fsync of a log append loses that append (to the byte: the unit is a 4 KiB
// page copied on write, and not a byte of an unsynced write survives, even within a page
// partly synced before), a missing directory fsync after creating a segment loses the
// segment, and one after an atomic rename brings the old file back. A name that became
// durable before its file was ever fsynced comes back empty. LazyFS keeps the data of
// unsynced writes in its own page cache but passes names straight to the file system
// below it, so it cannot catch a missing directory fsync; on ext4 such a miss is often
// saved by the next journal commit (any fsync), which no standard promises. Each
// directory is durable on its own, so a rename across two directories of which only one
// was fsynced leaves the file under both names (or neither) after a cut; harsher than a
// journal, which commits both at once, and what the standard allows. A directory that
// would thereby have two parents keeps the first durable name met walking from the root.
//
// fsync copies only the pages written since the last one (pages are shared between the
// images and copied when written), so appending to a large log costs what the append
// costs; PowerCut costs a pointer per page of the files it keeps.
//
// After PowerCut, handles opened before it fail with EIO, node ids of files that are gone
// with ESTALE; the mount stays up and new opens see the durable state. Kill the processes
// using the mount before the cut, as a power failure would have.
//
// Faults can be injected while mounted: FailSyncs (the next n fsyncs fail with EIO),
// FailSyncsOf (fsyncs of paths matching a pattern fail), LimitWrites (ENOSPC once a byte
// budget is spent). A failed fsync leaves what it would have made durable unsynced. Stats
// counts fsyncs, writes, failures and what the last cut dropped, for tests to check they
// did what they meant.
//
// Mounting needs Linux, /dev/fuse and root (which mounts with mount(2)); other users need
// fusermount3 (Debian's fuse3, which scripts/install-test-deps.sh installs), a path not
// tested here. Available says what is missing. Mount hides what the directory held:
// Import copies a directory (a host's binary and configuration) in as durable first.
//
// A mount is seen by mount namespaces created after it, not by those that exist already,
// and a bind mount of a directory above it shows it only when recursive (mount --rbind):
// internal/harness hosts see a mount made on Host.Dir itself before the host boots (or
// between PowerOff and PowerOn), not one made on a folder inside it (see
// TestMountNamespaces). Unmount never leaves a mount behind: if the mount is busy, or
// another namespace still holds a copy, it detaches it and, after a short wait, aborts
// the connection; the processes still using it get ENOTCONN.
//
// The process that mounts is the server: it may read and write the mount itself, but it
// must not start a program that lives on the mount, or whose working directory is on it
// (os/exec's fork waits for the child's exec, and the child waits for this server, which
// the Go runtime may then be unable to run: a deadlock). Go through sh -c, or let the
// hosts' own processes do it.
//
// There are no permission checks (everything using it runs as root), no extended
// attributes, no locks of its own (fcntl locks work: the kernel keeps them), and
// no torn or reordered writes within what was synced: a write(2) either reached the live
// image or failed.
//
// LAZYFS_DEBUG=1 in the environment logs every FUSE request (go-fuse's debug output).
package lazyfs
