package sshcmd

import (
	"reflect"
	"testing"
)

func TestAllowed(t *testing.T) {
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
		got, err := Allowed(orig)
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
		if got, err := Allowed(orig); err == nil {
			t.Errorf("%q accepted as %v", orig, got)
		}
	}
}

func FuzzAllowed(f *testing.F) {
	f.Add("exec '/opt/lite-raft/lite-raft' rpc")
	f.Add(`lite-raft-client if n -lt 3 set "4"`)
	f.Fuzz(func(t *testing.T, s string) {
		args, err := Allowed(s)
		if err != nil {
			return
		}
		if len(args) == 0 {
			t.Fatalf("%q accepted with no verb", s)
		}
		switch args[0] {
		case "rpc", "first-boot", "stop", "status", "client":
		case "pkg":
			if (len(args) != 3 && (len(args) != 4 || args[2] != "--only-if-dead")) || args[1] != "fence-stop" {
				t.Fatalf("%q runs pkg %v", s, args[1:])
			}
		default:
			t.Fatalf("%q runs verb %q", s, args[0])
		}
	})
}

// TestCommandRoundTrip: whatever Command writes, for a folder with spaces, quotes and
// shell syntax in it and arguments that need quoting, Parse reads back the same folder
// and arguments, and Allowed takes a remote verb built by it.
func TestCommandRoundTrip(t *testing.T) {
	for _, dir := range []string{"/opt/lite-raft", "/opt/my dir", "/srv/it's \"here\"", "/x/$(id);|&*?~#!`", "relative/dir"} {
		for _, args := range [][]string{{"rpc"}, {"first-boot", "--join"}, {"pkg", "fence-stop", "web's app"},
			{"client", "set", "msg", "hello world"}, {"client", "set", "k", ""}, {"client", "get", "a\tb'c\"d"}} {
			line := Command(dir, args...)
			l, err := Parse(line)
			if err != nil || l.Dir != dir || l.Prog != "lite-raft" || !reflect.DeepEqual(l.Args, args) {
				t.Errorf("Parse(Command(%q, %q)) = %q: %+v %v", dir, args, line, l, err)
			}
			if got, err := Allowed(line); err != nil || !reflect.DeepEqual(got, args) {
				t.Errorf("Allowed(%q) = %q %v, want %q", line, got, err, args)
			}
		}
	}
	if got, want := Command("/opt/lite-raft", "rpc"), "exec '/opt/lite-raft/lite-raft' rpc"; got != want {
		t.Errorf("Command: %q, want %q", got, want)
	}
}

func TestQuote(t *testing.T) {
	if got, want := Quote("it's"), `'it'\''s'`; got != want {
		t.Errorf("Quote: %s, want %s", got, want)
	}
}
