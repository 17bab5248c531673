package functions_test

import (
	"archive/zip"
	"bytes"
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

type reservations struct{ refuse bool }

func (r reservations) CheckReservation(name string, n int) error {
	if r.refuse {
		return fmt.Errorf("would leave too little unreserved: %w", errdefs.ErrInvalid)
	}
	return nil
}

func (r reservations) CheckProvisioned(name string, reserved *int, n int) error {
	return r.CheckReservation(name, n)
}

func newService(t *testing.T) (*functions.Service, string) {
	t.Helper()
	e := enginetest.Embedded(t)
	ctx := context.Background()
	cat, err := store.OpenCatalog(ctx, e.JetStream(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cat.Close)
	code, err := store.OpenCodeStore(ctx, e.JetStream(), store.CodeConfig{InUse: cat.UsesCode})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	check := func(id string) error {
		if id != "provided.al2023" {
			return fmt.Errorf("runtime %s: %w", id, errdefs.ErrInvalid)
		}
		return nil
	}
	s, err := functions.New(functions.Config{CodeDir: dir, CheckRuntime: check, Reservations: reservations{}}, cat, code, enginetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func zipWith(t testing.TB, files map[string]string) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for name, body := range files {
		f, err := w.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(body))
	}
	w.Close()
	return b.Bytes()
}

func fn(name string) model.Function {
	return model.Function{Name: name, Runtime: "provided.al2023", Handler: "bootstrap", Role: "arn:aws:iam::000000000000:role/r"}
}

// TestLifecycle: create, unpack on demand, update, revision checks,
// delete; every refusal leaves the function as it was.
func TestLifecycle(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	made, err := s.Create(ctx, fn("f"), zipWith(t, map[string]string{"bootstrap": "v1"}))
	if err != nil {
		t.Fatal(err)
	}
	if made.MemorySize != 128 || made.Timeout != 3 || made.CodeSha256 == "" || made.RevisionID == "" {
		t.Errorf("defaults and code not applied: %+v", made)
	}
	if _, err := s.Create(ctx, fn("f"), zipWith(t, map[string]string{"bootstrap": "v1"})); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second create: %v, want conflict", err)
	}
	bad := fn("g")
	bad.Runtime = "cobol"
	if _, err := s.Create(ctx, bad, zipWith(t, map[string]string{"bootstrap": "x"})); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("unsupported runtime: %v", err)
	}
	if _, err := s.Create(ctx, fn("h"), []byte("not a zip")); err == nil {
		t.Error("a bad zip was accepted")
	}
	if _, err := s.Get("g"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("a refused create left a function: %v", err)
	}

	dir, err := s.CodeDir(ctx, &made)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "bootstrap")); err != nil || string(b) != "v1" {
		t.Errorf("unpacked code: %q %v", b, err)
	}

	if _, err := s.UpdateConfig(ctx, "f", "stale-revision", func(f *model.Function) { f.Timeout = 10 }); !errors.Is(err, errdefs.ErrPreconditionFailed) {
		t.Errorf("stale revision: %v", err)
	}
	if _, err := s.UpdateConfig(ctx, "f", made.RevisionID, func(f *model.Function) { f.MemorySize = 100 }); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("memory 100: %v", err)
	}
	if got, _ := s.Get("f"); got.MemorySize != 128 || got.RevisionID != made.RevisionID {
		t.Errorf("a refused update changed the function: %+v", got)
	}
	v2 := zipWith(t, map[string]string{"bootstrap": "v2"})
	updated, err := s.UpdateCode(ctx, "f", v2, made.RevisionID)
	if err != nil || updated.CodeSha256 == made.CodeSha256 || updated.RevisionID == made.RevisionID {
		t.Fatalf("update code: %+v %v", updated, err)
	}
	if code, err := s.Code(ctx, &updated); err != nil || !bytes.Equal(code, v2) {
		t.Errorf("stored code: %d bytes, %v", len(code), err)
	}

	if err := s.Delete(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "f"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}
