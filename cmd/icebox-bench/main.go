// Command icebox-bench measures icebox next to the machine's floors (see
// docs/benchmarks.md). It is a binary of its own so that the daemon, which
// every sandbox's init re-executes, does not link the benchmark's SDK
// client and plotting packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"icebox/internal/bench"
	sblinux "icebox/internal/sandbox/linux"
)

// benchOptions is what `icebox-bench` was told, before any zip is built.
type benchOptions struct {
	cfg     bench.Config
	zip     string // the echo function's zip; default: built from the source tree
	json    bool
	plotDir string
	profile string // CPU profile of the whole run (server included, in-process)
}

// parseBench turns the command line into options. Credentials for
// --endpoint come from the usual AWS variables.
func parseBench(args []string, stderr io.Writer) (benchOptions, error) {
	fs := flag.NewFlagSet("icebox-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o benchOptions
	full := fs.Bool("full", false, "the issue's run: 1,000 idle environments and more samples (several minutes)")
	endpoint := fs.String("endpoint", "", "measure a running icebox at this URL (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) instead of one started in-process")
	fs.StringVar(&o.zip, "zip", "", "the echo function's zip (a provided.al2023 bootstrap returning its event); default: build test/e2e/testdata/echo")
	fs.BoolVar(&o.json, "json", false, "print the rows as JSON instead of a table")
	fs.StringVar(&o.plotDir, "plot", "", "write PNG plots (latency vs concurrency, cold start vs environments alive) into this directory")
	idle := fs.Int("idle-envs", 0, "idle environments for the memory row (default 100, --full 1000)")
	cold := fs.Int("cold", 0, "cold starts to time (default 30, --full 100)")
	warm := fs.Int("warm", 0, "sequential warm invokes to time (default 2000, --full 5000)")
	dur := fs.Duration("duration", 0, "how long each throughput level runs (default 2s, --full 5s)")
	cluster := fs.Bool("cluster", false, "measure only the cluster rows: sync invokes at 32 callers through 1 node and through 3 in-process nodes on one external JetStream started here (leases), with a tight account limit too; on one host this shows clustering's overhead, not its gain")
	egress := fs.Bool("egress", false, "add the egress rows: cold start and environments/s with --egress nat, and a 50 MB download from a test host (network namespace on 198.18.0.0/15) next to the host's own")
	fs.StringVar(&o.cfg.PeerRIE, "peer-rie", "", "also measure AWS's runtime interface emulator (the aws-lambda-rie binary at this path) on the same echo bootstrap, next to icebox run")
	only := fs.String("only", "", "run only these row groups, comma-separated: "+strings.Join(bench.Groups, ", ")+" (scale runs cold and warm too, its floors)")
	verbose := fs.Bool("v", false, "show the in-process server's warnings")
	fs.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of the run (the in-process server included) to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() != 0 {
		return o, fmt.Errorf("bench: unexpected argument %q (flags only, see icebox-bench -h)", fs.Arg(0))
	}
	peer := o.cfg.PeerRIE
	o.cfg = bench.Default()
	if *full {
		o.cfg = bench.Full()
	}
	o.cfg.PeerRIE = peer
	for _, f := range []struct {
		flag int
		dst  *int
	}{{*idle, &o.cfg.IdleEnvs}, {*cold, &o.cfg.ColdStarts}, {*warm, &o.cfg.WarmCalls}} {
		if f.flag != 0 {
			*f.dst = f.flag
		}
	}
	if *dur != 0 {
		o.cfg.ThroughputTime = *dur
	}
	o.cfg.Egress = *egress
	if *only != "" {
		o.cfg.Only = strings.Split(*only, ",")
		if err := bench.CheckGroups(o.cfg.Only); err != nil {
			return o, err
		}
	}
	o.cfg.Cluster = *cluster
	if o.cfg.Cluster && (*endpoint != "" || *egress || peer != "" || o.plotDir != "") {
		return o, errors.New("bench: --cluster starts its own nodes and measures only the cluster rows (no --endpoint, --egress, --peer-rie or --plot)")
	}
	if *endpoint != "" {
		o.cfg.Endpoint = *endpoint
		o.cfg.AccessKeyID = os.Getenv("AWS_ACCESS_KEY_ID")
		o.cfg.SecretAccessKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
		o.cfg.SessionToken = os.Getenv("AWS_SESSION_TOKEN")
		if r := os.Getenv("AWS_REGION"); r != "" {
			o.cfg.Region = r
		} else if r := os.Getenv("AWS_DEFAULT_REGION"); r != "" {
			o.cfg.Region = r
		}
	}
	if *verbose {
		o.cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	o.cfg.Progress = stderr
	return o, nil
}

func main() {
	// Without an embedded icebox-init, the in-process server's sandboxes
	// re-execute this binary as their init; its watchdog always does.
	if len(os.Args) > 1 && os.Args[1] == sblinux.InitArg {
		sblinux.RunInit()
		return
	}
	if err := benchCmd(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "icebox-bench:", err)
		os.Exit(1)
	}
}

// benchCmd runs the benchmark and prints its table (or JSON).
func benchCmd(args []string) error {
	o, err := parseBench(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := loadBenchZips(&o); err != nil {
		return err
	}
	if o.cfg.IceboxBin != "" {
		defer os.RemoveAll(filepath.Dir(o.cfg.IceboxBin))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if o.profile != "" {
		f, err := os.Create(o.profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	run := bench.Run
	if o.cfg.Cluster {
		run = bench.RunCluster
	}
	rep, err := run(ctx, o.cfg)
	if err != nil {
		return err
	}
	write := rep.WriteTable
	if o.json {
		write = rep.WriteJSON
	}
	if err := write(os.Stdout); err != nil {
		return err
	}
	if o.plotDir != "" {
		files, err := rep.WritePlots(o.plotDir)
		if err != nil {
			return err
		}
		for _, f := range files {
			fmt.Fprintln(os.Stderr, "bench: wrote", f)
		}
	}
	return nil
}

// loadBenchZips reads --zip or builds the echo function, and builds the
// slow function of the burst row when the source tree is at hand.
func loadBenchZips(o *benchOptions) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, rootErr := bench.ModuleRoot(wd)
	start := time.Now()
	switch {
	case o.zip != "":
		if o.cfg.EchoZip, err = os.ReadFile(o.zip); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if rootErr == nil {
			zips, err := bench.BuildZips(root, bench.SleepPackage, bench.ExtensionPackage)
			if err != nil {
				return err
			}
			o.cfg.SleepZip = zips[0]
			if o.cfg.ExtensionLayer, err = bench.ExtensionLayer(zips[1]); err != nil {
				return err
			}
		}
	case rootErr != nil:
		return fmt.Errorf("bench: %w", rootErr)
	default:
		zips, err := bench.BuildZips(root, bench.EchoPackage, bench.SleepPackage, bench.ExtensionPackage)
		if err != nil {
			return err
		}
		o.cfg.EchoZip, o.cfg.SleepZip = zips[0], zips[1]
		if o.cfg.ExtensionLayer, err = bench.ExtensionLayer(zips[2]); err != nil {
			return err
		}
	}
	if rootErr == nil {
		// `icebox run` of the single-function rows.
		if o.cfg.IceboxBin, err = bench.BuildIcebox(root); err != nil {
			return err
		}
	}
	if !sblinux.InitEmbedded() {
		fmt.Fprintln(os.Stderr, "bench: no icebox-init embedded (run go generate ./... first): sandboxes re-execute this binary as their init")
	}
	fmt.Fprintf(os.Stderr, "bench: functions ready in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}
