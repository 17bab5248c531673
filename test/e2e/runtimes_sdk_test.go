package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/daemon"
	"icebox/runtimes"
)

// installSDKs installs the Python and Node.js SDKs into the host's cache
// before any test runs, as `icebox runtimes install` would: otherwise the
// first test to invoke a Python or Node.js function pays for the download
// inside the timings it checks. The install itself is tested in runtimes/
// and whenever the cache is cold; a failure here is left to the tests
// that need the SDK to report.
func installSDKs() {
	h, err := runtimes.NewHost(runtimes.HostConfig{CacheDir: daemon.DefaultCacheDir()})
	if err != nil {
		return
	}
	for _, id := range []string{"python3.11", "nodejs20.x"} {
		if _, err := h.Lookup(id); err != nil {
			continue
		}
		if err := h.Install(context.Background(), id); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: the %s SDK: %v\n", id, err)
		}
	}
}

// TestRuntimeSDKMissing: a runtime whose SDK cannot be provided (here an
// empty --runtimes-dir: icebox then downloads nothing) fails the creation
// of its functions with a 400 and the calls of those created before with
// Runtime.SDKUnavailable, both naming what is missing, and the daemon keeps
// serving everything else.
func TestRuntimeSDKMissing(t *testing.T) {
	needPython(t)
	s := startServer(t)
	app := zipOf(map[string][]byte{"app.py": []byte("def handler(e, c):\n    return 1\n")})
	s.create("py-nosdk", func(in *lambda.CreateFunctionInput) {
		in.Runtime, in.Handler, in.Code.ZipFile = types.RuntimePython311, aws.String("app.handler"), app
	})
	empty := t.TempDir()
	s.cfg.RuntimesDir = empty
	s.restart()
	e, _ := s.pyFail("py-nosdk", map[string]any{})
	if e.ErrorType != "Runtime.SDKUnavailable" || !strings.Contains(e.ErrorMessage, empty+"/python/site-packages is missing") {
		t.Errorf("invoke without an SDK: %+v", e)
	}
	_, err := s.client.CreateFunction(t.Context(), &lambda.CreateFunctionInput{
		FunctionName: aws.String("py-nosdk-2"), Runtime: types.RuntimePython311, Handler: aws.String("app.handler"),
		Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: app},
	})
	wantAPIError(t, "create without an SDK", err, "InvalidParameterValueException", 400, "python3.11", "is not installed", "site-packages is missing")
	s.create("still-serving")
	if r := s.call("still-serving", map[string]any{}); r.Calls != 1 {
		t.Errorf("provided function after a failed SDK: %+v", r)
	}
}

// TestRuntimePathRefused: serve refuses a --runtime-path sandboxes could
// not run, before anything starts.
func TestRuntimePathRefused(t *testing.T) {
	for path, want := range map[string]string{"java17=/usr/bin/java": "cannot be moved", "nodejs22.x=/opt/node/bin/node": "sandboxes mount"} {
		id, p, _ := strings.Cut(path, "=")
		_, err := daemon.Start(context.Background(), daemon.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), NoAuth: true,
			RuntimePaths: map[string]string{id: p}}, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
}

// TestUnsupportedRuntime: an unknown runtime id is refused with the ids
// icebox offers, the OS-only ones first; go1.x with Lambda's advice.
func TestUnsupportedRuntime(t *testing.T) {
	s := startServer(t)
	for id, want := range map[string]string{"go1.x": "use provided.al2023", "ruby3.3": "provided.al2023, provided.al2, java17"} {
		_, err := s.client.CreateFunction(t.Context(), &lambda.CreateFunctionInput{
			FunctionName: aws.String("f"), Runtime: types.Runtime(id), Handler: aws.String("main"),
			Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: functionZip(t)},
		})
		wantAPIError(t, id, err, "InvalidParameterValueException", 400, id, want)
	}
}

// TestRuntimePath: --runtime-path runs an id on another interpreter, and
// an id whose interpreter is of another version is not offered.
func TestRuntimePath(t *testing.T) {
	needPython(t)
	if v, err := os.Readlink("/usr/bin/python3"); err != nil || v != "python3.11" {
		t.Skipf("/usr/bin/python3 is not python3.11 (%q %v)", v, err)
	}
	s := startServer(t, func(c *daemon.Config) {
		c.RuntimePaths = map[string]string{"python3.11": "/usr/bin/python3", "python3.12": "/usr/bin/python3.11"}
	})
	app := zipOf(map[string][]byte{"app.py": []byte("import sys\n\ndef handler(e, c):\n    return [sys.orig_argv[0]]\n")})
	s.create("py-moved", func(in *lambda.CreateFunctionInput) {
		in.Runtime, in.Handler, in.Code.ZipFile = types.RuntimePython311, aws.String("app.handler"), app
	})
	var argv []string
	s.pyCall("py-moved", map[string]any{}, &argv)
	if len(argv) != 1 || argv[0] != "/usr/bin/python3" {
		t.Errorf("python3.11 moved to /usr/bin/python3 ran %v", argv)
	}
	_, err := s.client.CreateFunction(t.Context(), &lambda.CreateFunctionInput{
		FunctionName: aws.String("py-312"), Runtime: types.RuntimePython312, Handler: aws.String("app.handler"),
		Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: app},
	})
	wantAPIError(t, "python3.12 on a Python 3.11", err, "InvalidParameterValueException", 400, "/usr/bin/python3.11 is Python 3.11", "not 3.12", "--runtime-path python3.12=PATH")
}

// TestRuntimesDir: what `icebox runtimes install --runtimes-dir DIR` writes
// serves `icebox serve --runtimes-dir DIR`, which downloads nothing.
func TestRuntimesDir(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	h, err := runtimes.NewHost(runtimes.HostConfig{CacheDir: daemon.DefaultCacheDir(), RuntimesDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Install(context.Background(), "python3.11"); err != nil {
		t.Skipf("cannot install the Python SDK here: %v", err)
	}
	s := startServer(t, func(c *daemon.Config) { c.RuntimesDir = dir })
	s.create("py-boto", withPython(t, "boto", "app.handler"), func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(30) })
	var r struct{ Boto3, Botocore string }
	s.pyCall("py-boto", map[string]any{}, &r)
	if boto3, botocore := pinnedBoto3(t); r.Boto3 != boto3 || r.Botocore != botocore {
		t.Errorf("boto3 from --runtimes-dir: %+v", r)
	}
	// The tree the function saw names where it was linked from.
	stamp, err := os.ReadFile(filepath.Join(s.cfg.DataDir, "runtime", "python", "site-packages", ".icebox-sdk"))
	if err != nil || !strings.HasPrefix(string(stamp), "runtimes-dir "+filepath.Join(dir, "python", "site-packages")) {
		t.Errorf("linked from %q (%v), want %s", stamp, err, dir)
	}
}
