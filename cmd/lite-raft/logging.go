package main

import (
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"lite-raft/conf"
	"lite-raft/internal/logsink"
)

// openLog opens the log conf/log chooses for a long-running process (file: message-log/
// name; syslog: tagged tag), and reopens a file on SIGHUP, which no longer ends the
// process: logrotate can move the file aside and signal it, instead of copytruncate.
func openLog(dir, name, tag string) (*log.Logger, func(), error) {
	cfg, err := conf.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "message-log"), 0o700); err != nil {
		return nil, nil, err
	}
	sink, err := logsink.Open(cfg.Log, filepath.Join(dir, "message-log", name), tag)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", conf.Path(dir, "log"), err)
	}
	sink.SetLevel(cfg.LogLevel)
	lg := logsink.Logger(sink)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				if err := sink.Reopen(); err != nil {
					lg.Printf("SIGHUP: %v: logging on to the file as it was", err)
				} else {
					lg.Printf("SIGHUP: log reopened")
				}
			case <-done:
				return
			}
		}
	}()
	return lg, func() { signal.Stop(hup); close(done); sink.Close() }, nil
}

// monitorLog is a package monitor's log: its standard output (the file pkg run's
// supervisor writes, message-log/pkg-NAME.log, or the journal under the systemd unit)
// unless conf/log says stderr or syslog. SIGHUP is ignored (a logrotate that signals
// every lite-raft process must not end a monitor: its supervisor writes the file).
func monitorLog(dir, p string) (*log.Logger, func(), error) {
	signal.Ignore(syscall.SIGHUP)
	cfg, err := conf.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Log.Kind == "file" {
		sink := logsink.To(os.Stdout)
		sink.SetLevel(cfg.LogLevel)
		return logsink.Logger(sink), func() {}, nil
	}
	sink, err := logsink.Open(cfg.Log, "", "lite-raft-pkg-"+p)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", conf.Path(dir, "log"), err)
	}
	sink.SetLevel(cfg.LogLevel)
	return logsink.Logger(sink), func() { sink.Close() }, nil
}
