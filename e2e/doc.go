// Package e2e holds the end-to-end tests: real lite-raft binaries on harness hosts
// (network namespaces with a real sshd each), talking to each other only over ssh, driven
// the way a sysadmin drives them: ./lite-raft and ./lite-raft-client over ssh.
package e2e
