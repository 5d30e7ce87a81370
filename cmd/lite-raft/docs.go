package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
)

// gen-docs writes the man pages and the shell completions from the command tree and the
// usage texts the binary itself holds, so they cannot drift from it: `make` runs it. It
// is our own roff writer (urfave/cli's generator is left out of the build: its package
// inits slow every lite-raft-client call), and the client verbs, which are no urfave
// commands, come from the client's usage text and the exit-code table in api.
func genDocsCommand() *cli.Command {
	return &cli.Command{
		Name: "gen-docs", Hidden: true, ArgsUsage: "DIR",
		Usage: "write man/man1/*.1 and completion/ (bash, zsh) under DIR",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError(c, "gen-docs wants DIR")
			}
			return genDocs(c.App, c.Args().First())
		},
	}
}

func genDocs(app *cli.App, dir string) error {
	files := map[string]string{
		"man/man1/lite-raft.1":        manLiteRaft(app),
		"man/man1/lite-raft-client.1": manClient(),
		"man/man1/pkg.1":              manPkg(app),
		"completion/lite-raft.bash":   bashCompletion(app),
		"completion/_lite-raft":       zshCompletion(app),
		"completion/README":           "bash: source completion/lite-raft.bash (or copy it to /etc/bash_completion.d/);\nzsh: put completion/_lite-raft in a folder of $fpath.\n",
	}
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return cli.Exit(err, 1)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return cli.Exit(err, 1)
		}
	}
	return nil
}

// roff escapes text for a man page: backslashes, and a line that would start with a
// request character.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

// roffFilled is roff for text that groff fills, in which a line indented by two spaces
// is an example as typed (an authorized_keys line is one long word): kept as it is, not
// filled and adjusted.
func roffFilled(s string) string {
	lines := strings.Split(roff(s), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "  ") {
			lines[i] = ".nf\n" + l + "\n.fi"
		}
	}
	return strings.Join(lines, "\n")
}

// examples is an EXAMPLES section of command lines, as typed.
func examples(lines ...string) string {
	return ".SH EXAMPLES\n.nf\n" + roff(strings.Join(lines, "\n")) + "\n.fi\n"
}

func manHeader(name, summary string) string {
	return fmt.Sprintf(".TH %s 1 \"\" \"lite-raft %s\" \"User Commands\"\n.SH NAME\n%s \\- %s\n", strings.ToUpper(name), roff(Version), name, roff(summary))
}

// manCommands describes cmds (and their subcommands, under prefix) as tagged paragraphs.
func manCommands(b *strings.Builder, prefix string, cmds []*cli.Command) {
	for _, c := range cmds {
		if c.Hidden {
			continue
		}
		fmt.Fprintf(b, ".TP\n\\fB%s%s\\fR %s\n%s\n", roff(prefix), roff(c.Name), roff(c.ArgsUsage), roff(c.Usage))
		if c.Description != "" {
			fmt.Fprintf(b, ".br\n%s\n", roffFilled(c.Description))
		}
		for _, f := range c.Flags {
			if d, ok := f.(cli.DocGenerationFlag); ok {
				names := f.Names()
				for i, n := range names {
					names[i] = "-" + n
					if len(n) > 1 {
						names[i] = "--" + n
					}
				}
				fmt.Fprintf(b, ".br\n\\fB%s\\fR: %s\n", roff(strings.Join(names, ", ")), roff(d.GetUsage()))
			}
		}
		manCommands(b, prefix+c.Name+" ", c.Subcommands)
	}
}

func manExitStatus(b *strings.Builder) {
	b.WriteString(".SH EXIT STATUS\n")
	for _, c := range api.CodeMeanings {
		fmt.Fprintf(b, ".TP\n\\fB%d\\fR\n%s\n", c.Code, roff(c.Meaning))
	}
	b.WriteString(".PP\ncheck exits with a monitoring plugin's codes instead: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n")
}

func manLiteRaft(app *cli.App) string {
	var b strings.Builder
	b.WriteString(manHeader("lite-raft", app.Usage))
	b.WriteString(".SH SYNOPSIS\n\\fBlite-raft\\fR [\\fB--dir\\fR \\fIDIR\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]\n")
	b.WriteString(".SH DESCRIPTION\nEach host runs an agent that keeps its Raft state in plain files under DIR (default: the folder\n" +
		"holding the binary) and talks to its peers only by running lite-raft over ssh. The client verbs are\n" +
		"in lite-raft-client(1), the failover packages in pkg(1).\n.SH COMMANDS\n")
	var top []*cli.Command
	for _, c := range app.Commands {
		if c.Name != "pkg" {
			top = append(top, c)
		}
	}
	manCommands(&b, "", top)
	manExitStatus(&b)
	b.WriteString(".SH FILES\n.TP\nconf/\ncluster_nodes, election_timeout, snapshot_period, log, log_level; remote_hosts, remote_path, remote_user\n" +
		"for hosts outside the cluster (lite-raft config check validates them)\n" +
		".TP\nstate/, state-machine-log/, state-machine-snapshot/\nthe Raft state, the log and the snapshots\n" +
		".TP\nmessage-log/\nthe agent's and the package monitors' logs (conf/log: file, stderr or syslog; conf/log_level: error, warn, info or debug)\n" +
		".TP\ntemp/agent.sock\nthe local agent's socket\n")
	b.WriteString(examples("./lite-raft first-boot            # on every host, once", "./lite-raft-client set k v",
		"./lite-raft-client get k", "./lite-raft status", "./lite-raft config check"))
	b.WriteString(".SH SEE ALSO\nlite-raft-client(1), pkg(1)\n")
	return b.String()
}

func manClient() string {
	var b strings.Builder
	b.WriteString(manHeader("lite-raft-client", "get, set, list, if ... set, locks, watches and membership on a lite-raft cluster"))
	b.WriteString(".SH SYNOPSIS\n\\fBlite-raft-client\\fR [\\fB--json\\fR] [\\fB--stale\\fR] [\\fB--timeout\\fR \\fISECONDS\\fR] \\fIVERB\\fR \\fIARGS\\fR\n" +
		".br\n\\fBlite-raft-remote\\fR ... (the same verbs, from a host outside the cluster, over ssh)\n")
	b.WriteString(".SH VERBS\n.nf\n" + roff(clientUsage) + "\n.fi\n")
	manExitStatus(&b)
	b.WriteString(examples("./lite-raft-client if counter -lt 10 set 11", "./lite-raft-client lock job --ttl 15s -- ./nightly.sh",
		"./lite-raft-client watch config/ -- ./reload.sh"))
	b.WriteString(".SH SEE ALSO\nlite-raft(1), pkg(1)\n")
	return b.String()
}

func manPkg(app *cli.App) string {
	var b strings.Builder
	pkg := app.Command("pkg")
	b.WriteString(manHeader("pkg", "lite-raft's failover packages: one host runs each, a stand-by takes it over"))
	b.WriteString(".SH SYNOPSIS\n\\fBpkg\\fR \\fIVERB\\fR \\fINAME\\fR ... (\\fBlite-raft pkg\\fR)\n.SH VERBS\n")
	manCommands(&b, "", pkg.Subcommands)
	b.WriteString(".SH EXIT STATUS\n0 done, 1 failed (the message says why), 2 not known yet (pkg move --until-running, pkg evacuate --wait),\n" +
		"10 wrong usage; the store's own codes (11, 12, 14) when the cluster could not be asked.\n")
	b.WriteString(".SH FILES\n.TP\ncontrol-scripts/NAME\nthe package's control script: settings (echo VAR), start, stop, status, fence\n" +
		".TP\nmessage-log/pkg-NAME.log\nits monitor's log\n")
	b.WriteString(examples("./pkg init web; ./pkg run web   # run on every package host", "./pkg status web",
		"./pkg move --until-running 30s web host2", "./pkg evacuate --wait 60s host1"))
	b.WriteString(".SH SEE ALSO\nlite-raft(1), lite-raft-client(1)\n")
	return b.String()
}

// clientVerbs are the verbs clientUsage lists (its lines "  VERB ...").
func clientVerbs() []string {
	re := regexp.MustCompile(`(?m)^  ([a-z][a-z-]*)\b`)
	var verbs []string
	for _, m := range re.FindAllStringSubmatch(clientUsage, -1) {
		if !slices.Contains(verbs, m[1]) {
			verbs = append(verbs, m[1])
		}
	}
	return verbs
}

func commandNames(cmds []*cli.Command) []string {
	var names []string
	for _, c := range cmds {
		if !c.Hidden {
			names = append(names, c.Name)
		}
	}
	return names
}

// bashCompletion completes the command, the client verb and the pkg verb from lists
// written in: completing runs nothing.
func bashCompletion(app *cli.App) string {
	top := strings.Join(commandNames(app.Commands), " ")
	verbs := strings.Join(clientVerbs(), " ")
	pkgs := strings.Join(commandNames(app.Command("pkg").Subcommands), " ")
	return fmt.Sprintf(`# bash completion for lite-raft, lite-raft-client, lite-raft-remote and pkg (lite-raft gen-docs).
# Static lists: completing runs no command.
_lite_raft() {
	local cur=${COMP_WORDS[COMP_CWORD]} words=""
	case "${COMP_WORDS[0]##*/}" in
	lite-raft-client|lite-raft-remote) [ "$COMP_CWORD" -eq 1 ] && words="%[2]s" ;;
	pkg) [ "$COMP_CWORD" -eq 1 ] && words="%[3]s" ;;
	*)
		if [ "$COMP_CWORD" -eq 1 ]; then
			words="%[1]s"
		elif [ "$COMP_CWORD" -eq 2 ]; then
			case "${COMP_WORDS[1]}" in
			client|remote) words="%[2]s" ;;
			pkg) words="%[3]s" ;;
			esac
		fi ;;
	esac
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _lite_raft lite-raft lite-raft-client lite-raft-remote pkg ./lite-raft ./lite-raft-client ./lite-raft-remote ./pkg
`, top, verbs, pkgs)
}

func zshCompletion(app *cli.App) string {
	top := strings.Join(commandNames(app.Commands), " ")
	verbs := strings.Join(clientVerbs(), " ")
	pkgs := strings.Join(commandNames(app.Command("pkg").Subcommands), " ")
	return fmt.Sprintf(`#compdef lite-raft lite-raft-client lite-raft-remote pkg
# zsh completion (lite-raft gen-docs). Static lists: completing runs no command.
local -a top verbs pkgs
top=(%[1]s)
verbs=(%[2]s)
pkgs=(%[3]s)
case ${words[1]:t} in
lite-raft-client|lite-raft-remote) (( CURRENT == 2 )) && compadd -a verbs ;;
pkg) (( CURRENT == 2 )) && compadd -a pkgs ;;
*)
	if (( CURRENT == 2 )); then
		compadd -a top
	elif (( CURRENT == 3 )); then
		case ${words[2]} in
		client|remote) compadd -a verbs ;;
		pkg) compadd -a pkgs ;;
		esac
	fi ;;
esac
`, top, verbs, pkgs)
}
