package sshcmd

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Quote makes s one word for sh, whatever it holds: single quotes, each ' in s closed,
// escaped and reopened.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Command is the shell command that runs dir/lite-raft with args on another host: exec,
// so that the ssh session is lite-raft itself (its stdin, stdout and exit code). The
// path is always quoted; an argument only when sh would read it otherwise, so that the
// usual lines stay readable in logs ("exec '/opt/lite-raft/lite-raft' rpc").
func Command(dir string, args ...string) string {
	var b strings.Builder
	b.WriteString("exec ")
	b.WriteString(Quote(filepath.Join(dir, "lite-raft")))
	for _, a := range args {
		b.WriteByte(' ')
		if plain(a) {
			b.WriteString(a)
		} else {
			b.WriteString(Quote(a))
		}
	}
	return b.String()
}

// plain is whether sh reads s as the one word s without quotes.
func plain(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_./=:,+@%", c) >= 0) {
			return false
		}
	}
	return true
}

// Line is a command line read back: the program's folder (empty for a bare name), its
// name and its arguments.
type Line struct {
	Dir  string
	Prog string
	Args []string
}

// Parse reads a command line as Command writes it, or as a person may type it: an
// optional exec, the program, its arguments. Only plain words and quotes are accepted
// (see Words): what sh would do more with is refused.
func Parse(line string) (Line, error) {
	words, err := Words(line)
	if err != nil {
		return Line{}, err
	}
	if len(words) > 0 && words[0] == "exec" {
		words = words[1:]
	}
	if len(words) == 0 {
		return Line{}, fmt.Errorf("no command (an interactive login)")
	}
	l := Line{Prog: filepath.Base(words[0]), Args: words[1:]}
	if strings.Contains(words[0], "/") {
		l.Dir = filepath.Dir(words[0])
	}
	return l, nil
}

// Allowed reads what an ssh client asked to run and returns the arguments to run this
// lite-raft binary with instead, or why it is refused. The program named is ignored
// beyond its name: only the binary running `ssh-command` ever runs. The verbs are rpc,
// first-boot --join, stop, status, client VERB ..., and pkg fence-stop NAME.
func Allowed(line string) ([]string, error) {
	l, err := Parse(line)
	if err != nil {
		return nil, err
	}
	rest := l.Args
	switch l.Prog {
	case "lite-raft-client":
		return append([]string{"client"}, rest...), nil
	case "pkg":
		rest = append([]string{"pkg"}, rest...)
	case "lite-raft":
	default:
		return nil, fmt.Errorf("%q is not lite-raft", line)
	}
	if len(rest) == 0 {
		return nil, fmt.Errorf("%q: no verb", line)
	}
	switch strings.Join(rest, " ") {
	case "rpc", "first-boot --join", "stop", "status":
		return rest, nil
	}
	if rest[0] == "client" && len(rest) > 1 {
		return rest, nil
	}
	if len(rest) == 3 && rest[0] == "pkg" && rest[1] == "fence-stop" && !strings.HasPrefix(rest[2], "-") {
		// a new owner of a package stopping it here (its name is checked by the verb)
		return rest, nil
	}
	if len(rest) == 4 && rest[0] == "pkg" && rest[1] == "fence-stop" && rest[2] == "--only-if-dead" && !strings.HasPrefix(rest[3], "-") {
		// a stand-by fencing an owner whose tick stands, if its monitor is dead or frozen
		return rest, nil
	}
	return nil, fmt.Errorf("%q is not one of lite-raft's remote verbs", line)
}

// Words splits a command line as sh would for plain words, 'single' and "double"
// quotes and backslashes; anything that would make sh do more (variables, pipes,
// redirections, command substitution, globs, separators) is refused.
func Words(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if strings.IndexByte("$`", s[i]) >= 0 {
					return nil, fmt.Errorf("%q inside double quotes", s[i])
				}
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated quote")
			}
			inWord = true
		case ch == '\\':
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
				inWord = true
			}
		case strings.IndexByte("$`;&|<>()*?[]{}~#!", ch) >= 0:
			return nil, fmt.Errorf("shell syntax %q is not allowed", ch)
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
