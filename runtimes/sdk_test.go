package runtimes

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"icebox/internal/errdefs"
)

// TestManifests: every SDK pin is exact, and hashed where the ecosystem
// allows it.
func TestManifests(t *testing.T) {
	b, err := sdkFiles.ReadFile("sdk/python/requirements.txt")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^[A-Za-z0-9._-]+==[0-9][^ ]* --hash=sha256:[0-9a-f]{64}$`)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		n++
		if !line.MatchString(l) {
			t.Errorf("requirements.txt: %q is not NAME==VERSION --hash=sha256:HEX", l)
		}
	}
	if p := pythonPinned(); n < 2 || !regexp.MustCompile(`^boto3 \d+\.\d+\.\d+, botocore \d+\.\d+\.\d+$`).MatchString(p) {
		t.Errorf("python pins: %d lines, %q", n, p)
	}

	var pkg struct{ Dependencies map[string]string }
	var lock struct {
		LockfileVersion int
		Packages        map[string]struct {
			Version, Integrity string
			Dependencies       map[string]string
		}
	}
	b, _ = sdkFiles.ReadFile("sdk/nodejs/package.json")
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	b, _ = sdkFiles.ReadFile("sdk/nodejs/package-lock.json")
	if err := json.Unmarshal(b, &lock); err != nil {
		t.Fatal(err)
	}
	if _, ok := pkg.Dependencies[nodeSDKClient]; !ok || lock.LockfileVersion != 3 {
		t.Errorf("package.json lacks %s, or the lock is not version 3", nodeSDKClient)
	}
	for name, v := range pkg.Dependencies {
		if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) || lock.Packages[""].Dependencies[name] != v || lock.Packages["node_modules/"+name].Version != v {
			t.Errorf("%s: package.json %q, lock %q / %q", name, v, lock.Packages[""].Dependencies[name], lock.Packages["node_modules/"+name].Version)
		}
	}
	for path, p := range lock.Packages {
		if path != "" && !strings.HasPrefix(p.Integrity, "sha512-") {
			t.Errorf("lock: %s has no sha512 integrity", path)
		}
	}
}

// sdkTree writes a python SDK tree with boto3 at version.
func sdkTree(t *testing.T, dir, version string) {
	t.Helper()
	for _, d := range []string{"boto3", "boto3-" + version + ".dist-info", "botocore-1.33.0.dist-info"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "boto3", "__init__.py"), []byte("__version__ = '"+version+"'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func extracted(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "runtime")
	if err := Extract(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSDKFromRuntimesDir: the SDK in --runtimes-dir is linked into the
// runtime client directory once; a restart (Extract, a new Host) keeps it.
func TestSDKFromRuntimesDir(t *testing.T) {
	pre := t.TempDir()
	sdkTree(t, filepath.Join(pre, "python", "site-packages"), "1.30.0")
	dir := extracted(t)
	h, err := NewHost(HostConfig{Dir: dir, RuntimesDir: pre})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Ensure(context.Background(), "python3.11"); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(pre, "python", "site-packages", "boto3", "__init__.py")
	dst := filepath.Join(dir, "python", "site-packages", "boto3", "__init__.py")
	if inode(t, src) != inode(t, dst) {
		t.Error("the SDK was copied, not hard-linked")
	}
	if got := pythonFound(filepath.Join(dir, "python", "site-packages")); got != "boto3 1.30.0, botocore 1.33.0" {
		t.Errorf("linked SDK: %q", got)
	}
	for _, s := range h.Statuses() {
		if s.ID == "python3.11" && s.SDK != "boto3 1.30.0, botocore 1.33.0 (from --runtimes-dir)" {
			t.Errorf("status: %+v", s)
		}
	}
	tree := inode(t, filepath.Join(dir, "python", "site-packages"))
	if err := Extract(dir); err != nil {
		t.Fatal(err)
	}
	h2, _ := NewHost(HostConfig{Dir: dir, RuntimesDir: pre})
	if err := h2.Ensure(context.Background(), "python3.11"); err != nil {
		t.Fatal(err)
	}
	if inode(t, filepath.Join(dir, "python", "site-packages")) != tree {
		t.Error("a restart linked the SDK again")
	}
	// Java has no SDK to provide.
	if err := h2.Ensure(context.Background(), "java17"); err != nil {
		t.Errorf("java17: %v", err)
	}
	// A create links an SDK that needs no download before it returns, so
	// the first call does not wait for it.
	if _, err := h2.Lookup("python3.11"); err != nil {
		t.Skip(err)
	}
	dir3 := extracted(t)
	h3, _ := NewHost(HostConfig{Dir: dir3, RuntimesDir: pre})
	if err := h3.Check("python3.11"); err != nil {
		t.Fatal(err)
	}
	if !h3.sdks["python"].ready.Load() || pythonFound(filepath.Join(dir3, "python", "site-packages")) == "" {
		t.Error("Check returned before the SDK was linked")
	}
}

// TestSDKMissing: a runtime whose SDK cannot be provided fails with an
// error naming what is missing, and is not retried at once.
func TestSDKMissing(t *testing.T) {
	pre := t.TempDir()
	h, err := NewHost(HostConfig{Dir: extracted(t), RuntimesDir: pre})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		err := h.Ensure(context.Background(), "nodejs20.x")
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), filepath.Join(pre, "nodejs", "node_modules")+" is missing") ||
			!strings.Contains(err.Error(), "the AWS SDK for JavaScript v3 is not installed") {
			t.Fatalf("missing SDK: %v", err)
		}
	}
	if _, err := h.Lookup("nodejs20.x"); err != nil {
		t.Skip(err)
	}
	if err := h.Check("nodejs20.x"); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "is missing") {
		t.Errorf("create after a failed install: %v", err)
	}
}

// fakeInstall replaces the python family's installer for a test, counting
// its runs.
func fakeInstall(t *testing.T, fail error) *atomic.Int32 {
	t.Helper()
	var n atomic.Int32
	orig := sdks["python"]
	fake := orig
	fake.install = func(_ context.Context, _ *Host, _ Runtime, work string, out io.Writer) error {
		n.Add(1)
		io.WriteString(out, "Collecting boto3\n")
		if fail != nil {
			return fail
		}
		sdkTree(t, filepath.Join(work, "site-packages"), "9.9.9")
		return nil
	}
	sdks["python"] = fake
	t.Cleanup(func() { sdks["python"] = orig })
	return &n
}

// TestSDKInstalledOncePerHost: concurrent first uses install once; another
// data dir on the host links the cached install without installing again.
func TestSDKInstalledOncePerHost(t *testing.T) {
	n := fakeInstall(t, nil)
	cache := t.TempDir()
	for _, dir := range []string{extracted(t), extracted(t)} {
		h, err := NewHost(HostConfig{Dir: dir, CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() { errs <- h.Ensure(context.Background(), "python3.12") })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := pythonFound(filepath.Join(dir, "python", "site-packages")); got != "boto3 9.9.9, botocore 1.33.0" {
			t.Errorf("%s: %q", dir, got)
		}
	}
	if n.Load() != 1 {
		t.Errorf("installed %d times, want once", n.Load())
	}
	sum, _ := manifestHash("python")
	if _, err := os.Stat(filepath.Join(cache, "sdk", "python-"+sum, sdkStamp)); err != nil {
		t.Errorf("cache entry: %v", err)
	}
	// `icebox runtimes install --runtimes-dir` writes the layout
	// --runtimes-dir reads.
	if _, err := os.Stat("/usr/bin/python3.11"); err == nil {
		out := t.TempDir()
		h, _ := NewHost(HostConfig{CacheDir: cache, RuntimesDir: out})
		if err := h.Install(context.Background(), "python3.11"); err != nil {
			t.Fatal(err)
		}
		if got := pythonFound(filepath.Join(out, "python", "site-packages")); got != "boto3 9.9.9, botocore 1.33.0" || n.Load() != 1 {
			t.Errorf("install into a runtimes dir: %q after %d installs", got, n.Load())
		}
	}
}

// TestSDKInstallFails: a failed install is an invalid-runtime error that
// says how to fix it; the next use within sdkRetry does not try again.
func TestSDKInstallFails(t *testing.T) {
	n := fakeInstall(t, errors.New("pip: no network"))
	h, _ := NewHost(HostConfig{Dir: extracted(t), CacheDir: t.TempDir()})
	for range 2 {
		err := h.Ensure(context.Background(), "python3.11")
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "pip: no network") ||
			!strings.Contains(err.Error(), "icebox runtimes install python3.11") {
			t.Fatalf("failed install: %v", err)
		}
	}
	if n.Load() != 1 {
		t.Errorf("tried %d times within the retry delay", n.Load())
	}
}
