package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"icebox/internal/daemon"
)

func serveFlags(fs *flag.FlagSet) *daemon.Config {
	cfg := &daemon.Config{}
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:9070", "API listen address")
	fs.StringVar(&cfg.URLListen, "url-listen", "", "function URL listen address; URLs are http://<url-id>.lambda-url.<region>.localhost:<port>/ (default: --listen's host, the next port: 127.0.0.1:9071)")
	fs.StringVar(&cfg.DataDir, "data-dir", daemon.DefaultDataDir(), "data directory (engine files, unpacked code)")
	fs.StringVar(&cfg.CacheDir, "cache-dir", daemon.DefaultCacheDir(), "host-wide cache (compiled Java client, the runtimes' SDKs)")
	fs.StringVar(&cfg.RuntimesDir, "runtimes-dir", "", "directory of pre-installed runtime SDKs (python/site-packages, nodejs/node_modules): nothing is downloaded")
	cfg.RuntimePaths = map[string]string{}
	fs.Var(runtimePaths(cfg.RuntimePaths), "runtime-path", "ID=PATH: run runtime ID on the interpreter at PATH, e.g. nodejs22.x=/usr/local/bin/node22 (repeatable)")
	fs.StringVar(&cfg.NatsURL, "nats-url", "", "external NATS JetStream URL (default: embedded engine)")
	fs.IntVar(&cfg.Replicas, "replicas", 0, "copies of every stream, KV bucket and object store on a --nats-url cluster (1..5); raises existing stores, never lowers them (default 1 for new stores)")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 0, "how long an idle environment is kept (default 10m)")
	fs.StringVar(&cfg.Region, "region", "us-east-1", "region in ARNs and AWS_REGION")
	fs.StringVar(&cfg.AccountID, "account-id", "000000000000", "account id in ARNs")
	fs.IntVar(&cfg.AccountConcurrency, "account-concurrency", 100, "concurrent executions allowed across all functions")
	fs.IntVar(&cfg.UnreservedMin, "unreserved-min", 10, "concurrency that reservations must leave unreserved")
	fs.IntVar(&cfg.MemoryBudgetMB, "memory-budget", 0, "MB of function memory the host may hold in environments (default 70% of RAM)")
	fs.IntVar(&cfg.ScaleBurst, "scale-burst", 1000, "new environments a function may get at once")
	fs.Float64Var(&cfg.ScaleRate, "scale-rate", 100, "new environments per second a function regains after a burst")
	fs.BoolVar(&cfg.NoAuth, "no-auth", false, "accept unsigned requests and treat every caller as root (insecure)")
	fs.BoolVar(&cfg.MetricsAuth, "metrics-auth", false, "require a signed request (icebox:GetMetrics) for /metrics")
	fs.StringVar(&cfg.Egress, "egress", daemon.EgressNAT, "functions' network: nat (the world through NAT; never the host, other sandboxes or private ranges) or none (loopback only)")
	fs.Func("egress-allow", "CIDR[,CIDR…] (or addresses) that --egress nat opens although private (say a database's 10.1.2.3)", func(v string) error {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			p, err := netip.ParsePrefix(part)
			if a, aerr := netip.ParseAddr(part); err != nil && aerr == nil {
				p, err = netip.PrefixFrom(a, a.BitLen()), nil
			}
			if err != nil {
				return fmt.Errorf("want an IPv4 CIDR or address: %w", err)
			}
			cfg.EgressAllow = append(cfg.EgressAllow, p)
		}
		return nil
	})
	fs.Func("egress-dns", "ADDR[,ADDR…]: the nameservers functions' /etc/resolv.conf names under --egress nat (default the host's IPv4 ones)", func(v string) error {
		for _, part := range strings.Split(v, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(part))
			if err != nil {
				return fmt.Errorf("want an IPv4 address: %w", err)
			}
			cfg.EgressDNS = append(cfg.EgressDNS, a)
		}
		return nil
	})
	fs.Func("async-retry-delays", "waits before the retries of a failed asynchronous event (default 1m,2m)", func(v string) error {
		cfg.AsyncRetryDelays = nil
		for _, part := range strings.Split(v, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(part))
			if err != nil || d < 0 {
				return fmt.Errorf("bad delay %q", part)
			}
			cfg.AsyncRetryDelays = append(cfg.AsyncRetryDelays, d)
		}
		return nil
	})
	// How long an event a killed node left in progress waits before
	// another node runs it again (at least once): bounds redelivery.
	fs.Func(ackWaitFlag, "how long an asynchronous event a killed node was running waits before another node runs it again; delivery is at least once (default 30s)", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("bad duration %q", v)
		}
		cfg.AsyncAckWait = d
		return nil
	})
	return cfg
}

const ackWaitFlag = "async-ack-wait"

func serve(args []string) error {
	fs := newFlagSet("serve")
	cfg := serveFlags(fs)
	if rest := parseArgs(fs, args); len(rest) > 0 {
		return fmt.Errorf("serve: unexpected argument %q (flags only, see icebox serve --help)", rest[0])
	}
	// Paths below the data dir are mounted into sandboxes, whose mount
	// namespace has another working directory: make it absolute.
	if cfg.DataDir != "" {
		abs, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			return fmt.Errorf("serve: data dir: %w", err)
		}
		cfg.DataDir = abs
	}
	cfg.RootAccessKeyID = os.Getenv("ICEBOX_ROOT_ACCESS_KEY_ID")
	cfg.RootSecretAccessKey = os.Getenv("ICEBOX_ROOT_SECRET_ACCESS_KEY")
	if (cfg.RootAccessKeyID == "") != (cfg.RootSecretAccessKey == "") {
		return errors.New("serve: set both ICEBOX_ROOT_ACCESS_KEY_ID and ICEBOX_ROOT_SECRET_ACCESS_KEY, or neither")
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if err := needRoot("serve"); err != nil {
		return err
	}
	ownRoot := cfg.RootAccessKeyID == ""
	return runDaemon(*cfg, func(d *daemon.Daemon) error { return showRoot(d, ownRoot) })
}

// nextPort suggests the port after addr's, as " such as HOST:PORT+1".
func nextPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n <= 0 || n >= 65535 {
		return ""
	}
	return " such as --listen " + net.JoinHostPort(host, strconv.Itoa(n+1))
}

// needRoot fails unless icebox runs as root, before anything is written:
// sandboxes need namespaces, cgroups and mounts.
func needRoot(cmd string) error {
	if os.Geteuid() == 0 {
		return nil
	}
	return fmt.Errorf("%s: icebox must run as root (uid %d is not): its sandboxes need namespaces, cgroups and mounts; try sudo icebox %s", cmd, os.Geteuid(), cmd)
}

// showRoot prints generated root credentials once, with how to use them;
// on later starts it says where they are kept (unless they came from the
// environment, ownRoot false). It warns when authentication is off.
func showRoot(d *daemon.Daemon, ownRoot bool) error {
	if d.NoAuth() {
		fmt.Fprintln(os.Stderr, "WARNING: --no-auth: requests are not authenticated; anyone who can reach "+d.Addr()+" is root.")
	}
	id, secret, created := d.RootCredentials()
	if created {
		fmt.Printf(`icebox generated root credentials (saved in %s, mode 0600; shown only now):

    export AWS_ACCESS_KEY_ID=%s
    export AWS_SECRET_ACCESS_KEY=%s
    export AWS_DEFAULT_REGION=%s
    aws --endpoint-url http://%s lambda list-functions

`, d.RootCredentialsPath(), id, secret, d.Region(), d.Addr())
	} else if ownRoot {
		// The file is in the AWS shared-credentials format, profile icebox.
		fmt.Printf(`icebox root credentials are in %[1]s (the icebox CLI on this host reads them; for the AWS CLI:
    export AWS_SHARED_CREDENTIALS_FILE=%[1]s AWS_PROFILE=icebox AWS_DEFAULT_REGION=%[2]s)

`, d.RootCredentialsPath(), d.Region())
	}
	return nil
}

// runDaemon serves until SIGINT/SIGTERM, then shuts down in order. ready,
// if set, runs once the daemon is up.
func runDaemon(cfg daemon.Config, ready func(*daemon.Daemon) error) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := daemon.Start(ctx, cfg, log)
	if errors.Is(err, daemon.ErrURLListen) {
		return fmt.Errorf("%w: stop what listens there, or pass --url-listen with a free address", err)
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w: something already listens on %s (another icebox?): stop it, or pass --listen with a free address%s", err, cfg.Listen, nextPort(cfg.Listen))
	}
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
		// A second signal now ends the process at once instead of waiting
		// for in-flight calls (up to the shutdown timeout).
		stop()
		log.Info("shutting down")
	case err := <-d.Done():
		log.Error("server stopped", "err", err)
	}
	return d.Shutdown()
}
