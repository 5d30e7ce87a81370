package failover

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// ioctl numbers from linux/watchdog.h.
const (
	wdiocGetSupport = 0x80285700 // _IOR('W', 0, struct watchdog_info), 40 bytes
	wdiocSetTimeout = 0xC0045706 // _IOWR('W', 6, int)
	wdiocGetTimeout = 0x80045707 // _IOR('W', 7, int)
)

// osWatchdog is a Linux watchdog device (/dev/watchdog, /dev/watchdogN).
type osWatchdog struct{ f *os.File }

// openOSDevice opens path and makes sure a watchdog driver is behind it: opening a plain
// file, or another device, works, and feeding it would protect nothing.
func openOSDevice(path string) (wdDevice, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	var info [40]byte // struct watchdog_info: options, firmware_version, identity[32]
	if err := ioctl(f, wdiocGetSupport, unsafe.Pointer(&info[0])); err != nil {
		// if it was one after all (an old driver without GETSUPPORT), do not leave it armed
		f.Write([]byte("V"))
		f.Close()
		if errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.EINVAL) {
			return nil, errNotWatchdog
		}
		return nil, fmt.Errorf("WDIOC_GETSUPPORT: %w", err)
	}
	return &osWatchdog{f: f}, nil
}

func (w *osWatchdog) SetTimeout(secs int) (int, error) {
	t := int32(secs)
	if err := ioctl(w.f, wdiocSetTimeout, unsafe.Pointer(&t)); err != nil {
		return 0, fmt.Errorf("WDIOC_SETTIMEOUT %d: %w", secs, err)
	}
	// read back on its own: SETTIMEOUT's answer in place is not given by every driver
	var got int32
	if err := ioctl(w.f, wdiocGetTimeout, unsafe.Pointer(&got)); err != nil {
		return 0, fmt.Errorf("WDIOC_GETTIMEOUT: %w", err)
	}
	return int(got), nil
}

func (w *osWatchdog) Feed() error {
	_, err := w.f.Write([]byte("1"))
	return err
}

func (w *osWatchdog) Close(magic bool) error {
	if magic {
		w.f.Write([]byte("V"))
	}
	return w.f.Close()
}

func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), req, uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}
