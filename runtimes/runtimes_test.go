package runtimes

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"icebox/internal/errdefs"
)

func TestRegistry(t *testing.T) {
	ids := IDs()
	for _, want := range []string{"python3.11", "python3.12", "python3.13", "nodejs20.x", "java17", "java21"} {
		if !slices.Contains(ids, want) {
			t.Errorf("%s missing from %v", want, ids)
		}
	}
	for _, id := range []string{"provided.al2023", "provided.al2", "provided"} {
		if !IsProvided(id) || slices.Contains(ids, id) {
			t.Errorf("%s: provided %v, managed %v", id, IsProvided(id), slices.Contains(ids, id))
		}
	}
	if IsProvided("python3.11") {
		t.Error("python3.11 is not OS-only")
	}
	h, err := NewHost(HostConfig{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Lookup("cobol1.0")
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "cobol1.0") || !strings.Contains(err.Error(), "provided.al2023, provided.al2,") {
		t.Errorf("unknown runtime: %v", err)
	}
	if _, err = h.Lookup("go1.x"); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "use provided.al2023") {
		t.Errorf("go1.x: %v", err)
	}
	st := h.Statuses()
	if len(st) != len(ids)+3 || st[0].ID != "provided.al2023" || !st[0].Available {
		t.Errorf("statuses: %+v", st)
	}
	for _, s := range st {
		if s.Why == "" {
			t.Errorf("%s: no reason given", s.ID)
		}
	}
}

// TestNodeHeapFollowsMemory: V8's heap is sized to the function's memory,
// as Lambda's Node.js bootstrap does.
func TestNodeHeapFollowsMemory(t *testing.T) {
	for mem, want := range map[int][]string{
		128:  {"--max-semi-space-size=6", "--max-old-space-size=108"},
		1024: {"--max-semi-space-size=16", "--max-old-space-size=870"},
	} {
		argv := nodeCommand("/usr/bin/node")("index.handler", mem)
		if argv[0] != "/usr/bin/node" || argv[1] != want[0] || argv[2] != want[1] || argv[len(argv)-1] != "/var/runtime/index.cjs" {
			t.Errorf("%d MB: %v, want %v", mem, argv, want)
		}
	}
}

func TestExtract(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "runtime")
	if err := os.MkdirAll(filepath.Join(dst, "stale"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Extract(dst); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"python/bootstrap.py", "nodejs/index.cjs"} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Errorf("%s not extracted: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "stale")); !os.IsNotExist(err) {
		t.Errorf("what an older icebox left is still there: %v", err)
	}
	// Installed SDKs are kept; everything else is rewritten.
	for _, f := range []string{"python/site-packages/boto3/__init__.py", "nodejs/node_modules/x/index.js", "python/old.py", "java/stale.jar"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Extract(dst); err != nil {
		t.Fatal(err)
	}
	for f, kept := range map[string]bool{"python/site-packages/boto3/__init__.py": true, "nodejs/node_modules/x/index.js": true,
		"python/old.py": false, "java/stale.jar": false, "python/bootstrap.py": true} {
		if _, err := os.Stat(filepath.Join(dst, f)); (err == nil) != kept {
			t.Errorf("%s: kept %v, want %v", f, err == nil, kept)
		}
	}
}
