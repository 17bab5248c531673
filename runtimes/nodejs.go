package runtimes

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// Node.js runs the client in nodejs/ (index.cjs) on the host's node. Each
// id names a major version; /usr/bin/node is offered as the one id its
// version matches, and --runtime-path points the others at other builds.
func nodeRuntimes() []Runtime {
	var out []Runtime
	for _, major := range []string{"20", "22", "24"} {
		out = append(out, node(major, "/usr/bin/node"))
	}
	return out
}

func node(major, interpreter string) Runtime {
	return Runtime{
		ID:          "nodejs" + major + ".x",
		Family:      "nodejs",
		Interpreter: interpreter,
		Version:     major,
		Command:     nodeCommand(interpreter),
		at:          func(interpreter string) Runtime { return node(major, interpreter) },
	}
}

// nodeCommand sizes V8's heap to the function's memory, as Lambda's Node.js
// bootstrap does: without flags V8 plans for far more heap than a small
// function has, and the cgroup kills it before the garbage collector works
// hard. The old generation gets 85% of MemorySize; the young generation's
// semi-spaces 5%, no more than V8's own default of 16 MB.
func nodeCommand(node string) func(handler string, memoryMB int) []string {
	return func(_ string, memoryMB int) []string {
		semi := min(max(memoryMB*5/100, 1), 16)
		old := max(memoryMB*85/100, 16)
		return []string{
			node,
			"--max-semi-space-size=" + strconv.Itoa(semi),
			"--max-old-space-size=" + strconv.Itoa(old),
			"/var/runtime/index.cjs",
		}
	}
}

// nodeInstall runs `npm ci` on the pinned package.json and
// package-lock.json: exactly the locked tree, integrity-checked, without
// install scripts, into work/node_modules. The npm next to the runtime's
// node is preferred, then the one on PATH.
func nodeInstall(ctx context.Context, _ *Host, r Runtime, work string, out io.Writer) error {
	npm := filepath.Join(filepath.Dir(r.Interpreter), "npm")
	if !exists(npm) {
		var err error
		if npm, err = exec.LookPath("npm"); err != nil {
			return fmt.Errorf("npm is missing (Debian: apt-get install npm)")
		}
	}
	return run(ctx, work, out, npm, "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund",
		"--no-progress", "--loglevel=http")
}

// nodeSDKClient is the package `icebox runtimes` reports the SDK by.
const nodeSDKClient = "@aws-sdk/client-lambda"

// nodePinned is the manifest's client-lambda and how many more packages.
func nodePinned() string {
	var pkg struct{ Dependencies map[string]string }
	b, _ := sdkFiles.ReadFile("sdk/nodejs/package.json")
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "unreadable manifest: " + err.Error()
	}
	return fmt.Sprintf("%s %s and %d more @aws-sdk packages", nodeSDKClient, pkg.Dependencies[nodeSDKClient], len(pkg.Dependencies)-1)
}

// nodeFound is the client-lambda installed in tree (a node_modules), and
// how many @aws-sdk clients there are; empty without client-lambda.
func nodeFound(tree string) string {
	var pkg struct{ Version string }
	b, err := os.ReadFile(filepath.Join(tree, nodeSDKClient, "package.json"))
	if err != nil || json.Unmarshal(b, &pkg) != nil {
		return ""
	}
	clients, _ := filepath.Glob(filepath.Join(tree, "@aws-sdk", "client-*"))
	return fmt.Sprintf("%s %s (%d @aws-sdk clients)", nodeSDKClient, pkg.Version, len(clients))
}
