package core

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCoreIsPure keeps the core deterministic: none of its files (tests aside) imports a
// package that reads a clock, does I/O or synchronizes goroutines, and none starts one.
func TestCoreIsPure(t *testing.T) {
	forbidden := map[string]bool{"os": true, "net": true, "time": true, "sync": true, "sync/atomic": true,
		"math/rand": true, "math/rand/v2": true, "io": true, "log": true, "os/exec": true, "syscall": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		checked++
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if forbidden[p] || strings.HasPrefix(p, "lite-raft/sshrpc") || strings.HasPrefix(p, "lite-raft/statefile") {
				t.Errorf("%s imports %s: the core must stay pure", f, p)
			}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if g, ok := n.(*ast.GoStmt); ok {
				t.Errorf("%s starts a goroutine at offset %d", f, g.Pos())
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no files checked")
	}
}

// A snapshot's window covers a round trip at snapshotRate: 25.6 MiB at 100 ms (raftcore
// takes 26 pieces of 1 MiB), a few KB on a LAN (raftcore's 4).
func TestSnapshotWindow(t *testing.T) {
	for _, c := range []struct {
		rttUs int64
		want  uint64
	}{
		{200, 53_687},
		{100_000, 26_843_545},
		{0, 0},
	} {
		if got := snapshotWindow(c.rttUs); got != c.want {
			t.Errorf("snapshotWindow(%d µs) = %d, want %d", c.rttUs, got, c.want)
		}
	}
}
