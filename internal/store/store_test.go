package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/engine"
	"icebox/internal/engine/enginetest"
	"icebox/internal/errdefs"
	"icebox/internal/model"
	"icebox/internal/store"
	"icebox/internal/store/storetest"
	"icebox/internal/testkit"
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
		s, err := store.OpenCodeStore(context.Background(), newJS(t), store.CodeConfig{})
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
	code, err := store.OpenCodeStore(ctx, e.JetStream(), store.CodeConfig{})
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
	code, err = store.OpenCodeStore(ctx, e.JetStream(), store.CodeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := code.Get(ctx, key); err != nil || string(got) != string(zip) {
		t.Fatalf("code after restart: %q, %v", got, err)
	}
}

// TestCodeStoreCollectsInterruptedUploads: chunks of uploads killed before
// their object info, and complete objects no function uses, are purged when
// the store opens again, so the bucket shrinks back to what live code needs.
// Leftovers younger than the grace period are left to a later pass.
func TestCodeStoreCollectsInterruptedUploads(t *testing.T) {
	ctx := context.Background()
	e := enginetest.Embedded(t)
	js := e.JetStream()
	live, liveKey := codeOf(2, 300<<10) // several chunks
	unused, unusedKey := codeOf(3, 200<<10)
	inUse := func(key string) bool { return key == liveKey }

	code, err := store.OpenCodeStore(ctx, js, store.CodeConfig{InUse: inUse})
	if err != nil {
		t.Fatal(err)
	}
	if err := code.Put(ctx, liveKey, live); err != nil {
		t.Fatal(err)
	}
	bucket := func() jetstream.StreamState {
		t.Helper()
		s, err := js.Stream(ctx, "OBJ_code")
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State
	}
	bucketBytes := func() uint64 { return bucket().Bytes }
	needed := bucketBytes()

	// A CreateFunction killed after storing its code, before creating the
	// function, and two uploads killed mid-way: chunks with no object info.
	if err := code.Put(ctx, unusedKey, unused); err != nil {
		t.Fatal(err)
	}
	uploads := 0
	interrupt := func() {
		t.Helper()
		uploads++
		subj := fmt.Sprintf("$O.code.C.killedUpload%d", uploads)
		for range 20 {
			if _, err := js.Publish(ctx, subj, make([]byte, 128<<10)); err != nil {
				t.Fatal(err)
			}
		}
	}
	interrupt()
	interrupt()
	leaked := bucketBytes()
	if leaked < needed+5<<20 {
		t.Fatalf("setup: bucket holds %d bytes, want over %d", leaked, needed+5<<20)
	}

	// Within the grace period an upload may still be in progress: kept.
	if _, err := store.OpenCodeStore(ctx, js, store.CodeConfig{InUse: inUse, Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got := bucketBytes(); got != leaked {
		t.Fatalf("young leftovers collected: %d bytes, had %d", got, leaked)
	}

	// Reopened past the grace period: only live code remains (plus the
	// deleted object's small tombstone info). Ages are measured on the
	// stream's stamps; the newest is the last leftover's.
	const grace = 10 * time.Millisecond
	newest := bucket().LastTime
	testkit.WaitFor(t, time.Second, "the leftovers to outlive the grace period", func() bool { return time.Since(newest) > grace })
	code, err = store.OpenCodeStore(ctx, js, store.CodeConfig{InUse: inUse, Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	if got := bucketBytes(); got > needed+1<<10 {
		t.Fatalf("after reopening the bucket holds %d bytes; live code needs %d (leaked %d)", got, needed, leaked)
	}
	if got, err := code.Get(ctx, liveKey); err != nil || !bytes.Equal(got, live) {
		t.Fatalf("live code after collection: %d bytes, %v", len(got), err)
	}
	if _, err := code.Get(ctx, unusedKey); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unused code after collection: %v; want ErrNotFound", err)
	}

	// Leftovers too young at open are collected by the deferred pass.
	interrupt()
	if _, err := store.OpenCodeStore(ctx, js, store.CodeConfig{InUse: inUse, Grace: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if got := bucketBytes(); got <= needed+1<<10 {
		t.Fatalf("a young upload was collected at once")
	}
	testkit.WaitFor(t, 5*time.Second, fmt.Sprintf("the deferred pass to shrink the bucket to the %d bytes live code needs", needed), func() bool {
		return bucketBytes() <= needed+1<<10
	})
}

// codeOf returns size pseudo-random bytes and their CodeSha256.
func codeOf(seed uint64, size int) ([]byte, string) {
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	sum := sha256.Sum256(b)
	return b, base64.StdEncoding.EncodeToString(sum[:])
}

// BenchmarkView resolves a call's function through the catalog as the
// invoke path does, for a function with 0 and 100 published versions: the
// cost must not grow with them.
func BenchmarkView(b *testing.B) {
	for _, n := range []int{0, 100} {
		b.Run(fmt.Sprintf("versions=%d", n), func(b *testing.B) {
			c, err := store.OpenCatalog(context.Background(), enginetest.Embedded(b).JetStream(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			if _, err := c.Create(ctx, storetest.Function("f")); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Update(ctx, "f", func(f *model.Function) error {
				for i := range n {
					f.MemorySize = 128 + i
					f.Publish("", time.Now())
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := c.View("f", ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
