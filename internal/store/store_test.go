package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/engine"
	"icebox/internal/engine/enginetest"
	"icebox/internal/errdefs"
	"icebox/internal/store"
	"icebox/internal/store/storetest"
)

func embedded(t *testing.T) jetstream.JetStream { return enginetest.Embedded(t).JetStream() }
func external(t *testing.T) jetstream.JetStream { return enginetest.External(t).JetStream() }

// catalogs returns a contract opener: one engine per test, shared by every
// Catalog opened in that test.
func catalogs(newJS func(*testing.T) jetstream.JetStream) func(*testing.T) *store.Catalog {
	var (
		mu      sync.Mutex
		engines = map[*testing.T]jetstream.JetStream{}
	)
	return func(t *testing.T) *store.Catalog {
		mu.Lock()
		js, ok := engines[t]
		if !ok {
			js = newJS(t)
			engines[t] = js
			t.Cleanup(func() { mu.Lock(); delete(engines, t); mu.Unlock() })
		}
		mu.Unlock()
		return openCatalog(t, js)
	}
}

func openCatalog(t *testing.T, js jetstream.JetStream) *store.Catalog {
	t.Helper()
	c, err := store.OpenCatalog(context.Background(), js, enginetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func codeStores(newJS func(*testing.T) jetstream.JetStream) func(*testing.T) *store.CodeStore {
	return func(t *testing.T) *store.CodeStore {
		s, err := store.OpenCodeStore(context.Background(), newJS(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestCatalogEmbedded(t *testing.T) { storetest.RunCatalogContract(t, catalogs(embedded)) }
func TestCatalogExternal(t *testing.T) { storetest.RunCatalogContract(t, catalogs(external)) }

func TestCodeStoreEmbedded(t *testing.T) { storetest.RunCodeStoreContract(t, codeStores(embedded)) }
func TestCodeStoreExternal(t *testing.T) { storetest.RunCodeStoreContract(t, codeStores(external)) }

// TestRestart closes the engine and opens the same data directory again, as a
// restarted daemon does.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	cfg := engine.Config{DataDir: t.TempDir()}
	zip := []byte("PK\x05\x06 not really a zip")
	key := "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

	e, err := engine.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := store.OpenCatalog(ctx, e.JetStream(), nil)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := c.Create(ctx, storetest.Function("kept"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, storetest.Function("dropped")); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "dropped"); err != nil {
		t.Fatal(err)
	}
	code, err := store.OpenCodeStore(ctx, e.JetStream())
	if err != nil {
		t.Fatal(err)
	}
	if err := code.Put(ctx, key, zip); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = enginetest.Open(t, cfg)
	c = openCatalog(t, e.JetStream())
	if l := c.List(); len(l) != 1 || l[0].RevisionID != kept.RevisionID {
		t.Fatalf("after restart List = %+v; want only %+v", l, kept)
	}
	if _, err := c.Get("dropped"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("deleted function back after restart: %v", err)
	}
	code, err = store.OpenCodeStore(ctx, e.JetStream())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := code.Get(ctx, key); err != nil || string(got) != string(zip) {
		t.Fatalf("code after restart: %q, %v", got, err)
	}
}
