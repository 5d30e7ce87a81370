package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/kvstore"
	"lite-raft/statefile"
)

const exportUsage = `usage: lite-raft-client [--stale] [--timeout SECONDS] export [DIR]
       lite-raft-client [--timeout SECONDS] import < FILE

export prints every key under DIR (at any depth; every key without DIR) with its value,
one JSON object a line: {"key":"cfg/a","value_base64":"..."}, and "ttl_ms" for a key that
lives under a lease (its lease's time to live). All of it is one consistent state: the
snapshot snapshot save makes, as of a linearizable read when the command starts, fetched
to a temporary file and read through from there. Counters and locks are not exported. A
summary goes to standard error.

import reads such lines from standard input ("value", a JSON string, in place of
"value_base64" for hand-written ones) and writes the keys, up to 64 keys and 1 MiB a
batch, each batch one txn: all of its keys or none. A key that exists is overwritten; keys
that are not in the input are left alone. A key with "ttl_ms" is not imported (its lease
belongs to the clients that kept it in the other cluster): the summary counts them.
export | import copies a folder from one cluster to another byte for byte.

If a batch fails, import stops and says how many lines were imported: the batches before
are in, the ones after are not, and the failed one is in whole or not at all (exit 2 when
that is not known: it may have been applied). Bad input exits 10 before anything is written.`

// exportLine is one key as export prints it (its value always as value_base64: bytes
// exact) and import reads it (either form, as get --json prints it), with its lease's ttl.
type exportLine struct {
	keyJSON
	TTLMs uint64 `json:"ttl_ms,omitempty"`
}

// isHelp reports whether args ask for a verb's help.
func isHelp(args []string) bool { return len(args) == 1 && (args[0] == "-h" || args[0] == "--help") }

func exportVerb(c *cli.Context, o clientOpts, dial dialFunc, args []string) error {
	if isHelp(args) {
		fmt.Fprintln(c.App.Writer, exportUsage)
		return nil
	}
	if len(args) > 1 {
		return clientUsageError(c, "export: want at most one DIR")
	}
	prefix := ""
	if len(args) == 1 {
		if d := strings.Trim(args[0], "/"); d != "" {
			if err := api.ValidateKey(d); err != nil {
				return clientExit(api.CodeUsage, "export: %v", err)
			}
			prefix = d + "/"
		}
	}
	tmp, err := os.CreateTemp("", "lite-raft-export-*.snap")
	if err != nil {
		return clientExit(api.CodeFailed, "export: a temporary file: %v", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	info, release, err := fetchBackup(ctx, c, o, dial, tmp)
	switch {
	case err != nil && release == nil:
		return err
	case err != nil && ctx.Err() != nil:
		return clientExit(api.CodeFailed, "export: interrupted")
	case err != nil:
		return clientExit(client.ExitCodeOf(err), "export: %v", err)
	}
	release(true)

	f, err := statefile.OpenSnapshotFile(tmp.Name())
	if err != nil {
		return clientExit(api.CodeFailed, "export: %v", err)
	}
	defer f.Close()
	// first the leases of the keys (they come after the keys in the file), then the keys
	keyLease, ttl := map[string]uint64{}, map[uint64]uint64{}
	if err := kvstore.Visit(f.Data(), kvstore.Visitor{
		KeyLease: func(k string, l uint64) {
			if strings.HasPrefix(k, prefix) {
				keyLease[k] = l
			}
		},
		Lease: func(l, ms uint64) { ttl[l] = ms },
	}); err != nil {
		return clientExit(api.CodeFailed, "export: read the snapshot: %v", err)
	}
	w := bufio.NewWriterSize(c.App.Writer, 64<<10)
	keys, leased := 0, 0
	err = kvstore.Visit(f.Data(), kvstore.Visitor{Key: func(k string, v []byte) error {
		if !strings.HasPrefix(k, prefix) {
			return nil
		}
		line := exportLine{keyJSON: keyJSON{Key: k, Base64: v}}
		if l, ok := keyLease[k]; ok {
			line.TTLMs = max(ttl[l], 1)
			leased++
		}
		b, err := json.Marshal(line)
		if err != nil {
			return err
		}
		keys++
		w.Write(b)
		return w.WriteByte('\n')
	}})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return clientExit(api.CodeFailed, "export: %v", err)
	}
	fmt.Fprintf(c.App.ErrWriter, "export: %d keys under %s as of index %d (%d under a lease, with ttl_ms)\n", keys, orDash(prefix), info.Index, leased)
	return nil
}

// importVerb writes the keys of export's lines, a txn a batch.
func importVerb(c *cli.Context, o clientOpts, dial dialFunc, args []string, in io.Reader) error {
	if isHelp(args) {
		fmt.Fprintln(c.App.Writer, exportUsage)
		return nil
	}
	if len(args) != 0 {
		return clientUsageError(c, "import: no argument (the lines come on standard input)")
	}
	// all of the input first: bad input writes nothing
	var lines []exportLine
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 7*api.MaxValueLen) // a value of 1 MiB escaped in a JSON string: up to 6 bytes a byte
	skipped := 0
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var l exportLine
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return clientExit(api.CodeUsage, "import: line %d: %v", n, err)
		}
		if l.Value != nil {
			if l.Base64 != nil {
				return clientExit(api.CodeUsage, "import: line %d: both value and value_base64", n)
			}
			l.Base64 = []byte(*l.Value)
		}
		if err := api.ValidateKey(l.Key); err != nil {
			return clientExit(api.CodeUsage, "import: line %d: %v", n, err)
		}
		if len(l.Base64) > api.MaxValueLen {
			return clientExit(api.CodeUsage, "import: line %d: a value of %d bytes: the limit is %d (1 MiB)", n, len(l.Base64), api.MaxValueLen)
		}
		if l.TTLMs > 0 {
			skipped++
			continue
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return clientExit(api.CodeUsage, "import: read standard input: %v", err)
	}
	// one client for every batch: one session in the members' tables, not one a batch
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	cl, closeFn, err := dialClient(ctx, dial)
	cancel()
	if err != nil {
		return err
	}
	defer closeFn()
	done := 0
	for len(lines) > 0 {
		req, n := importBatch(lines)
		ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
		resp, err := cl.Do(ctx, req)
		cancel()
		if err != nil {
			err = requestExit(err, o)
		} else if resp.Code != api.CodeOK {
			err = printResponse(c.App.Writer, o, req, resp)
		}
		if err != nil {
			return clientExit(exitCode(err), "import: %d keys imported; the batch of %d from %s: %v (the keys after it were not imported)", done, n, lines[0].Key, err)
		}
		done += n
		lines = lines[n:]
	}
	fmt.Fprintf(c.App.ErrWriter, "import: %d keys imported, %d under a lease not imported\n", done, skipped)
	return nil
}

// importBatch is the write of the first keys of lines, and how many it takes: a txn of up
// to api.MaxTxnActions keys and api.MaxTxnBytes, each key once; a key whose value alone
// passes that is a set of its own.
func importBatch(lines []exportLine) (api.Request, int) {
	var t api.Txn
	size := 0
	seen := map[string]bool{}
	for _, l := range lines {
		s := len(l.Key) + len(l.Base64)
		if len(t.Then) == api.MaxTxnActions || size+s > api.MaxTxnBytes || seen[l.Key] {
			break
		}
		t.Then = append(t.Then, api.TxnAction{Do: api.DoSet, Key: l.Key, Value: l.Base64})
		size += s
		seen[l.Key] = true
	}
	if len(t.Then) == 0 {
		return api.Request{Op: api.OpSet, Key: lines[0].Key, Value: lines[0].Base64}, 1
	}
	return api.Request{Op: api.OpTxn, Txn: t}, len(t.Then)
}
