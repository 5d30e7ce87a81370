package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
	"lite-raft/internal/sshcmd"
)

const sshCommandHelp = `For authorized_keys, so that the cluster's key can run lite-raft and nothing else:

  command="/opt/lite-raft/lite-raft ssh-command",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding ssh-ed25519 AAAA... lite-raft

sshd then runs this command whatever the client asked for, with the request in
SSH_ORIGINAL_COMMAND. It runs this lite-raft binary for: rpc, first-boot --join, stop,
status, pkg fence-stop NAME (a package's new owner stopping it here), and the client
verbs (client VERB ..., lite-raft-client VERB ...). Anything else,
a login shell included, is refused. (A host used as a ProxyJump needs port forwarding,
so leave no-port-forwarding out on those.)

With --allow LIST, the key may run only the client verbs of LIST (comma-separated: get,
list, exists, status, check, watch, locks, set, unset, if, create, txn, lease, lock, noop,
snapshot, add-member, del-member, transfer-leader, pkg; or read, write, admin for every
verb that needs no more), from its own host (lite-raft-client VERB, status) or through
lite-raft-remote (rpc): the agent refuses any other operation on that stream with exit
19, and drops its Raft messages. rpc's other uses, first-boot --join, stop and pkg
fence-stop are refused: such a key is not a member's. A read-only key for a monitoring
host:

  command="/opt/lite-raft/lite-raft ssh-command --allow read",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding ssh-ed25519 AAAA... monitoring`

func sshCommandCommand() *cli.Command {
	return &cli.Command{
		Name:        "ssh-command",
		Usage:       "run only lite-raft's own verbs from SSH_ORIGINAL_COMMAND (for command= in authorized_keys)",
		Description: sshCommandHelp,
		Flags:       []cli.Flag{&cli.StringFlag{Name: "allow", Usage: "restrict the key to the client verbs of `LIST` (comma-separated)"}},
		Action: func(c *cli.Context) error {
			env := os.Environ()
			var allowed api.Allowed
			if list := c.String("allow"); c.IsSet("allow") {
				var err error
				if allowed, err = api.ParseAllow(list); err != nil {
					// a misspelt list in authorized_keys refuses everything
					return cli.Exit(fmt.Sprintf("ssh-command: refused: %v", err), 1)
				}
				// the only one: with two, the first would count
				env = append(slices.DeleteFunc(env, func(e string) bool { return strings.HasPrefix(e, allowEnv+"=") }), allowEnv+"="+allowed.String())
			}
			args, err := sshcmd.Allowed(os.Getenv("SSH_ORIGINAL_COMMAND"))
			if err != nil {
				return cli.Exit(fmt.Sprintf("ssh-command: refused: %v", err), 1)
			}
			if allowed.String() != "" {
				if err := restrictedArgs(args); err != nil {
					return cli.Exit(fmt.Sprintf("ssh-command: refused: this key may run only %s (--allow), %v", allowed, err), api.CodeDenied)
				}
			}
			self, err := os.Executable()
			if err != nil {
				return cli.Exit(err, 1)
			}
			// replace this process: the verb keeps the session's stdin and stdout
			err = syscall.Exec(self, append([]string{self}, args...), env)
			return cli.Exit(fmt.Sprintf("ssh-command: %v", err), 1)
		},
	}
}

// restrictedArgs says why a restricted key (--allow) may not run args on this host, or
// nil. The agent holds such a key to the verbs of its list, but only for what it is asked;
// what a client verb does on this host itself is checked here: running a COMMAND (watch
// and lock, after --) or writing a file (snapshot save, check --prom) would be a shell
// and a write of any path as the lite-raft user, whatever the list.
func restrictedArgs(args []string) error {
	switch args[0] {
	case "rpc", "status":
		return nil
	case "client":
	default:
		return fmt.Errorf("not %s", strings.Join(args, " "))
	}
	_, verb, err := parseClientArgs(args[1:])
	switch {
	case err != nil || len(verb) == 0:
		return nil // the client refuses it itself
	case verb[0] == "snapshot":
		return errors.New("not snapshot: it writes a file on this host")
	}
	for _, a := range verb[1:] {
		switch {
		case a == "--":
			return errors.New("not a COMMAND run on this host (after --)")
		case a == "--prom" || strings.HasPrefix(a, "--prom="):
			return errors.New("not --prom: it writes a file on this host")
		}
	}
	return nil
}
