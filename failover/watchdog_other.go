//go:build !linux

package failover

import "errors"

// openOSDevice: the watchdog ioctls this monitor relies on (set and read back the
// timeout) are Linux's.
func openOSDevice(path string) (wdDevice, error) {
	return nil, errors.New("watchdog devices are supported on Linux only")
}
