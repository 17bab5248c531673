package pool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"icebox/internal/auth"
	"icebox/internal/environment"
	"icebox/internal/errdefs"
	"icebox/internal/metrics"
	"icebox/internal/model"
	"icebox/internal/runtimeapi"
	"icebox/internal/sandbox"
	"icebox/internal/telemetry"
	"icebox/runtimes"
)

// Config configures the pool.
type Config struct {
	Region    string
	AccountID string
	// IdleTimeout is how long an idle environment is kept. Default 10m.
	IdleTimeout time.Duration
	// InitTimeout bounds the runtime's init phase. Default 10s (Lambda's).
	InitTimeout time.Duration
	// MaxIdlePerConfig bounds idle environments kept per function
	// configuration. Default 64.
	MaxIdlePerConfig int
	// MemoryBudgetMB bounds the MemorySize of all live environments
	// together, so the host is never overcommitted. Required.
	MemoryBudgetMB int
	// ScaleBurst and ScaleRate bound how fast one function gains new
	// environments: a burst of ScaleBurst, refilled at ScaleRate per second
	// (Lambda: 1,000 per 10 s). Defaults 1000 and 100. They are the
	// cluster's: a pool on one of n nodes (SetNodes) takes 1/n of each.
	ScaleBurst int
	ScaleRate  float64
	// RuntimeDir holds the managed runtimes' clients (runtimes.Extract).
	// Used when Runtimes is nil.
	RuntimeDir string
	// Runtimes are the managed runtimes on this host, with their clients
	// and SDKs. Default: the registry's interpreters, clients in RuntimeDir.
	Runtimes *runtimes.Host
	// Credentials issues an environment's execution-role credentials for
	// the role ARN and function name. Nil: environments get none.
	Credentials func(roleARN, function string) (auth.Credentials, error)
	// RuntimeAPI configures each environment's Runtime API server (the
	// response streaming limits).
	RuntimeAPI runtimeapi.Config
	// SandboxAPI, when set, serves icebox's API on each sandbox's API
	// listener (AWS_ENDPOINT_URL inside the function).
	SandboxAPI SandboxAPI
}

// SandboxAPI serves icebox's own API to the code of one environment.
type SandboxAPI interface {
	// ServeEnvironment serves l until it is closed (with the sandbox). The
	// environment calls freezing right before each freeze and thawing right
	// before each thaw: a frozen environment's half-sent requests must not
	// hold the daemon's memory.
	ServeEnvironment(l net.Listener) (freezing, thawing func())
}

func (c *Config) setDefaults() {
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 10 * time.Minute
	}
	if c.InitTimeout == 0 {
		c.InitTimeout = 10 * time.Second
	}
	if c.MaxIdlePerConfig == 0 {
		c.MaxIdlePerConfig = 64
	}
	if c.ScaleBurst == 0 {
		c.ScaleBurst = 1000
	}
	if c.ScaleRate == 0 {
		c.ScaleRate = 100
	}
	if c.Runtimes == nil {
		// Without paths to validate NewHost cannot fail.
		c.Runtimes, _ = runtimes.NewHost(runtimes.HostConfig{Dir: c.RuntimeDir})
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Region == "" || c.AccountID == "" {
		return errors.New("pool: region and account id are required")
	}
	if c.IdleTimeout < 0 || c.InitTimeout < 0 {
		return errors.New("pool: negative timeout")
	}
	if c.MemoryBudgetMB < model.MinMemoryMB {
		return fmt.Errorf("pool: memory budget %d MB is below one environment (%d MB)", c.MemoryBudgetMB, model.MinMemoryMB)
	}
	if c.ScaleBurst < 1 || c.ScaleRate <= 0 {
		return errors.New("pool: scale burst and rate must be positive")
	}
	return nil
}

// CodeSource gives the directories holding a function's unpacked code and
// its layers' merged content ("" without layers).
type CodeSource interface {
	CodeDir(ctx context.Context, fn *model.Function) (string, error)
	OptDir(ctx context.Context, fn *model.Function) (string, error)
}

// LogSink stores function logs.
type LogSink interface {
	Writer(group, stream string) LogWriter
}

// LogWriter appends lines to one log stream; it must not block for long.
type LogWriter interface {
	Write(ts time.Time, msg string)
}

// Pool owns every execution environment.
type Pool struct {
	cfg     Config
	factory sandbox.Factory
	code    CodeSource
	logs    LogSink
	metrics *metrics.Metrics
	log     *slog.Logger
	stop    chan struct{}
	reaped  chan struct{}

	mu       sync.Mutex
	idle     map[string][]*env // by config key; the most recently used last
	all      map[*env]struct{}
	current  map[string]string // config slot (model.ConfigSlot) → newest config key
	memoryMB int               // MemorySize of every live environment, summed
	scaling  map[string]*rate.Limiter
	nodes    int                   // the cluster's live nodes (SetNodes); 0 means 1
	prov     map[string]*provision // provisioned environments by config key
	calls    int                   // Invoke calls in progress; Close waits for them
	closed   bool
}

// New makes a pool and starts its idle reaper.
func New(cfg Config, f sandbox.Factory, code CodeSource, logs LogSink, m *metrics.Metrics, log *slog.Logger) (*Pool, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Pool{cfg: cfg, factory: f, code: code, logs: logs, metrics: m, log: log,
		stop: make(chan struct{}), reaped: make(chan struct{}),
		idle: map[string][]*env{}, all: map[*env]struct{}{}, current: map[string]string{}, scaling: map[string]*rate.Limiter{}, prov: map[string]*provision{}}
	go p.reapLoop()
	return p, nil
}

// Invoke runs inv on an environment of fn. Function failures are in the
// Result; an error means icebox could not run the call.
func (p *Pool) Invoke(ctx context.Context, fn model.Function, inv *model.Invocation) (model.Result, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return model.Result{}, fmt.Errorf("pool is shutting down: %w", errdefs.ErrUnavailable)
	}
	p.calls++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.calls--
		p.mu.Unlock()
	}()
	res, again, err := p.invoke(ctx, &fn, inv, false)
	if again {
		// A warm runtime that died between calls (it exited right after
		// answering the last one) never saw this event: Lambda would have
		// started a fresh environment, so do that, once.
		res, _, err = p.invoke(ctx, &fn, inv, true)
	}
	return res, err
}

// invoke runs inv once. again reports a warm environment's runtime gone
// before it took the event (NotTaken): nothing ran, and the caller may run
// the call again, unless last is set.
func (p *Pool) invoke(ctx context.Context, fn *model.Function, inv *model.Invocation, last bool) (_ model.Result, again bool, _ error) {
	start := time.Now()
	e, cold, failure, err := p.acquire(ctx, fn, inv.RequestID)
	if err != nil {
		return model.Result{}, false, err
	}
	res := model.Result{RequestID: inv.RequestID, ExecutedVersion: fn.VersionName()}
	if failure != nil {
		res.FunctionError, res.Payload = model.FunctionErrorUnhandled, failure.payload
		res.Duration = time.Since(start)
		if e := failure.e; e != nil {
			// The call ran nothing, but Lambda still logs it, after the
			// init's own records, and its tail shows them.
			e.platform(startRecord(inv.RequestID, fn.VersionName()))
			e.platform(endRecord(inv.RequestID, failure.kind, res.Duration))
			e.platform(reportRecord(inv.RequestID, res.Duration, fn.MemorySize, e.sb.Stats().MaxMemoryBytes>>20, false, 0, failure.kind, failure.errorType))
			e.mu.Lock()
			res.LogTail = append([]byte(nil), e.tail.bytes()...)
			e.tail = nil
			e.mu.Unlock()
			p.retire(e)
		}
		return res, false, nil
	}
	if cold {
		res.ColdStart, res.InitDuration = true, time.Since(start)
	}

	e.mu.Lock()
	settling := e.settling
	e.mu.Unlock()
	if settling != nil {
		// Its extensions still work on its last call, whose END and
		// REPORT come first (by that call's deadline at the latest).
		<-settling
	}
	e.mu.Lock()
	e.tail = e.tailBuf.reset()
	e.mu.Unlock()
	e.platform(startRecord(inv.RequestID, fn.VersionName()))
	runStart := time.Now()
	timeout := time.Duration(fn.Timeout) * time.Second
	out, err := e.life.Invoke(inv, timeout)
	if err != nil {
		p.destroy(e)
		return model.Result{}, false, err
	}
	if out.Kind == environment.NotTaken && !cold && !last {
		p.destroy(e)
		return model.Result{}, true, nil
	}
	res.Duration = time.Since(runStart)
	res.Payload = out.Payload
	if out.Kind != environment.Answered {
		res.FunctionError = model.FunctionErrorUnhandled
	}
	if out.Kind == environment.TimedOut {
		e.writeLog(time.Now(), time.Now().UTC().Format("2006-01-02T15:04:05.000Z")+" "+inv.RequestID+" "+model.TimedOutMessage(timeout))
	}
	reportDuration := res.Duration
	if settled := e.life.Settled(); !isClosed(settled) && inv.Tail {
		// The caller asked for the call's log, END and REPORT included:
		// its answer waits for the extensions (by the call's deadline at
		// the latest), and REPORT's Duration counts their work.
		<-settled
		reportDuration = time.Since(runStart)
	}
	if settled := e.life.Settled(); !isClosed(settled) {
		// The caller has the answer now; the environment is done with
		// the call when its extensions are, and the call's END and REPORT
		// (its Duration counting their work) wait for that. The
		// environment is released at once: its next call waits.
		e.mu.Lock()
		res.LogTail = append([]byte(nil), e.tail.bytes()...)
		done := make(chan struct{})
		e.settling = done
		e.lastUsed = time.Now()
		e.mu.Unlock()
		go func() {
			<-settled
			p.countTraffic(e, e.report(inv.RequestID, out.Kind, time.Since(runStart), fn.MemorySize, cold, res.InitDuration))
			e.mu.Lock()
			e.tail = nil
			e.settling = nil
			e.lastUsed = time.Now()
			e.mu.Unlock()
			close(done)
		}()
		p.release(e)
		return res, false, nil
	}
	p.countTraffic(e, e.report(inv.RequestID, out.Kind, reportDuration, fn.MemorySize, cold, res.InitDuration))
	e.mu.Lock()
	res.LogTail = append([]byte(nil), e.tail.bytes()...)
	e.tail = nil
	e.lastUsed = time.Now()
	e.mu.Unlock()
	if out.Reusable() {
		p.release(e)
	} else {
		// Reset: its extensions' SHUTDOWN (timeout, failure) does not
		// hold the caller.
		p.retire(e)
	}
	return res, false, nil
}

// report writes a call's END and REPORT records once the runtime's output
// so far is in the log, and returns the sandbox's stats it read.
func (e *env) report(requestID string, kind environment.Kind, d time.Duration, memoryMB int, cold bool, initDuration time.Duration) sandbox.Stats {
	e.syncOutput()
	stats := e.sb.Stats()
	e.maxMemory.Store(stats.MaxMemoryBytes)
	e.platform(endRecord(requestID, kind, d))
	e.platform(reportRecord(requestID, d, memoryMB, stats.MaxMemoryBytes>>20, cold, initDuration, kind, ""))
	return stats
}

// countTraffic adds what e's sandbox received and sent since last counted
// (st, read at a call's end or as it goes, never per packet) to its
// function's icebox_network_* counters.
func (p *Pool) countTraffic(e *env, st sandbox.Stats) {
	e.mu.Lock()
	in, out := st.NetReceivedBytes-min(st.NetReceivedBytes, e.counted.in), st.NetSentBytes-min(st.NetSentBytes, e.counted.out)
	e.counted.in, e.counted.out = max(e.counted.in, st.NetReceivedBytes), max(e.counted.out, st.NetSentBytes)
	e.mu.Unlock()
	if in|out != 0 {
		f := p.metrics.Function(e.name)
		f.NetworkIn().Add(float64(in))
		f.NetworkOut().Add(float64(out))
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// reportLine renders Lambda's REPORT line (strconv instead of fmt: it is
// built once per invocation):
// REPORT RequestId: ID\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB[\tInit Duration: 4.56 ms]
func reportLine(requestID string, d time.Duration, memoryMB int, maxUsedMB uint64, cold bool, initDuration time.Duration) string {
	b := make([]byte, 0, 160)
	b = append(b, "REPORT RequestId: "...)
	b = append(b, requestID...)
	b = append(b, "\tDuration: "...)
	b = strconv.AppendFloat(b, ms(d), 'f', 2, 64)
	b = append(b, " ms\tBilled Duration: "...)
	b = strconv.AppendInt(b, billedMs(d), 10)
	b = append(b, " ms\tMemory Size: "...)
	b = strconv.AppendInt(b, int64(memoryMB), 10)
	b = append(b, " MB\tMax Memory Used: "...)
	b = strconv.AppendUint(b, maxUsedMB, 10)
	b = append(b, " MB"...)
	if cold {
		b = append(b, "\tInit Duration: "...)
		b = strconv.AppendFloat(b, ms(initDuration), 'f', 2, 64)
		b = append(b, " ms"...)
	}
	return string(b)
}

// billedMs is a duration rounded up to the millisecond, at least 1.
func billedMs(d time.Duration) int64 {
	return max(1, int64((d+time.Millisecond-1)/time.Millisecond))
}

// initFailure is a cold start that failed: the call's error body, and
// the environment whose init failed (nil when none was made), to be
// destroyed by whoever logs the call.
type initFailure struct {
	payload   []byte
	kind      environment.Kind
	errorType string
	e         *env
}

// acquire returns an environment for fn to run a call on: a warm one when
// one is idle, else a new one (cold). failure is set (and e nil) when the
// function could not initialise, even after Lambda's second, "suppressed"
// init attempt.
func (p *Pool) acquire(ctx context.Context, fn *model.Function, requestID string) (e *env, cold bool, failure *initFailure, err error) {
	key := fn.ConfigKey()
	p.mu.Lock()
	p.current[model.ConfigSlot(key)] = key
	// Provisioned environments first, then idle on-demand ones.
	for {
		if e = p.takeProvisioned(key); e == nil {
			list := p.idle[key]
			if len(list) == 0 {
				break
			}
			e = list[len(list)-1]
			p.idle[key] = list[:len(list)-1]
		}
		if !e.life.State().TakesCalls() || e.retired(time.Now()) {
			// Died while waiting (killed from outside, OOM), or its credentials
			// run out soon: never hand it out.
			p.mu.Unlock()
			p.destroy(e)
			p.mu.Lock()
			continue
		}
		p.mu.Unlock()
		return e, false, nil, nil
	}
	p.mu.Unlock()

	e, failure, err = p.start(ctx, fn, requestID, p.cfg.InitTimeout, "init", initOnDemand)
	if err != nil || failure == nil {
		return e, true, nil, err
	}
	if failure.e != nil {
		p.retire(failure.e)
	}
	// Lambda does not fail the call on a failed init: it runs init again
	// inside the invocation, under the function's own timeout.
	p.log.Info("init failed, retrying within the invocation", "function", fn.Name, "request_id", requestID)
	e, failure, err = p.start(ctx, fn, requestID, time.Duration(fn.Timeout)*time.Second, "invoke", initOnDemand)
	return e, true, failure, err
}

// start creates an environment and waits for its runtime's init, in phase
// "init" (the init phase proper) or "invoke" (the second attempt, inside
// the call: its records go to the call's tail), as an initType one
// (AWS_LAMBDA_INITIALIZATION_TYPE). A failed init's environment is
// returned in the failure, not destroyed.
func (p *Pool) start(ctx context.Context, fn *model.Function, requestID string, initTimeout time.Duration, phase, initType string) (_ *env, _ *initFailure, err error) {
	begin := time.Now()
	codeDir, err := p.code.CodeDir(ctx, fn)
	if err != nil {
		return nil, nil, err
	}
	optDir, err := p.code.OptDir(ctx, fn)
	if err != nil {
		return nil, nil, err
	}
	args, runtimeDir, payload, err := p.entrypoint(ctx, fn, codeDir, optDir, requestID)
	if err != nil {
		return nil, nil, err
	}
	if payload != nil {
		return nil, &initFailure{payload: payload, kind: environment.FunctionError}, nil
	}
	if err := p.reserve(fn); err != nil {
		return nil, nil, err
	}
	id := randomHex(16)
	e := &env{id: id, key: fn.ConfigKey(), name: fn.Name, memoryMB: fn.MemorySize, logStream: model.LogStreamName(time.Now(), fn.VersionName(), id),
		logging: fn.Logging, life: environment.New(environment.Config{Observe: p.observe,
			Function: model.FunctionInfo{Name: fn.Name, Version: fn.VersionName(), Handler: fn.Handler, AccountID: p.cfg.AccountID}})}
	e.pumpCond = sync.NewCond(&e.mu)
	e.log = p.logs.Writer(fn.Logging.Group(fn.Name), e.logStream)
	if phase == "invoke" {
		e.tail = e.tailBuf.reset()
	}
	p.metrics.Environment(environment.Creating.Phase()).Inc()
	p.mu.Lock()
	p.all[e] = struct{}{}
	p.mu.Unlock()
	defer func() {
		if err != nil {
			p.destroy(e)
		}
	}()

	// Building a sandbox takes milliseconds; a stuck kernel call must not
	// hold the caller forever.
	cctx, cancel := context.WithTimeout(ctx, p.cfg.InitTimeout)
	defer cancel()
	var creds auth.Credentials
	if p.cfg.Credentials != nil {
		if creds, err = p.cfg.Credentials(fn.Role, fn.Name); err != nil {
			return nil, nil, err
		}
		e.retireAt = creds.Expires.Add(-retireMargin)
	}
	spec := sandbox.Spec{
		ID:         id,
		CodeDir:    codeDir,
		RuntimeDir: runtimeDir,
		OptDir:     optDir,
		MemoryMB:   fn.MemorySize,
		TmpMB:      fn.EphemeralStorage,
		Args:       args,
		Env:        envVars(fn, p.cfg.Region, e.logStream, initType, creds),
	}
	spec.Extensions = extensionsIn(spec.OptDir)
	if fn.Vpc != nil {
		spec.Networks = fn.Vpc.SubnetIDs
	}
	if e.sb, err = p.factory.Create(cctx, spec); err != nil {
		if errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			// The host could not build the sandbox in time (a burst of
			// cold starts on a busy machine): no capacity for this call
			// now, which Lambda answers with a retryable 429.
			p.log.Warn("sandbox not built in time", "function", fn.Name, "timeout", p.cfg.InitTimeout, "err", err)
			return nil, nil, &errdefs.ThrottleError{Reason: errdefs.ReasonConcurrentLimit, RetryAfterSeconds: 1,
				Message: fmt.Sprintf("Rate Exceeded. icebox could not start a new environment within %v: the host is busy starting others.", p.cfg.InitTimeout)}
		}
		return nil, nil, fmt.Errorf("create sandbox: %w", err)
	}
	rt := environment.Runtime{Sandbox: e.sb, ExtensionExits: e.sb.ExtensionExits()}
	for _, x := range spec.Extensions {
		rt.Extensions = append(rt.Extensions, path.Base(x))
	}
	// Telemetry deliveries stop while the sandbox is frozen.
	e.hub = telemetry.New(e.sb.Dial)
	rt.Freezing, rt.Thawing = e.hub.Pause, e.hub.Resume
	if l := e.sb.APIListener(); l != nil && p.cfg.SandboxAPI != nil {
		// l is closed with the sandbox, which ends serving it.
		freezing, thawing := p.cfg.SandboxAPI.ServeEnvironment(l)
		rt.Freezing = func() { freezing(); e.hub.Pause() }
		rt.Thawing = func() { thawing(); e.hub.Resume() }
	}
	version := p.cfg.Runtimes.RuntimeVersion(fn.Runtime)
	e.platform(initStart(fn, initType, phase, version, runtimeVersionARN(p.cfg.Region, version)))
	e.api = runtimeapi.New(e.life, p.cfg.RuntimeAPI)
	e.api.ServeTelemetry(e.hub)
	go e.api.Serve(e.sb.Listener())
	go e.pumpLines(e.sb.Output())
	go e.pumpFrames(e.sb.Telemetry())
	go e.pumpExtensionLines(e.sb.ExtensionOutput())
	out, err := e.life.Start(rt, requestID, initTimeout)
	if err != nil {
		return nil, nil, err
	}
	if out.Kind != environment.Ready {
		e.syncOutput()
		f := &initFailure{payload: out.Payload, kind: out.Kind, errorType: errorTypeOf(out.Payload, out.ErrorType), e: e}
		e.platform(initReport(initType, phase, time.Since(begin), out.Kind, f.errorType))
		return nil, f, nil
	}
	// Telemetry has the init's end, which the log does not show.
	now := time.Now()
	e.hub.Publish(now, "platform.initRuntimeDone", map[string]string{"initializationType": initType, "phase": phase, "status": "success"})
	e.hub.Publish(now, "platform.initReport", map[string]any{"initializationType": initType, "phase": phase, "status": "success",
		"metrics": recordMetrics{DurationMs: round2(ms(now.Sub(begin)))}})
	e.hub.InitDone()
	return e, nil, nil
}

// errorTypeOf is the errorType of a Lambda error body, else fallback.
func errorTypeOf(body []byte, fallback string) string {
	var b struct {
		ErrorType string `json:"errorType"`
	}
	if json.Unmarshal(body, &b) == nil && b.ErrorType != "" {
		return b.ErrorType
	}
	return fallback
}

// runtimeVersionARN is Lambda's ARN of a runtime version, the hash of its
// name standing for AWS's build hash.
func runtimeVersionARN(region, version string) string {
	sum := sha256.Sum256([]byte(version))
	return "arn:aws:lambda:" + region + "::runtime:" + hex.EncodeToString(sum[:])
}

// observe keeps the environment gauges by phase.
func (p *Pool) observe(from, to environment.State) {
	if from.Phase() == to.Phase() {
		return
	}
	p.metrics.Environment(from.Phase()).Dec()
	if to != environment.Destroyed {
		p.metrics.Environment(to.Phase()).Inc()
	}
}

// release returns an environment whose call ended to the idle list, unless
// it is stale or its runtime is gone.
func (p *Pool) release(e *env) {
	p.mu.Lock()
	if e.provision != nil {
		kept := e.life.State().TakesCalls() && p.returnProvisioned(e)
		p.mu.Unlock()
		if !kept {
			p.retire(e)
		}
		return
	}
	if p.closed || p.current[model.ConfigSlot(e.key)] != e.key || len(p.idle[e.key]) >= p.cfg.MaxIdlePerConfig || !e.life.State().TakesCalls() {
		p.mu.Unlock()
		p.retire(e)
		return
	}
	p.idle[e.key] = append(p.idle[e.key], e)
	p.mu.Unlock()
}

// retire destroys an environment off the caller's path when its extensions
// get SHUTDOWN first, which may take Lambda's whole budget.
func (p *Pool) retire(e *env) {
	if e.life.WantsShutdown() {
		go p.destroy(e)
		return
	}
	p.destroy(e)
}

// destroy tears an environment down. It must not be in an idle list.
// Extensions subscribed to SHUTDOWN get it first (spindown, or timeout or
// failure for one reset), and up to Lambda's budget to handle it.
func (p *Pool) destroy(e *env) {
	shutDown := e.life.Shutdown(environment.ShutdownBudget)
	if !e.life.Destroy() {
		return
	}
	if shutDown {
		// What the extensions wrote as they handled SHUTDOWN is logged
		// before their pipes close.
		e.syncOutput()
	}
	if e.api != nil {
		e.api.Close()
	}
	if e.hub != nil {
		e.hub.Close()
	}
	if e.sb != nil {
		p.countTraffic(e, e.sb.Stats())
		if err := e.sb.Destroy(); err != nil {
			p.log.Error("destroy environment", "env", e.id, "function", e.name, "err", err)
		}
	}
	p.mu.Lock()
	delete(p.all, e)
	p.memoryMB -= e.memoryMB
	refill := p.leaveProvision(e)
	p.mu.Unlock()
	if refill != nil {
		go p.fill(refill)
	}
}

// SetNodes tells the pool it is one of n live nodes sharing the scaling
// limits: each node allows 1/n of the rate and of the burst (at least one
// environment), so the cluster together holds the configured limits
// without a round trip per new environment.
func (p *Pool) SetNodes(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n = max(n, 1); n == max(p.nodes, 1) {
		return
	}
	p.nodes = n
	r, b := p.scaleShare()
	for _, lim := range p.scaling {
		lim.SetLimit(r)
		lim.SetBurst(b)
	}
}

// scaleShare is this node's share of the scaling limits. p.mu is held.
func (p *Pool) scaleShare() (rate.Limit, int) {
	n := max(p.nodes, 1)
	return rate.Limit(p.cfg.ScaleRate / float64(n)), max(1, (p.cfg.ScaleBurst+n-1)/n)
}

// reserve admits a new environment for fn: within the function's scaling
// rate, and within the host memory budget, evicting idle environments
// (least recently used first) to make room. The reservation is returned by
// destroy.
func (p *Pool) reserve(fn *model.Function) error {
	p.mu.Lock()
	lim, ok := p.scaling[fn.Name]
	if !ok {
		lim = rate.NewLimiter(p.scaleShare())
		p.scaling[fn.Name] = lim
	}
	p.mu.Unlock()
	if !lim.Allow() {
		return &errdefs.ThrottleError{Reason: errdefs.ReasonFunctionRateLimit, Message: "Rate Exceeded.", RetryAfterSeconds: 1}
	}
	for {
		p.mu.Lock()
		if p.memoryMB+fn.MemorySize <= p.cfg.MemoryBudgetMB {
			p.memoryMB += fn.MemorySize
			p.mu.Unlock()
			return nil
		}
		victim := p.popLRU()
		used := p.memoryMB
		p.mu.Unlock()
		if victim == nil {
			return &errdefs.ThrottleError{Reason: errdefs.ReasonConcurrentLimit, RetryAfterSeconds: 1,
				Message: fmt.Sprintf("Rate Exceeded. icebox's host memory budget is exhausted: %d of %d MB are held by busy environments and a new %d MB environment does not fit.", used, p.cfg.MemoryBudgetMB, fn.MemorySize)}
		}
		p.destroy(victim)
	}
}

// popLRU removes the least recently used idle environment from its list.
// One whose extensions still work on its last call is in use, not a
// candidate.
// Preconditions: p.mu held.
func (p *Pool) popLRU() *env {
	var victim *env
	var victimKey string
	var victimUsed time.Time
	victimAt := 0
	for key, list := range p.idle {
		// Lists are ordered by use: the first free one is the oldest of
		// its key.
		for i, e := range list {
			e.mu.Lock()
			settling, used := e.settling != nil, e.lastUsed
			e.mu.Unlock()
			if settling {
				continue
			}
			if victim == nil || used.Before(victimUsed) {
				victim, victimKey, victimUsed, victimAt = e, key, used, i
			}
			break
		}
	}
	if victim != nil {
		list := p.idle[victimKey]
		p.idle[victimKey] = append(list[:victimAt:victimAt], list[victimAt+1:]...)
		if len(p.idle[victimKey]) == 0 {
			delete(p.idle, victimKey)
		}
	}
	return victim
}

// FunctionChanged drains a function's idle environments built from a
// configuration it no longer runs; busy ones are destroyed when they
// finish. liveKeys are the ConfigKeys of what the function runs now
// ($LATEST and each published version: model.Function.LiveKeys), none
// when it was deleted.
func (p *Pool) FunctionChanged(name string, liveKeys []string) {
	live := make(map[string]bool, len(liveKeys))
	for _, k := range liveKeys {
		live[k] = true
	}
	p.mu.Lock()
	for slot := range p.current {
		if fn, _, _ := strings.Cut(slot, ":"); fn == name {
			delete(p.current, slot)
		}
	}
	for _, k := range liveKeys {
		p.current[model.ConfigSlot(k)] = k
	}
	var stale []*env
	for key, list := range p.idle {
		if len(list) > 0 && list[0].name == name && !live[key] {
			stale = append(stale, list...)
			delete(p.idle, key)
		}
	}
	p.mu.Unlock()
	for _, e := range stale {
		p.retire(e)
	}
}

// Counts reports how many environments are in each state.
func (p *Pool) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for e := range p.all {
		out[e.life.State().Phase()]++
	}
	return out
}

func (p *Pool) reapLoop() {
	defer close(p.reaped)
	tick := min(max(p.cfg.IdleTimeout/10, 50*time.Millisecond), 10*time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.reapIdle(time.Now().Add(-p.cfg.IdleTimeout))
			p.checkProvisioned(time.Now())
		}
	}
}

// reapIdle destroys environments idle since before cutoff, and those whose
// runtime died while idle.
func (p *Pool) reapIdle(cutoff time.Time) {
	var old []*env
	p.mu.Lock()
	for key, list := range p.idle {
		keep := list[:0]
		for _, e := range list {
			e.mu.Lock()
			// One settling is in use: its extensions work on the call
			// just answered.
			expired := e.settling == nil && e.lastUsed.Before(cutoff) || e.retired(time.Now()) || !e.life.State().TakesCalls()
			e.mu.Unlock()
			if expired {
				old = append(old, e)
			} else {
				keep = append(keep, e)
			}
		}
		if len(keep) == 0 {
			delete(p.idle, key)
		} else {
			p.idle[key] = keep
		}
	}
	p.mu.Unlock()
	for _, e := range old {
		p.retire(e)
	}
}

// Close waits (until ctx ends) for calls in progress to finish, then
// destroys every environment.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	<-p.reaped
	for {
		p.mu.Lock()
		calls := p.calls
		p.mu.Unlock()
		if calls == 0 || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.mu.Lock()
	all := make([]*env, 0, len(p.all))
	for e := range p.all {
		all = append(all, e)
	}
	p.idle = map[string][]*env{}
	p.prov = map[string]*provision{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range all {
		wg.Add(1)
		go func() { defer wg.Done(); p.destroy(e) }()
	}
	wg.Wait()
	return nil
}
