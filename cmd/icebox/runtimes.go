package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"icebox/internal/daemon"
	"icebox/runtimes"
)

// runtimesCmd lists the runtime ids this host can run, and why others
// can't, with each one's interpreter and SDK; `icebox runtimes install ID…`
// installs runtimes' SDKs ahead of their first use.
func runtimesCmd(args []string) error {
	if len(args) > 0 && args[0] == "install" {
		return runtimesInstall(args[1:])
	}
	fs := newFlagSet("runtimes")
	cfg := runtimeHostFlags(fs)
	if len(parseArgs(fs, args)) != 0 {
		return errors.New("runtimes: usage: icebox runtimes [install ID…]")
	}
	h, err := runtimes.NewHost(*cfg)
	if err != nil {
		return fmt.Errorf("runtimes: %w", err)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RUNTIME\tAVAILABLE\tINTERPRETER\tSDK")
	for _, s := range h.Statuses() {
		avail := "yes"
		if !s.Available {
			avail = "no"
		}
		sdk := s.SDK
		if sdk == "" {
			sdk = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.ID, avail, s.Why, sdk)
	}
	return w.Flush()
}

// runtimesInstall installs the SDKs of runtime ids into the host-wide
// cache, or with --runtimes-dir into a directory to copy to hosts that
// cannot reach the package registries, showing the installers' progress.
func runtimesInstall(args []string) error {
	fs := newFlagSet("runtimes")
	cfg := runtimeHostFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: icebox runtimes install [--cache-dir DIR] [--runtimes-dir DIR] ID…

Installs the AWS SDK of each runtime id (boto3 for Python, the @aws-sdk v3
clients for Node.js) at the versions this icebox pins, with pip or npm, into
the host-wide cache that icebox serve links it from; icebox serve does the same
on a runtime's first use. With --runtimes-dir, also writes DIR/python/site-packages
and DIR/nodejs/node_modules, for icebox serve --runtimes-dir DIR on hosts that
cannot reach the package registries.

flags:
`)
		fs.PrintDefaults()
	}
	ids := parseArgs(fs, args)
	if len(ids) == 0 {
		return errors.New("runtimes install: name the runtime ids, e.g. icebox runtimes install python3.11 nodejs20.x")
	}
	if cfg.RuntimesDir != "" {
		abs, err := filepath.Abs(cfg.RuntimesDir)
		if err != nil {
			return err
		}
		cfg.RuntimesDir = abs
	}
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	h, err := runtimes.NewHost(*cfg)
	if err != nil {
		return fmt.Errorf("runtimes install: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	for _, id := range ids {
		if err := h.Install(ctx, id); err != nil {
			return fmt.Errorf("runtimes install %s: %w", id, err)
		}
	}
	return nil
}

// runtimeHostFlags are the flags that say where runtimes are, shared by
// `icebox runtimes` and `icebox runtimes install`.
func runtimeHostFlags(fs *flag.FlagSet) *runtimes.HostConfig {
	cfg := &runtimes.HostConfig{Paths: map[string]string{}}
	fs.StringVar(&cfg.CacheDir, "cache-dir", daemon.DefaultCacheDir(), "host-wide cache the SDKs are installed into")
	fs.StringVar(&cfg.RuntimesDir, "runtimes-dir", "", "directory of pre-installed SDKs (python/site-packages, nodejs/node_modules); install writes there")
	fs.Var(runtimePaths(cfg.Paths), "runtime-path", "ID=PATH: run runtime ID on the interpreter at PATH (repeatable)")
	return cfg
}

// runtimePaths is the repeatable --runtime-path ID=PATH flag.
type runtimePaths map[string]string

func (p runtimePaths) String() string {
	var out []string
	for id, path := range p {
		out = append(out, id+"="+path)
	}
	return strings.Join(out, ",")
}

func (p runtimePaths) Set(v string) error {
	id, path, ok := strings.Cut(v, "=")
	if !ok || id == "" || path == "" {
		return fmt.Errorf("want ID=PATH, e.g. nodejs22.x=/usr/local/bin/node22")
	}
	p[id] = path
	return nil
}
