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
  icebox serve [flags]            run the Lambda API (see icebox serve -h)
  icebox run --code DIR|ZIP       serve one function like AWS's runtime interface emulator
  icebox logs NAME [--follow]     print a function's logs
  icebox keys create|list|delete   access keys with identity policies (root or icebox:* callers)
  icebox roles put|list|delete    execution roles: what functions' own credentials may do
  icebox status                   environments, concurrency and queued events of a running server
  icebox runtimes                 which runtime ids this host can run, and why others can't
  icebox java-api-jar [--out F]   the jar of Lambda's Java interfaces, to compile handlers against
`

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
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "run":
		err = run(os.Args[2:])
	case "logs":
		err = logsCmd(os.Args[2:])
	case "status":
		err = statusCmd(os.Args[2:])
	case "runtimes":
		err = runtimesCmd(os.Args[2:])
	case "java-api-jar":
		err = javaAPIJarCmd(os.Args[2:])
	case "keys":
		err = keysCmd(os.Args[2:])
	case "roles":
		err = rolesCmd(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "icebox: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "icebox:", err)
		os.Exit(1)
	}
}
