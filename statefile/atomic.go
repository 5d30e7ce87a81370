package statefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces path with data so that after a crash the file holds either
// the old or the new content, never a mix: write a temporary file beside it, fsync it,
// rename it over path, fsync the directory so the rename itself is durable.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := writeTemp(path, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	return commitTemp(tmp, path)
}

// writeTemp has write fill a new temporary file beside path, then makes it durable and
// returns its name; on any error the file is removed.
func writeTemp(path string, perm os.FileMode, write func(f *os.File) error) (string, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := write(tmp); err != nil {
		return "", fmt.Errorf("write %s: %w", tmpName, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return "", fmt.Errorf("chmod %s: %w", tmpName, err)
	}
	if err := fsync(tmp); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", tmpName, err)
	}
	ok = true
	return tmpName, nil
}

// errInPlace marks a failure after the rename: the new file is in place, but nothing
// says it is durable, so what a power cut would leave is unknown.
var errInPlace = errors.New("in place, but an fsync failed")

// commitTemp renames a file writeTemp made over path and makes the rename durable.
func commitTemp(tmpName, path string) error {
	if err := os.Rename(tmpName, path); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("rename %s to %s: %w", tmpName, path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("%s %w: %w", path, errInPlace, err)
	}
	return nil
}

// syncDir makes the directory's entries (created, renamed, removed files) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, pathless(err))
	}
	return nil
}

// fsync syncs f. Its error names the file once ("fsync PATH: input/output error"):
// os.File.Sync's names it already, as "sync PATH".
func fsync(f *os.File) error {
	if err := f.Sync(); err != nil {
		return syncError(f, err)
	}
	return nil
}

// syncError is a failed fsync or fdatasync of f, in the words a sysadmin's alert greps for.
func syncError(f *os.File, err error) error {
	return fmt.Errorf("fsync %s: %w", f.Name(), pathless(err))
}

// pathless is the cause inside an *fs.PathError, for a message that names the path itself.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// removeStaleTemps deletes temporary files an interrupted writeFileAtomic left behind.
func removeStaleTemps(dir string) error {
	matches, err := filepath.Glob(filepath.Join(dir, ".*.tmp*"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove leftover %s: %w", m, err)
		}
	}
	return nil
}
