package runtimes

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
)

// Python runs icebox's own runtime client (python/bootstrap.py, stdlib
// only) on the host's CPython. Every version shares the client; an id is
// offered only where its interpreter is installed and is that version.
func pythonRuntimes() []Runtime {
	var out []Runtime
	for _, version := range []string{"3.11", "3.12", "3.13", "3.14"} {
		out = append(out, python(version, "/usr/bin/python"+version))
	}
	return out
}

func python(version, interpreter string) Runtime {
	// -u: print() and logging reach the function's log as they happen, in
	// order with the platform's lines, as on Lambda.
	argv := []string{interpreter, "-u", "/var/runtime/bootstrap.py"}
	return Runtime{
		ID:          "python" + version,
		Family:      "python",
		Interpreter: interpreter,
		Version:     version,
		Command:     func(string, int) []string { return append([]string(nil), argv...) },
		at:          func(interpreter string) Runtime { return python(version, interpreter) },
	}
}

// pythonInstall installs the pinned SDK with pip into work/site-packages:
// every package pinned with its hash, wheels only, no resolution. pip
// writes the bytecode of its own interpreter; every other Python here gets
// its own written too, since /var/runtime is read-only in a sandbox and
// botocore compiled at each cold start would cost it hundreds of ms.
func pythonInstall(ctx context.Context, h *Host, r Runtime, work string, out io.Writer) error {
	pythons := []string{r.Interpreter}
	for _, id := range IDs() {
		if o, err := h.Lookup(id); err == nil && o.Family == "python" && o.Interpreter != r.Interpreter {
			pythons = append(pythons, o.Interpreter)
		}
	}
	pip := ""
	for _, py := range pythons {
		if exec.CommandContext(ctx, py, "-m", "pip", "--version").Run() == nil {
			pip = py
			break
		}
	}
	if pip == "" {
		return fmt.Errorf("none of %s has pip (Debian: apt-get install python3-pip)", strings.Join(pythons, ", "))
	}
	target := filepath.Join(work, "site-packages")
	err := run(ctx, work, out, pip, "-m", "pip", "install", "--no-deps", "--only-binary=:all:", "--require-hashes",
		"--progress-bar", "off", "--no-warn-script-location", "--target", target, "-r", filepath.Join(work, "requirements.txt"))
	if err != nil {
		return err
	}
	for _, py := range pythons {
		if py != pip {
			// Best effort: a module that does not compile on one version
			// is compiled by that version at import, as without this.
			_ = run(ctx, work, out, py, "-m", "compileall", "-q", "-j", "0", target)
		}
	}
	return nil
}

// pythonPinned is the manifest's boto3 and botocore.
func pythonPinned() string {
	b, _ := sdkFiles.ReadFile("sdk/python/requirements.txt")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, pkg := range []string{"boto3", "botocore"} {
			if v, ok := strings.CutPrefix(line, pkg+"=="); ok {
				out = append(out, pkg+" "+strings.Fields(v)[0])
			}
		}
	}
	return strings.Join(out, ", ")
}

// pythonFound is the boto3 and botocore installed in tree, from their
// .dist-info directories; empty without boto3.
func pythonFound(tree string) string {
	var out []string
	for _, pkg := range []string{"boto3", "botocore"} {
		m, _ := filepath.Glob(filepath.Join(tree, pkg+"-*.dist-info"))
		if len(m) == 1 {
			v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m[0]), pkg+"-"), ".dist-info")
			out = append(out, pkg+" "+v)
		} else if pkg == "boto3" {
			return ""
		}
	}
	return strings.Join(out, ", ")
}
