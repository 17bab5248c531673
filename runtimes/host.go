package runtimes

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"icebox/internal/errdefs"
)

// HostConfig says where one host's runtimes are.
type HostConfig struct {
	// Dir is where Extract wrote the runtime clients (the data dir's
	// runtime/); each family's SDK is linked under it, into the directory
	// sandboxes see at /var/runtime. Empty: the host only reports (the
	// `icebox runtimes` command).
	Dir string
	// CacheDir is the host-wide cache the SDKs are installed into once
	// (CacheDir/sdk), and linked from into every data dir.
	CacheDir string
	// RuntimesDir, when set, holds the SDKs pre-installed (for hosts that
	// cannot reach the package registries): RuntimesDir/python/site-packages
	// and RuntimesDir/nodejs/node_modules, as `icebox runtimes install
	// --runtimes-dir` writes them. icebox then never downloads.
	RuntimesDir string
	// Paths points runtime ids at interpreters other than their default
	// (--runtime-path nodejs22.x=/usr/local/bin/node22).
	Paths map[string]string
	// Log gets the SDK installs' progress. Default: discarded.
	Log *slog.Logger
}

// sandboxVisible are the host directories every sandbox mounts read-only;
// an interpreter elsewhere cannot run inside one.
var sandboxVisible = []string{"/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/"}

// Validate checks the runtime paths: known, movable ids, and interpreters
// a sandbox can see.
func (c *HostConfig) Validate() error {
	for id, path := range c.Paths {
		r, ok := registry[id]
		switch {
		case !ok:
			return fmt.Errorf("runtime path %s=%s: %w", id, path, unsupported(id))
		case r.at == nil:
			return fmt.Errorf("runtime path %s=%s: %s runs on the JDK under %s; it cannot be moved: %w", id, path, id, filepath.Dir(filepath.Dir(r.Interpreter)), errdefs.ErrInvalid)
		case !filepath.IsAbs(path) || !visible(path):
			return fmt.Errorf("runtime path %s=%s: the interpreter must be an absolute path under %s, the host directories sandboxes mount: %w",
				id, path, strings.Join(sandboxVisible, ", "), errdefs.ErrInvalid)
		}
		if real, err := filepath.EvalSymlinks(path); err != nil {
			return fmt.Errorf("runtime path %s=%s: %w", id, path, err)
		} else if !visible(real) {
			return fmt.Errorf("runtime path %s=%s: it links to %s, which sandboxes cannot see: %w", id, path, real, errdefs.ErrInvalid)
		}
	}
	return nil
}

func visible(path string) bool {
	for _, d := range sandboxVisible {
		if strings.HasPrefix(path, d) {
			return true
		}
	}
	return false
}

// Host is the managed runtimes one icebox host runs: the registry's ids on
// the interpreters they were pointed at, whose versions it checks, and the
// SDK of each family, which it provisions on first use.
type Host struct {
	cfg      HostConfig
	runtimes map[string]Runtime
	sdks     map[string]*sdkState // by family

	mu sync.Mutex
	// probes caches each interpreter's version by path, valid while the
	// file's identity (size, modification time) stays the same.
	probes map[string]probe
}

type probe struct {
	size    int64
	mtime   time.Time
	version string
	err     error
}

// NewHost validates cfg and builds the host's registry.
func NewHost(cfg HostConfig) (*Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	h := &Host{cfg: cfg, runtimes: map[string]Runtime{}, sdks: map[string]*sdkState{}, probes: map[string]probe{}}
	for id, r := range registry {
		if path, ok := cfg.Paths[id]; ok {
			r = r.at(path)
		}
		h.runtimes[id] = r
	}
	for family := range sdks {
		h.sdks[family] = &sdkState{}
	}
	return h, nil
}

// Dir is where the runtime clients are (HostConfig.Dir).
func (h *Host) Dir() string { return h.cfg.Dir }

// Lookup returns a managed runtime this host can run, or an error wrapping
// errdefs.ErrInvalid that names what is missing: an unknown id, a missing
// interpreter, or one of another version.
func (h *Host) Lookup(id string) (Runtime, error) {
	r, ok := h.runtimes[id]
	if !ok {
		return Runtime{}, unsupported(id)
	}
	version, err := h.interpreterVersion(r)
	if err != nil {
		return Runtime{}, fmt.Errorf("The runtime %s cannot run on this icebox host: %w", id, err)
	}
	if !versionMatches(r.Version, version) {
		return Runtime{}, fmt.Errorf("The runtime %s cannot run on this icebox host: %s is %s %s, not %s (point %s at one with --runtime-path %s=PATH): %w",
			id, r.Interpreter, familyName(r.Family), version, r.Version, id, id, errdefs.ErrInvalid)
	}
	return r, nil
}

// versionMatches says whether an interpreter's full version (3.11.2,
// 20.20.2) is the one an id promises (3.11, 20).
func versionMatches(want, got string) bool {
	return got == want || strings.HasPrefix(got, want+".")
}

func familyName(family string) string {
	switch family {
	case "python":
		return "Python"
	case "nodejs":
		return "Node.js"
	case "java":
		return "Java"
	}
	return family
}

// interpreterVersion reports r's interpreter's full version, asking the
// interpreter once per file: a cold start then costs one stat.
func (h *Host) interpreterVersion(r Runtime) (string, error) {
	fi, err := os.Stat(r.Interpreter)
	if err != nil {
		return "", fmt.Errorf("%s is missing: %w", r.Interpreter, errdefs.ErrInvalid)
	}
	h.mu.Lock()
	p, ok := h.probes[r.Interpreter]
	h.mu.Unlock()
	if ok && p.size == fi.Size() && p.mtime.Equal(fi.ModTime()) {
		return p.version, p.err
	}
	p = probe{size: fi.Size(), mtime: fi.ModTime()}
	p.version, p.err = askVersion(r)
	h.mu.Lock()
	h.probes[r.Interpreter] = p
	h.mu.Unlock()
	return p.version, p.err
}

// askVersion runs `python --version` or `node --version`, or reads a
// JDK's release file: "3.11.2", "20.20.2", "17.0.15".
func askVersion(r Runtime) (string, error) {
	if r.Family == "java" {
		home := filepath.Dir(filepath.Dir(r.Interpreter))
		f, err := os.Open(filepath.Join(home, "release"))
		if err != nil {
			return "", fmt.Errorf("%s has no release file: %w", home, errdefs.ErrInvalid)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "JAVA_VERSION="); ok {
				return strings.Trim(v, `"`), nil
			}
		}
		return "", fmt.Errorf("%s/release names no JAVA_VERSION: %w", home, errdefs.ErrInvalid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.Interpreter, "--version")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %v: %w", r.Interpreter, err, errdefs.ErrInvalid)
	}
	// "Python 3.11.2" or "v20.20.2".
	v := strings.TrimSpace(string(out))
	v = strings.TrimPrefix(strings.TrimPrefix(v, "Python "), "v")
	if v == "" || strings.ContainsAny(v, " \n") {
		return "", fmt.Errorf("%s --version said %q: %w", r.Interpreter, out, errdefs.ErrInvalid)
	}
	return v, nil
}

// Status says whether one runtime id can run on this host, and if not why.
type Status struct {
	ID        string
	Available bool
	// Why is the interpreter and its version, or what is missing.
	Why string
	// SDK is the SDK functions of this runtime get: the version found, or
	// the pinned version and how it gets installed. Empty for the OS-only
	// runtimes and Java.
	SDK string
}

// Statuses lists every runtime id icebox knows with its availability here;
// the OS-only runtimes come first.
func (h *Host) Statuses() []Status {
	var out []Status
	for _, id := range providedIDs {
		out = append(out, Status{ID: id, Available: true, Why: "the function's own bootstrap"})
	}
	for _, id := range IDs() {
		r := h.runtimes[id]
		s := Status{ID: id, SDK: h.sdkStatus(r)}
		if _, err := h.Lookup(id); err != nil {
			s.Why = strings.TrimSuffix(strings.TrimPrefix(err.Error(), "The runtime "+id+" cannot run on this icebox host: "), ": "+errdefs.ErrInvalid.Error())
		} else {
			version, _ := h.interpreterVersion(r)
			s.Available, s.Why = true, fmt.Sprintf("%s (%s %s)", r.Interpreter, familyName(r.Family), version)
		}
		out = append(out, s)
	}
	return out
}

// defaultHost is a host with every id on its default interpreter, for
// Lookup.
var defaultHost = sync.OnceValue(func() *Host {
	h, _ := NewHost(HostConfig{}) // no paths: nothing to fail
	return h
})

// Lookup is Host.Lookup on the default interpreters: whether this host can
// run id without --runtime-path.
func Lookup(id string) (Runtime, error) { return defaultHost().Lookup(id) }

// RuntimeVersion names the runtime a function of id runs on, for the
// INIT_START line: Lambda's "python:3.13.v14" there, the family and the
// interpreter's own version here ("python:3.12.3"), or the OS-only
// runtime's ("provided:al2023").
func (h *Host) RuntimeVersion(id string) string {
	if IsProvided(id) {
		return strings.Replace(id, ".", ":", 1)
	}
	r, ok := h.runtimes[id]
	if !ok {
		return id
	}
	v, err := h.interpreterVersion(r)
	if err != nil {
		v = r.Version
	}
	return r.Family + ":" + v
}
