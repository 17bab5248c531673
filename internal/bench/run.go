package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// run is one bench run's state.
type run struct {
	cfg        Config
	dir        string // temporary: data dir, unpacked echo binary
	t          *target
	echo       *echoServer
	plain      *http.Client   // the single-function rows' client (no SDK)
	echoLoad   map[int]Stat   // the bare echo with plain, by callers
	stub       *invokeStub    // the SDK rows' floor
	stubLambda *lambda.Client // the target's client, pointed at stub
	echoDir    string         // the echo function's unpacked code (bootstrap)
	echoBin    string
	fn         string // the warm echo function
	fillers    int    // filler functions made on the scale daemon
	scaleSeq   int    // names the scale rows' fresh functions
	start      time.Time
}

func (r *run) progress(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, "bench: %5.1fs "+format+"\n", append([]any{time.Since(r.start).Seconds()}, args...)...)
}

// Run measures every row and returns the report. The target is left as it
// was found: an in-process daemon is shut down, an endpoint's functions
// made by the run are deleted.
func Run(ctx context.Context, cfg Config) (_ *Report, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, start: time.Now(), plain: newHTTPClient()}
	if r.dir, err = workDir(); err != nil {
		return nil, err
	}
	defer os.RemoveAll(r.dir)
	r.echoDir = filepath.Join(r.dir, "echo")
	if r.echoBin, err = unpackBootstrap(cfg.EchoZip, r.echoDir); err != nil {
		return nil, fmt.Errorf("echo zip: %w", err)
	}
	rep := &Report{Machine: machine(), Mode: "in-process", Started: time.Now()}
	if cfg.Endpoint != "" {
		rep.Mode = "endpoint " + cfg.Endpoint
	}
	r.progress("starting (%s)", rep.Mode)
	if r.t, err = startTarget(ctx, &r.cfg, r.dir, false); err != nil {
		return nil, err
	}
	defer func() {
		if r.t != nil {
			err = errors.Join(err, r.t.close())
		}
	}()
	if r.echo, err = startEcho(); err != nil {
		return nil, err
	}
	defer r.echo.close()
	if r.stub, err = startInvokeStub(); err != nil {
		return nil, err
	}
	defer r.stub.close()
	r.stubLambda = r.t.clientFor(r.stub.url)

	var cold, warm Row
	if cfg.wants("cold") {
		r.progress("cold starts: %d fresh functions", cfg.ColdStarts)
		var coldPoints []ColdPoint
		if cold, coldPoints, err = r.measureCold(ctx, cfg.ColdStarts); err != nil {
			return nil, fmt.Errorf("cold start: %w", err)
		}
		rep.Rows = append(rep.Rows, cold)
		rep.ColdByAlive = append(rep.ColdByAlive, coldPoints...)
	}

	if cfg.wants("warm") || cfg.wants("extension") || cfg.wants("url") || cfg.wants("load") {
		r.fn = r.t.prefix + "echo"
		if err := r.t.create(ctx, r.fn, cfg.EchoZip, 3*time.Second); err != nil {
			return nil, err
		}
		if _, err := r.t.invoke(ctx, r.fn, payload); err != nil {
			return nil, err
		}
	}
	if cfg.wants("warm") || cfg.wants("extension") {
		r.progress("warm invokes: %d sequential", cfg.WarmCalls)
		if warm, err = r.measureWarm(ctx, cfg.WarmCalls); err != nil {
			return nil, fmt.Errorf("warm invoke: %w", err)
		}
		over, err := r.runtimeRoundTripRow(ctx, warm)
		if err != nil {
			return nil, fmt.Errorf("the runtime's round trip: %w", err)
		}
		rep.Rows = append(rep.Rows, warm, over)
	}

	if cfg.wants("extension") {
		r.progress("warm invokes with a no-op extension: %d sequential", cfg.WarmCalls)
		warmExt, err := r.measureWarmExtension(ctx, cfg.WarmCalls, warm.Result)
		if err != nil {
			return nil, fmt.Errorf("warm invoke with an extension: %w", err)
		}
		rep.Rows = append(rep.Rows, warmExt)
	}

	if cfg.wants("url") {
		r.progress("warm function URL calls: %d sequential", cfg.WarmCalls)
		warmURL, err := r.measureWarmURL(ctx, cfg.WarmCalls)
		if err != nil {
			return nil, fmt.Errorf("warm function URL call: %w", err)
		}
		rep.Rows = append(rep.Rows, warmURL)
	}

	for _, c := range cfg.Concurrency {
		if !cfg.wants("load") {
			break
		}
		r.progress("throughput at concurrency %d for %v", c, cfg.ThroughputTime)
		rows, point, err := r.measureThroughput(ctx, c)
		if err != nil {
			return nil, err
		}
		rep.Rows = append(rep.Rows, rows...)
		rep.Concurrency = append(rep.Concurrency, point)
	}

	if cfg.wants("envs") {
		r.progress("environments per second: burst of %d", cfg.Burst)
		rate, err := r.measureEnvRate(ctx)
		if err != nil {
			return nil, fmt.Errorf("environment burst: %w", err)
		}
		rep.Rows = append(rep.Rows, rate)
	}

	if cfg.wants("freeze") {
		r.progress("freeze/thaw: %d cycles", cfg.FreezeCycles)
		freeze, thaw, version, err := r.measureFreezeThaw(ctx)
		if err != nil {
			return nil, fmt.Errorf("freeze/thaw: %w", err)
		}
		rep.Machine.CgroupVersion = version
		rep.Rows = append(rep.Rows, thaw, freeze)
	}

	if cfg.Egress && cfg.wants("egress") {
		rows, err := r.measureEgress(ctx)
		if err != nil {
			return nil, fmt.Errorf("egress: %w", err)
		}
		rep.Rows = append(rep.Rows, rows...)
	}

	if cfg.wants("run") {
		r.progress("icebox run: echo bootstrap at %v callers", cfg.SingleConcurrency)
		single, err := r.measureIceboxRun(ctx)
		if err != nil {
			return nil, err
		}
		rep.Rows = append(rep.Rows, single...)
		peer, err := r.measurePeerRIE(ctx)
		if err != nil {
			return nil, err
		}
		rep.Rows = append(rep.Rows, peer...)
	}

	if !cfg.wants("scale") && !cfg.wants("memory") {
		return r.finish(rep), nil
	}
	// The scale rows and the memory row run on a daemon of their own,
	// started fresh, with nothing deployed.
	if cfg.Endpoint == "" {
		if err := r.t.close(); err != nil {
			return nil, err
		}
		r.t = nil
		if r.t, err = startTarget(ctx, &r.cfg, filepath.Join(r.dir, "scale"), false); err != nil {
			return nil, err
		}
	}
	var base scaleBase
	if cfg.wants("scale") {
		var scale []Row
		if scale, base, err = r.measureScale(ctx, cold, warm); err != nil {
			return nil, err
		}
		rep.Rows = append(rep.Rows, scale...)
	}

	if cfg.wants("memory") {
		r.progress("memory: %d idle environments", cfg.IdleEnvs)
		mem, memPoints, err := r.measureMemory(ctx)
		if err != nil {
			return nil, fmt.Errorf("memory: %w", err)
		}
		rep.Rows = append(rep.Rows, mem)
		rep.ColdByAlive = append(rep.ColdByAlive, memPoints...)
		if r.t.d != nil && cfg.wants("scale") {
			idle, err := r.measureIdleAlive(ctx, base)
			if err != nil {
				return nil, err
			}
			rep.Rows = append(rep.Rows, idle...)
		}
	}
	return r.finish(rep), nil
}

// finish judges the rows against their targets and stamps the run's length.
func (r *run) finish(rep *Report) *Report {
	r.progress("done")
	for i := range rep.Rows {
		judge(&rep.Rows[i])
	}
	rep.Duration = time.Since(rep.Started)
	return rep
}

// unpackBootstrap writes the zip's bootstrap into dir (world-readable, as
// the sandbox's runtime user must exec it) and returns its path.
func unpackBootstrap(z []byte, dir string) (string, error) {
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		return "", err
	}
	for _, f := range zr.File {
		if f.Name != "bootstrap" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return "", err
		}
		defer rc.Close()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			return "", err
		}
		bin := filepath.Join(dir, "bootstrap")
		out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			return "", err
		}
		if _, err := io.Copy(out, io.LimitReader(rc, 256<<20)); err != nil {
			out.Close()
			return "", err
		}
		return bin, out.Close()
	}
	return "", errors.New("no bootstrap in the zip")
}
