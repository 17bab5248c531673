package main

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"icebox/internal/daemon"
	"icebox/internal/model"
	"icebox/runtimes"
)

// run is the runtime-interface-emulator mode: one function named
// "function", served at POST /2015-03-31/functions/function/invocations,
// with icebox's sandboxes, freezing and concurrency.
func run(args []string) error {
	fset := newFlagSet("run")
	runtime := fset.String("runtime", "provided.al2023", "runtime id (see icebox runtimes): python3.11, nodejs20.x, java17…")
	code := fset.String("code", "", "function code: a directory or a zip (required)")
	handler := fset.String("handler", "bootstrap", "handler: FILE.FUNCTION for python3.11 and nodejs20.x, pkg.Class::method for java17")
	memory := fset.Int("memory", model.DefaultMemoryMB, "memory size in MB")
	timeout := fset.Int("timeout", model.DefaultTimeoutSec, "timeout in seconds")
	listen := fset.String("listen", "127.0.0.1:8080", "listen address")
	egress := fset.String("egress", daemon.EgressNAT, "the function's network, as for icebox serve: nat (the world, never the host or private ranges) or none (loopback only)")
	if rest := parseArgs(fset, args); len(rest) > 0 {
		return fmt.Errorf("run: unexpected argument %q (use --code DIR|ZIP)", rest[0])
	}
	if *code == "" {
		return errors.New("run: --code is required (a directory or a zip of the function's code)")
	}
	zipped, err := readCode(*code)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	handlerSet := false
	fset.Visit(func(f *flag.Flag) { handlerSet = handlerSet || f.Name == "handler" })
	switch {
	case runtimes.IsProvided(*runtime):
		if err := checkBootstrap(*code, zipped); err != nil {
			return fmt.Errorf("run: %w", err)
		}
	case !handlerSet:
		return fmt.Errorf("run: --runtime %s needs --handler: FILE.FUNCTION for Python and Node.js (app.handler calls handler in app.py), pkg.Class::method for Java", *runtime)
	}
	if err := needRoot("run"); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "icebox-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Like AWS's runtime interface emulator, single-function mode takes
	// unsigned calls.
	cfg := daemon.Config{Listen: *listen, DataDir: dir, NoAuth: true, FunctionLog: printFunctionLog(), Egress: *egress}
	// Function URLs are no part of single-function mode: their listener
	// takes any free port rather than one --listen did not ask for.
	if host, _, err := net.SplitHostPort(*listen); err == nil {
		cfg.URLListen = net.JoinHostPort(host, "0")
	}
	cfg.BeforeServe = func(d *daemon.Daemon) error {
		_, err := d.Functions.Create(context.Background(), model.Function{
			Name: "function", Runtime: *runtime, Handler: *handler, MemorySize: *memory, Timeout: *timeout,
			Role: "arn:aws:iam::000000000000:role/icebox-run",
		}, zipped)
		return err
	}
	return runDaemon(cfg, func(d *daemon.Daemon) error {
		fmt.Fprintf(os.Stderr, "invoke with: curl -d '{}' http://%s/2015-03-31/functions/function/invocations\n", d.Addr())
		return nil
	})
}

// printFunctionLog shows a function's log lines on stdout as they come, as
// AWS's runtime interface emulator does, control characters escaped as by
// icebox logs. Lines of concurrent calls are written whole.
func printFunctionLog() func(group, line string) {
	var mu sync.Mutex
	return func(_, line string) {
		line = escapeControl(line) + "\n"
		mu.Lock()
		defer mu.Unlock()
		os.Stdout.WriteString(line)
	}
}

// checkBootstrap fails when the code of a provided runtime (a zip) lacks a
// bootstrap at its top, with a hint when it looks like code for a managed
// runtime: sandboxes would only report "Couldn't find valid bootstrap(s)"
// on the first call.
func checkBootstrap(path string, zipped []byte) error {
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		return fmt.Errorf("%s: not a zip: %w", path, err)
	}
	hints := map[string]string{
		".py":  "for Python code pass --runtime python3.11 --handler %s.FUNCTION",
		".js":  "for Node.js code pass --runtime nodejs20.x --handler %s.FUNCTION",
		".mjs": "for Node.js code pass --runtime nodejs20.x --handler %s.FUNCTION",
	}
	hint := ""
	for _, f := range zr.File {
		if f.Name == "bootstrap" && !f.FileInfo().IsDir() {
			return nil
		}
		ext := filepath.Ext(f.Name)
		if h, ok := hints[ext]; ok && hint == "" && !strings.Contains(f.Name, "/") {
			hint = fmt.Sprintf(h, strings.TrimSuffix(f.Name, ext))
		}
	}
	if hint == "" {
		hint = "give an executable named bootstrap (provided.al2023), or pass --runtime and --handler (see icebox runtimes)"
	}
	return fmt.Errorf("no bootstrap in %s: %s", path, hint)
}

// readCode returns a zip of the code at path (a zip file or a directory).
func readCode(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return os.ReadFile(path)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		h, err := zip.FileInfoHeader(info)
		if err != nil {
			return err
		}
		h.Name, h.Method = filepath.ToSlash(rel), zip.Deflate
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
