package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
)

// getPrefixVerb runs `get --prefix DIR` (and `list -r DIR`): every key under DIR, at any
// depth, with its value, one "KEY VALUE" line each (quoted as list --values quotes), or
// with --json one object a line. A prefix may hold hundreds of MB, so it comes in pages
// of at most api.MaxDirAnswer, each asked after the last key of the one before and read
// at its own index: a key written while the prefix is read may show in its new state or
// its old one (export reads one state for all).
func getPrefixVerb(c *cli.Context, o clientOpts, dial dialFunc, verb string, args []string) error {
	if len(args) != 1 {
		return clientUsageError(c, verb+": want DIR (\"\" or / for every key)")
	}
	req := api.Request{Op: api.OpGetPrefix, Key: strings.Trim(args[0], "/"), Stale: o.stale}
	if err := req.Validate(); err != nil {
		return clientExit(api.CodeUsage, "%s: %v", verb, err)
	}
	w := c.App.Writer
	keys := 0
	for {
		resp, err := doRequest(o, dial, req)
		if err != nil {
			return err
		}
		if resp.Code != api.CodeOK {
			return printResponse(w, o, req, resp)
		}
		var p api.PrefixPage
		if err := json.Unmarshal(resp.JSON, &p); err != nil {
			return clientExit(api.CodeFailed, "%s: an unreadable page after %q: %v", verb, req.After, err)
		}
		for _, k := range p.Keys {
			if o.json {
				printKeyJSON(w, k)
			} else {
				fmt.Fprintf(w, "%s %s\n", k.Key, quoteValue(k.Value))
			}
		}
		keys += len(p.Keys)
		if p.Next == "" {
			break
		}
		if p.Next <= req.After {
			// an agent that would send the same page again: never loop on it
			return clientExit(api.CodeFailed, "%s: the page after %q says to go on after %q", verb, req.After, p.Next)
		}
		req.After = p.Next
	}
	if keys == 0 {
		return clientExit(api.CodeNoDir, "%s: no key under %s", verb, orDash(req.Key))
	}
	return nil
}

// keyJSON is a key and its value as get --json prints them: the value a JSON string, or,
// when it is not UTF-8, "value_base64" instead (a string would not keep its bytes).
type keyJSON struct {
	Key    string  `json:"key"`
	Value  *string `json:"value,omitempty"`
	Base64 []byte  `json:"value_base64,omitempty"`
}

func keyJSONOf(k api.DirKey) keyJSON {
	e := keyJSON{Key: k.Key}
	if s := string(k.Value); utf8.ValidString(s) {
		e.Value = &s
	} else {
		e.Base64 = k.Value
	}
	return e
}

// printKeyJSON prints one key as a line of JSON.
func printKeyJSON(w io.Writer, k api.DirKey) {
	b, _ := json.Marshal(keyJSONOf(k))
	fmt.Fprintln(w, string(b))
}
