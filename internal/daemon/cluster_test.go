package daemon_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"icebox/internal/auth/authtest"
	"icebox/internal/daemon"
	"icebox/internal/engine"
	"icebox/internal/engine/enginetest"
	"icebox/internal/sandbox/sandboxtest"
)

// icebox's stores, as JetStream streams.
var storeStreams = []string{"KV_functions", "KV_iam", "OBJ_code", "EVENTS", "LOGS"}

// With --replicas 3 on a 3-server cluster, stopping the server that leads the
// most stores leaves create, sync and async invoke and logs working on every
// icebox node once JetStream has elected new leaders; the replica count
// survives a restart with no --replicas.
func TestReplicatedSurvivesServerLoss(t *testing.T) {
	t.Parallel()
	c := enginetest.Cluster(t, 3)
	seen := make(chan string, 64)
	f := &sandboxtest.Factory{Runtime: func(int) sandboxtest.Runtime {
		return func(ctx context.Context, sb *sandboxtest.Sandbox) {
			for ctx.Err() == nil {
				id, payload, err := sb.Next(ctx)
				if err != nil {
					return
				}
				sb.Log("ran %s\n", payload)
				seen <- string(payload)
				if sb.Respond(ctx, id, "response", payload) != nil {
					return
				}
			}
		}
	}}
	// Two icebox nodes with --replicas 3.
	var nodes [2]*daemon.Daemon
	for i := range nodes {
		cfg := config(t.TempDir(), f)
		cfg.NatsURL, cfg.Replicas = c.URL(), 3
		d, err := daemon.Start(context.Background(), cfg, enginetest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Shutdown()
		nodes[i] = d
	}
	if got := replicas(t, c.URL()); !allEqual(got, 3) {
		t.Fatalf("replicas after start with --replicas 3: %v", got)
	}

	// The worst single loss: the server leading the most stores.
	lead := map[int]int{}
	for _, s := range storeStreams {
		lead[c.StreamLeader(s)]++
	}
	victim := 0
	for i, n := range lead {
		if i >= 0 && n > lead[victim] {
			victim = i
		}
	}
	c.Server(victim).Stop()

	// Creating waits out the elections (4–9 s in nats-server).
	fns := func(d *daemon.Daemon) string { return "http://" + d.Addr() + "/2015-03-31/functions" }
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp := signed(t, "POST", fns(nodes[0]), createBody("g"))
		resp.Body.Close()
		if resp.StatusCode == 201 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("create with server %d down: %d", victim, resp.StatusCode)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i, d := range nodes {
		// The other node learns of the function from the catalog's watch.
		payload := fmt.Sprintf("sync-%d", i)
		for {
			resp := signed(t, "POST", fns(d)+"/g/invocations", payload)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
			if resp.StatusCode != 404 || time.Now().After(deadline) {
				t.Fatalf("sync invoke on node %d: %d", i, resp.StatusCode)
			}
			time.Sleep(20 * time.Millisecond)
		}
		waitSeen(t, seen, `"`+payload+`"`)
		payload = fmt.Sprintf("async-%d", i)
		req, _ := http.NewRequest("POST", fns(d)+"/g/invocations", strings.NewReader(`"`+payload+`"`))
		req.Header.Set("X-Amz-Invocation-Type", "Event")
		if resp := do(t, req); resp.StatusCode != 202 {
			t.Fatalf("async invoke on node %d: %d", i, resp.StatusCode)
		}
		waitSeen(t, seen, `"`+payload+`"`)
	}
	// Every call's lines reach the LOGS stream and are read back on each node.
	for i, d := range nodes {
		for {
			got := filterLogs(t, d, "/aws/lambda/g")
			if strings.Contains(got, `ran \"sync-0\"`) && strings.Contains(got, `ran \"sync-1\"`) &&
				strings.Contains(got, `ran \"async-0\"`) && strings.Contains(got, `ran \"async-1\"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the function's log lines never became readable on node %d: %s", i, strings.ReplaceAll(got, `","`, "\n"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// A restart without --replicas keeps 3.
	c.Server(victim).Restart()
	for _, d := range nodes {
		if err := d.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config(t.TempDir(), &sandboxtest.Factory{})
	cfg.NatsURL = c.URL()
	d, err := daemon.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown()
	if got := replicas(t, c.URL()); !allEqual(got, 3) {
		t.Fatalf("replicas after a restart without --replicas: %v", got)
	}
}

func createBody(name string) map[string]any {
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create("bootstrap")
	w.Write([]byte("#!/bin/sh\n"))
	zw.Close()
	return map[string]any{"FunctionName": name, "Runtime": "provided.al2023", "Handler": "bootstrap",
		"Role": "arn:aws:iam::000000000000:role/r", "Code": map[string]string{"ZipFile": base64.StdEncoding.EncodeToString(zb.Bytes())}}
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	if err := authtest.Sign(req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func waitSeen(t *testing.T, seen <-chan string, want string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case got := <-seen:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("the function never ran with %s", want)
		}
	}
}

// filterLogs returns the messages of a log group (CloudWatch Logs
// FilterLogEvents), joined.
func filterLogs(t *testing.T, d *daemon.Daemon, group string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"logGroupName": group})
	req, _ := http.NewRequest("POST", "http://"+d.Addr()+"/", bytes.NewReader(b))
	req.Header.Set("X-Amz-Target", "Logs_20140328.FilterLogEvents")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if err := authtest.Sign(req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return string(raw)
}

// replicas reads the replica count of each of icebox's stores.
func replicas(t *testing.T, url string) map[string]int {
	t.Helper()
	e := enginetest.Open(t, engine.Config{URL: url})
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := map[string]int{}
	for _, name := range storeStreams {
		s, err := e.JetStream().Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		got[name] = s.CachedInfo().Config.Replicas
	}
	return got
}

func allEqual(m map[string]int, n int) bool {
	for _, v := range m {
		if v != n {
			return false
		}
	}
	return true
}

// A node started while the engine's streams have no leader (two of its
// three servers down) keeps trying instead of failing to start, and is up
// once a server is back and the streams have elected leaders.
func TestStartDuringElection(t *testing.T) {
	t.Parallel()
	c := enginetest.Cluster(t, 3)
	cfg := config(t.TempDir(), &sandboxtest.Factory{})
	cfg.NatsURL, cfg.Replicas = c.URL(), 3
	d, err := daemon.Start(context.Background(), cfg, enginetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Shutdown(); err != nil {
		t.Fatal(err)
	}
	c.Server(1).Stop()
	c.Server(2).Stop()
	type started struct {
		d   *daemon.Daemon
		err error
	}
	done := make(chan started, 1)
	go func() {
		cfg := config(t.TempDir(), &sandboxtest.Factory{})
		cfg.NatsURL = c.URL()
		d, err := daemon.Start(context.Background(), cfg, enginetest.Logger(t))
		done <- started{d, err}
	}()
	// Longer than any one request to the engine waits: a start that gives
	// up on the first refusal has done so by now.
	select {
	case r := <-done:
		if r.d != nil {
			r.d.Shutdown()
		}
		t.Fatalf("start with no stream leader returned before the engine came back: %v", r.err)
	case <-time.After(8 * time.Second):
	}
	c.Server(1).Restart()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("start once the engine came back: %v", r.err)
		}
		defer r.d.Shutdown()
		resp := signed(t, "GET", "http://"+r.d.Addr()+"/2015-03-31/functions", nil)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("list functions on the node started during the election: %d", resp.StatusCode)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("start did not finish within a minute of the engine's quorum coming back")
	}
}
