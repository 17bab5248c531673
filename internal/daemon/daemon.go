// Package daemon wires icebox together from one Config and owns the start
// and shutdown order.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"icebox/internal/admission"
	"icebox/internal/api"
	"icebox/internal/auth"
	"icebox/internal/engine"
	"icebox/internal/functions"
	"icebox/internal/invoke"
	"icebox/internal/logs"
	"icebox/internal/membership"
	"icebox/internal/metrics"
	"icebox/internal/model"
	"icebox/internal/pool"
	"icebox/internal/runtimeapi"
	"icebox/internal/sandbox"
	sblinux "icebox/internal/sandbox/linux"
	"icebox/internal/store"
	"icebox/runtimes"
)

// Config is everything `icebox serve` can be told.
type Config struct {
	// Listen is the API address. Default 127.0.0.1:9070.
	Listen string
	// URLListen is the function URL listener's address. Default: Listen's
	// host and the port after Listen's (127.0.0.1:9071), or a free port
	// when Listen's is 0.
	URLListen string
	// DataDir holds the embedded engine's files and unpacked code.
	DataDir string
	// CacheDir holds build output shared by every data dir on the host (the
	// compiled Java runtime client, the runtimes' SDKs). Default: the
	// user's cache dir + /icebox.
	CacheDir string
	// RuntimesDir, when set, holds the runtimes' SDKs pre-installed
	// (runtimes.HostConfig.RuntimesDir); icebox then downloads nothing.
	RuntimesDir string
	// RuntimePaths points runtime ids at other interpreters than their
	// default (nodejs22.x → /usr/local/bin/node22).
	RuntimePaths map[string]string
	// NatsURL, when set, is an external JetStream to use instead of the embedded one.
	NatsURL string
	// Replicas is the replica count of every store on a clustered NatsURL
	// (engine.Config.Replicas): 0 keeps what exists and makes new stores 1.
	Replicas int
	// NodeHeartbeat and NodeTTL time the node's membership entry
	// (membership.Config): defaults 2s and 10s. A node whose heartbeats
	// fail for NodeTTL stops being ready and stops taking calls.
	NodeHeartbeat time.Duration
	NodeTTL       time.Duration
	// IdleTimeout is how long an idle environment is kept. Default 10m.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds how long in-flight calls may finish on shutdown. Default 30s.
	ShutdownTimeout time.Duration
	Region          string // default us-east-1
	AccountID       string // default 000000000000
	// AccountConcurrency bounds concurrent executions across all functions. Default 100.
	AccountConcurrency int
	// UnreservedMin is what reserved concurrency must leave unreserved. Default 10.
	UnreservedMin int
	// MemoryBudgetMB bounds the MemorySize of all live environments.
	// Default: 70% of the host's RAM.
	MemoryBudgetMB int
	// ScaleBurst and ScaleRate bound new environments per function (Lambda:
	// 1,000 per 10 s). Defaults 1000 and 100/s.
	ScaleBurst int
	ScaleRate  float64
	// AsyncRetryDelays are the waits before retries of a failed
	// asynchronous event. Default 1m, 2m (Lambda's).
	AsyncRetryDelays []time.Duration
	// AsyncAckWait is how long an in-progress event may go silent before it
	// is redelivered (after a crash). Default 30s.
	AsyncAckWait time.Duration
	// RootAccessKeyID and RootSecretAccessKey are the root credentials every
	// API request is checked against (SigV4). When empty they are generated
	// on first start and kept in the data dir.
	RootAccessKeyID     string
	RootSecretAccessKey string
	// NoAuth turns request signature checking off (explicit choice only).
	NoAuth bool
	// MetricsAuth makes /metrics require a signed request like the API.
	MetricsAuth bool
	// Sandboxes builds the execution environments' sandboxes. Default: the
	// Linux sandbox manager (root only); tests above the sandbox pass a fake.
	Sandboxes sandbox.Factory
	// Egress is how functions reach the network: "nat" (what `icebox
	// serve` asks for unless told otherwise) gives each sandbox a route to
	// the world through a bridge with NAT, refusing the host, other
	// sandboxes, link-local, multicast and private ranges (see
	// internal/sandbox/linux/egress.go); "none" (the zero value, which
	// tests embedding the daemon rely on) leaves sandboxes their loopback
	// only.
	Egress string
	// EgressAllow opens ranges the "nat" policy refuses (private ranges).
	EgressAllow []netip.Prefix
	// EgressDNS are the nameservers sandboxes' /etc/resolv.conf names;
	// default the host's.
	EgressDNS []netip.Addr
	// Streaming sets the response streaming limits; the zero value is
	// Lambda's (200 MiB, 6 MiB at full speed, then 2 MiB/s).
	Streaming runtimeapi.Config
	// BeforeServe, when set, runs after the listener is open but before the
	// first request is served (`icebox run` creates its function there, so
	// no caller ever sees it missing).
	BeforeServe func(*Daemon) error
	// FunctionLog, when set, also gets every line of every function's log,
	// with its log group (`icebox run` shows them as they come). It is
	// called from the goroutine reading the function's output: it must
	// not block for long.
	FunctionLog func(group, line string)
}

// The values of Config.Egress.
const (
	EgressNone = "none"
	EgressNAT  = "nat"
)

// DefaultDataDir is a per-user data directory.
func DefaultDataDir() string {
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".local", "share", "icebox")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("icebox-%d", os.Getuid()))
}

// DefaultCacheDir is where host-wide build output is cached.
func DefaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "icebox")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("icebox-cache-%d", os.Getuid()))
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9070"
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir()
	}
	if c.CacheDir == "" {
		c.CacheDir = DefaultCacheDir()
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 10 * time.Minute
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.AccountID == "" {
		c.AccountID = "000000000000"
	}
	if c.AccountConcurrency == 0 {
		c.AccountConcurrency = 100
	}
	if c.UnreservedMin == 0 {
		c.UnreservedMin = min(10, c.AccountConcurrency)
	}
	if c.MemoryBudgetMB == 0 {
		if mb, err := sblinux.HostMemoryMB(); err == nil {
			c.MemoryBudgetMB = mb * 7 / 10
		}
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if len(c.AccountID) != 12 {
		return fmt.Errorf("account id %q must be 12 digits", c.AccountID)
	}
	for _, r := range c.AccountID {
		if r < '0' || r > '9' {
			return fmt.Errorf("account id %q must be 12 digits", c.AccountID)
		}
	}
	if c.IdleTimeout < 0 {
		return errors.New("idle timeout must not be negative")
	}
	switch c.Egress {
	case "", EgressNone:
		if len(c.EgressAllow) > 0 || len(c.EgressDNS) > 0 {
			return errors.New("egress allow and egress dns need egress nat")
		}
	case EgressNAT:
		for _, p := range c.EgressAllow {
			if !p.IsValid() || !p.Addr().Is4() {
				return fmt.Errorf("egress allow %v: want an IPv4 CIDR (functions have no IPv6)", p)
			}
		}
	default:
		return fmt.Errorf("egress %q: want none or nat", c.Egress)
	}
	return nil
}

// Daemon is a running icebox.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	lock    *sblinux.DataDirLock
	engine  *engine.Engine
	catalog *store.Catalog
	// networks are the operator's networks, applied to the sandboxes'
	// policy as they change.
	networks *store.Networks
	auth     *auth.Authority
	// rootCreated says the root credentials were generated by this start.
	rootCreated bool
	logs        *logs.Store
	sandboxes   *sblinux.Manager
	pool        *pool.Pool
	invoker     *invoke.Invoker
	Functions   *functions.Service
	http        *http.Server
	listener    net.Listener
	urlHTTP     *http.Server
	urlListener net.Listener
	served      chan error
	// member is the node's cluster membership, set once it joined;
	// draining is set when shutdown begins (node.go).
	member atomic.Pointer[membership.Membership]
	// leases is cluster-wide admission (nil on an embedded engine).
	leases   *admission.Leases
	draining atomic.Bool
}

// lateSandboxAPI is the sandboxes' API, filled in after construction.
type lateSandboxAPI struct{ pool.SandboxAPI }

type logSink struct {
	s   *logs.Store
	tee func(group, line string) // Config.FunctionLog
}

func (l logSink) Writer(group, stream string) pool.LogWriter {
	w := l.s.Writer(group, stream)
	if l.tee == nil {
		return w
	}
	return teeWriter{w, group, l.tee}
}

// teeWriter stores a log stream's lines and hands each to tee too.
type teeWriter struct {
	w     pool.LogWriter
	group string
	tee   func(group, line string)
}

func (t teeWriter) Write(ts time.Time, msg string) {
	t.w.Write(ts, msg)
	t.tee(t.group, msg)
}

// electionWait bounds how long Start keeps trying while the external
// engine elects leaders; nats-server's elections take 4–9 s.
const electionWait = time.Minute

// Start brings every part up and starts serving. On error, whatever was
// started is stopped again. With an external engine, a start that failed
// because a stream was between leaders (one of the engine's servers just
// went down) is made again, for up to electionWait.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Daemon, error) {
	deadline := time.Now().Add(electionWait)
	for {
		d, err := start(ctx, cfg, log)
		if err == nil || cfg.NatsURL == "" || !engine.Electing(err) || time.Now().After(deadline) {
			return d, err
		}
		log.Warn("the engine is electing a leader; starting again", "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Second):
		}
	}
}

func start(ctx context.Context, cfg Config, log *slog.Logger) (_ *Daemon, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, served: make(chan error, 1)}
	defer func() {
		if err != nil {
			d.shutdown(context.Background())
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	// Before the engine opens its files or any cgroup is touched: a second
	// daemon on the data dir fails here, naming the first.
	if d.lock, err = sblinux.LockDataDir(ctx, cfg.DataDir); err != nil {
		return nil, err
	}
	if d.engine, err = engine.Open(ctx, engine.Config{DataDir: cfg.DataDir, URL: cfg.NatsURL, Replicas: cfg.Replicas}, log); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	js := d.engine.JetStream()
	if d.catalog, err = store.OpenCatalog(ctx, js, log); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if d.networks, err = store.OpenNetworks(ctx, js, log); err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	layers, err := store.OpenLayerStore(ctx, js)
	if err != nil {
		return nil, fmt.Errorf("layer store: %w", err)
	}
	// Code is content: a function's zip, a layer version's, or both.
	inUse := func(key string) bool { return d.catalog.UsesCode(key) || layers.UsesCode(key) }
	code, err := store.OpenCodeStore(ctx, js, store.CodeConfig{InUse: inUse, Log: log})
	if err != nil {
		return nil, fmt.Errorf("code store: %w", err)
	}
	if d.logs, err = logs.Open(ctx, js, logs.Config{Region: cfg.Region, Account: cfg.AccountID,
		SpoolDir: filepath.Join(cfg.DataDir, "logs-spool")}, log); err != nil {
		return nil, fmt.Errorf("log store: %w", err)
	}
	if cfg.RootAccessKeyID == "" {
		if cfg.RootAccessKeyID, cfg.RootSecretAccessKey, d.rootCreated, err = auth.LoadOrCreateRoot(cfg.DataDir); err != nil {
			return nil, err
		}
		d.cfg = cfg
	}
	if d.auth, err = auth.Open(ctx, auth.Config{Region: cfg.Region, AccountID: cfg.AccountID,
		RootAccessKeyID: cfg.RootAccessKeyID, RootSecretAccessKey: cfg.RootSecretAccessKey}, js, log); err != nil {
		return nil, fmt.Errorf("identities: %w", err)
	}
	m := metrics.New(func() float64 { return float64(d.logs.Dropped()) })
	m.WatchLogDrops(d.logs.EachDrop)

	// Sandbox cgroups are named after the data dir, by its identity rather
	// than its path, so two daemons on one host never touch each other's
	// groups and every spelling of one data dir leads to the same groups.
	factory := cfg.Sandboxes
	if factory == nil {
		if d.sandboxes, err = sblinux.NewManager(sblinux.Config{
			StateDir:     filepath.Join(cfg.DataDir, "sandbox"),
			CgroupParent: "icebox/" + d.lock.ID(),
			Lock:         d.lock,
			// Caps the tasks of all sandboxes together (pids.max).
			AccountConcurrency: cfg.AccountConcurrency,
			Egress:             sblinux.EgressConfig{Enabled: cfg.Egress == EgressNAT, Allow: cfg.EgressAllow, Nameservers: cfg.EgressDNS},
		}); err != nil {
			return nil, fmt.Errorf("sandboxes: %w", err)
		}
		factory = d.sandboxes
		if err := d.sandboxes.InitFallback(); err != nil {
			log.Warn("sandboxes re-execute this binary as their init, about 1.2 MiB more per environment", "why", err)
		}
		d.networks.Subscribe(func(nets []model.Network) {
			if err := d.sandboxes.SetNetworks(nets); err != nil {
				log.Error("networks: applying to sandboxes", "err", err)
			}
		})
	}
	runtimeDir := filepath.Join(cfg.DataDir, "runtime")
	if err := runtimes.Extract(runtimeDir); err != nil {
		return nil, fmt.Errorf("runtime clients: %w", err)
	}
	if err := runtimes.PrepareJava(runtimeDir, cfg.CacheDir); err != nil {
		return nil, fmt.Errorf("java runtime client: %w", err)
	}
	// The SDKs are linked into runtimeDir on each runtime's first use.
	hostRuntimes, err := runtimes.NewHost(runtimes.HostConfig{Dir: runtimeDir, CacheDir: cfg.CacheDir,
		RuntimesDir: cfg.RuntimesDir, Paths: cfg.RuntimePaths, Log: log})
	if err != nil {
		return nil, err
	}
	// The API is built after the pool that serves it inside sandboxes; it
	// is set before any environment can start.
	sandboxAPI := &lateSandboxAPI{}
	counter, err := d.admission(ctx, js)
	if err != nil {
		return nil, err
	}
	if d.Functions, err = functions.New(functions.Config{CodeDir: filepath.Join(cfg.DataDir, "code"), CheckRuntime: hostRuntimes.Check, Reservations: counter, Layers: layers}, d.catalog, code, log); err != nil {
		return nil, err
	}
	if d.pool, err = pool.New(pool.Config{Region: cfg.Region, AccountID: cfg.AccountID, IdleTimeout: cfg.IdleTimeout,
		MemoryBudgetMB: cfg.MemoryBudgetMB, ScaleBurst: cfg.ScaleBurst, ScaleRate: cfg.ScaleRate, Runtimes: hostRuntimes,
		Credentials: d.auth.SessionCredentials, SandboxAPI: sandboxAPI, RuntimeAPI: cfg.Streaming},
		factory, d.Functions, logSink{d.logs, cfg.FunctionLog}, m, log); err != nil {
		return nil, err
	}
	// Environments built from an old configuration are drained, whichever
	// node changed the function; reservations follow the catalog.
	d.catalog.Subscribe(func(old, fn *model.Function) {
		switch {
		case fn != nil:
			d.pool.FunctionChanged(fn.Name, fn.LiveKeys())
			counter.SetReservation(fn.Name, fn.ReservedConcurrency)
			d.provision(counter, fn)
		case old != nil:
			d.pool.FunctionChanged(old.Name, nil)
			counter.SetReservation(old.Name, nil)
			d.provision(counter, &model.Function{Name: old.Name})
		}
	})
	for _, fn := range d.catalog.List() {
		counter.SetReservation(fn.Name, fn.ReservedConcurrency)
		d.provision(counter, &fn)
	}
	m.WatchAccount(func() (float64, float64) {
		u := counter.Usage()
		return float64(u.Concurrent), float64(u.Unreserved)
	})
	iv := invoke.New(invoke.Config{Region: cfg.Region, AccountID: cfg.AccountID}, d.catalog, counter, d.pool, m)
	// The API listener is opened first, so a taken --listen is what is
	// reported even when the URL listener's default port is taken too; and
	// every function URL names the URL listener's port: it is open before
	// the API is built.
	if d.listener, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, err
	}
	urlListen := cfg.URLListen
	if urlListen == "" {
		urlListen = nextAddr(cfg.Listen)
	}
	if d.urlListener, err = net.Listen("tcp", urlListen); err != nil {
		return nil, fmt.Errorf("%w on %s: %w", ErrURLListen, urlListen, err)
	}
	handler := api.New(api.Config{Region: cfg.Region, AccountID: cfg.AccountID, NoAuth: cfg.NoAuth, MetricsAuth: cfg.MetricsAuth,
		URLPort: d.urlListener.Addr().(*net.TCPAddr).Port}, d.Functions, gatedInvoker{iv, d}, d.auth, counter, logs.NewHandler(d.logs, log), m.Handler(), log)
	// The URL index follows the catalog: subscribed before it is filled, so
	// no change falls between the two.
	d.catalog.Subscribe(handler.FunctionChanged)
	for _, fn := range d.catalog.List() {
		handler.FunctionChanged(nil, &fn)
	}
	handler.SetNetworks(d.networks)
	handler.SetEnvironments(d.pool.Counts)
	handler.SetProvisionedStatus(func(fn *model.Function) (int, string) {
		st := d.pool.ProvisionedStatus(fn)
		return st.Allocated, st.Failure
	})
	handler.SetEnvironmentList(func() []api.EnvironmentStatus { return environmentList(d.pool.Snapshot()) })
	sandboxAPI.SandboxAPI = handler
	asyncCfg := invoke.AsyncConfig{RetryDelays: cfg.AsyncRetryDelays, AckWait: cfg.AsyncAckWait}
	if !cfg.NoAuth {
		asyncCfg.RoleIdentity = d.auth.RoleIdentity
	}
	if err := iv.StartAsync(ctx, js, asyncCfg, log); err != nil {
		return nil, err
	}
	d.invoker = iv
	if err := d.join(ctx, d.listener.Addr()); err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}
	if cfg.NatsURL != "" {
		// Nodes of one cluster are scraped apart; a lone embedded node's
		// series stay as they were.
		m.SetNode(d.NodeID())
	}
	handler.SetReadiness(d.notReady)
	handler.SetNodes(d.member.Load().Nodes)
	d.http = handler.HTTPServer()
	if cfg.BeforeServe != nil {
		if err := cfg.BeforeServe(d); err != nil {
			return nil, err
		}
	}
	go func() { d.served <- d.http.Serve(d.listener) }()
	d.urlHTTP = handler.URLHTTPServer()
	go d.urlHTTP.Serve(d.urlListener)
	attrs := []any{"listen", d.listener.Addr().String(), "data_dir", cfg.DataDir, "engine", map[bool]string{true: "embedded", false: "external"}[cfg.NatsURL == ""],
		"url_listen", d.urlListener.Addr().String()}
	if d.sandboxes != nil {
		attrs = append(attrs, "cgroup", d.sandboxes.CgroupVersion())
	}
	log.Info("icebox serving", attrs...)
	return d, nil
}

// RootCredentials are the root access key and secret, and whether this
// start generated them (so `icebox serve` shows them once).
func (d *Daemon) RootCredentials() (id, secret string, created bool) {
	return d.cfg.RootAccessKeyID, d.cfg.RootSecretAccessKey, d.rootCreated
}

// RootCredentialsPath is where generated root credentials are kept.
func (d *Daemon) RootCredentialsPath() string {
	return filepath.Join(d.cfg.DataDir, auth.RootCredentialsFile)
}

// NoAuth says whether requests go unauthenticated.
func (d *Daemon) NoAuth() bool { return d.cfg.NoAuth }

// Region is the region the daemon runs as.
func (d *Daemon) Region() string { return d.cfg.Region }

// EgressBridge names the bridge sandboxes reach the world through under
// --egress nat ("" without egress): operators find it in `ip link`.
func (d *Daemon) EgressBridge() string {
	if d.cfg.Egress != EgressNAT || d.lock == nil {
		return ""
	}
	return sblinux.EgressBridge("icebox/" + d.lock.ID())
}

// Addr is the address the API listens on.
func (d *Daemon) Addr() string { return d.listener.Addr().String() }

// URLAddr is the address the function URL listener listens on.
func (d *Daemon) URLAddr() string { return d.urlListener.Addr().String() }

// ErrURLListen: the function URL listener could not be opened.
var ErrURLListen = errors.New("function URL listener")

// nextAddr is addr with the port after its own, or port 0 when addr's is 0.
func nextAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n <= 0 || n >= 65535 {
		return net.JoinHostPort(host, "0")
	}
	return net.JoinHostPort(host, strconv.Itoa(n+1))
}

// Done yields the serve loop's error if it stops on its own.
func (d *Daemon) Done() <-chan error { return d.served }

// Shutdown stops accepting calls, lets in-flight calls finish (bounded by
// ShutdownTimeout), destroys every environment and closes the engine.
func (d *Daemon) Shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	return d.shutdown(ctx)
}

func (d *Daemon) shutdown(ctx context.Context) error {
	d.draining.Store(true)
	var errs []error
	for _, srv := range []*http.Server{d.http, d.urlHTTP} {
		if srv != nil {
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
			}
		}
	}
	for _, l := range []net.Listener{d.listener, d.urlListener} {
		if l != nil {
			l.Close() // opened and perhaps never served; a second close is harmless
		}
	}
	if d.invoker != nil {
		d.invoker.StopAsync(ctx)
	}
	if d.pool != nil {
		errs = append(errs, d.pool.Close(ctx))
	}
	if d.leases != nil {
		d.leases.Close()
	}
	d.leave()
	if d.networks != nil {
		d.networks.Close()
	}
	if d.sandboxes != nil {
		d.sandboxes.Close()
	}
	if d.logs != nil {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = d.logs.Flush(fctx)
		cancel()
		errs = append(errs, d.logs.Close())
	}
	if d.catalog != nil {
		d.catalog.Close()
	}
	if d.auth != nil {
		d.auth.Close()
	}
	if d.engine != nil {
		errs = append(errs, d.engine.Close())
	}
	// Last: the data dir is free once nothing of this daemon uses it.
	errs = append(errs, d.lock.Close())
	return errors.Join(errs...)
}

// Environments counts execution environments by lifecycle state.
func (d *Daemon) Environments() map[string]int { return d.pool.Counts() }

// environmentList renders the pool's environments for the status page.
func environmentList(envs []pool.EnvironmentInfo) []api.EnvironmentStatus {
	out := make([]api.EnvironmentStatus, len(envs))
	for i, e := range envs {
		out[i] = api.EnvironmentStatus{Function: e.Function, ID: e.ID, State: e.State.String(), Created: e.Created,
			Calls: e.Calls, MemorySizeMB: e.MemoryMB, MaxMemoryUsedMB: e.MaxMemoryBytes >> 20}
	}
	return out
}

// provision hands fn's provisioned concurrency to the admission counter
// (which keeps it out of the unreserved pool) and the pool (which keeps
// the environments of the versions it runs: model.Function.Provisions).
func (d *Daemon) provision(counter admitter, fn *model.Function) {
	var ps []pool.Provision
	total := 0
	for _, pc := range fn.Provisioned {
		for _, p := range fn.Provisions(pc) {
			ps = append(ps, pool.Provision{Function: p.View, Count: p.Count})
		}
		total += pc.Requested
	}
	counter.SetProvisioned(fn.Name, total)
	d.pool.SetProvisioned(fn.Name, ps)
}
