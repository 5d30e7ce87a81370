// The command tree, the binary's other names and the process's exit code. What the
// binary is and how its files split: doc.go.

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
)

// Version is set by the Makefile from git describe.
var Version = "dev"

// exitUsage is the original's exit code for a missing or wrong argument (SPEC.md).
const exitUsage = 10

func newApp() *cli.App {
	app := &cli.App{
		Name:    "lite-raft",
		Usage:   "a Raft cluster agent that talks to its peers only over SSH",
		Version: Version,
		Flags:   []cli.Flag{dirFlag},
		Commands: append(serverCommands(),
			debugCommand(),
			rpcCommand(),
			clientCommand(),
			benchCommand(),
			remoteCommand(),
			remoteMuxCommand(),
			pkgCommand(),
			sshCommandCommand(),
			statusCommand(),
			recoverCommand(),
			restoreCommand(),
			configCommand(),
			genDocsCommand(),
			lockGuardCommand(),
			&cli.Command{
				Name:  "version",
				Usage: "print the version of this binary",
				Action: func(c *cli.Context) error {
					if c.NArg() > 0 {
						return usageError(c, "version takes no arguments")
					}
					fmt.Fprintln(c.App.Writer, Version)
					return nil
				},
			},
		),
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError(c, err.Error())
		},
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(c.App.ErrWriter, "lite-raft: unknown command %q\n\n", name)
			_ = cli.ShowAppHelp(c)
			cli.OsExiter(exitUsage)
		},
		HideHelpCommand: false,
	}
	// every (sub)command turns a flag error into the usage and exit code 10
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			if c.OnUsageError == nil {
				c.OnUsageError = app.OnUsageError
			}
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
	return app
}

// usageError prints the command's usage and turns the error into exit code 10.
func usageError(c *cli.Context, msg string) error {
	fmt.Fprintf(c.App.ErrWriter, "lite-raft: %s\n\n", msg)
	if c.Command != nil && c.Command.Name != "" {
		_ = cli.ShowSubcommandHelp(c)
	} else {
		_ = cli.ShowAppHelp(c)
	}
	return cli.Exit("", exitUsage)
}

// programs are the other names the binary answers to: `make` links them to lite-raft in
// place of the original's scripts, and each stands for one command. A link and not a
// shell wrapper: on a small machine the two extra processes of a wrapper (sh, dirname)
// cost more than the request itself (issue 8: wall time of one lite-raft-client set).
var programs = map[string]string{"lite-raft-client": "client", "lite-raft-remote": "remote", "pkg": "pkg"}

// programArgs turns `lite-raft-client ARGS` into `lite-raft client ARGS`.
func programArgs(argv []string) []string {
	if len(argv) == 0 {
		return []string{"lite-raft"}
	}
	if cmd, ok := programs[filepath.Base(argv[0])]; ok {
		return append([]string{argv[0], cmd}, argv[1:]...)
	}
	return argv
}

// exitCode maps an error from the command tree to the process exit code.
func exitCode(err error) int {
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

func main() {
	app := newApp()
	// report errors here, once, rather than letting the library exit from inside Run
	app.ExitErrHandler = func(*cli.Context, error) {}
	err := app.Run(programArgs(os.Args))
	if err == nil {
		return
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(os.Stderr, "lite-raft:", msg)
	}
	os.Exit(exitCode(err))
}
