//go:build !linux

package sshrpc

import "net"

// checkSameUser: where the system does not say who is at the other end of a unix socket
// here, the socket's private folder (0700, its owner checked by whoever made it) is the
// check.
func checkSameUser(*net.UnixConn) error { return nil }
