// Package enginetest gives tests a real engine: embedded in a temp dir, or an
// external nats-server started for the test.
package enginetest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"icebox/internal/engine"
)

// Open opens an engine with cfg and closes it at the end of the test.
func Open(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := engine.Open(ctx, cfg, Logger(t))
	if err != nil {
		t.Fatalf("engine.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("engine.Close: %v", err)
		}
	})
	return e
}

// Embedded opens an engine with an embedded server in a fresh temp dir.
func Embedded(t testing.TB) *engine.Engine {
	t.Helper()
	return Open(t, engine.Config{DataDir: t.TempDir()})
}

// External opens an engine connected to a fresh ExternalServer.
func External(t testing.TB) *engine.Engine {
	t.Helper()
	return Open(t, engine.Config{URL: ExternalServer(t)})
}

// ExternalServer starts a standalone JetStream nats-server on a random
// loopback port, as a separate deployment would run, and returns its client
// URL. It is shut down at the end of the test.
func ExternalServer(t testing.TB) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return ns.ClientURL()
}

// Logger logs warnings and errors into the test's output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
