//go:build !linux

package statefile

import (
	"errors"
	"os"
)

// preallocate is not done here: appends grow the file, as they always may.
func preallocate(*os.File, int64) error { return errors.ErrUnsupported }

// datasync is a full fsync where fdatasync is not at hand.
func datasync(f *os.File) error { return fsync(f) }
