//go:build !linux

package harness

import (
	"errors"
	"os"
	"syscall"
)

const supported = false

var errUnsupported = errors.New("harness: only supported on Linux")

func tryLock(*os.File) (bool, error)        { return false, errUnsupported }
func unlock(*os.File) error                 { return errUnsupported }
func daemonAttr() *syscall.SysProcAttr      { return nil }
func fileID(string) (uint64, uint64, error) { return 0, 0, errUnsupported }

func kill(int, syscall.Signal) error { return errUnsupported }
