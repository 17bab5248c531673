// Package runtimes holds the runtime clients icebox ships into sandboxes for
// Lambda's managed runtimes (Python, Node.js, Java), and knows which runtime
// ids this host can run (Host). The clients are embedded in the icebox
// binary, written under the data directory at start, and mounted read-only
// at /var/runtime; they run on interpreters installed on the host under
// /usr, each id only on an interpreter of its version. The AWS SDK of each
// language is provided next to its client, installed once per host from
// the versions pinned in sdk/ (sdk.go).
package runtimes

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"icebox/internal/errdefs"
)

//go:embed all:python all:nodejs all:java
var files embed.FS

// Runtime is one managed runtime id.
type Runtime struct {
	ID string // Lambda's runtime id, e.g. "python3.11"
	// Family names the client directory mounted at /var/runtime.
	Family string
	// Interpreter is the host path the runtime needs; it must live under a
	// directory the sandbox mounts (/usr, /bin, /lib…).
	Interpreter string
	// Version is the interpreter version the id promises: "3.11" for
	// python3.11, "20" for nodejs20.x. The interpreter's own version must be
	// this one or start with it and a dot.
	Version string
	// Command is the runtime's argv inside the sandbox for a handler and
	// memory size.
	Command func(handler string, memoryMB int) []string
	// at is the same runtime on another interpreter (--runtime-path); nil
	// when the id's interpreter cannot be moved (Java: the JDK's home).
	at func(interpreter string) Runtime
}

// registry lists every managed runtime icebox knows, from each language's
// list.
var registry = func() map[string]Runtime {
	m := map[string]Runtime{}
	for _, list := range [][]Runtime{pythonRuntimes(), nodeRuntimes(), javaRuntimes()} {
		for _, r := range list {
			m[r.ID] = r
		}
	}
	return m
}()

// providedIDs are the OS-only runtimes: the function brings its own
// bootstrap ("provided" is Amazon Linux 1's, still accepted).
var providedIDs = []string{"provided.al2023", "provided.al2", "provided"}

// IsProvided says whether id is an OS-only runtime.
func IsProvided(id string) bool { return slices.Contains(providedIDs, id) }

// unsupported is the error for a runtime id icebox does not know. Lambda's
// retired Go runtime gets Lambda's own advice: Go functions are built as a
// bootstrap executable for an OS-only runtime.
func unsupported(id string) error {
	ids := append(append([]string(nil), providedIDs[:2]...), IDs()...)
	msg := fmt.Sprintf("The runtime parameter of %s is not supported by icebox (supported: %s)", id, strings.Join(ids, ", "))
	if id == "go1.x" {
		msg += "; go1.x is retired: build the function as an executable named bootstrap (GOOS=linux, -tags lambda.norpc) and use provided.al2023"
	}
	return fmt.Errorf("%s: %w", msg, errdefs.ErrInvalid)
}

// IDs lists the managed runtime ids icebox knows, sorted.
func IDs() []string {
	out := make([]string, 0, len(registry))
	for id := range registry {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Extract writes the runtime clients under dst (dst/python, dst/nodejs…),
// replacing what an older icebox left there, except the SDKs installed
// under them (dst/python/site-packages, dst/nodejs/node_modules): those are
// checked against their manifests when a runtime is first used (Host.Ensure),
// so a restart does not copy them again.
func Extract(dst string) error {
	if err := removeAllBut(dst); err != nil {
		return err
	}
	return fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, path)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// removeAllBut empties dst except each family's installed SDK.
func removeAllBut(dst string) error {
	top, err := os.ReadDir(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range top {
		dir := filepath.Join(dst, e.Name())
		sdk, ok := sdks[e.Name()]
		if !ok || !e.IsDir() {
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			continue
		}
		inner, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, f := range inner {
			if f.Name() != sdk.subdir {
				if err := os.RemoveAll(filepath.Join(dir, f.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
