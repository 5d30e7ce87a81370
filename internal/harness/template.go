package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Template is a folder to copy to every host (Options.Template): Go programs built once
// per test binary, and files copied beside them. Declare one per test package and call
// Remove from TestMain.
type Template struct {
	// Binaries maps a file name in the folder to the package `go build` makes it from
	// (a path relative to the test's working directory, or an import path).
	Binaries map[string]string
	// Files maps a file name in the folder to a file to copy (made executable).
	Files map[string]string
	// Links maps a file name in the folder to the target of a symbolic link made there
	// (lite-raft-client -> lite-raft).
	Links map[string]string
	// Dirs are empty folders to create in it.
	Dirs []string

	once sync.Once
	dir  string
	err  error
}

// Dir builds the template the first time and returns its folder.
func (tp *Template) Dir(t testing.TB) string {
	tp.once.Do(func() { tp.dir, tp.err = tp.build() })
	if tp.err != nil {
		t.Fatal(tp.err)
	}
	return tp.dir
}

func (tp *Template) build() (string, error) {
	dir, err := os.MkdirTemp("", "lrh-template")
	if err != nil {
		return "", err
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	for name, pkg := range tp.Binaries {
		cmd := exec.Command(gobin, "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return dir, fmt.Errorf("build %s: %v\n%s", pkg, err, out)
		}
	}
	for name, src := range tp.Files {
		b, err := os.ReadFile(src)
		if err != nil {
			return dir, err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			return dir, err
		}
	}
	for name, target := range tp.Links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			return dir, err
		}
	}
	for _, d := range tp.Dirs {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return dir, err
		}
	}
	return dir, nil
}

// Remove deletes the folder, if it was built.
func (tp *Template) Remove() {
	if tp.dir != "" {
		os.RemoveAll(tp.dir)
	}
}
