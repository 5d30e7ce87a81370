package statefile

import (
	"encoding/binary"
	"hash/crc32"

	"lite-raft/raftcore"
)

// A log record is a 32-byte header and the entry's data:
//
//	0  header CRC-32C of bytes 4..31
//	4  data length (uint32, little-endian)
//	8  index (uint64)
//	16 term (uint64)
//	24 entry type (1 byte), 3 bytes zero
//	28 data CRC-32C
//	32 data
//
// The header has its own checksum so that a damaged length is recognised as damage
// rather than read as a record cut short by a crash, which recovery would drop.
const (
	recordHeaderSize = 32
	// maxRecordData bounds a record's length: values are at most 1 MiB, so anything much
	// larger is damage even if its checksum happens to hold.
	maxRecordData = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segmentMagic opens every segment file, so `head -c 16` says what the file is.
const segmentMagic = "lite-raft log v1"

func appendRecord(buf []byte, e raftcore.Entry) []byte {
	var h [recordHeaderSize]byte
	binary.LittleEndian.PutUint32(h[4:], uint32(len(e.Data)))
	binary.LittleEndian.PutUint64(h[8:], e.Index)
	binary.LittleEndian.PutUint64(h[16:], e.Term)
	h[24] = byte(e.Type)
	binary.LittleEndian.PutUint32(h[28:], crc32.Checksum(e.Data, castagnoli))
	binary.LittleEndian.PutUint32(h[0:], crc32.Checksum(h[4:], castagnoli))
	buf = append(buf, h[:]...)
	return append(buf, e.Data...)
}

type recordStatus int

const (
	recordOK    recordStatus = iota
	recordShort              // the buffer ends inside the record: a write cut short
	recordBad                // checksum or field check failed: damage
)

// decodeRecord reads the record at the start of b. It returns the entry (whose Data
// aliases b), the record's length, and the status. reason says what is wrong if not OK.
func decodeRecord(b []byte) (e raftcore.Entry, n int, st recordStatus, reason string) {
	if len(b) < recordHeaderSize {
		return e, 0, recordShort, "header cut short"
	}
	if crc32.Checksum(b[4:recordHeaderSize], castagnoli) != binary.LittleEndian.Uint32(b) {
		return e, 0, recordBad, "header checksum mismatch"
	}
	size := binary.LittleEndian.Uint32(b[4:])
	if size > maxRecordData {
		return e, 0, recordBad, "record length too large"
	}
	if b[25] != 0 || b[26] != 0 || b[27] != 0 {
		return e, 0, recordBad, "reserved header bytes not zero"
	}
	t := raftcore.EntryType(b[24])
	if t != raftcore.EntryNormal && t != raftcore.EntryMembership {
		return e, 0, recordBad, "unknown entry type"
	}
	n = recordHeaderSize + int(size)
	if len(b) < n {
		return e, 0, recordShort, "data cut short"
	}
	data := b[recordHeaderSize:n:n]
	if crc32.Checksum(data, castagnoli) != binary.LittleEndian.Uint32(b[28:]) {
		return e, 0, recordBad, "data checksum mismatch"
	}
	e = raftcore.Entry{
		Index: binary.LittleEndian.Uint64(b[8:]),
		Term:  binary.LittleEndian.Uint64(b[16:]),
		Type:  t,
		Data:  data,
	}
	return e, n, recordOK, ""
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
