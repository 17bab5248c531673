// Package storetest is the contract every catalog and code store setup must
// pass (embedded engine, external engine, …). Run it from a test that knows
// how to build one.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"icebox/internal/errdefs"
	"icebox/internal/model"
	"icebox/internal/store"
	"icebox/internal/testkit"
)

// Function returns a valid function configuration named name.
func Function(name string) model.Function {
	f := model.Function{
		Name:        name,
		Runtime:     "provided.al2023",
		Handler:     "bootstrap",
		Role:        "arn:aws:iam::123456789012:role/lambda",
		Environment: map[string]string{"GREETING": "hello"},
		CodeSha256:  "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
		CodeSize:    1,
	}
	f.ApplyDefaults()
	return f
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// RunCatalogContract checks Catalog behaviour. open(t) returns a new Catalog
// on the store belonging to t: each subtest starts from an empty store, and a
// second open with the same t returns another Catalog sharing that store, as a
// second icebox node would. open registers its own cleanup.
func RunCatalogContract(t *testing.T, open func(t *testing.T) *store.Catalog) {
	ctx := context.Background()
	run := func(name string, f func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t)
		})
	}

	run("CreateGetList", func(t *testing.T) {
		c := open(t)
		for _, n := range []string{"charlie", "alpha", "bravo"} {
			got, err := c.Create(ctx, Function(n))
			if err != nil {
				t.Fatalf("Create %s: %v", n, err)
			}
			if !uuidRE.MatchString(got.RevisionID) || got.LastModified.IsZero() {
				t.Errorf("Create %s: RevisionID %q LastModified %v not stamped", n, got.RevisionID, got.LastModified)
			}
			// Read-your-writes: no waiting for the watch.
			if cached, err := c.Get(n); err != nil || !same(cached, got) {
				t.Errorf("Get %s right after Create = %+v, %v; want %+v", n, cached, err, got)
			}
		}
		if names := names(c.List()); names != "alpha,bravo,charlie" {
			t.Errorf("List = %s; want sorted alpha,bravo,charlie", names)
		}
	})

	run("CreateConflict", func(t *testing.T) {
		c := open(t)
		first := mustCreate(t, c, Function("dup"))
		again := Function("dup")
		again.MemorySize = 256
		_, err := c.Create(ctx, again)
		if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "Function already exist: dup") {
			t.Fatalf("second Create: %v; want ErrConflict naming the function", err)
		}
		if got, _ := c.Get("dup"); !same(got, first) {
			t.Errorf("conflicting Create changed the function: %+v", got)
		}
	})

	run("InvalidName", func(t *testing.T) {
		c := open(t)
		if _, err := c.Create(ctx, Function("no.dots")); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Create no.dots: %v; want ErrInvalid", err)
		}
	})

	run("NotFound", func(t *testing.T) {
		c := open(t)
		if _, err := c.Get("ghost"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get: %v; want ErrNotFound", err)
		}
		called := false
		_, err := c.Update(ctx, "ghost", func(*model.Function) error { called = true; return nil })
		if !errors.Is(err, errdefs.ErrNotFound) || called {
			t.Errorf("Update: %v (mutate called: %v); want ErrNotFound without calling mutate", err, called)
		}
		if err := c.Delete(ctx, "ghost"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Delete: %v; want ErrNotFound", err)
		}
		if l := c.List(); len(l) != 0 {
			t.Errorf("List of empty catalog = %v", l)
		}
	})

	run("Update", func(t *testing.T) {
		c := open(t)
		orig := mustCreate(t, c, Function("up"))
		got, err := c.Update(ctx, "up", func(f *model.Function) error {
			if f.RevisionID != orig.RevisionID {
				return fmt.Errorf("mutate saw revision %s, want %s", f.RevisionID, orig.RevisionID)
			}
			f.MemorySize = 512
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.MemorySize != 512 || got.RevisionID == orig.RevisionID || !uuidRE.MatchString(got.RevisionID) ||
			got.LastModified.Before(orig.LastModified) {
			t.Errorf("Update returned %+v; want memory 512, a new RevisionID, LastModified not before %v", got, orig.LastModified)
		}
		if cached, _ := c.Get("up"); !same(cached, got) {
			t.Errorf("Get right after Update = %+v; want %+v", cached, got)
		}

		// mutate's error comes back unchanged and nothing is written.
		sentinel := fmt.Errorf("revision mismatch: %w", errdefs.ErrPreconditionFailed)
		if _, err := c.Update(ctx, "up", func(f *model.Function) error { f.Timeout = 9; return sentinel }); err != sentinel {
			t.Errorf("Update with failing mutate: %v; want the mutate error itself", err)
		}
		if _, err := c.Update(ctx, "up", func(f *model.Function) error { f.Name = "other"; return nil }); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("renaming Update: %v; want ErrInvalid", err)
		}
		if cached, _ := c.Get("up"); !same(cached, got) {
			t.Errorf("failed Updates changed the function: %+v", cached)
		}
	})

	run("Delete", func(t *testing.T) {
		c := open(t)
		mustCreate(t, c, Function("gone"))
		mustCreate(t, c, Function("kept"))
		if err := c.Delete(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get("gone"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get right after Delete: %v; want ErrNotFound", err)
		}
		if n := names(c.List()); n != "kept" {
			t.Errorf("List after Delete = %s", n)
		}
		if err := c.Delete(ctx, "gone"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("second Delete: %v; want ErrNotFound", err)
		}
		// The name is free again.
		again := Function("gone")
		again.Timeout = 30
		if got := mustCreate(t, c, again); got.Timeout != 30 {
			t.Errorf("re-Create = %+v", got)
		}
		if got, err := c.Get("gone"); err != nil || got.Timeout != 30 {
			t.Errorf("Get after re-Create = %+v, %v", got, err)
		}
	})

	run("ReturnedValuesAreCopies", func(t *testing.T) {
		c := open(t)
		in := Function("iso")
		created := mustCreate(t, c, in)
		in.Environment["GREETING"] = "changed by caller"
		created.Environment["GREETING"] = "changed by caller"
		got, _ := c.Get("iso")
		got.Environment["GREETING"] = "changed by caller"
		got.Architectures[0] = "arm64"
		if again, _ := c.Get("iso"); again.Environment["GREETING"] != "hello" || again.Architectures[0] != "x86_64" {
			t.Errorf("cache aliased caller memory: %+v", again)
		}
	})

	run("ConcurrentUpdates", func(t *testing.T) {
		c := open(t)
		mustCreate(t, c, Function("hot"))
		const writers, each = 6, 8
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			ok, clash int
		)
		for range writers {
			wg.Go(func() {
				for range each {
					_, err := c.Update(ctx, "hot", func(f *model.Function) error { f.MemorySize++; return nil })
					mu.Lock()
					switch {
					case err == nil:
						ok++
					case errors.Is(err, errdefs.ErrConflict):
						clash++
					default:
						t.Errorf("Update: %v", err)
					}
					mu.Unlock()
					_, _ = c.Get("hot") // readers race writers under -race
					_ = c.List()
				}
			})
		}
		wg.Wait()
		t.Logf("%d updates succeeded, %d gave up on conflicts", ok, clash)
		if ok == 0 {
			t.Fatal("no update succeeded")
		}
		// No lost update: every successful increment is in the final value.
		if got, _ := c.Get("hot"); got.MemorySize != model.DefaultMemoryMB+ok {
			t.Errorf("MemorySize = %d after %d successful increments; want %d", got.MemorySize, ok, model.DefaultMemoryMB+ok)
		}
	})

	run("OpenLoadsExisting", func(t *testing.T) {
		c := open(t)
		mustCreate(t, c, Function("one"))
		mustCreate(t, c, Function("two"))
		if err := c.Delete(ctx, "two"); err != nil {
			t.Fatal(err)
		}
		// A catalog opened later has everything at once, without waiting.
		if n := names(open(t).List()); n != "one" {
			t.Errorf("new catalog lists %q; want one", n)
		}
	})

	run("Subscribe", func(t *testing.T) {
		c := open(t)
		events := subscribe(c)
		a1 := mustCreate(t, c, Function("sub"))
		a2, err := c.Update(ctx, "sub", func(f *model.Function) error { f.Timeout = 10; return nil })
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, "sub"); err != nil {
			t.Fatal(err)
		}
		expectEvent(t, events, nil, &a1)
		expectEvent(t, events, &a1, &a2)
		expectEvent(t, events, &a2, nil)
	})

	run("TwoNodes", func(t *testing.T) {
		c1, c2 := open(t), open(t)
		events := subscribe(c2)

		f1 := mustCreate(t, c1, Function("shared"))
		testkit.WaitFor(t, 5*time.Second, "c2 sees the create", func() bool { got, err := c2.Get("shared"); return err == nil && same(got, f1) })
		expectEvent(t, events, nil, &f1)

		// c2 updates from the engine's value, c1's cache follows.
		f2, err := c2.Update(ctx, "shared", func(f *model.Function) error { f.Description = "by c2"; return nil })
		if err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, 5*time.Second, "c1 sees c2's update", func() bool { got, _ := c1.Get("shared"); return same(got, f2) })
		expectEvent(t, events, &f1, &f2)

		if _, err := c1.Create(ctx, Function("shared")); !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("Create on c1 of a name c2 knows: %v; want ErrConflict", err)
		}
		if err := c1.Delete(ctx, "shared"); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, 5*time.Second, "c2 sees the delete", func() bool { _, err := c2.Get("shared"); return errors.Is(err, errdefs.ErrNotFound) })
		expectEvent(t, events, &f2, nil)
		if l := c2.List(); len(l) != 0 {
			t.Errorf("c2 List after delete = %v", l)
		}
	})

	// Published versions and aliases live in their function's record: they
	// survive the engine and another node's cache, a version number is never
	// handed out twice, a record over the limit is refused whole, and what
	// Get returns shares nothing with the cache.
	run("VersionsAndAliases", func(t *testing.T) {
		c1 := open(t)
		c2 := open(t)
		mustCreate(t, c1, Function("pub"))
		publish := func(mutate func(*model.Function)) string {
			t.Helper()
			var num string
			if _, err := c1.Update(ctx, "pub", func(f *model.Function) error {
				mutate(f)
				v, _ := f.Publish("", time.Now())
				num = v.Version
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return num
		}
		v1 := publish(func(*model.Function) {})
		v2 := publish(func(f *model.Function) { f.MemorySize = 256 })
		if _, err := c1.Update(ctx, "pub", func(f *model.Function) error {
			f.Versions = f.Versions[:1] // delete the newest version
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		v3 := publish(func(f *model.Function) { f.MemorySize = 512 })
		if _, err := c1.Update(ctx, "pub", func(f *model.Function) error {
			f.Aliases = append(f.Aliases, model.Alias{Name: "live", FunctionVersion: v3, Weights: map[string]float64{v1: 0.1}, RevisionID: model.NewUUID()})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if v1 != "1" || v2 != "2" || v3 != "3" {
			t.Fatalf("published %s, %s, %s; want 1, 2, 3 (a deleted number is not reused)", v1, v2, v3)
		}
		testkit.WaitFor(t, 5*time.Second, "c2 sees the alias", func() bool {
			f, _ := c2.Get("pub")
			return f.AliasNamed("live") != nil
		})
		f, _ := c2.Get("pub")
		if _, err := f.View("2"); !model.IsNoQualifier(err) {
			t.Errorf("deleted version 2 on c2: %v; want no such qualifier", err)
		}
		if got, err := f.View("1"); err != nil || got.MemorySize != 128 || got.VersionName() != "1" {
			t.Errorf("version 1 on c2 = %+v, %v; want the frozen 128 MB", got, err)
		}
		if a := f.AliasNamed("live"); a == nil || a.FunctionVersion != "3" || a.Weights["1"] != 0.1 {
			t.Errorf("alias on c2 = %+v", a)
		}
		// A record over the limit is refused whole, as bad input.
		_, err := c1.Update(ctx, "pub", func(f *model.Function) error {
			for i := range store.MaxRecordBytes / 4096 {
				f.Description = fmt.Sprint(i, strings.Repeat("x", 4096))
				f.Publish("", time.Now())
			}
			return nil
		})
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "delete versions") {
			t.Errorf("an oversized record: %v; want ErrInvalid saying to delete versions", err)
		}
		if got, _ := c1.Get("pub"); len(got.Versions) != 2 {
			t.Errorf("the refused write left %d versions", len(got.Versions))
		}
		// Changing a copy changes nothing in the cache.
		f.Versions[0].MemorySize = 1024
		f.Aliases[0].Weights["1"] = 0.9
		again, _ := c2.Get("pub")
		if again.Versions[0].MemorySize != 128 || again.Aliases[0].Weights["1"] != 0.1 {
			t.Errorf("a Get result aliases the cache: %+v", again)
		}
	})
}

// RunCodeStoreContract checks CodeStore behaviour. open(t) returns a CodeStore
// on an empty store of its own and registers its cleanup.
func RunCodeStoreContract(t *testing.T, open func(t *testing.T) *store.CodeStore) {
	ctx := context.Background()
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// Several chunks, and a key with both of base64's awkward characters.
		zip, key := zipWithAwkwardKey(t, 300<<10)
		for range 2 { // idempotent
			if err := s.Put(ctx, key, zip); err != nil {
				t.Fatalf("Put %s: %v", key, err)
			}
		}
		got, err := s.Get(ctx, key)
		if err != nil || !bytes.Equal(got, zip) {
			t.Fatalf("Get %s: %d bytes, %v; want the %d bytes put", key, len(got), err, len(zip))
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, key); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get after Delete: %v; want ErrNotFound", err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("second Delete: %v; want ErrNotFound", err)
		}
		if err := s.Put(ctx, key, zip); err != nil { // back after a delete
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, key); err != nil || !bytes.Equal(got, zip) {
			t.Fatalf("Get after re-Put: %v", err)
		}
	})
	t.Run("NotFoundAndInvalid", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		if _, err := s.Get(ctx, sha256Key([]byte("never stored"))); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get: %v; want ErrNotFound", err)
		}
		if err := s.Put(ctx, "not base64!", []byte("x")); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Put with bad key: %v; want ErrInvalid", err)
		}
	})
}

func sha256Key(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func zipWithAwkwardKey(t *testing.T, size int) ([]byte, string) {
	b := make([]byte, size)
	for range 1000 {
		rand.Read(b)
		if k := sha256Key(b); strings.Contains(k, "/") && strings.Contains(k, "+") {
			return b, k
		}
	}
	t.Fatal("no key with both / and +")
	return nil, ""
}

type change struct{ old, new *model.Function }

func subscribe(c *store.Catalog) <-chan change {
	ch := make(chan change, 64)
	c.Subscribe(func(old, new *model.Function) { ch <- change{old, new} })
	return ch
}

func expectEvent(t *testing.T, ch <-chan change, old, new *model.Function) {
	t.Helper()
	select {
	case ev := <-ch:
		if !samePtr(ev.old, old) || !samePtr(ev.new, new) {
			t.Errorf("change = (%s → %s); want (%s → %s)", rev(ev.old), rev(ev.new), rev(old), rev(new))
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no change notification; want (%s → %s)", rev(old), rev(new))
	}
}

func rev(f *model.Function) string {
	if f == nil {
		return "nil"
	}
	return f.Name + "@" + f.RevisionID
}

func samePtr(a, b *model.Function) bool {
	if a == nil || b == nil {
		return a == b
	}
	return same(*a, *b)
}

// same reports whether a catalog round trip kept everything, revision stamps
// included.
func same(a, b model.Function) bool {
	if !a.LastModified.Equal(b.LastModified) {
		return false
	}
	a.LastModified, b.LastModified = time.Time{}, time.Time{} // Location differs after JSON
	return reflect.DeepEqual(a, b)
}

func names(fns []model.Function) string {
	var s []string
	for _, f := range fns {
		s = append(s, f.Name)
	}
	return strings.Join(s, ",")
}

func mustCreate(t *testing.T, c *store.Catalog, f model.Function) model.Function {
	t.Helper()
	got, err := c.Create(context.Background(), f)
	if err != nil {
		t.Fatalf("Create %s: %v", f.Name, err)
	}
	return got
}
