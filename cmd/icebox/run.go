package main

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"icebox/internal/daemon"
	"icebox/internal/model"
)

// run is the runtime-interface-emulator mode: one function named
// "function", served at POST /2015-03-31/functions/function/invocations,
// with icebox's sandboxes, freezing and concurrency.
func run(args []string) error {
	fset := flag.NewFlagSet("run", flag.ExitOnError)
	runtime := fset.String("runtime", "provided.al2023", "runtime id")
	code := fset.String("code", "", "function code: a directory or a zip (required)")
	handler := fset.String("handler", "bootstrap", "handler")
	memory := fset.Int("memory", model.DefaultMemoryMB, "memory size in MB")
	timeout := fset.Int("timeout", model.DefaultTimeoutSec, "timeout in seconds")
	listen := fset.String("listen", "127.0.0.1:8080", "listen address")
	fset.Parse(args)
	if fset.NArg() > 0 {
		return fmt.Errorf("run: unexpected argument %q (use --code DIR|ZIP)", fset.Arg(0))
	}
	if *code == "" {
		return errors.New("run: --code is required")
	}
	zipped, err := readCode(*code)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "icebox-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Like AWS's runtime interface emulator, single-function mode takes
	// unsigned calls.
	cfg := daemon.Config{Listen: *listen, DataDir: dir, NoAuth: true}
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
