package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"lite-raft/api"

	"github.com/urfave/cli/v2"
)

const watchUsage = `usage: lite-raft-client watch KEY|DIR/ [--once] [--from N] [-- COMMAND [ARGS...]]

Waits for changes to KEY (or to anything under DIR/; "/" for everything) and prints each,
in log order, one a line:

  N set KEY VALUE
  N deleted KEY
  N deleted DIR/    (every key under DIR, at once: unset --prefix; with --json "prefix":true)

N is the log index of the change. It never skips one: it asks from the index of the last
change it printed, so it resumes after a lost connection, and through lite-raft-remote on
another member. --from N starts after index N (0 and an older N need the member to still
keep them: it keeps the changes of the entries its log holds, across restarts, the last
100,000 at most); a watch that asks from before what the member keeps exits 17 rather
than skip. --once exits after the
first change. With -- COMMAND it runs COMMAND for each change (one at a time), with
LITE_RAFT_WATCH_INDEX, LITE_RAFT_WATCH_EVENT (set or deleted), LITE_RAFT_WATCH_KEY and
LITE_RAFT_WATCH_VALUE in its environment, instead of printing; the value is on its
standard input too, and only there when over 64 KiB or holding a NUL byte. A value holding a newline or
another unprintable byte (or starting with a double quote) is printed Go-quoted ("a\nb"),
so a value can never forge a line; a plain value is printed as it is. --json prints each
change as {"index":N,"event":"set","key":...,"value":...}, with value_base64 (key_base64)
instead for a value (key) that is not UTF-8.`

// watchVerb runs `watch`: a loop of watch requests, each from where the last left off.
func watchVerb(c *cli.Context, o clientOpts, dial dialFunc, args []string) error {
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
		fmt.Fprintln(c.App.Writer, watchUsage)
		return nil
	}
	usage := func(msg string) error {
		fmt.Fprintf(c.App.ErrWriter, "lite-raft-client: watch: %s\n\n%s\n", msg, watchUsage)
		return cli.Exit("", api.CodeUsage)
	}
	if len(args) == 0 {
		return usage("missing KEY or DIR/")
	}
	pattern, args := args[0], args[1:]
	if pattern != "/" {
		if err := api.ValidateKey(strings.TrimSuffix(pattern, "/")); err != nil {
			return usage(err.Error())
		}
	}
	// where the next request asks from: now, until a --from or an answer says
	once, from, fromSet := false, uint64(0), false
	var argv []string
	for len(args) > 0 {
		switch a := args[0]; {
		case a == "--once":
			once = true
		case a == "--from" || strings.HasPrefix(a, "--from="):
			v, ok := strings.CutPrefix(a, "--from=")
			if !ok {
				if len(args) < 2 {
					return usage("--from needs a log index")
				}
				v, args = args[1], args[1:]
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return usage(fmt.Sprintf("--from %q: not a log index", v))
			}
			from, fromSet = n, true
		case a == "--":
			argv = args[1:]
			if len(argv) == 0 {
				return usage("want a COMMAND after --")
			}
			args = nil
			continue
		default:
			return usage(fmt.Sprintf("unknown option %s", a))
		}
		args = args[1:]
	}
	w := c.App.Writer
	failing := false
	for {
		po := o
		po.timeout = 30 * time.Second
		resp, err := doRequest(po, dial, api.Request{Op: api.OpWatchLog, Key: pattern, From: from, FromSet: fromSet,
			TimeoutMs: uint32(o.held(25 * time.Second).Milliseconds())})
		if err == nil && resp.Code != 0 && resp.Code != api.CodeCompacted && resp.Code != api.CodeUsage {
			err = fmt.Errorf("exit %d: %s", resp.Code, resp.Msg)
		}
		if err != nil {
			// a watch resumes where it was: say so once, and keep trying
			if !failing {
				at := "now"
				if fromSet {
					at = "index " + strconv.FormatUint(from, 10)
				}
				fmt.Fprintf(c.App.ErrWriter, "lite-raft-client: watch: %v (trying again every second, from %s)\n", err, at)
				failing = true
			}
			time.Sleep(time.Second) // the retry's pace, not a wait for a condition
			continue
		}
		if resp.Code != 0 {
			return cli.Exit(resp.Msg, resp.Code)
		}
		if failing {
			fmt.Fprintln(c.App.ErrWriter, "lite-raft-client: watch: answered again")
			failing = false
		}
		chs, err := api.DecodeChanges(resp.Value)
		if err != nil {
			return clientExit(1, "watch: %v", err)
		}
		for _, ch := range chs {
			if err := emitChange(w, o.json, argv, ch); err != nil {
				return err
			}
			if once {
				return nil
			}
		}
		if resp.Msg != "" {
			n, err := strconv.ParseUint(resp.Msg, 10, 64)
			if err != nil {
				return clientExit(1, "watch: unreadable index %q in the answer", resp.Msg)
			}
			from, fromSet = n, true
		}
	}
}

// emitChange prints a change, or runs COMMAND for it.
// maxEnvValue is the largest value watch -- COMMAND puts in LITE_RAFT_WATCH_VALUE.
const maxEnvValue = 64 << 10

func emitChange(w interface{ Write([]byte) (int, error) }, asJSON bool, argv []string, ch api.Change) error {
	event := "set"
	if ch.Deleted {
		event = "deleted"
	}
	if len(argv) > 0 {
		cmd := exec.Command(argv[0], argv[1:]...)
		// the value on stdin always; in the environment when one can hold it (no NUL, and
		// well under Linux's 128 KiB a string): else exec fails, and the watch with it
		cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(ch.Value), os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), "LITE_RAFT_WATCH_INDEX="+strconv.FormatUint(ch.Index, 10),
			"LITE_RAFT_WATCH_EVENT="+event, "LITE_RAFT_WATCH_KEY="+ch.Key)
		if len(ch.Value) <= maxEnvValue && bytes.IndexByte(ch.Value, 0) < 0 {
			cmd.Env = append(cmd.Env, "LITE_RAFT_WATCH_VALUE="+string(ch.Value))
		}
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				return clientExit(127, "watch: run %s: %v", argv[0], err)
			}
			fmt.Fprintf(os.Stderr, "lite-raft-client: watch: %s for index %d: %v\n", argv[0], ch.Index, err)
		}
		return nil
	}
	if asJSON {
		fmt.Fprintln(w, string(changeJSON(ch, event)))
		return nil
	}
	if ch.Deleted {
		fmt.Fprintf(w, "%d deleted %s\n", ch.Index, ch.Key)
		return nil
	}
	fmt.Fprintf(w, "%d set %s %s\n", ch.Index, ch.Key, lineValue(ch.Value))
	return nil
}

// lineValue is a value as a change line shows it: as it is when it is plain text (what
// scripts reading plain values always saw), else Go-quoted (strconv.Unquote reads it
// back). A raw newline would let a value forge change lines, and a raw control byte
// could rewrite a terminal. A value that starts with a double quote is quoted too, so a
// line whose value starts with one is always a quoted value.
func lineValue(v []byte) string {
	if plainValue(v) {
		return string(v)
	}
	return strconv.Quote(string(v))
}

func plainValue(v []byte) bool {
	if len(v) > 0 && v[0] == '"' {
		return false
	}
	if !utf8.Valid(v) {
		return false
	}
	for _, r := range string(v) {
		if !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

// changeJSON is a change as --json prints it. JSON strings hold text only (encoding/json
// would replace the bytes that are not UTF-8), so a key or value that is not UTF-8 goes
// in key_base64 or value_base64 instead, exactly.
func changeJSON(ch api.Change, event string) []byte {
	m := map[string]any{"index": ch.Index, "event": event}
	if ch.Prefix {
		m["prefix"] = true
	}
	if utf8.ValidString(ch.Key) {
		m["key"] = ch.Key
	} else {
		m["key_base64"] = base64.StdEncoding.EncodeToString([]byte(ch.Key))
	}
	if utf8.Valid(ch.Value) {
		m["value"] = string(ch.Value) // "" for a delete, as before
	} else {
		m["value_base64"] = base64.StdEncoding.EncodeToString(ch.Value)
	}
	b, _ := json.Marshal(m)
	return b
}
