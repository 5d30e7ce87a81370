package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/statefile"
)

const snapshotUsage = `usage: lite-raft-client snapshot save [--json] [--timeout SECONDS] [--stale] FILE

Writes a snapshot of the whole replicated state to FILE, for backups. It is consistent and
up to date: the leader makes it as of a linearizable read taken when the command starts,
so every write acknowledged before then is in it (the node's own last snapshot on disk
lags by up to snapshot_period entries; this is not that file). The leader writes it to a
file of its own under temp/; this command fetches that in pieces of 1 MiB, through this
host's agent (which passes the reads on to the leader), or with lite-raft-remote through
any member; then checks the CRC-32C and puts it at FILE atomically (a temporary file beside
FILE, fsynced, renamed over it). FILE is the whole snapshot or is left as it was: a failure
halfway (the leader lost, a piece unreadable, a checksum that does not match, a full disk)
exits non-zero, says so, and leaves no partial FILE. Progress goes to standard error for
large states; at the end one line goes to standard output, with --json an object:
{"file":...,"index":...,"term":...,"keys":...,"bytes":...,"checksum":"<crc32c, hex>",...}.

FILE is a lite-raft snapshot file: "head -8 FILE" shows its header (index, term, members,
size, crc32c). To seed a new cluster with it: lite-raft restore FILE --members "h1 h2 h3"
on every new member (lite-raft restore --help).

  --json             print the summary as JSON
  --timeout SECONDS  the most each request may take (default 10 s), and the leader may take to
                     write the snapshot (default 120 s)
  --stale            this host's state as it has applied it, without asking the leader (not
                     linearizable: for a host cut off from the others)

Exit codes as for get: 0 saved, 1 failed (the message says why), 11 no leader, 12 no agent
on this host, 10 wrong usage. The leader removes its file once it has been read to the end,
or after a minute without reads.`

// progressMin is the size from which save reports its progress on standard error.
const progressMin = 16 << 20

// snapshotOpts are save's options: the client's, and FILE.
type snapshotOpts struct {
	clientOpts
	file string
}

// snapshotVerb runs `snapshot save FILE` (and its help).
func snapshotVerb(c *cli.Context, o clientOpts, dial dialFunc, args []string) error {
	if len(args) == 0 {
		return snapshotUsageError(c, "snapshot: want save FILE")
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprintln(c.App.Writer, snapshotUsage)
		return nil
	case "save":
	default:
		return snapshotUsageError(c, fmt.Sprintf("snapshot: unknown verb %q (want save FILE)", args[0]))
	}
	so := snapshotOpts{clientOpts: o}
	var files []string
	for rest := args[1:]; len(rest) > 0; rest = rest[1:] {
		a := rest[0]
		switch {
		case a == "-h" || a == "--help":
			fmt.Fprintln(c.App.Writer, snapshotUsage)
			return nil
		case a == "--json":
			so.json = true
		case a == "--stale":
			so.stale = true
		case a == "--timeout" || strings.HasPrefix(a, "--timeout="):
			v, ok := strings.CutPrefix(a, "--timeout=")
			if !ok {
				if len(rest) < 2 {
					return snapshotUsageError(c, "--timeout needs a number of seconds")
				}
				v, rest = rest[1], rest[1:]
			}
			secs, err := strconv.ParseFloat(v, 64)
			if err != nil || secs <= 0 {
				return snapshotUsageError(c, fmt.Sprintf("--timeout %q: not a positive number of seconds", v))
			}
			so.timeout, so.timeoutSet = time.Duration(secs*float64(time.Second)), true
		case a == "--":
			files = append(files, rest[1:]...)
			rest = rest[:1]
		case strings.HasPrefix(a, "-") && a != "-":
			return snapshotUsageError(c, fmt.Sprintf("snapshot save: unknown option %q (a FILE that starts with a dash goes after --)", a))
		default:
			files = append(files, a)
		}
	}
	if len(files) != 1 || files[0] == "" || files[0] == "-" {
		return snapshotUsageError(c, "snapshot save: want one FILE (standard output is not atomic: name a file)")
	}
	so.file = files[0]
	return saveSnapshot(c, so, dial)
}

func snapshotUsageError(c *cli.Context, msg string) error {
	fmt.Fprintf(c.App.ErrWriter, "lite-raft-client: %s\n\n%s\n", msg, snapshotUsage)
	return cli.Exit("", api.CodeUsage)
}

// snapshotSummary is what save prints at the end.
type snapshotSummary struct {
	File     string  `json:"file"`
	Index    uint64  `json:"index"`
	Term     uint64  `json:"term"`
	Members  string  `json:"members"`
	Keys     int     `json:"keys"`
	Bytes    uint64  `json:"bytes"`      // of FILE
	Data     uint64  `json:"data_bytes"` // of the key-value data in it
	Checksum string  `json:"checksum"`   // CRC-32C of the data, as FILE's header has it
	Host     string  `json:"host"`       // the agent that made it
	Seconds  float64 `json:"seconds"`
}

func saveSnapshot(c *cli.Context, o snapshotOpts, dial dialFunc) error {
	began := time.Now()
	// the destination first: nothing is asked of the leader for a FILE that cannot be
	// written, and the temporary file is all a failure leaves, until Abort removes it
	out, err := statefile.CreateAtomic(o.file, 0o600)
	if err != nil {
		return clientExit(api.CodeFailed, "snapshot save: %v", err)
	}
	defer out.Abort()
	// an interrupted save removes its temporary file too
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	info, release, err := fetchBackup(ctx, c, o.clientOpts, dial, tempFile{out})
	if err != nil {
		if release == nil { // nothing was asked: no agent to ask
			return err
		}
		return snapshotFailed(ctx, o, err)
	}
	if err := out.Commit(); err != nil {
		release(false)
		return clientExit(api.CodeFailed, "snapshot save: %v", err)
	}
	if !release(true) {
		fmt.Fprintf(c.App.ErrWriter, "lite-raft-client: snapshot saved, but %s was not told it may drop its copy: it does so after a minute unused\n", info.Host)
	}
	abs, _ := filepath.Abs(o.file)
	sum := snapshotSummary{File: abs, Index: info.Index, Term: info.Term, Members: info.Members, Keys: info.Keys,
		Bytes: info.Size, Data: info.DataSize, Checksum: fmt.Sprintf("%08x", info.Checksum), Host: info.Host,
		Seconds: time.Since(began).Seconds()}
	if o.json {
		b, _ := json.Marshal(sum)
		fmt.Fprintln(c.App.Writer, string(b))
	} else {
		fmt.Fprintf(c.App.Writer, "saved %s: index %d, term %d, %d keys, %d bytes, crc32c %s\n",
			o.file, sum.Index, sum.Term, sum.Keys, sum.Bytes, sum.Checksum)
	}
	return nil
}

// fetchBackup has the leader make a snapshot as of now and fetches it into f (snapshot
// save, export), its progress on standard error for a large state. release(true), once f
// is read, tells the holder it may drop its copy and reports whether it was told;
// release(false) gives up without asking (after a failure the holder drops it after a
// minute unused, and a leader out of reach would only hold the exit up). release is nil
// when no agent could be asked at all (err is then the exit to give).
func fetchBackup(ctx context.Context, c *cli.Context, o clientOpts, dial dialFunc, f client.BackupFile) (api.BackupInfo, func(done bool) bool, error) {
	dctx, cancel := context.WithTimeout(ctx, o.timeout)
	caller, closeFn, err := dial(dctx)
	cancel()
	if err != nil {
		return api.BackupInfo{}, nil, notSentExit(thisHost(), err)
	}
	cl := client.New(caller)
	writeTimeout := o.timeout
	if !o.timeoutSet {
		writeTimeout = max(o.timeout, 120*time.Second)
	}
	prog := progress{w: c.App.ErrWriter}
	info, err := cl.SaveBackup(ctx, f, client.BackupOptions{Timeout: o.timeout, WriteTimeout: writeTimeout,
		Stale: o.stale, Progress: prog.report})
	release := func(done bool) bool {
		defer closeFn()
		if !done {
			return false
		}
		prog.done()
		return cl.ReleaseBackup(ctx, info, min(o.timeout, 5*time.Second)) == nil
	}
	if err != nil {
		release(false)
		return info, release, err
	}
	return info, release, nil
}

// tempFile is FILE's temporary file as SaveBackup writes it and reads it back.
type tempFile struct{ *statefile.AtomicFile }

func (t tempFile) Name() string { return t.TempName() }

// snapshotFailed is the exit of a save that failed: the table's code (a request's: 1, 11
// or 12; an answer's own code; 1 for anything else), and what was done.
func snapshotFailed(ctx context.Context, o snapshotOpts, err error) error {
	if ctx.Err() != nil {
		return clientExit(api.CodeFailed, "snapshot save: interrupted; %s not written", o.file)
	}
	var ce *client.Error
	if errors.As(err, &ce) && ce.Host == "" {
		ce.Host = thisHost() // the agent asked
	}
	return clientExit(client.ExitCodeOf(err), "snapshot save: %v; %s not written", err, o.file)
}

// progress reports a large save on standard error, every two seconds.
type progress struct {
	w     io.Writer
	total uint64
	began time.Time
	last  time.Time
	show  bool
}

// report is SaveBackup's Progress: done 0 once the snapshot is written, then after
// each piece.
func (p *progress) report(info api.BackupInfo, done uint64) {
	if done == 0 {
		p.total, p.began, p.show = info.Size, time.Now(), info.Size >= progressMin
		if p.show {
			fmt.Fprintf(p.w, "snapshot save: index %d (term %d), %d keys, %s, from %s\n", info.Index, info.Term, info.Keys, client.MB(info.Size), info.Host)
			p.last = time.Now()
		}
		return
	}
	if !p.show || time.Since(p.last) < 2*time.Second {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "snapshot save: %s of %s (%d%%), %.1f MB/s\n", client.MB(done), client.MB(p.total), done*100/max(p.total, 1),
		float64(done)/1e6/time.Since(p.began).Seconds())
}

func (p *progress) done() {
	if p.show {
		fmt.Fprintf(p.w, "snapshot save: %s in %.1f s, checksum verified\n", client.MB(p.total), time.Since(p.began).Seconds())
	}
}
