package client

import (
	"os"
	"syscall"
	"time"

	"lite-raft/api"
	"lite-raft/client/lockcore"
)

// Command is COMMAND under its guard, as HoldLock drives it: the command line's runs
// the guard process (internal/guard), a test's may be anything.
type Command interface {
	// Start runs COMMAND with fencing number generation, to be dead by deadline.
	Start(generation uint64, deadline lockcore.Reading) error
	// Extend moves the deadline, after a confirmed renewal.
	Extend(deadline lockcore.Reading) error
	// Stop stops COMMAND now: the lock is lost.
	Stop()
	// Signal passes a signal on to COMMAND.
	Signal(sig syscall.Signal)
	// Exited delivers COMMAND's end once: its exit code, or why the guard failed.
	Exited() <-chan CommandExit
}

// CommandExit is how COMMAND ended: its exit code (128+N for signal N), or Err when
// its guard failed.
type CommandExit struct {
	Code int
	Err  error
}

// LockOptions are what HoldLock needs besides the lock's own settings.
type LockOptions struct {
	lockcore.Config
	Do  Doer
	Now func() lockcore.Reading // the clock the guard keeps deadlines on (guard.Now)
	// Logf hears of failures that are not the end (nil: none).
	Logf func(format string, args ...any)
}

// HoldLock runs one `lock NAME -- COMMAND`: it takes the lock, runs cmd while the lease
// is surely ours, renews it, stops cmd if it is lost, and releases it, as lockcore.Core
// decides; it carries out what the core asks, with real time and one request at a time
// (Do may be a remote caller, not for concurrent use). Signals from sigs end a wait, or
// go on to COMMAND.
func HoldLock(o LockOptions, cmd Command, sigs <-chan os.Signal) lockcore.Outcome {
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	type answer struct {
		id   uint64
		resp api.Response
		err  error
	}
	answers := make(chan answer, 1)
	c := lockcore.New(o.Config, o.Now())
	var exited <-chan CommandExit
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		rd := c.Ready()
		for _, l := range rd.Logs {
			logf("%s", l)
		}
		switch {
		case rd.Start:
			if err := cmd.Start(rd.Generation, rd.Deadline); err != nil {
				c.Exited(o.Now(), 127, err)
				continue
			}
			exited = cmd.Exited()
		case rd.Deadline != 0:
			if err := cmd.Extend(rd.Deadline); err != nil {
				// the guard is gone (it stopped COMMAND, or was killed): its end tells
				logf("lock %s: the guard: %v", o.Name, err)
			}
		}
		if rd.Stop {
			cmd.Stop()
		}
		if rd.Signal != 0 {
			cmd.Signal(syscall.Signal(rd.Signal))
		}
		if rd.Done != nil {
			return *rd.Done
		}
		if s := rd.Send; s != nil {
			go func() {
				resp, err := o.Do(s.Timeout, s.Req)
				answers <- answer{s.ID, resp, err}
			}()
		}
		var wake <-chan time.Time
		if rd.Wake != 0 {
			timer.Reset(max(rd.Wake.Sub(o.Now()), 0))
			wake = timer.C
		}
		select {
		case a := <-answers:
			c.Answer(o.Now(), a.id, a.resp, a.err)
		case <-wake:
			c.Tick(o.Now())
		case e := <-exited:
			exited = nil
			c.Exited(o.Now(), e.Code, e.Err)
		case s := <-sigs:
			if sig, ok := s.(syscall.Signal); ok {
				c.Interrupt(o.Now(), int(sig))
			}
		}
		timer.Stop() // since Go 1.23 no stale tick is left in its channel
	}
}
