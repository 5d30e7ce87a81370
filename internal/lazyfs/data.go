//go:build linux

package lazyfs

import "slices"

// pageSize is the unit in which file data is copied between the two images. 4 KiB is
// the page of the kernel's page cache, so a torn page here is what a torn page is there.
const pageSize = 4096

type page [pageSize]byte

// maxFileSize bounds a file (EFBIG beyond): pages are a dense slice of pointers, so a
// write at a wild offset must not allocate one for every page before it. 16 GiB is a
// slice of 32 MiB at most, and far more than a test writes.
const maxFileSize = 16 << 30

// image is the content of a regular file in one of the two images: pages[i] holds the
// bytes [i*pageSize, (i+1)*pageSize), a nil page (or one past the end of pages) reads as
// zeros. Bytes past size within the last page are always zero.
type image struct {
	pages []*page
	size  int64
}

func (im *image) get(i int64) *page {
	if i < int64(len(im.pages)) {
		return im.pages[i]
	}
	return nil
}

func (im *image) set(i int64, p *page) {
	if i >= int64(len(im.pages)) {
		if p == nil {
			return
		}
		im.pages = slices.Grow(im.pages, int(i+1)-len(im.pages))[:i+1]
	}
	im.pages[i] = p
}

// truncatePages drops the pages from n on, clearing their slots so that a later growth
// of the slice does not bring old pointers back.
func (im *image) truncatePages(n int64) {
	if n < int64(len(im.pages)) {
		clear(im.pages[n:])
		im.pages = im.pages[:n]
	}
}

func (im *image) clone() image {
	return image{pages: slices.Clone(im.pages), size: im.size}
}

// fileData is a regular file's content: what processes see (live) and what survives a
// power cut (durable). Pages are shared between the two images and never changed once
// shared: a write to a shared page copies it first. The invariant that makes an fsync
// cost only the pages written since the last one: for every page index i not in dirty,
// live.get(i) == durable.get(i) (the same pointer, or both nil).
type fileData struct {
	live, durable image
	dirty         map[int64]struct{}
	// unsynced is how many bytes were written (or cut off by a truncate) since the last
	// fsync: what a power cut would drop, for the statistics.
	unsynced int64
}

func newFileData() *fileData { return &fileData{dirty: map[int64]struct{}{}} }

// writablePage returns live page i for writing, copying it first if it is shared with
// the durable image.
func (d *fileData) writablePage(i int64) *page {
	if _, ok := d.dirty[i]; ok {
		if p := d.live.get(i); p != nil {
			return p
		}
	}
	p := new(page)
	if old := d.live.get(i); old != nil {
		*p = *old
	}
	d.live.set(i, p)
	d.dirty[i] = struct{}{}
	return p
}

// readAt copies live bytes at off into b and returns how many there were.
func (d *fileData) readAt(b []byte, off int64) int {
	if off >= d.live.size || off < 0 {
		return 0
	}
	b = b[:min(int64(len(b)), d.live.size-off)]
	n := 0
	for n < len(b) {
		pos := off + int64(n)
		i, in := pos/pageSize, int(pos%pageSize)
		chunk := b[n:min(len(b), n+pageSize-in)]
		if p := d.live.get(i); p != nil {
			copy(chunk, p[in:])
		} else {
			clear(chunk)
		}
		n += len(chunk)
	}
	return n
}

// writeAt writes b at off into the live image, growing the file if needed.
func (d *fileData) writeAt(b []byte, off int64) {
	for n := 0; n < len(b); {
		pos := off + int64(n)
		i, in := pos/pageSize, int(pos%pageSize)
		n += copy(d.writablePage(i)[in:], b[n:])
	}
	if end := off + int64(len(b)); end > d.live.size {
		d.live.size = end
	}
	d.unsynced += int64(len(b))
}

// truncate sets the live size. Shrinking zeroes the tail of the new last page (so that a
// later growth reads zeros there) and marks the dropped pages dirty wherever the durable
// image still has data, which keeps the invariant.
func (d *fileData) truncate(size int64) {
	old := d.live.size
	if size < old {
		d.unsynced += old - size
		if in := int(size % pageSize); in != 0 {
			clear(d.writablePage(size / pageSize)[in:])
		}
		keep := (size + pageSize - 1) / pageSize
		for i := keep; i < int64(max(len(d.live.pages), len(d.durable.pages))); i++ {
			if d.durable.get(i) != nil {
				d.dirty[i] = struct{}{}
			} else {
				delete(d.dirty, i)
			}
		}
		d.live.truncatePages(keep)
	}
	d.live.size = size
}

// sync makes the live image durable, copying only the pages written since the last sync.
func (d *fileData) sync() {
	for i := range d.dirty {
		d.durable.set(i, d.live.get(i))
	}
	d.durable.truncatePages(int64(len(d.live.pages)))
	d.durable.size = d.live.size
	clear(d.dirty)
	d.unsynced = 0
}

// revert throws the live image away for a copy of the durable one (a power cut). It
// returns how many unsynced bytes were dropped and whether anything changed.
func (d *fileData) revert() (dropped int64, changed bool) {
	dropped = d.unsynced
	if len(d.dirty) > 0 || d.live.size != d.durable.size {
		d.live = d.durable.clone()
		clear(d.dirty)
		changed = true
	}
	d.unsynced = 0
	return dropped, changed
}
