// Package engine connects icebox to the NATS JetStream server that holds all of
// its state (catalog KV, code object store, streams).
//
// By default the server runs inside the icebox process: file-backed under the
// data directory and with no client port, so nothing outside the process can
// reach it and there is nothing to install. Pointing Config.URL at an external
// JetStream server (or cluster) lets several icebox nodes share state. Only the
// dial differs between the two modes; everything after connecting is the same
// code path, so the embedded mode exercises what production clusters run.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/errdefs"
)

// Config selects and configures the engine.
type Config struct {
	// DataDir is icebox's data directory. The embedded server keeps its
	// JetStream files under DataDir/nats. Required when URL is empty; unused
	// otherwise.
	DataDir string
	// URL is an external NATS server URL (or comma-separated list of a
	// cluster's URLs) with JetStream enabled. Empty (the default) runs the
	// server embedded in-process.
	URL string
	// Replicas is how many copies of every stream, KV bucket and object
	// store icebox creates on a clustered engine (1..5). 0 (the default)
	// means 1 for new stores; either way a store that already has more
	// replicas keeps them, and one with fewer is raised (see replicated).
	// The embedded server is a single node: only 0 or 1 apply.
	Replicas int
}

// Validate checks that the configuration can be used.
func (c Config) Validate() error {
	if c.URL == "" && c.DataDir == "" {
		return fmt.Errorf("engine: DataDir is required for the embedded server: %w", errdefs.ErrInvalid)
	}
	if c.Replicas < 0 || c.Replicas > MaxReplicas {
		return fmt.Errorf("engine: replicas %d not in 1..%d: %w", c.Replicas, MaxReplicas, errdefs.ErrInvalid)
	}
	if c.URL == "" && c.Replicas > 1 {
		return fmt.Errorf("engine: replicas %d need a clustered external engine (--nats-url); the embedded one is a single server: %w", c.Replicas, errdefs.ErrInvalid)
	}
	return nil
}

const (
	// startTimeout bounds the embedded server's startup. It normally takes
	// a few milliseconds; the bound only matters if JetStream recovery hangs.
	startTimeout = 10 * time.Second
	// connectTimeout bounds dialing an external server when ctx has no
	// earlier deadline.
	connectTimeout = 5 * time.Second
	// drainTimeout bounds Close's wait for in-flight messages.
	drainTimeout = 5 * time.Second
)

// Engine is a connection to JetStream, plus the embedded server when there is one.
type Engine struct {
	log    *slog.Logger
	ns     *server.Server // nil when connected to an external server
	nc     *nats.Conn
	js     jetstream.JetStream
	closed chan struct{} // closed by the connection's ClosedHandler

	closeOnce sync.Once
	closeErr  error
}

// Open starts the embedded server (when cfg.URL is empty) or dials the external
// one, and checks that JetStream answers. A nil log discards.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (_ *Engine, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	e := &Engine{log: log, closed: make(chan struct{})}
	defer func() {
		if err != nil {
			e.shutdown()
		}
	}()

	opts := []nats.Option{
		nats.Name("icebox"),
		nats.MaxReconnects(-1), // an engine outage is waited out, never final
		nats.DrainTimeout(drainTimeout),
		nats.ClosedHandler(func(*nats.Conn) { close(e.closed) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("engine disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("engine reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("engine async error", "subject", subject, "err", err)
		}),
	}
	if cfg.URL == "" {
		if e.ns, err = startEmbedded(filepath.Join(cfg.DataDir, "nats"), log); err != nil {
			return nil, err
		}
		opts = append(opts, nats.InProcessServer(e.ns))
	} else {
		timeout := connectTimeout
		if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
			timeout = time.Until(d)
		}
		opts = append(opts, nats.Timeout(timeout))
	}

	if e.nc, err = nats.Connect(cfg.URL, opts...); err != nil {
		return nil, fmt.Errorf("engine: connect %s: %w: %w", redact(cfg.URL), errdefs.ErrUnavailable, err)
	}
	js, err := jetstream.New(e.nc)
	if err != nil {
		return nil, fmt.Errorf("engine: jetstream: %w", err)
	}
	e.js = replicated{JetStream: js, replicas: cfg.Replicas, log: log}
	// Fail at startup, not on the first request, when the server has no JetStream.
	if _, err = e.js.AccountInfo(ctx); err != nil {
		return nil, fmt.Errorf("engine: jetstream not available at %s: %w: %w", redact(cfg.URL), errdefs.ErrUnavailable, err)
	}
	log.Info("engine ready", "embedded", e.ns != nil, "url", redact(cfg.URL),
		"dir", cfg.DataDir, "took", time.Since(start))
	return e, nil
}

// startEmbedded runs an in-process JetStream server without client listeners.
func startEmbedded(storeDir string, log *slog.Logger) (_ *server.Server, err error) {
	ns, err := server.NewServer(&server.Options{
		ServerName: "icebox",
		JetStream:  true,
		StoreDir:   storeDir,
		DontListen: true,
		NoSigs:     true,
		// An asynchronous event may be 1 MiB of payload plus headers; the
		// default limit (1 MiB in all) would refuse the largest ones. An
		// external server needs max_payload raised the same way.
		MaxPayload: 8 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("engine: embedded server: %w", err)
	}
	defer func() {
		if err != nil {
			ns.Shutdown()
			ns.WaitForShutdown()
		}
	}()
	sl := &serverLogger{log: log}
	ns.SetLogger(sl, false, false)
	// Start is synchronous up to JetStream recovery; on failure it reports
	// through Fatalf and returns without signalling readiness.
	ns.Start()
	if err := sl.startDone(); err != nil {
		return nil, fmt.Errorf("engine: embedded server: %w", err)
	}
	if !ns.ReadyForConnections(startTimeout) {
		return nil, fmt.Errorf("engine: embedded server not ready after %s: %w", startTimeout, errdefs.ErrUnavailable)
	}
	return ns, nil
}

// JetStream returns the JetStream API bound to the engine's connection. The
// streams, KV buckets and object stores created through it get the
// configured replicas (see replicated).
func (e *Engine) JetStream() jetstream.JetStream { return e.js }

// Conn returns the underlying NATS connection (core pub/sub, MaxPayload…).
func (e *Engine) Conn() *nats.Conn { return e.nc }

// Close drains the connection (in-flight publishes and subscriptions finish),
// then stops the embedded server and waits until it has flushed to disk.
// Safe to call more than once.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() { e.closeErr = e.shutdown() })
	return e.closeErr
}

func (e *Engine) shutdown() error {
	var err error
	if e.nc != nil {
		if derr := e.nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
			err = fmt.Errorf("engine: drain: %w", derr)
			e.nc.Close()
		}
		// Drain is asynchronous; ClosedHandler fires when it is done (or
		// after DrainTimeout).
		<-e.closed
	}
	if e.ns != nil {
		e.ns.Shutdown()
		e.ns.WaitForShutdown()
	}
	return err
}

// redact hides credentials embedded in server URLs for logs and errors.
func redact(urls string) string {
	if urls == "" {
		return "embedded"
	}
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// serverLogger routes the embedded server's log into slog. Its notices are
// chatty startup banners, so they go to Debug: the server is quiet by default.
type serverLogger struct {
	log *slog.Logger

	mu       sync.Mutex
	started  bool  // Start returned; later fatals can only be logged
	fatalErr error // first Fatalf during Start; the server cannot run after one
}

func (l *serverLogger) Noticef(format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (l *serverLogger) Warnf(format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (l *serverLogger) Errorf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (l *serverLogger) Debugf(format string, v ...any) {}
func (l *serverLogger) Tracef(format string, v ...any) {}

// Fatalf during Start records the error for startEmbedded to return (logging
// it too would log it twice); afterwards there is no caller to return to.
func (l *serverLogger) Fatalf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := fmt.Errorf(format, v...)
	if l.started {
		l.log.Error(err.Error(), "component", "nats-server", "fatal", true)
	} else if l.fatalErr == nil {
		l.fatalErr = err
	}
}

// startDone marks Start as returned and reports its fatal error, if any.
func (l *serverLogger) startDone() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.started = true
	return l.fatalErr
}

// Connected reports whether the connection to the engine is up now (always
// for the embedded server; an external one may be between reconnects).
func (e *Engine) Connected() bool { return e.nc.IsConnected() }

// jsClusterNotAvailable is the JetStream API's error code for "JetStream
// system temporarily unavailable", its answer while it has no meta leader.
const jsClusterNotAvailable jetstream.ErrorCode = 10008

// Electing reports whether err is what a JetStream cluster answers while a
// stream or its meta layer is between leaders, as after one of its servers
// went down: no responder, no answer in time, or "temporarily unavailable".
// The same request succeeds again once the election is over (seconds).
func Electing(err error) bool {
	var api *jetstream.APIError
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &api) && api.ErrorCode == jsClusterNotAvailable)
}

// OpenKeyValue creates the KV bucket cfg describes, or opens it as it is
// when it exists with another configuration (made by nodes with other
// settings, or changed by an operator: raised replicas, another TTL).
func OpenKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, cfg.Bucket)
	}
	return kv, err
}
