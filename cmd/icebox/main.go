// Command icebox is a self-hosted AWS Lambda: `icebox serve` runs the Lambda
// API and the sandboxes that run functions.
package main

import (
	"fmt"
	"os"

	sblinux "icebox/internal/sandbox/linux"
)

const usage = `icebox — a self-hosted AWS Lambda

usage:
  icebox serve [flags]            run the Lambda API (needs root)
  icebox run --code DIR|ZIP       serve one function like AWS's runtime interface emulator
  icebox logs NAME [--follow]     print a function's logs
  icebox keys create|list|delete  access keys with identity policies (root or icebox:* callers)
  icebox roles put|list|delete    execution roles: what functions' own credentials may do
  icebox networks put|list|delete networks functions join with VpcConfig (root or icebox:* callers)
  icebox status                   environments, concurrency and queued events of a running server
  icebox runtimes                 which runtime ids this host can run, and why others can't
  icebox java-api-jar [--out F]   the jar of Lambda's Java interfaces, to compile handlers against
  icebox version                  the version of this binary

Every command takes --help (or: icebox help COMMAND).
`

// commandFuncs are the subcommands by name.
var commandFuncs = map[string]func([]string) error{
	"serve":        serve,
	"run":          run,
	"logs":         logsCmd,
	"status":       statusCmd,
	"runtimes":     runtimesCmd,
	"java-api-jar": javaAPIJarCmd,
	"keys":         keysCmd,
	"roles":        rolesCmd,
	"networks":     networksCmd,
	"version":      versionCmd,
}

func main() {
	// A sandbox's PID 1 is this binary re-executed; it must branch off
	// before anything else runs.
	if len(os.Args) > 1 && os.Args[1] == sblinux.InitArg {
		sblinux.RunInit()
		return
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	switch name {
	case "-h", "-help", "--help":
		fmt.Print(usage)
		return
	case "help":
		if len(args) == 0 {
			fmt.Print(usage)
			return
		}
		// icebox help CMD is icebox CMD --help.
		name, args = args[0], []string{"--help"}
	case "-version", "--version":
		name = "version"
	}
	cmd, ok := commandFuncs[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "icebox: unknown command %q\n\n%s", name, usage)
		os.Exit(2)
	}
	if err := cmd(args); err != nil {
		fmt.Fprintln(os.Stderr, "icebox:", err)
		os.Exit(1)
	}
}
