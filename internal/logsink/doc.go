// Package logsink is where a long-running lite-raft process (the agent, a package
// monitor) writes its log lines, as conf/log chooses: a file in message-log/ (the
// default, reopened on SIGHUP so that logrotate can move it aside), standard error (the
// journal under systemd), or syslog (the local socket, or one named: log/syslog
// speaks to a unix socket, and where /dev/log is no such socket, as on Solaris, a UDP
// address such as udp:localhost:514 works).
//
// Every line keeps its timestamp whatever the destination (the sink stamps it: loggers
// made by Logger have no flags), and no line is longer than MaxLine: a fault that puts a
// peer's whole answer or a script's output into a message cannot make one line without
// end.
//
// Levels (conf/log_level) ride on plain *log.Logger calls: a message that starts with
// syslog's "<N>" marker (the constants Warn, Error, Debug) is logged at that severity, one
// without at info. The sink drops what is below its level, writes the level's word after
// the timestamp ("warning: "), gives syslog the severity, and, when standard error is
// systemd's journal stream, keeps the marker at the start of the line, where journald
// takes it as the line's priority. Code that is not this package's need not know any of
// it: a marker in a line that reaches another writer is only three more characters.
package logsink
