package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
	"lite-raft/client"
)

// listValuesVerb runs `list --values [DIR]`: every key directly under DIR with its value,
// read at one moment (one linearizable read, or this host's state with --stale). Text is
// one "KEY VALUE" line per key, for scripts; --json adds the subfolders, the counters
// under DIR and the index the folder was read at.
func listValuesVerb(c *cli.Context, o clientOpts, dial dialFunc, args []string) error {
	if len(args) > 1 {
		return clientUsageError(c, "list --values: want at most one DIR")
	}
	req := api.Request{Op: api.OpListValues, Stale: o.stale}
	if len(args) == 1 {
		req.Key = strings.TrimSuffix(args[0], "/")
	}
	if err := req.Validate(); err != nil {
		return clientExit(api.CodeUsage, "list --values: %v", err)
	}
	resp, err := doRequest(o, dial, req)
	if err != nil {
		return err
	}
	if resp.Code != api.CodeOK {
		return printResponse(c.App.Writer, o, req, resp)
	}
	d, err := client.DirEntriesOf(resp)
	if err != nil {
		return clientExit(api.CodeFailed, "%v", err)
	}
	w := c.App.Writer
	if o.json {
		return printDirJSON(w, d)
	}
	for _, k := range d.Keys {
		fmt.Fprintf(w, "%s %s\n", k.Key, quoteValue(k.Value))
	}
	return nil
}

// quoteValue is v for a "KEY VALUE" line: as it is, unless a reader could not tell
// where it ends or what it holds (empty, a line break or another character that is not
// printable, bytes that are not UTF-8, a leading quote or a space at either end): then
// quoted as Go's strconv.Quote does (and strconv.Unquote reads back).
func quoteValue(v []byte) string {
	s := string(v)
	plain := s != "" && utf8.ValidString(s) && s[0] != '"' && strings.TrimSpace(s) == s
	for _, r := range s {
		plain = plain && strconv.IsPrint(r)
	}
	if plain {
		return s
	}
	return strconv.Quote(s)
}

// printDirJSON prints a folder as get --json prints a key: a value is a JSON string,
// or, when it is not UTF-8, "value_base64" instead (a string would not keep its bytes).
func printDirJSON(w io.Writer, d api.DirEntries) error {
	out := struct {
		Dir      string           `json:"dir"`
		Index    uint64           `json:"index"`
		Keys     []keyJSON        `json:"keys"`
		Dirs     []string         `json:"dirs"`
		Counters []api.DirCounter `json:"counters"`
	}{Dir: d.Dir, Index: d.Index, Keys: []keyJSON{}, Dirs: d.Dirs, Counters: d.Counters}
	if out.Dirs == nil {
		out.Dirs = []string{}
	}
	if out.Counters == nil {
		out.Counters = []api.DirCounter{}
	}
	for _, k := range d.Keys {
		out.Keys = append(out.Keys, keyJSONOf(k))
	}
	b, err := json.Marshal(out)
	if err != nil {
		return clientExit(api.CodeFailed, "list --values: %v", err)
	}
	fmt.Fprintln(w, string(b))
	return nil
}

const txnUsage = `usage: lite-raft-client txn CONDITION... ACTION...

Applies every ACTION if every CONDITION holds when the cluster applies it, else none:
one replicated write, all or nothing.

CONDITIONS (none is fine):
  --if KEY = VALUE         KEY exists and holds VALUE
  --if KEY != VALUE        KEY does not hold VALUE (a missing KEY differs from every value)
  --if KEY missing         KEY does not exist
  --if KEY present         KEY exists
  --if-counter NAME N      counter NAME stands at N (0: never raised)
ACTIONS (at least one; a key, or a counter, in one action only):
  --set KEY VALUE          set KEY to VALUE
  --unset KEY              remove KEY
  --raise NAME             raise counter NAME as counter raise does (above every value issued)

At most 64 conditions and 64 actions, 1 MiB of keys and values. Prints one "NAME VALUE"
line per raised counter (--json: {"done","raised":[{"name","value"}],"failed"}).
Exit 0: done; 6: a condition was false, nothing was done (the message names it); 10: bad
input; 14: a member runs a lite-raft older than command version 5; 2: no answer in time,
it may or may not have been applied.`

// txnVerb runs `txn`: conditions and actions from the command line, one transaction.
func txnVerb(c *cli.Context, o clientOpts, dial dialFunc, args []string) error {
	if len(args) == 1 && (args[0] == "--help" || args[0] == "-h") {
		fmt.Fprintln(c.App.Writer, txnUsage)
		return nil
	}
	t, err := parseTxn(args)
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "lite-raft-client txn: %v\n\n%s\n", err, txnUsage)
		return cli.Exit("", api.CodeUsage)
	}
	req := api.Request{Op: api.OpTxn, Txn: t}
	if err := req.Validate(); err != nil {
		return clientExit(api.CodeUsage, "%v", err)
	}
	resp, err := doRequest(o, dial, req)
	if err != nil {
		return err
	}
	res, err := client.TxnResultOf(resp)
	w := c.App.Writer
	type raised struct {
		Name  string `json:"name"`
		Value uint64 `json:"value"`
	}
	var names []string
	for _, a := range t.Then {
		if a.Do == api.DoRaise {
			names = append(names, a.Key)
		}
	}
	if err != nil && (resp.Code == api.CodeOK || !client.IsCondFalse(err)) {
		return clientExit(client.ExitCodeOf(err), "txn: %v", err)
	}
	if o.json {
		out := struct {
			Done   bool     `json:"done"`
			Raised []raised `json:"raised"`
			Failed int      `json:"failed,omitempty"`
		}{Done: res.Done(), Raised: []raised{}, Failed: res.Failed}
		for i, v := range res.Raised {
			if i < len(names) {
				out.Raised = append(out.Raised, raised{names[i], v})
			}
		}
		b, _ := json.Marshal(out)
		fmt.Fprintln(w, string(b))
	} else {
		for i, v := range res.Raised {
			if i < len(names) {
				fmt.Fprintf(w, "%s %d\n", names[i], v)
			}
		}
	}
	if err != nil {
		return clientExit(api.CodeCondFalse, "txn: %v", err)
	}
	return nil
}

// parseTxn reads txn's arguments. Values are taken as they are, dashes and all: each
// option takes a fixed number of words after it.
func parseTxn(args []string) (api.Txn, error) {
	var t api.Txn
	take := func(opt string, n int) ([]string, error) {
		if len(args) < n {
			return nil, fmt.Errorf("%s: want %d more arguments", opt, n)
		}
		got := args[:n]
		args = args[n:]
		return got, nil
	}
	for len(args) > 0 {
		opt := args[0]
		args = args[1:]
		switch opt {
		case "--if":
			w, err := take(opt, 2)
			if err != nil {
				return t, err
			}
			c := api.TxnCond{Key: w[0]}
			switch w[1] {
			case "missing":
				c.Test = api.TestMissing
			case "present":
				c.Test = api.TestPresent
			case "=", "!=":
				v, err := take(opt+" "+w[0]+" "+w[1], 1)
				if err != nil {
					return t, err
				}
				c.Test, c.Value = api.TestEquals, []byte(v[0])
				if w[1] == "!=" {
					c.Test = api.TestDiffers
				}
			default:
				return t, fmt.Errorf("--if %s %s: want = VALUE, != VALUE, missing or present", w[0], w[1])
			}
			t.If = append(t.If, c)
		case "--if-counter":
			w, err := take(opt, 2)
			if err != nil {
				return t, err
			}
			n, err := strconv.ParseUint(w[1], 10, 64)
			if err != nil {
				return t, fmt.Errorf("--if-counter %s %q: not a count", w[0], w[1])
			}
			t.If = append(t.If, api.TxnCond{Key: w[0], Test: api.TestCounter, Counter: n})
		case "--set":
			w, err := take(opt, 2)
			if err != nil {
				return t, err
			}
			t.Then = append(t.Then, api.TxnAction{Do: api.DoSet, Key: w[0], Value: []byte(w[1])})
		case "--unset", "--raise":
			w, err := take(opt, 1)
			if err != nil {
				return t, err
			}
			do := api.DoUnset
			if opt == "--raise" {
				do = api.DoRaise
			}
			t.Then = append(t.Then, api.TxnAction{Do: do, Key: w[0]})
		default:
			return t, fmt.Errorf("unknown argument %q: want --if, --if-counter, --set, --unset or --raise", opt)
		}
	}
	if len(t.Then) == 0 {
		return t, fmt.Errorf("no action: want --set, --unset or --raise")
	}
	return t, nil
}
