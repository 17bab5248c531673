package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"icebox/internal/daemon"
)

func serveFlags(fs *flag.FlagSet) *daemon.Config {
	cfg := &daemon.Config{}
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:9070", "API listen address")
	fs.StringVar(&cfg.DataDir, "data-dir", daemon.DefaultDataDir(), "data directory (engine files, unpacked code)")
	fs.StringVar(&cfg.NatsURL, "nats-url", "", "external NATS JetStream URL (default: embedded engine)")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 0, "how long an idle environment is kept (default 10m)")
	fs.StringVar(&cfg.Region, "region", "us-east-1", "region in ARNs and AWS_REGION")
	fs.StringVar(&cfg.AccountID, "account-id", "000000000000", "account id in ARNs")
	return cfg
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	cfg := serveFlags(fs)
	fs.Parse(args)
	return runDaemon(*cfg, nil)
}

// runDaemon serves until SIGINT/SIGTERM, then shuts down in order. ready,
// if set, runs once the daemon is up.
func runDaemon(cfg daemon.Config, ready func(*daemon.Daemon) error) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := daemon.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	if ready != nil {
		if err := ready(d); err != nil {
			d.Shutdown()
			return err
		}
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-d.Done():
		log.Error("server stopped", "err", err)
	}
	return d.Shutdown()
}
