// Package sshcmd is the command line that runs lite-raft on another host over ssh:
// "exec DIR/lite-raft ARGS". Command builds it (for the agent's peers, lite-raft
// remote, bench, a package's fence, the test harness and clusterbench), and Parse and
// Allowed read it back on the other side, where `lite-raft ssh-command` (command= in
// authorized_keys) finds it in SSH_ORIGINAL_COMMAND and runs only lite-raft's own
// remote verbs. Builder and parser live together so that what one writes the other
// always accepts.
package sshcmd
