package functions_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"icebox/internal/engine/enginetest"
	"icebox/internal/errdefs"
	"icebox/internal/functions"
	"icebox/internal/model"
	"icebox/internal/store"
)

// TestLayerContentLifecycle: a function's /opt is built once per
// combination of layers and again from the engine on a new node (or after a
// restart); a deleted layer version's content stays while a function uses
// it and goes with the last user.
func TestLayerContentLifecycle(t *testing.T) {
	e := enginetest.Embedded(t)
	ctx := context.Background()
	cat, err := store.OpenCatalog(ctx, e.JetStream(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cat.Close)
	layers, err := store.OpenLayerStore(ctx, e.JetStream())
	if err != nil {
		t.Fatal(err)
	}
	code, err := store.OpenCodeStore(ctx, e.JetStream(), store.CodeConfig{InUse: cat.UsesCode})
	if err != nil {
		t.Fatal(err)
	}
	service := func() *functions.Service {
		s, err := functions.New(functions.Config{CodeDir: filepath.Join(t.TempDir(), "code"), Reservations: reservations{}, Layers: layers,
			CheckRuntime: func(string) error { return nil }}, cat, code, enginetest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := service()
	a, err := s.PublishLayerVersion(ctx, model.LayerVersion{Name: "a"}, zipWith(t, map[string]string{"python/m.py": "a", "python/a.py": ""}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.PublishLayerVersion(ctx, model.LayerVersion{Name: "b"}, zipWith(t, map[string]string{"python/m.py": "b"}))
	if err != nil {
		t.Fatal(err)
	}
	attach := func(lv model.LayerVersion) model.FunctionLayer {
		return model.FunctionLayer{Arn: lv.Name, CodeSha256: lv.CodeSha256, CodeSize: lv.CodeSize, UnzippedSize: lv.UnzippedSize}
	}
	fn, err := s.Create(ctx, model.Function{Name: "f", Runtime: "provided.al2023", Handler: "h", Role: "arn:aws:iam::000000000000:role/r",
		Layers: []model.FunctionLayer{attach(a), attach(b)}}, zipWith(t, map[string]string{"bootstrap": "x"}))
	if err != nil {
		t.Fatal(err)
	}
	opt := func(s *functions.Service) string {
		t.Helper()
		dir, err := s.OptDir(ctx, &fn)
		if err != nil {
			t.Fatal(err)
		}
		if m, _ := os.ReadFile(filepath.Join(dir, "python/m.py")); string(m) != "b" {
			t.Errorf("python/m.py in %s: %q, want the later layer's", dir, m)
		}
		if _, err := os.Stat(filepath.Join(dir, "python/a.py")); err != nil {
			t.Errorf("the earlier layer's own file: %v", err)
		}
		return dir
	}
	first := opt(s)
	marker := filepath.Join(first, "python")
	before, _ := os.Stat(marker)
	if again := opt(s); again != first {
		t.Errorf("second OptDir %s, first %s", again, first)
	}
	if after, _ := os.Stat(marker); !os.SameFile(before, after) {
		t.Error("the merged tree was built again")
	}

	// A published version with the same layers keeps the merged tree when
	// $LATEST's layers change.
	if _, err := s.Publish(ctx, "f", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateConfig(ctx, "f", "", func(f *model.Function) { f.Layers = nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(first); err != nil {
		t.Errorf("merged tree a version uses: %v", err)
	}

	// The layer versions go; the function keeps running them, here and on
	// a node that has never unpacked them.
	for _, lv := range []model.LayerVersion{a, b} {
		if err := s.DeleteLayerVersion(ctx, lv.Name, lv.Version); err != nil {
			t.Fatal(err)
		}
	}
	opt(service())
	// With the function gone, so is the content.
	if err := s.Delete(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	for _, lv := range []model.LayerVersion{a, b} {
		if _, err := code.Get(ctx, lv.CodeSha256); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("content of %s after its last user went: %v", lv.Name, err)
		}
	}
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Errorf("merged tree after its last user went: %v", err)
	}
}

// BenchmarkOptDir is what a cold start of a function with five layers pays
// for its /opt once the merged tree exists: a lookup, no extraction.
func BenchmarkOptDir(b *testing.B) {
	e := enginetest.Embedded(b)
	ctx := context.Background()
	cat, err := store.OpenCatalog(ctx, e.JetStream(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cat.Close)
	layers, err := store.OpenLayerStore(ctx, e.JetStream())
	if err != nil {
		b.Fatal(err)
	}
	code, err := store.OpenCodeStore(ctx, e.JetStream(), store.CodeConfig{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := functions.New(functions.Config{CodeDir: filepath.Join(b.TempDir(), "code"), Reservations: reservations{}, Layers: layers,
		CheckRuntime: func(string) error { return nil }}, cat, code, enginetest.Logger(b))
	if err != nil {
		b.Fatal(err)
	}
	fn := model.Function{Name: "f"}
	for i := range model.MaxFunctionLayers {
		files := map[string]string{}
		for j := range 200 {
			files[fmt.Sprintf("python/pkg%d/m%d.py", i, j)] = "x = 1\n"
		}
		lv, err := s.PublishLayerVersion(ctx, model.LayerVersion{Name: fmt.Sprintf("l%d", i)}, zipWith(b, files))
		if err != nil {
			b.Fatal(err)
		}
		fn.Layers = append(fn.Layers, model.FunctionLayer{CodeSha256: lv.CodeSha256})
	}
	if _, err := s.OptDir(ctx, &fn); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.OptDir(ctx, &fn); err != nil {
			b.Fatal(err)
		}
	}
}
