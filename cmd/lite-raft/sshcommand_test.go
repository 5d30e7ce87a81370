package main

import "testing"

// TestRestrictedArgs: a restricted key runs client verbs, but nothing on the host itself:
// no COMMAND (watch, lock), no file written (snapshot, check --prom).
func TestRestrictedArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"rpc"}, true},
		{[]string{"status"}, true},
		{[]string{"client", "get", "k"}, true},
		{[]string{"client", "--json", "--timeout", "3", "check"}, true},
		{[]string{"client", "watch", "/", "--once"}, true},
		{[]string{"client", "watch", "/", "--from", "0", "--once", "--", "sh", "-c", "id"}, false},
		{[]string{"client", "--stale", "lock", "l", "--", "true"}, false},
		{[]string{"client", "--json", "snapshot", "save", "/tmp/x"}, false},
		{[]string{"client", "check", "--prom", "/tmp/x.prom"}, false},
		{[]string{"client", "check", "--prom=/tmp/x.prom"}, false},
		{[]string{"stop"}, false},
		{[]string{"first-boot", "--join"}, false},
	} {
		if err := restrictedArgs(c.args); (err == nil) != c.ok {
			t.Errorf("restrictedArgs(%q) = %v, want allowed %v", c.args, err, c.ok)
		}
	}
}
