package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
	"lite-raft/internal/sshcmd"
)

const batchHelp = `usage: lite-raft-client [--json] [--timeout SECONDS] batch [-0] [--window N] [--atomic] < COMMANDS

Runs one command a line from standard input, as lite-raft-client would run it from the
command line: the verbs get KEY, exists, list [DIR], set, create, unset [--prefix],
if ... set|unset, noop, each with the shell's quoting ('single', "double", \) and --fence
where the single call takes it. Blank lines and lines starting with # are skipped.
Nothing is expanded: a character sh would treat specially ($, a backquote, ; & | < > ( )
* ? [ ] { } ~ # !) must be quoted, or the line is refused (10).

It sends them over one connection, up to N at a time (--window, default 4000), each with
an ID of its own (a retry stays exactly-once). Commands on the same key run in input
order, each sent once the one before it on that key is answered; list and unset --prefix
wait for every command before them, and the commands after them wait for them. It prints
one result line per command, in input order, as soon as it and those before it are
answered (once one could not be sent at all, 12, the ones after it are not sent either):
  EXIT [OUTPUT]   0 and the value for get (quoted when it would not read back as one
                  line, as list --values quotes), the names for list, the count for
                  unset --prefix; otherwise the exit code the single call gives and
                  its message
With --json, one object a line: {"line": N, "verb": V, "key": K, "exit": E, ...}, with
"value" (or "value_base64" when not UTF-8), "names", "removed", "exists" or "error".
--timeout is each command's, from when it is sent.

The exit code is the highest of the commands', but 2 if any command's outcome is unknown
(it may or may not have been applied); 0 when every command succeeded.

  -0         commands end with a NUL byte instead of a line break, so that a quoted value
             may hold line breaks (and any byte but NUL)
  --window N at most N commands in flight (1 to 20000)
  --atomic   the whole input (set, create, unset and if only; at most 10,000 commands
             and 4 MiB of keys and values) is one write, applied in order, entirely or
             not at all: if one command fails (a false condition, an existing key for
             create, a stale fence), nothing is done; that line says why and the others
             "6 nothing was done: line N failed". A line refused before sending (10)
             sends nothing.`

// batchOpts are batch's own options.
type batchOpts struct {
	sep    byte
	window int
	atomic bool
}

func parseBatchArgs(args []string) (batchOpts, error) {
	b := batchOpts{sep: '\n', window: 4000}
	for len(args) > 0 {
		switch a := args[0]; {
		case a == "-0":
			b.sep = 0
		case a == "--atomic":
			b.atomic = true
		case a == "--window" || strings.HasPrefix(a, "--window="):
			v, ok := strings.CutPrefix(a, "--window=")
			if !ok {
				if len(args) < 2 {
					return b, errors.New("--window needs a number")
				}
				v, args = args[1], args[1:]
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxBatchWindow {
				return b, fmt.Errorf("--window %q: want a number from 1 to %d", v, maxBatchWindow)
			}
			b.window = n
		default:
			return b, fmt.Errorf("unknown option %q", a)
		}
		args = args[1:]
	}
	return b, nil
}

// maxBatchWindow bounds the requests one batch has in flight: each is a goroutine and a
// pending answer here, and an event in the agent's queue. The default window, 4000,
// keeps 10,000 sets/s from a host 100 ms from the leader, where a write costs two round
// trips (one to the leader, one to its followers): 2000 would cap it at 10,000.
const maxBatchWindow = 20000

// maxBatchRecord bounds one command's bytes: a value of the largest size, quoted.
const maxBatchRecord = 2*api.MaxValueLen + 64*1024

// batchResult is one command's outcome.
type batchResult struct {
	line int
	verb string
	req  api.Request
	resp api.Response // when code is 0, or the agent answered with code
	code int
	msg  string // why, when code is not 0
	done chan struct{}
}

func batchVerb(c *cli.Context, o clientOpts, dial dialFunc, args []string, in io.Reader) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(c.App.Writer, batchHelp)
		return nil
	}
	bo, err := parseBatchArgs(args)
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "lite-raft-client: batch: %v\n\n%s\n", err, batchHelp)
		return &usageExit{msg: "batch: " + err.Error()}
	}
	if bo.atomic {
		return atomicBatch(c, o, dial, bo, in)
	}
	dctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	cl, closeFn, err := dialClient(dctx, dial)
	cancel()
	if err != nil {
		return err
	}
	defer closeFn()

	w := bufio.NewWriterSize(c.App.Writer, 64*1024)
	// the printer takes results in input order: the queue holds at most window of them
	// unprinted, so memory is bounded whatever the input's length
	queue := make(chan *batchResult, bo.window)
	worst := make(chan int, 1)
	go func() {
		code := 0
		for r := range queue {
			<-r.done
			printBatchResult(w, o, r)
			if len(queue) == 0 {
				w.Flush() // the lines answered so far, before waiting for more
			}
			code = worseCode(code, r.code)
		}
		w.Flush()
		worst <- code
	}()
	inflight := make(chan struct{}, bo.window)
	var sent sync.WaitGroup // the commands sent and not yet answered
	rd := newRecordReader(in, bo.sep)
	lastOn := map[string]*batchResult{} // by key, the last command sent on it
	var gone atomic.Pointer[string]     // why a command could not be sent, once one could not
	var readErr error
	for {
		line, rec, err := rd.next()
		if err == io.EOF {
			break
		}
		r := &batchResult{line: line, done: make(chan struct{})}
		queue <- r
		if err != nil {
			if !errors.Is(err, errRecordTooLong) {
				// standard input failed: what was read is done, the rest is not known
				r.code, r.msg = api.CodeFailed, fmt.Sprintf("read the commands from standard input: %v", err)
				close(r.done)
				readErr = err
				break
			}
			r.code, r.msg = api.CodeUsage, err.Error()
			close(r.done)
			continue
		}
		if r.verb, r.req, err = batchRequest(rec); err != nil {
			r.code, r.msg = api.CodeUsage, err.Error()
			close(r.done)
			continue
		}
		// a command waits for the one before it on the same key, so that a batch reads
		// and writes each key in input order; one on a folder (list, unset --prefix)
		// waits for every command before it, and every command after it waits for it
		folder := r.req.Op == api.OpList || r.req.Op == api.OpUnsetPrefix
		if folder {
			sent.Wait()
			clear(lastOn)
		}
		dep := lastOn[r.req.Key]
		if len(lastOn) >= 4*bo.window {
			for k, d := range lastOn {
				if isDone(d) {
					delete(lastOn, k)
				}
			}
		}
		lastOn[r.req.Key] = r
		inflight <- struct{}{}
		sent.Add(1)
		go func() {
			defer func() { <-inflight; sent.Done() }()
			if dep != nil {
				<-dep.done
			}
			if why := gone.Load(); why != nil {
				// the agent is gone: no use trying each of the rest (each would wait
				// out its retries), and none of them was sent
				r.code, r.msg = api.CodeNoServer, "not sent: "+*why
				close(r.done)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
			resp, err := cl.Do(ctx, r.req)
			cancel()
			r.settle(resp, err, o)
			if r.code == api.CodeNoServer {
				why := fmt.Sprintf("line %d could not be sent (%s)", r.line, r.msg)
				gone.CompareAndSwap(nil, &why)
			}
			close(r.done)
		}()
		if folder {
			<-r.done
		}
	}
	close(queue)
	code := <-worst
	if readErr != nil {
		return cli.Exit("", worseCode(code, api.CodeFailed))
	}
	if code != 0 {
		return cli.Exit("", code)
	}
	return nil
}

func isDone(r *batchResult) bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// settle records how a request ended: its answer, or why there was none (the code and
// message a single call would exit with).
func (r *batchResult) settle(resp api.Response, err error, o clientOpts) {
	if err != nil {
		e := requestExit(err, o)
		r.code, r.msg = exitCode(e), e.Error()
		return
	}
	r.resp, r.code = resp, resp.Code
	switch {
	case resp.Code == api.CodeOK:
	case r.req.Op == api.OpExists && resp.Code == api.CodeNotFound:
		// a test, as test -e is: its code says it all
	case resp.Msg == "":
		r.msg = fmt.Sprintf("%s failed", r.req.Op)
	default:
		r.msg = resp.Msg
	}
}

// worseCode is the batch's exit code after one more command's: an unknown outcome
// outweighs everything (a caller told anything else would retry what may be done),
// then the highest code.
func worseCode(worst, code int) int {
	if worst == api.CodeTimeout || code == api.CodeTimeout {
		return api.CodeTimeout
	}
	return max(worst, code)
}

// batchRequest parses one command of a batch into its verb (the first word, "" if it has
// none) and request, validated. A value of "-" is refused: standard input holds the
// commands.
func batchRequest(rec []byte) (string, api.Request, error) {
	words, err := sshcmd.Words(string(rec))
	if err != nil {
		return "", api.Request{}, err
	}
	if len(words) == 0 {
		return "", api.Request{}, errors.New("no verb")
	}
	verb, args := words[0], words[1:]
	if len(verb) > 32 {
		verb = verb[:32]
	}
	req, err := oneRequest(verb, args, func(v string) ([]byte, error) {
		if v == "-" {
			return nil, errors.New(`a VALUE of "-" (standard input) cannot be read in a batch: standard input holds the commands`)
		}
		return []byte(v), nil
	})
	var u *usageExit
	switch {
	case errors.As(err, &u):
		return verb, api.Request{}, errors.New(u.msg)
	case err != nil:
		return verb, api.Request{}, err
	case req.Op == api.OpStatus || req.Op == api.OpLocks:
		return verb, api.Request{}, fmt.Errorf("%s: not in a batch (run it alone)", verb)
	}
	if err := req.Validate(); err != nil {
		return verb, api.Request{}, fmt.Errorf("%s: %w", verb, err)
	}
	return verb, req, nil
}

// printBatchResult prints one command's result line.
func printBatchResult(w io.Writer, o clientOpts, r *batchResult) {
	ok := r.code == api.CodeOK
	if o.json {
		out := map[string]any{"line": r.line, "exit": r.code}
		if r.verb != "" {
			out["verb"] = r.verb
		}
		if r.req.Key != "" {
			out["key"] = r.req.Key
		}
		switch {
		case r.req.Op == api.OpExists && (ok || r.code == api.CodeNotFound):
			out["exists"] = ok
		case !ok:
			out["error"] = r.msg
		case r.req.Op == api.OpGet:
			k := keyJSONOf(api.DirKey{Key: r.req.Key, Value: r.resp.Value})
			if k.Value != nil {
				out["value"] = *k.Value
			} else {
				out["value_base64"] = k.Base64
			}
		case r.req.Op == api.OpList:
			out["names"] = append([]string{}, r.resp.Names...)
		case r.req.Op == api.OpUnsetPrefix:
			n, _ := strconv.Atoi(string(r.resp.Value))
			out["removed"] = n
		}
		b, _ := json.Marshal(out)
		w.Write(b)
		w.Write([]byte{'\n'})
		return
	}
	var b bytes.Buffer
	b.WriteString(strconv.Itoa(r.code))
	switch {
	case !ok:
		if r.msg != "" {
			b.WriteByte(' ')
			b.WriteString(strings.ReplaceAll(r.msg, "\n", " "))
		}
	case r.req.Op == api.OpGet:
		b.WriteByte(' ')
		b.WriteString(quoteValue(r.resp.Value))
	case r.req.Op == api.OpList:
		for _, n := range r.resp.Names {
			b.WriteByte(' ')
			b.WriteString(quoteValue([]byte(n)))
		}
	case r.req.Op == api.OpUnsetPrefix:
		n, _ := strconv.Atoi(string(r.resp.Value))
		fmt.Fprintf(&b, " %d", n)
	}
	b.WriteByte('\n')
	w.Write(b.Bytes())
}

// errRecordTooLong is a command longer than maxBatchRecord: refused (exit 10), and the
// reader goes on after it.
var errRecordTooLong = fmt.Errorf("a command longer than %d bytes", maxBatchRecord)

// recordReader reads commands ended by sep (the last may lack it), numbered from 1,
// skipping blank ones and comments.
type recordReader struct {
	r    *bufio.Reader
	sep  byte
	line int
}

func newRecordReader(in io.Reader, sep byte) *recordReader {
	return &recordReader{r: bufio.NewReaderSize(in, 256*1024), sep: sep}
}

func (rr *recordReader) next() (int, []byte, error) {
	for {
		rec, err := rr.record()
		if err == io.EOF && len(rec) == 0 {
			return 0, nil, io.EOF
		}
		rr.line++
		if err != nil && err != io.EOF {
			return rr.line, nil, err
		}
		if t := bytes.TrimSpace(rec); len(t) == 0 || t[0] == '#' {
			if err == io.EOF {
				return 0, nil, io.EOF
			}
			continue
		}
		return rr.line, rec, nil
	}
}

// record is the next record without its separator; one too long is skipped to its end
// and reported as errRecordTooLong.
func (rr *recordReader) record() ([]byte, error) {
	var rec []byte
	tooLong := false
	for {
		part, err := rr.r.ReadSlice(rr.sep)
		if !tooLong {
			if len(rec)+len(part) > maxBatchRecord+1 {
				tooLong, rec = true, nil
			} else {
				rec = append(rec, part...)
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && tooLong:
			return nil, errRecordTooLong
		case err != nil:
			return rec, err
		case tooLong:
			return nil, errRecordTooLong
		}
		return rec[:len(rec)-1], nil
	}
}

// atomicBatch runs batch --atomic: every command in one write (api.OpBatch), applied
// entirely or not at all. Nothing is sent unless every line is a write the batch may
// hold; each line's result then comes from the one answer.
func atomicBatch(c *cli.Context, o clientOpts, dial dialFunc, bo batchOpts, in io.Reader) error {
	var lines []*batchResult
	var ops []api.BatchOp
	rd := newRecordReader(in, bo.sep)
	refused := 0 // the first line refused, 0 if none
	size := 0    // the bytes ValidateBatch bounds
	for {
		line, rec, err := rd.next()
		if err == io.EOF {
			break
		}
		r := &batchResult{line: line}
		switch {
		case err != nil && !errors.Is(err, errRecordTooLong):
			return clientExit(api.CodeFailed, "batch --atomic: read the commands from standard input: %v (nothing was sent)", err)
		case err != nil:
			r.code, r.msg = api.CodeUsage, err.Error()
		case len(lines) == api.MaxBatchOps:
			return clientExit(api.CodeUsage, "batch --atomic: more than %d commands: send them as several batches (nothing was sent)", api.MaxBatchOps)
		default:
			r.verb, r.req, err = batchRequest(rec)
			switch {
			case err != nil:
				r.code, r.msg = api.CodeUsage, err.Error()
			case !api.Batchable(r.req.Op):
				r.code, r.msg = api.CodeUsage, fmt.Sprintf("%s: not in batch --atomic, which holds set, create, unset and if", r.verb)
			default:
				o := api.BatchOpOf(r.req)
				// stop reading at the bound, not after holding all of standard input
				if size += o.Size(); size > api.MaxBatchBytes {
					return clientExit(api.CodeUsage, "batch --atomic: more than %d bytes of keys and values: send them as several batches (nothing was sent)", api.MaxBatchBytes)
				}
				ops = append(ops, o)
			}
		}
		if r.code != 0 && refused == 0 {
			refused = line
		}
		lines = append(lines, r)
	}
	if len(lines) == 0 {
		return clientExit(api.CodeUsage, "batch --atomic: no command on standard input (nothing was sent)")
	}
	req := api.Request{Op: api.OpBatch, Batch: ops}
	if refused == 0 {
		if err := req.Validate(); err != nil {
			return clientExit(api.CodeUsage, "%v (nothing was sent)", err)
		}
	}
	var resp api.Response
	var callErr error
	if refused == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
		cl, closeFn, err := dialClient(ctx, dial)
		if err != nil {
			cancel()
			return err
		}
		resp, callErr = cl.Do(ctx, req)
		cancel()
		closeFn()
	}
	br, decodeErr := api.DecodeBatchResult(resp.Value)
	same := map[int]bool{}
	for _, n := range br.Same {
		same[n] = true
	}
	var failedLine int
	if br.Failed >= 1 && br.Failed <= len(lines) {
		failedLine = lines[br.Failed-1].line
	}
	w := bufio.NewWriter(c.App.Writer)
	worst := 0
	for i, r := range lines {
		switch {
		case refused != 0 && r.code == 0:
			r.code, r.msg = api.CodeUsage, fmt.Sprintf("nothing was sent: line %d is refused", refused)
		case refused != 0:
		case callErr != nil:
			r.settle(api.Response{}, callErr, o)
		case resp.Code == api.CodeOK && same[i+1]:
			r.code, r.msg = api.CodeAlreadyHolds, fmt.Sprintf("%s already holds the new value", r.req.Key)
		case resp.Code == api.CodeOK:
		case decodeErr != nil || br.Failed == 0:
			// refused as a whole (an agent that must be upgraded, a restored cluster
			// not yet rebased): every line says why
			r.settle(resp, nil, o)
		case br.Failed == i+1:
			r.code, r.msg = br.Code, br.Msg+": nothing was done"
		default:
			r.code, r.msg = api.CodeCondFalse, fmt.Sprintf("nothing was done: line %d failed", failedLine)
		}
		printBatchResult(w, o, r)
		worst = worseCode(worst, r.code)
	}
	w.Flush()
	if worst != 0 {
		return cli.Exit("", worst)
	}
	return nil
}
