package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	. "icebox/internal/engine"
	"icebox/internal/engine/enginetest"
	"icebox/internal/errdefs"
)

func TestValidate(t *testing.T) {
	if err := (Config{}).Validate(); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("empty config: got %v, want ErrInvalid", err)
	}
	for _, c := range []Config{{DataDir: "/x"}, {URL: "nats://127.0.0.1:4222"}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// roundTrip proves the JetStream API works end to end on e.
func roundTrip(t *testing.T, e *Engine) {
	t.Helper()
	ctx := context.Background()
	kv, err := e.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "probe", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	got, err := kv.Get(ctx, "k")
	if err != nil || string(got.Value()) != "v" {
		t.Fatalf("get: %v %v", got, err)
	}
	if !e.Conn().IsConnected() {
		t.Fatal("conn not connected")
	}
}

func TestEmbedded(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	e, err := Open(context.Background(), Config{DataDir: dir}, enginetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("embedded engine startup (cold dir): %v", time.Since(start))
	if EmbeddedServer(e).Addr() != nil {
		t.Errorf("embedded server listens on %v; want no client port", EmbeddedServer(e).Addr())
	}
	roundTrip(t, e)
	if _, err := os.Stat(filepath.Join(dir, "nats", "jetstream")); err != nil {
		t.Errorf("no JetStream files under DataDir/nats: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if EmbeddedServer(e).Running() {
		t.Fatal("embedded server still running after Close")
	}

	// Reopen: state survives and startup stays fast with data present.
	start = time.Now()
	e = enginetest.Open(t, Config{DataDir: dir})
	t.Logf("embedded engine startup (existing data): %v", time.Since(start))
	kv, err := e.JetStream().KeyValue(context.Background(), "probe")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := kv.Get(context.Background(), "k"); err != nil || string(got.Value()) != "v" {
		t.Fatalf("after reopen: %v %v", got, err)
	}
}

func TestEmbeddedBadDataDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), Config{DataDir: file}, nil); err == nil {
		t.Fatal("Open on a DataDir that is a file: want error")
	} else {
		t.Logf("got expected error: %v", err)
	}
}

func TestExternal(t *testing.T) {
	url := enginetest.ExternalServer(t)
	e, err := Open(context.Background(), Config{URL: url}, enginetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if EmbeddedServer(e) != nil {
		t.Fatal("external mode started an embedded server")
	}
	roundTrip(t, e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// Close leaves the external server alone: another client still works.
	e2 := enginetest.Open(t, Config{URL: url})
	roundTrip(t, e2)
}

func TestExternalUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := Open(ctx, Config{URL: "nats://user:secret@127.0.0.1:1"}, nil)
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if msg := err.Error(); strings.Contains(msg, "secret") {
		t.Errorf("error leaks the password: %s", msg)
	}
}

// Electing tells the answers of a cluster between leaders, which pass,
// from a wrong URL or a server without JetStream, which do not.
func TestElecting(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("session signing key: %w", jetstream.ErrNoStreamResponse), true},
		{fmt.Errorf("catalog: %w", context.DeadlineExceeded), true},
		{&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{fmt.Errorf("engine: connect: %w: %w", errdefs.ErrUnavailable, nats.ErrNoServers), false},
		{jetstream.ErrJetStreamNotEnabled, false},
		{errors.New("bad config"), false},
	} {
		if got := Electing(c.err); got != c.want {
			t.Errorf("Electing(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
