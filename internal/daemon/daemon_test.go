package daemon_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"icebox/internal/auth/authtest"
	"icebox/internal/daemon"
	"icebox/internal/sandbox/sandboxtest"
)

// The daemon's start and shutdown order, without root: fake sandboxes,
// the real engine, store, pool and API.

func config(dataDir string, f *sandboxtest.Factory) daemon.Config {
	return daemon.Config{Listen: "127.0.0.1:0", DataDir: dataDir, ShutdownTimeout: 5 * time.Second,
		RootAccessKeyID: authtest.AccessKeyID, RootSecretAccessKey: authtest.SecretAccessKey, Sandboxes: f}
}

func signed(t *testing.T, method, url string, body any) *http.Response {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, url, bytes.NewReader(b))
	if err := authtest.Sign(req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// createFunction creates function "f" of memoryMB on d and returns the
// functions path it lives under.
func createFunction(t *testing.T, d *daemon.Daemon, memoryMB int) string {
	t.Helper()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create("bootstrap")
	w.Write([]byte("#!/bin/sh\n"))
	zw.Close()
	base := "http://" + d.Addr() + "/2015-03-31/functions"
	resp := signed(t, "POST", base, map[string]any{"FunctionName": "f", "Runtime": "provided.al2023", "Handler": "bootstrap", "MemorySize": memoryMB,
		"Role": "arn:aws:iam::000000000000:role/r", "Code": map[string]string{"ZipFile": base64.StdEncoding.EncodeToString(zb.Bytes())}})
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	return base
}

func TestStartServeShutdown(t *testing.T) {
	dir := t.TempDir()
	f := &sandboxtest.Factory{}
	d, err := daemon.Start(context.Background(), config(dir, f), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			d.Shutdown()
		}
	}()

	// A second daemon on the same data dir fails before touching anything,
	// naming the holder.
	_, err = daemon.Start(context.Background(), config(dir, &sandboxtest.Factory{}), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Fatalf("second daemon on one data dir: %v, want an error naming pid %d", err, os.Getpid())
	}

	base := createFunction(t, d, 128)
	resp := signed(t, "POST", base+"/f/invocations", map[string]string{"x": "y"})
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("invoke: %d", resp.StatusCode)
	}
	if n := len(f.Made()); n != 1 {
		t.Fatalf("%d sandboxes made for one call", n)
	}
	if c := d.Environments(); c["idle"] != 1 {
		t.Errorf("environments after a call: %v, want one idle", c)
	}

	if err := d.Shutdown(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	for _, sb := range f.Made() {
		if !sb.Destroyed() {
			t.Error("shutdown left a sandbox")
		}
	}
	// The data dir is free again, and the function is still there.
	d2, err := daemon.Start(context.Background(), config(dir, &sandboxtest.Factory{}), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("restart on the data dir: %v", err)
	}
	defer d2.Shutdown()
	resp = signed(t, "GET", "http://"+d2.Addr()+"/2015-03-31/functions/f", nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("function after restart: %d", resp.StatusCode)
	}
}

// The status page lists each function's environments: exact state, calls,
// age and memory.
func TestStatusListsEnvironments(t *testing.T) {
	f := &sandboxtest.Factory{}
	d, err := daemon.Start(context.Background(), config(t.TempDir(), f), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown()
	base := createFunction(t, d, 256)
	var resp *http.Response
	for range 2 {
		resp = signed(t, "POST", base+"/f/invocations", map[string]string{"x": "y"})
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("invoke: %d", resp.StatusCode)
		}
	}
	resp = signed(t, "GET", "http://"+d.Addr()+"/icebox/v1/status", nil)
	defer resp.Body.Close()
	var st struct {
		Environments map[string]int
		Functions    []struct {
			Name         string
			QueuedEvents int
			Environments []struct {
				ID, State                            string
				AgeSeconds                           float64
				Calls, MemorySizeMB, MaxMemoryUsedMB int
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Environments["idle"] != 1 || len(st.Functions) != 1 || st.Functions[0].Name != "f" || len(st.Functions[0].Environments) != 1 {
		t.Fatalf("status: %+v, want f with one idle environment", st)
	}
	// The fake sandbox reports a 10 MiB peak.
	e := st.Functions[0].Environments[0]
	if e.ID == "" || (e.State != "idle" && e.State != "frozen") || e.Calls != 2 || e.MemorySizeMB != 256 || e.MaxMemoryUsedMB != 10 || e.AgeSeconds <= 0 {
		t.Errorf("environment after two calls: %+v", e)
	}
}
