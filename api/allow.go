package api

import (
	"fmt"
	"slices"
	"strings"
)

// Allowed is what a key restricted by ssh-command --allow may send: a set of ops.
type Allowed struct {
	ops   [256]bool
	words string
}

// allowAliases are --allow's words that are no op's verb: check asks for the status;
// read, write and admin are every op of that Access or below it.
var allowAliases = map[string][]string{"check": {"status"}}

// ParseAllow reads ssh-command --allow's list: verbs separated by commas (get,list,status),
// as the catalogue's Verb fields name them, check (the status it reads), or the classes
// read, write and admin (every op that needs no more than that Access). An unknown word is
// an error: a misspelt list in authorized_keys must refuse, not allow less or more than
// meant.
func ParseAllow(list string) (Allowed, error) {
	var a Allowed
	var words []string
	for _, w := range strings.Split(list, ",") {
		w = strings.TrimSpace(w)
		if w == "" {
			continue
		}
		if !a.add(w) {
			return Allowed{}, fmt.Errorf("--allow %q: %q is no verb (want %s, or read, write, admin)", list, w, strings.Join(AllowWords(), ","))
		}
		words = append(words, w)
	}
	if len(words) == 0 {
		return Allowed{}, fmt.Errorf("--allow %q: no verb", list)
	}
	a.words = strings.Join(words, ",")
	return a, nil
}

func (a *Allowed) add(w string) bool {
	var class Access
	switch w {
	case "read":
		class = AccessRead
	case "write":
		class = AccessWrite
	case "admin":
		class = AccessAdmin
	}
	found := false
	for _, e := range catalogue {
		if (class != 0 && e.Access <= class) || slices.Contains(strings.Split(e.Verb, ","), w) {
			a.ops[e.Op], found = true, true
		}
	}
	for _, v := range allowAliases[w] {
		found = a.add(v) || found
	}
	return found
}

// Permits reports whether op may be sent.
func (a Allowed) Permits(op Op) bool { return a.ops[op] }

// String is the list as given, without blanks.
func (a Allowed) String() string { return a.words }

// AllowWords is every verb --allow knows, sorted.
func AllowWords() []string {
	var ws []string
	for _, e := range catalogue {
		for _, v := range strings.Split(e.Verb, ",") {
			if !slices.Contains(ws, v) {
				ws = append(ws, v)
			}
		}
	}
	for w := range allowAliases {
		ws = append(ws, w)
	}
	slices.Sort(ws)
	return ws
}
