// Package runtimes holds the runtime clients icebox ships into sandboxes for
// Lambda's managed runtimes (Python, Node.js, Java), and knows which runtime
// ids this host can run. The clients are embedded in the icebox binary,
// written under the data directory at start, and mounted read-only at
// /var/runtime; they run on interpreters installed on the host under /usr.
package runtimes

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"

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
	// Command is the runtime's argv inside the sandbox for a handler and
	// memory size.
	Command func(handler string, memoryMB int) []string
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

// Lookup returns a managed runtime this host can run, or an error wrapping
// errdefs.ErrInvalid that names what is missing.
func Lookup(id string) (Runtime, error) {
	r, ok := registry[id]
	if !ok {
		return Runtime{}, fmt.Errorf("The runtime parameter of %s is not supported by icebox (supported: %v): %w", id, IDs(), errdefs.ErrInvalid)
	}
	if _, err := os.Stat(r.Interpreter); err != nil {
		return Runtime{}, fmt.Errorf("The runtime %s cannot run on this icebox host: %s is missing: %w", id, r.Interpreter, errdefs.ErrInvalid)
	}
	return r, nil
}

// Status says whether one runtime id can run on this host, and if not why.
type Status struct {
	ID        string
	Available bool
	Why       string
}

// Statuses lists every runtime id icebox knows with its availability here;
// the OS-only runtimes come first.
func Statuses() []Status {
	var out []Status
	for _, id := range providedIDs {
		out = append(out, Status{ID: id, Available: true, Why: "the function's own bootstrap"})
	}
	for _, id := range IDs() {
		r := registry[id]
		if _, err := os.Stat(r.Interpreter); err != nil {
			out = append(out, Status{ID: id, Why: r.Interpreter + " is missing"})
		} else {
			out = append(out, Status{ID: id, Available: true, Why: r.Interpreter})
		}
	}
	return out
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
// replacing what an older icebox left there.
func Extract(dst string) error {
	if err := os.RemoveAll(dst); err != nil {
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
