package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"lite-raft/api"
)

// TestGetPrefixPages (issue 29): get --prefix pages through 100,000 keys of a real agent
// (about 14 MB of answer, so several pages), in key order, each once, with the keys of
// subfolders and without those beside the prefix; --json gives one object a line, a
// value that is not UTF-8 in base64; list -r is the same; an empty prefix exits 8.
func TestGetPrefixPages(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 keys")
	}
	dir := t.TempDir()
	startAgent(t, dir)
	const n = 100_000
	key := func(i int) string { return fmt.Sprintf("p/%02d/k%06d", i%37, i) }
	value := func(i int) string {
		return fmt.Sprintf("value %d of the prefix test, %s", i, strings.Repeat("x", i%20))
	}
	// written 64 keys a txn, by 8 writers at once (the agent batches their fsyncs)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := w * 64; b < n; b += 8 * 64 {
				var then []api.TxnAction
				for i := b; i < min(b+64, n); i++ {
					then = append(then, api.TxnAction{Do: api.DoSet, Key: key(i), Value: []byte(value(i))})
				}
				if r := do(t, dir, api.Request{Op: api.OpTxn, Txn: api.Txn{Then: then}, ClientID: uint64(900 + w), Seq: uint64(b + 1), TimeoutMs: 20000}); r.Code != 0 {
					t.Errorf("txn at %d: %d %s", b, r.Code, r.Msg)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, k := range []string{"p", "pa/x", "p+", "q/1"} { // beside the prefix: not under p/
		do(t, dir, api.Request{Op: api.OpSet, Key: k, Value: []byte("beside"), ClientID: 999, Seq: uint64(len(k))})
	}
	binary := []byte{0xff, 0, 'a', '\n'}
	do(t, dir, api.Request{Op: api.OpSet, Key: "p/zz/binary", Value: binary, ClientID: 998, Seq: 1})

	out, code := runAppStdout(t, "--dir", dir, "client", "get", "--prefix", "p")
	if code != 0 {
		t.Fatalf("get --prefix p: exit %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n+1 {
		t.Fatalf("get --prefix p: %d lines, want %d", len(lines), n+1)
	}
	prev := ""
	seen := map[string]bool{}
	for _, l := range lines[:n] {
		k, v, _ := strings.Cut(l, " ")
		if k <= prev || seen[k] || !strings.HasPrefix(k, "p/") {
			t.Fatalf("get --prefix p: %q after %q (out of order, twice or not under p/)", k, prev)
		}
		var i int
		fmt.Sscanf(k[strings.LastIndex(k, "k")+1:], "%d", &i)
		if k != key(i) || v != quoteValue([]byte(value(i))) {
			t.Fatalf("get --prefix p: %q, want %q %q", l, key(i), value(i))
		}
		prev, seen[k] = k, true
	}
	if lines[n] != `p/zz/binary "\xff\x00a\n"` {
		t.Errorf("the binary value: %q", lines[n])
	}
	if r, _ := runAppStdout(t, "--dir", dir, "client", "list", "-r", "p/"); r != out {
		t.Errorf("list -r p/ differs from get --prefix p")
	}
	js, code := runAppStdout(t, "--dir", dir, "client", "--json", "get", "--prefix", "p/zz")
	var o struct {
		Key    string `json:"key"`
		Base64 string `json:"value_base64"`
	}
	if code != 0 || json.Unmarshal([]byte(js), &o) != nil || o.Key != "p/zz/binary" || o.Base64 != base64.StdEncoding.EncodeToString(binary) {
		t.Errorf("get --json --prefix p/zz: exit %d %q", code, js)
	}
	// the pages: each bounded, each after the last
	pages, after := 0, ""
	for {
		r := do(t, dir, api.Request{Op: api.OpGetPrefix, Key: "p", After: after})
		var p api.PrefixPage
		if r.Code != 0 || json.Unmarshal(r.JSON, &p) != nil || len(r.JSON) > api.MaxDirAnswer {
			t.Fatalf("page %d: %d %s (%d bytes)", pages, r.Code, r.Msg, len(r.JSON))
		}
		pages++
		if p.Next == "" {
			break
		}
		after = p.Next
	}
	if pages < 3 {
		t.Errorf("%d pages for %d keys of about 14 MB: not paged", pages, n)
	}
	t.Logf("%d keys in %d pages", n+1, pages)
	if _, code := runAppStdout(t, "--dir", dir, "client", "get", "--prefix", "nothing/here"); code != api.CodeNoDir {
		t.Errorf("get --prefix of no key: exit %d, want %d", code, api.CodeNoDir)
	}
}

// TestUnsetPrefix (issue 29): unset --prefix is one log entry however many keys it
// deletes; a watch of a key under it, of a folder under it, of the folder itself and of
// everything each gets that one change, at once, not one a key; a value watch of a key
// under it is answered; keys beside it stay; a folder of more than api.MaxUnsetPrefix keys is
// refused with their number, nothing deleted.
func TestUnsetPrefix(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	for i := 0; i < 500; i++ {
		do(t, dir, api.Request{Op: api.OpSet, Key: fmt.Sprintf("d/e%d/k%d", i%7, i), Value: []byte("v"), ClientID: 31, Seq: uint64(i + 1)})
	}
	do(t, dir, api.Request{Op: api.OpSet, Key: "dx", Value: []byte("beside"), ClientID: 32, Seq: 1})
	before := lastIndex(t, dir)
	type answer struct {
		pattern string
		r       api.Response
	}
	answers := make(chan answer, 8)
	patterns := []string{"d/e3/k3", "d/e3/", "d/", "/"}
	for _, p := range patterns {
		go func() {
			answers <- answer{p, do(t, dir, api.Request{Op: api.OpWatchLog, Key: p, From: before, FromSet: true, TimeoutMs: 8000})}
		}()
	}
	go func() {
		answers <- answer{"value of d/e3/k3", do(t, dir, api.Request{Op: api.OpWatch, Key: "d/e3/k3", CondValue: []byte("v"), TimeoutMs: 30000})}
	}()
	// (the log watches ask from before the unset: parked or not yet, each is answered
	// with the change it missed)
	out, code := runAppStdout(t, "--dir", dir, "client", "unset", "--prefix", "d")
	if code != 0 || strings.TrimSpace(out) != "removed 500 keys under d/" {
		t.Fatalf("unset --prefix d: exit %d %q", code, out)
	}
	if after := lastIndex(t, dir); after != before+1 {
		t.Errorf("unset --prefix of 500 keys: last index %d, then %d (want one entry)", before, after)
	}
	for range len(patterns) + 1 {
		a := <-answers
		if a.r.Code != 0 {
			t.Errorf("watch %s: %d %s", a.pattern, a.r.Code, a.r.Msg)
			continue
		}
		if a.pattern == "value of d/e3/k3" {
			// answered, the key gone: woken by the unset if it was parked, at once if it
			// came after (a value watch has no index to ask from, so which one is not
			// told apart here; the agent simulator's watches are)
			continue
		}
		// (a log watch the unset did not wake runs out with no change: the check below)
		chs, err := api.DecodeChanges(a.r.Value)
		if err != nil || len(chs) != 1 || !chs[0].Prefix || chs[0].Key != "d/" || chs[0].Index != before+1 {
			t.Errorf("watch %s: %+v %v, want the one change of d/ at %d", a.pattern, chs, err, before+1)
		}
	}
	if r := do(t, dir, api.Request{Op: api.OpGet, Key: "dx"}); r.Code != 0 {
		t.Errorf("the key beside the folder: %d %s", r.Code, r.Msg)
	}
	if _, code := runAppStdout(t, "--dir", dir, "client", "get", "--prefix", "d"); code != api.CodeNoDir {
		t.Errorf("get --prefix d after the unset: exit %d, want %d", code, api.CodeNoDir)
	}
	// the watch command prints it as a folder deleted
	w, code := runAppStdout(t, "--dir", dir, "client", "watch", "d/", "--once", "--from", fmt.Sprint(before))
	if code != 0 || strings.TrimSpace(w) != fmt.Sprintf("%d deleted d/", before+1) {
		t.Errorf("watch d/ --once: exit %d %q", code, w)
	}

	// too many: refused, nothing deleted
	for b := 0; b <= api.MaxUnsetPrefix; b += 64 {
		var then []api.TxnAction
		for i := b; i < min(b+64, api.MaxUnsetPrefix+1); i++ {
			then = append(then, api.TxnAction{Do: api.DoSet, Key: fmt.Sprintf("big/k%05d", i), Value: []byte("v")})
		}
		do(t, dir, api.Request{Op: api.OpTxn, Txn: api.Txn{Then: then}, ClientID: 33, Seq: uint64(b + 1), TimeoutMs: 10000})
	}
	msg, code := runApp(t, "--dir", dir, "client", "unset", "--prefix", "big")
	if code != api.CodeFailed || !strings.Contains(msg, fmt.Sprintf("%d keys under big/", api.MaxUnsetPrefix+1)) {
		t.Errorf("unset --prefix of %d keys: exit %d %q", api.MaxUnsetPrefix+1, code, msg)
	}
	if r := do(t, dir, api.Request{Op: api.OpGet, Key: "big/k00000"}); r.Code != 0 {
		t.Errorf("a refused unset --prefix deleted: %d", r.Code)
	}
	if _, code := runApp(t, "--dir", dir, "client", "unset", "--prefix", "/"); code != api.CodeUsage {
		t.Errorf("unset --prefix /: exit %d, want %d", code, api.CodeUsage)
	}
}
