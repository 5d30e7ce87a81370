package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

const sshCommandHelp = `For authorized_keys, so that the cluster's key can run lite-raft and nothing else:

  command="/opt/lite-raft/lite-raft ssh-command",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding ssh-ed25519 AAAA... lite-raft

sshd then runs this command whatever the client asked for, with the request in
SSH_ORIGINAL_COMMAND. It runs this lite-raft binary for: rpc, first-boot --join, stop,
status, pkg fence-stop NAME (a package's new owner stopping it here), and the client
verbs (client VERB ..., lite-raft-client VERB ...). Anything else,
a login shell included, is refused. (A host used as a ProxyJump needs port forwarding,
so leave no-port-forwarding out on those.)`

func sshCommandCommand() *cli.Command {
	return &cli.Command{
		Name:        "ssh-command",
		Usage:       "run only lite-raft's own verbs from SSH_ORIGINAL_COMMAND (for command= in authorized_keys)",
		Description: sshCommandHelp,
		Action: func(c *cli.Context) error {
			args, err := allowedSSHCommand(os.Getenv("SSH_ORIGINAL_COMMAND"))
			if err != nil {
				return cli.Exit(fmt.Sprintf("ssh-command: refused: %v", err), 1)
			}
			self, err := os.Executable()
			if err != nil {
				return cli.Exit(err, 1)
			}
			// replace this process: the verb keeps the session's stdin and stdout
			err = syscall.Exec(self, append([]string{self}, args...), os.Environ())
			return cli.Exit(fmt.Sprintf("ssh-command: %v", err), 1)
		},
	}
}

// allowedSSHCommand parses what the ssh client asked to run and returns the lite-raft
// arguments to run instead, or why it is refused. The program named is ignored beyond
// its name: only this binary ever runs.
func allowedSSHCommand(orig string) ([]string, error) {
	words, err := shellWords(orig)
	if err != nil {
		return nil, err
	}
	if len(words) > 0 && words[0] == "exec" {
		words = words[1:]
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("no command (an interactive login)")
	}
	prog, rest := filepath.Base(words[0]), words[1:]
	switch prog {
	case "lite-raft-client":
		return append([]string{"client"}, rest...), nil
	case "pkg":
		rest = append([]string{"pkg"}, rest...)
	case "lite-raft":
	default:
		return nil, fmt.Errorf("%q is not lite-raft", orig)
	}
	if len(rest) == 0 {
		return nil, fmt.Errorf("%q: no verb", orig)
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
	return nil, fmt.Errorf("%q is not one of lite-raft's remote verbs", orig)
}

// shellWords splits a command line as sh would for plain words, 'single' and "double"
// quotes and backslashes; anything that would make sh do more (variables, pipes,
// redirections, command substitution, globs, separators) is refused.
func shellWords(s string) ([]string, error) {
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
