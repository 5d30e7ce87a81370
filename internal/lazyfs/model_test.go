//go:build linux

package lazyfs

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	seedFlag = flag.Uint64("lazyfs.seed", 0, "run the random test with this seed only (0: new seeds)")
	opsFlag  = flag.Int("lazyfs.ops", 1000, "operations per seed in the random test")
	runsFlag = flag.Int("lazyfs.runs", 10, "seeds the random test tries")
)

// mnode is the model's inode: whole byte slices and maps, copied on every sync, the
// dumbest implementation of the rules that FS implements with shared pages.
type mnode struct {
	dir             bool
	live, dur       []byte
	liveEnt, durEnt map[string]*mnode
}

func newMDir() *mnode {
	return &mnode{dir: true, liveEnt: map[string]*mnode{}, durEnt: map[string]*mnode{}}
}

type model struct{ root *mnode }

// lookup resolves a slash path in the live image ("" is the root).
func (m *model) lookup(p string) *mnode {
	n := m.root
	if p == "" {
		return n
	}
	for _, part := range strings.Split(p, "/") {
		if n == nil || !n.dir {
			return nil
		}
		n = n.liveEnt[part]
	}
	return n
}

func splitPath(p string) (dir, name string) {
	i := strings.LastIndex(p, "/")
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// paths lists the live image: every path, with whether it is a directory.
func (m *model) paths() (files, dirs []string) {
	dirs = []string{""}
	var walk func(prefix string, n *mnode)
	walk = func(prefix string, n *mnode) {
		for _, name := range slices.Sorted(maps.Keys(n.liveEnt)) {
			c, p := n.liveEnt[name], prefix+name
			if c.dir {
				dirs = append(dirs, p)
				walk(p+"/", c)
			} else {
				files = append(files, p)
			}
		}
	}
	walk("", m.root)
	return files, dirs
}

// tree is what the live image holds: path -> "dir" or the file's content.
func (m *model) tree() map[string]string {
	out := map[string]string{}
	var walk func(prefix string, n *mnode)
	walk = func(prefix string, n *mnode) {
		for name, c := range n.liveEnt {
			if c.dir {
				out[prefix+name] = "dir"
				walk(prefix+name+"/", c)
			} else {
				out[prefix+name] = string(c.live)
			}
		}
	}
	walk("", m.root)
	return out
}

// cut is PowerCut's rule, written out plainly: walk the durable entries breadth first in
// name order from the root; a directory met a second time loses that entry; everything
// met gets its durable content back; everything else is gone.
func (m *model) cut() {
	seen := map[*mnode]bool{m.root: true}
	queue := []*mnode{m.root}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		for _, name := range slices.Sorted(maps.Keys(d.durEnt)) {
			c := d.durEnt[name]
			if c.dir && seen[c] {
				delete(d.durEnt, name)
				continue
			}
			if !seen[c] {
				seen[c] = true
				if c.dir {
					queue = append(queue, c)
				}
			}
		}
	}
	for n := range seen {
		if n.dir {
			n.liveEnt = maps.Clone(n.durEnt)
		} else {
			n.live = bytes.Clone(n.dur)
		}
	}
}

func isUnder(m *model, dir string, n *mnode) bool {
	// whether the directory at path dir is n or lies under it
	p := dir
	for {
		if m.lookup(p) == n {
			return true
		}
		if p == "" {
			return false
		}
		p, _ = splitPath(p)
	}
}

// readTree reads the real mount as model.tree does the model.
func readTree(root string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	return out, err
}

func diffTrees(got, want map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[k]; !ok {
			fmt.Fprintf(&b, "  %s: missing (want %s)\n", k, short(want[k]))
		} else if g != want[k] {
			fmt.Fprintf(&b, "  %s: %s, want %s\n", k, short(g), short(want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "  %s: unexpected %s\n", k, short(got[k]))
		}
	}
	return b.String()
}

func short(s string) string {
	if s == "dir" {
		return "dir"
	}
	if len(s) > 16 {
		return fmt.Sprintf("%d bytes %q...", len(s), s[:16])
	}
	return fmt.Sprintf("%d bytes %q", len(s), s)
}

// TestRandomAgainstModel runs random operations (creates, writes at random offsets,
// appends, truncates, renames within and across directories, removals, fsyncs of files
// and directories) through the mount and through the model, with power cuts at random,
// and compares what the mount shows with the model after every cut and every few
// operations. A failure names its seed; -lazyfs.seed=N replays it.
func TestRandomAgainstModel(t *testing.T) {
	requireFUSE(t)
	seeds := []uint64{*seedFlag}
	if *seedFlag == 0 {
		base := uint64(time.Now().UnixNano())
		seeds = seeds[:0]
		for i := range *runsFlag {
			seeds = append(seeds, base+uint64(i))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, seed, *opsFlag) })
	}
}

func runModel(t *testing.T, seed uint64, ops int) {
	rng := rand.New(rand.NewPCG(seed, 0x1a2f5))
	f, root := newMount(t)
	m := &model{root: newMDir()}
	var log []string
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d (replay: go test -run 'TestRandomAgainstModel' ./internal/lazyfs/ -lazyfs.seed=%d -lazyfs.ops=%d), after:\n  %s\n%s",
			seed, seed, ops, strings.Join(log[max(0, len(log)-25):], "\n  "), fmt.Sprintf(format, args...))
	}
	check := func(when string) {
		got, err := readTree(root)
		if err != nil {
			fail("%s: reading the mount: %v", when, err)
		}
		if d := diffTrees(got, m.tree()); d != "" {
			fail("%s: the mount differs from the model:\n%s", when, d)
		}
	}
	names := []string{"a", "b", "c", "d"}
	real := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	join := func(dir, name string) string {
		if dir == "" {
			return name
		}
		return dir + "/" + name
	}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	cuts := 0
	for i := range ops {
		files, dirs := m.paths()
		var desc string
		var err error
		wantOK := true
		switch r := rng.IntN(100); {
		case r < 12: // create
			p := join(pick(dirs), pick(names))
			desc = "create " + p
			wantOK = m.lookup(p) == nil
			var fh *os.File
			if fh, err = os.OpenFile(real(p), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); err == nil {
				fh.Close()
				d, name := splitPath(p)
				m.lookup(d).liveEnt[name] = &mnode{}
			}
		case r < 30 && len(files) > 0: // write at an offset, or append
			p := pick(files)
			n := m.lookup(p)
			data := make([]byte, 1+rng.IntN(2*pageSize+pageSize/2))
			for j := range data {
				data[j] = byte('A' + rng.IntN(26))
			}
			appendMode := rng.IntN(3) == 0
			off := int64(rng.IntN(len(n.live) + 2*pageSize))
			flags := os.O_WRONLY
			if appendMode {
				flags |= os.O_APPEND
				off = int64(len(n.live))
			}
			desc = fmt.Sprintf("write %s [%d,+%d) append=%v", p, off, len(data), appendMode)
			var fh *os.File
			if fh, err = os.OpenFile(real(p), flags, 0); err == nil {
				if appendMode {
					_, err = fh.Write(data)
				} else {
					_, err = fh.WriteAt(data, off)
				}
				fh.Close()
			}
			if err == nil {
				if end := int(off) + len(data); end > len(n.live) {
					n.live = append(n.live, make([]byte, end-len(n.live))...)
				}
				copy(n.live[off:], data)
			}
		case r < 38 && len(files) > 0: // truncate
			p := pick(files)
			n := m.lookup(p)
			size := rng.IntN(len(n.live) + 2*pageSize)
			desc = fmt.Sprintf("truncate %s %d", p, size)
			if err = os.Truncate(real(p), int64(size)); err == nil {
				if size < len(n.live) {
					n.live = n.live[:size:size]
				} else {
					n.live = append(n.live, make([]byte, size-len(n.live))...)
				}
			}
		case r < 52 && len(files) > 0: // fsync a file
			p := pick(files)
			desc = "fsync " + p
			if err = syncPath(real(p)); err == nil {
				n := m.lookup(p)
				n.dur = bytes.Clone(n.live)
			}
		case r < 64: // fsync a directory
			p := pick(dirs)
			desc = "fsync dir /" + p
			if err = syncPath(real(p)); err == nil {
				n := m.lookup(p)
				n.durEnt = maps.Clone(n.liveEnt)
			}
		case r < 80: // rename
			all := append(slices.Clone(files), dirs[1:]...)
			if len(all) == 0 {
				continue
			}
			src := pick(all)
			dst := join(pick(dirs), pick(names))
			desc = "rename " + src + " -> " + dst
			sd, sname := splitPath(src)
			dd, dname := splitPath(dst)
			sn, target := m.lookup(src), m.lookup(dst)
			switch {
			case sn.dir && isUnder(m, dd, sn):
				wantOK = false
			case target == nil || target == sn:
			case sn.dir != target.dir:
				wantOK = false
			case target.dir && len(target.liveEnt) > 0:
				wantOK = false
			}
			// rename(2) itself: os.Rename refuses to replace a directory
			if err = syscall.Rename(real(src), real(dst)); err == nil && target != sn {
				delete(m.lookup(sd).liveEnt, sname)
				m.lookup(dd).liveEnt[dname] = sn
			}
		case r < 88 && len(files) > 0: // unlink
			p := pick(files)
			desc = "unlink " + p
			if err = os.Remove(real(p)); err == nil {
				d, name := splitPath(p)
				delete(m.lookup(d).liveEnt, name)
			}
		case r < 93: // mkdir (not too deep)
			d := pick(dirs)
			if strings.Count(d, "/") >= 2 {
				continue
			}
			p := join(d, pick(names))
			desc = "mkdir " + p
			wantOK = m.lookup(p) == nil
			if err = os.Mkdir(real(p), 0o755); err == nil {
				dd, name := splitPath(p)
				m.lookup(dd).liveEnt[name] = newMDir()
			}
		case r < 97 && len(dirs) > 1: // rmdir
			p := pick(dirs[1:])
			desc = "rmdir " + p
			wantOK = len(m.lookup(p).liveEnt) == 0
			if err = os.Remove(real(p)); err == nil {
				d, name := splitPath(p)
				delete(m.lookup(d).liveEnt, name)
			}
		default:
			desc = "power cut"
			f.PowerCut()
			m.cut()
			cuts++
		}
		log = append(log, fmt.Sprintf("%d: %s: %v", i, desc, err))
		if (err == nil) != wantOK {
			fail("%s: error %v, the model expected success=%v", desc, err, wantOK)
		}
		if desc == "power cut" {
			check("after the cut")
		} else if i%16 == 0 {
			check("live")
		}
	}
	check("at the end")
	f.PowerCut()
	m.cut()
	check("after the last cut")
	if testing.Verbose() {
		t.Logf("seed %d: %d operations, %d cuts, stats %+v", seed, ops, cuts+1, f.Stats())
	}
}

// TestPagesAgainstModel drives one file's page map directly (no mount), many more
// operations than a mount allows in the time: writes, truncates, syncs and reverts
// against two plain byte slices.
func TestPagesAgainstModel(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	d := newFileData()
	var live, dur []byte
	read := func() []byte {
		b := make([]byte, d.live.size)
		return b[:d.readAt(b, 0)]
	}
	for i := range 50000 {
		switch r := rng.IntN(10); {
		case r < 4:
			off := rng.IntN(len(live) + 3*pageSize)
			b := make([]byte, 1+rng.IntN(3*pageSize))
			for j := range b {
				b[j] = byte(1 + rng.IntN(255))
			}
			d.writeAt(b, int64(off))
			if end := off + len(b); end > len(live) {
				live = append(live, make([]byte, end-len(live))...)
			}
			copy(live[off:], b)
		case r < 7:
			size := rng.IntN(len(live) + 3*pageSize)
			d.truncate(int64(size))
			if size < len(live) {
				live = live[:size:size]
			} else {
				live = append(live, make([]byte, size-len(live))...)
			}
		case r < 9:
			d.sync()
			dur = bytes.Clone(live)
		default:
			d.revert()
			live = bytes.Clone(dur)
		}
		if got := read(); !bytes.Equal(got, live) {
			t.Fatalf("seed %d (replay with -lazyfs.seed=%d), operation %d: the page map reads %d bytes that differ from the model's %d",
				seed, seed, i, len(got), len(live))
		}
		if len(d.dirty) > len(d.live.pages)+len(d.durable.pages) {
			t.Fatalf("seed %d, operation %d: %d dirty pages in files of %d and %d pages", seed, i, len(d.dirty), len(d.live.pages), len(d.durable.pages))
		}
	}
}
