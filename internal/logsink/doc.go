// Package logsink is where a long-running lite-raft process (the agent, a package
// monitor) writes its log lines, as conf/log chooses: a file in message-log/ (the
// default, reopened on SIGHUP so that logrotate can move it aside), standard error (the
// journal under systemd), or syslog (the local socket, or one named: log/syslog
// speaks to a unix socket, and where /dev/log is no such socket, as on Solaris, a UDP
// address such as udp:localhost:514 works).
//
// Every line keeps its timestamp whatever the destination (the log package's flags are
// the caller's), and no line is longer than MaxLine: a fault that puts a peer's whole
// answer or a script's output into a message cannot make one line without end.
package logsink
