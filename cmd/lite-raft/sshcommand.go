package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/urfave/cli/v2"

	"lite-raft/internal/sshcmd"
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
			args, err := sshcmd.Allowed(os.Getenv("SSH_ORIGINAL_COMMAND"))
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
