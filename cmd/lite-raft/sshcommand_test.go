package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestAllowedSSHCommand(t *testing.T) {
	for orig, want := range map[string][]string{
		"exec '/opt/lite-raft/lite-raft' rpc":                {"rpc"},
		"/opt/lite-raft/lite-raft rpc":                       {"rpc"},
		"exec '/opt/my dir/lite-raft' first-boot --join":     {"first-boot", "--join"},
		"./lite-raft stop":                                   {"stop"},
		"lite-raft status":                                   {"status"},
		"/opt/lite-raft/lite-raft client get a/b":            {"client", "get", "a/b"},
		"lite-raft-client set t -5":                          {"client", "set", "t", "-5"},
		`lite-raft-client set msg "hello world"`:             {"client", "set", "msg", "hello world"},
		"exec '/opt/lite-raft/lite-raft' pkg fence-stop web": {"pkg", "fence-stop", "web"},
		"/opt/lite-raft/pkg/pkg fence-stop web":              {"pkg", "fence-stop", "web"},
	} {
		got, err := allowedSSHCommand(orig)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %v %v, want %v", orig, got, err, want)
		}
	}
	for _, orig := range []string{
		"", "bash", "sh -c id", "id", "lite-raft", "lite-raft first-boot", "lite-raft rpc; id",
		"lite-raft rpc && id", "lite-raft rpc | cat", "lite-raft client get $(id)", "lite-raft client get `id`",
		"lite-raft rpc > /etc/passwd", "/bin/lite-raft-evil rpc", "lite-raft agent --foreground",
		"lite-raft recover --members x", `lite-raft-client set k "$HOME"`, "lite-raft 'rpc", "lite-raft client",
		"lite-raft pkg run web", "pkg init web", "pkg fence-stop", "pkg fence-stop web extra", "pkg fence-stop --dir=/x",
		"lite-raft pkg monitor web",
	} {
		if got, err := allowedSSHCommand(orig); err == nil {
			t.Errorf("%q accepted as %v", orig, got)
		}
	}
}

func FuzzSSHCommand(f *testing.F) {
	f.Add("exec '/opt/lite-raft/lite-raft' rpc")
	f.Add(`lite-raft-client if n -lt 3 set "4"`)
	f.Fuzz(func(t *testing.T, s string) {
		args, err := allowedSSHCommand(s)
		if err != nil {
			return
		}
		if len(args) == 0 {
			t.Fatalf("%q accepted with no verb", s)
		}
		switch args[0] {
		case "rpc", "first-boot", "stop", "status", "client":
		case "pkg":
			if len(args) != 3 || args[1] != "fence-stop" {
				t.Fatalf("%q runs pkg %v", s, args[1:])
			}
		default:
			t.Fatalf("%q runs verb %q", s, args[0])
		}
	})
}

// FuzzParseClientArgs: whatever a script passes, the client's argument parsing answers
// with options and arguments or an error, and "--" always ends the options.
func FuzzParseClientArgs(f *testing.F) {
	f.Add("--json get k")
	f.Add("--timeout=0.5 if n -lt 3 set 4")
	f.Add("-- --json")
	f.Add("--timeout")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		o, rest, err := parseClientArgs(args)
		if err != nil {
			return
		}
		if o.timeout <= 0 {
			t.Fatalf("%q: timeout %v", line, o.timeout)
		}
		if len(rest) > len(args) {
			t.Fatalf("%q: more arguments out than in", line)
		}
	})
}
