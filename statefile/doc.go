// Package statefile keeps a node's durable Raft state in plain files under the lite-raft
// directory, and is the only code of lite-raft that calls fsync.
//
// Three kinds of files, each readable with the shell's own tools where that helps a
// sysadmin at 3 a.m.:
//
//   - state/current: the term and the vote, as two text lines, replaced atomically
//     (write a temporary file, fsync it, rename, fsync the folder). state/commit is a
//     hint of the commit index for restarts; it is never fsynced, since a lost or older
//     value only means the node waits for the leader to tell it again.
//   - state-machine-log/: the log as segment files named by their first index, each
//     record with a checksummed header and a checksum of its data. A batch of entries is
//     one write and one fsync, whatever its size: that is what makes group commit pay.
//     Entries that conflict with the leader's are cut off durably before anything new
//     is written; a snapshot lets whole segments be deleted, oldest first. The last
//     segment reserves its full size when it starts (fallocate; zeros after its records),
//     so that an append changes no file size and its fdatasync writes the data without a
//     journal entry; a segment is cut to its records when the next one starts.
//   - state-machine-snapshot/: the snapshot with a checksummed text header (`head` shows
//     index, term and members), replaced atomically. It is written from a stream, its
//     size and CRC-32C computed as it goes and filled into the header at the end, so the
//     state is never one byte slice; it is read back in pieces for sending, from a file
//     kept open while a transfer lasts so that a newer snapshot does not pull it away. A
//     snapshot arriving from the leader is written piece by piece to incoming.partial,
//     which a restart resumes from, and renamed into place once whole and checked.
//     snapshot.previous is the one before the latest, linked there when the node's own
//     newer one replaces it: the log runs from it, and a restart applies the log again
//     from it to learn what each entry changed (watch --from); it goes when a snapshot
//     replaces the log.
//
// The Store is also the node's raftcore.Storage: entries are read back from the log by
// their offsets, only the bytes asked for, so the node keeps only recent entries in
// memory.
//
// Recovery tells a crash apart from damage. A record cut short at the very end of the
// last segment, with nothing or only zero-filled sectors after it, is an append that was
// never acknowledged: it is cut off. Zeros alone after the last record are the reserved
// space, not a torn write. Anything else (a bad checksum in the middle, a gap
// in the indexes, a segment that ends early) is a *DamageError naming the file and the
// byte offset, and the node refuses to start rather than silently lose entries that a
// quorum may count on. The crash tests cut an in-flight append at every byte and flip
// bits at random to hold this line.
//
// lite-raft debug opens the same files read-only to print them.
package statefile
