// Package e2e drives a real icebox daemon (real sandboxes, embedded
// JetStream) with clients nobody here wrote: aws-sdk-go-v2, the AWS CLI and
// boto3, deploying aws-lambda-go functions built by the test.
package e2e

import (
	// The functions in testdata, and icebox-bench's, are built with
	// aws-lambda-go; go mod tidy does not look into testdata.
	_ "github.com/aws/aws-lambda-go/lambda"

	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"icebox/internal/testkit"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/auth/authtest"
	"icebox/internal/daemon"
	sblinux "icebox/internal/sandbox/linux"
)

// Tests that call t.Parallel run after every other test, two at a time
// (one per core): each starts a daemon of its own, so only tests that look
// at nothing host-wide (goroutine counts, cgroups, network namespaces, the
// environment, timings against a floor) may, which keeps the suite within
// its budget without sharing what the others measure.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sblinux.InitArg {
		sblinux.RunInit()
		return
	}
	installSDKs()
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string][]byte{}
)

// functionZip builds testdata/fn (an aws-lambda-go program) once and zips it
// as a provided.al2023 deployment package.
func functionZip(t testing.TB) []byte { return programZip(t, "fn") }

// programZip builds testdata/NAME once and zips it as a bootstrap.
func programZip(t testing.TB, name string) []byte {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if z, ok := built[name]; ok {
		return z
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "icebox-e2e-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = dir
	}
	bin := filepath.Join(buildDir, name, "bootstrap")
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin, "./testdata/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build testdata/%s: %v\n%s", name, err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	built[name] = zipOf(map[string][]byte{"bootstrap": b})
	return built[name]
}

// zipOf makes a zip with the given files; "bootstrap" is made executable.
// The files are stored, not deflated: most are Go binaries of several MB,
// and inflating one under the race detector costs the daemon about a
// second per CreateFunction (deflated packages are tested in
// internal/store/codezip and by rawZip and extensionLayer here).
func zipOf(files map[string][]byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Store}
		h.SetMode(0o644)
		if name == "bootstrap" {
			h.SetMode(0o755)
		}
		w, _ := zw.CreateHeader(h)
		w.Write(data)
	}
	zw.Close()
	return buf.Bytes()
}

type server struct {
	t       testing.TB
	d       *daemon.Daemon
	cfg     daemon.Config
	url     string
	client  *lambda.Client
	stopped bool
}

// rootCredentials sign SDK calls as the test servers' root.
var rootCredentials = credentials.NewStaticCredentialsProvider(authtest.AccessKeyID, authtest.SecretAccessKey, "")

// signingClient is a plain HTTP client that signs as root, for calls no
// SDK makes (and the floors measured next to them).
func signingClient() *http.Client { return &http.Client{Transport: authtest.Transport(nil)} }

// startServer runs a daemon on a free port with its own data dir.
func startServer(t testing.TB, mutate ...func(*daemon.Config)) *server {
	t.Helper()
	testkit.NeedRoot(t)
	cfg := daemon.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), ShutdownTimeout: 10 * time.Second,
		RootAccessKeyID: authtest.AccessKeyID, RootSecretAccessKey: authtest.SecretAccessKey}
	for _, m := range mutate {
		m(&cfg)
	}
	s := &server{t: t, cfg: cfg}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	s.t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	d, err := daemon.Start(context.Background(), s.cfg, log)
	if err != nil {
		s.t.Fatal(err)
	}
	s.d, s.stopped = d, false
	s.url = "http://" + d.Addr()
	s.client = lambda.New(lambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.url),
		Credentials:  rootCredentials,
		Retryer:      aws.NopRetryer{},
		HTTPClient:   &http.Client{Transport: testkit.SDKTransport{}},
	})
}

func (s *server) stop() {
	if !s.stopped {
		s.stopped = true
		if err := s.d.Shutdown(); err != nil {
			s.t.Errorf("shutdown: %v", err)
		}
	}
}

// restart stops the daemon and starts a new one on the same data dir.
func (s *server) restart() {
	s.stop()
	s.cfg.Listen = strings.TrimPrefix(s.url, "http://")
	s.start()
}

func (s *server) create(name string, mutate ...func(*lambda.CreateFunctionInput)) *lambda.CreateFunctionOutput {
	s.t.Helper()
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		Role:         aws.String("arn:aws:iam::000000000000:role/lambda-role"),
		Code:         &types.FunctionCode{ZipFile: functionZip(s.t)},
	}
	for _, m := range mutate {
		m(in)
	}
	out, err := s.client.CreateFunction(context.Background(), in)
	if err != nil {
		s.t.Fatalf("create %s: %v", name, err)
	}
	return out
}

// result is what testdata/fn returns.
type result struct {
	Calls         int               `json:"calls"`
	Ticks         int64             `json:"ticks"`
	Tmp           string            `json:"tmp"`
	RequestID     string            `json:"requestId"`
	FunctionArn   string            `json:"functionArn"`
	ClientContext map[string]string `json:"clientContext"`
	DeadlineInMs  int64             `json:"deadlineInMs"`
	Env           map[string]string `json:"env"`
	UID           int               `json:"uid"`
	PID           int               `json:"pid"`
}

// invoke calls name with a JSON event and returns the raw output.
func (s *server) invoke(name string, event any, mutate ...func(*lambda.InvokeInput)) *lambda.InvokeOutput {
	s.t.Helper()
	payload, _ := json.Marshal(event)
	in := &lambda.InvokeInput{FunctionName: aws.String(name), Payload: payload}
	for _, m := range mutate {
		m(in)
	}
	out, err := s.client.Invoke(context.Background(), in)
	if err != nil {
		s.t.Fatalf("invoke %s: %v", name, err)
	}
	return out
}

// call invokes and decodes a successful result.
func (s *server) call(name string, event any) result {
	s.t.Helper()
	out := s.invoke(name, event)
	if out.FunctionError != nil {
		s.t.Fatalf("invoke %s: function error %s: %s", name, *out.FunctionError, out.Payload)
	}
	var r result
	if err := json.Unmarshal(out.Payload, &r); err != nil {
		s.t.Fatalf("decode %s: %v", out.Payload, err)
	}
	return r
}

// functionError is Lambda's error body.
type functionError struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

func (s *server) callFail(name string, event any) functionError {
	s.t.Helper()
	out := s.invoke(name, event)
	if out.FunctionError == nil || *out.FunctionError != "Unhandled" {
		s.t.Fatalf("invoke %s: want Unhandled function error, got %v: %s", name, out.FunctionError, out.Payload)
	}
	var e functionError
	if err := json.Unmarshal(out.Payload, &e); err != nil {
		s.t.Fatalf("decode error %s: %v", out.Payload, err)
	}
	return e
}

type daemonConfig = daemon.Config
