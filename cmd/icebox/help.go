package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
)

// doc is what `icebox CMD --help` says about a command besides its flags.
type doc struct {
	usage    string // the synopsis, after "usage: "
	about    string // what the command does
	examples string // one command per line, with a trailing comment if useful
}

// docs holds every command's help; newFlagSet looks them up by name.
var docs = map[string]doc{
	"serve": {
		usage: "icebox serve [flags]",
		about: `Runs the Lambda API (and the CloudWatch Logs API and /metrics) on one port, and
the sandboxes that run functions. Needs root: it creates namespaces, cgroups and
mounts. On its first start it generates root credentials, keeps them in the data
dir and prints them once; ICEBOX_ROOT_ACCESS_KEY_ID and ICEBOX_ROOT_SECRET_ACCESS_KEY
give your own instead.`,
		examples: `icebox serve
icebox serve --listen 0.0.0.0:9070 --data-dir /var/lib/icebox
icebox serve --nats-url nats://127.0.0.1:4222     # an external JetStream`,
	},
	"run": {
		usage: "icebox run --code DIR|ZIP [--runtime ID --handler HANDLER] [flags]",
		about: `Serves one function, named "function", like AWS's runtime interface emulator:
unsigned calls to POST /2015-03-31/functions/function/invocations, and the
function's log (START, END, REPORT and its own lines) on this terminal. Without
--runtime the code needs an executable named bootstrap (provided.al2023); for
other languages give the runtime id (see icebox runtimes) and its handler.
Needs root, like icebox serve.`,
		examples: `icebox run --code ./build/                    # a directory holding bootstrap
icebox run --code hello.zip
icebox run --code ./py --runtime python3.11 --handler app.handler
icebox run --code ./js --runtime nodejs20.x --handler index.handler
curl -d '{}' http://127.0.0.1:8080/2015-03-31/functions/function/invocations`,
	},
	"logs": {
		usage: "icebox logs NAME [--follow] [--since DURATION] [flags]",
		about: `Prints the log of function NAME (log group /aws/lambda/NAME) from a running
server, control characters escaped unless --raw. Signs with AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, or on the server's host with the root credentials in its
data dir.`,
		examples: `icebox logs hello
icebox logs hello --follow --since 5m
icebox logs hello --endpoint http://10.0.0.5:9070`,
	},
	"status": {
		usage: "icebox status [flags]",
		about: `Shows a running server's concurrent executions, its environments by state and,
per function, its asynchronous events queued (an event whose attempt runs is not
queued) and each environment: state (frozen between calls, busy during one), age,
calls served, Max Memory Used as of its last call and memory size. Signs like
icebox logs.`,
		examples: `icebox status
icebox status --data-dir /var/lib/icebox   # a server started with that --data-dir`,
	},
	"keys": {
		usage: `icebox keys create --user NAME --policy FILE [flags]
       icebox keys list [flags]
       icebox keys delete ACCESS_KEY_ID [flags]`,
		about: `Manages access keys on a running server. create makes a key for user NAME with
the IAM identity policy in FILE and prints its secret once. Needs root
credentials or icebox:* rights; signs like icebox logs.`,
		examples: `echo '{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*"}]}' > alice.json
icebox keys create --user alice --policy alice.json
icebox keys list
icebox keys delete AKIA…`,
	},
	"roles": {
		usage: `icebox roles put NAME --policy FILE [flags]
       icebox roles list [flags]
       icebox roles delete NAME [flags]`,
		about: `Manages execution roles on a running server: a function created with role
arn:aws:iam::<account>:role/NAME runs with temporary credentials that may do what
the policy in FILE allows. Signs like icebox logs.`,
		examples: `icebox roles put worker --policy worker.json
icebox roles list
icebox roles delete worker`,
	},
	"networks": {
		usage: `icebox networks put NAME --cidr CIDR[,CIDR…] [--allow CIDR[,CIDR…]] [--nat] [flags]
       icebox networks list [flags]
       icebox networks delete NAME [flags]`,
		about: `Manages networks on a running server (not with icebox serve --egress none). A function whose
VpcConfig names NAME among its SubnetIds reaches the network's --cidr and --allow
ranges and, only with --nat, the internet under the server's default policy;
nothing else. The host, icebox itself, other sandboxes, loopback and link-local
addresses stay out of reach whatever a network says, and put refuses ranges
that overlap them. delete refuses a network a function or version is in.
Needs root credentials or icebox:*Network rights; signs like icebox logs.`,
		examples: `icebox networks put db --cidr 10.1.0.0/16
icebox networks put app --cidr 10.2.0.0/16 --allow 10.3.4.5/32 --nat
icebox networks list
aws lambda update-function-configuration --function-name f --vpc-config SubnetIds=db,SecurityGroupIds=sg-1
icebox networks delete app`,
	},
	"runtimes": {
		usage: "icebox runtimes [install ID… [--runtimes-dir DIR]]",
		about: `Lists the runtime ids this host can run (provided.al2023, python3.11, nodejs20.x,
java17…) with each interpreter's and AWS SDK's version and, for the others, what is missing.
"install" fetches the pinned AWS SDK of a Python or Node.js runtime now (icebox otherwise does
it on the runtime's first use); with --runtimes-dir it writes the layout that
"icebox serve --runtimes-dir" reads on hosts without registry access.`,
		examples: `icebox runtimes
icebox runtimes install python3.11 nodejs20.x
icebox runtimes install python3.11 --runtimes-dir ./sdks`,
	},
	"java-api-jar": {
		usage: "icebox java-api-jar [--out FILE]",
		about: `Writes the jar of Lambda's Java interfaces (com.amazonaws.services.lambda.runtime)
that java17 handlers compile against. Needs the host's JDK 17.`,
		examples: `icebox java-api-jar --out lambda.jar && javac -cp lambda.jar Hello.java`,
	},
	"version": {
		usage: "icebox version",
		about: `Prints icebox's version: its module version, VCS revision and Go version.`,
		examples: `icebox version
icebox --version`,
	},
}

// newFlagSet makes the flag set of command name (a key of docs, or its first
// word for "keys create"…), whose usage prints the command's help.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	d, ok := docs[strings.Fields(name)[0]]
	if !ok {
		panic("no help for command " + name)
	}
	fs.Usage = func() { printHelp(fs, d) }
	return fs
}

func printHelp(fs *flag.FlagSet, d doc) {
	w := fs.Output()
	fmt.Fprintf(w, "usage: %s\n\n%s\n", d.usage, d.about)
	// Flags without a usage text are hidden: they are for tests.
	shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	fs.VisitAll(func(f *flag.Flag) {
		if f.Usage != "" {
			shown.Var(f.Value, f.Name, f.Usage)
			shown.Lookup(f.Name).DefValue = f.DefValue
		}
	})
	n := 0
	shown.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nflags:")
		shown.SetOutput(w)
		shown.PrintDefaults()
	}
	fmt.Fprintln(w, "\nexamples:")
	for line := range strings.SplitSeq(d.examples, "\n") {
		fmt.Fprintln(w, "  "+line)
	}
}

// parseArgs parses args with fs, flags before, between or after the
// positional arguments (see parseInterspersed), and returns the positionals.
// -h or --help prints the command's help on stdout and exits 0; a bad flag
// prints the error and the help on stderr and exits 2.
func parseArgs(fs *flag.FlagSet, args []string) []string {
	var out bytes.Buffer
	fs.SetOutput(&out)
	pos, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Stdout.Write(out.Bytes())
		os.Exit(0)
	case err != nil:
		os.Stderr.Write(out.Bytes())
		os.Exit(2)
	}
	return pos
}

// version describes this binary from its build information: the module
// version (a pseudo-version from the VCS when built in a checkout), the VCS
// revision and whether the tree had changes, and the Go version.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "icebox (no build information)"
	}
	v := "icebox " + bi.Main.Version
	var rev, at, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		v += " revision " + rev
		if at != "" {
			v += " (" + at + ")"
		}
		if modified == "true" {
			v += " with local changes"
		}
	}
	return v + " " + bi.GoVersion
}

func versionCmd(args []string) error {
	fs := newFlagSet("version")
	if len(parseArgs(fs, args)) != 0 {
		return errors.New("version: usage: icebox version")
	}
	fmt.Println(version())
	return nil
}
