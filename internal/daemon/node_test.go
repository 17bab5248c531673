package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/admission"
	"icebox/internal/api"
	"icebox/internal/daemon"
	"icebox/internal/engine/enginetest"
	"icebox/internal/sandbox/sandboxtest"
)

func clusterNode(t *testing.T, url, dir string) *daemon.Daemon {
	t.Helper()
	cfg := config(dir, &sandboxtest.Factory{})
	cfg.NatsURL, cfg.NodeHeartbeat, cfg.NodeTTL = url, 50*time.Millisecond, 500*time.Millisecond
	d, err := daemon.Start(context.Background(), cfg, enginetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown() })
	return d
}

// probe GETs path unsigned and returns the status and body.
func probe(t *testing.T, d *daemon.Daemon, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + d.Addr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func nodes(t *testing.T, d *daemon.Daemon) map[string]string {
	t.Helper()
	resp := signed(t, "GET", "http://"+d.Addr()+"/icebox/v1/status", nil)
	defer resp.Body.Close()
	var st api.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range st.Nodes {
		out[n.ID] = n.Address
	}
	return out
}

// Two nodes on one engine see each other in the status page; each labels its
// metrics with its node id, kept across restarts of its data dir; a node that
// shuts down leaves the list at once. Unsigned probes answer without saying
// anything about the node.
func TestNodesHealthStatusMetrics(t *testing.T) {
	t.Parallel()
	c := enginetest.Cluster(t, 1)
	dir2 := t.TempDir()
	d1, d2 := clusterNode(t, c.URL(), t.TempDir()), clusterNode(t, c.URL(), dir2)
	id1, id2 := d1.NodeID(), d2.NodeID()
	if id1 == "" || id1 == id2 {
		t.Fatalf("node ids %q %q", id1, id2)
	}
	if got := nodes(t, d1); len(got) != 2 || got[id1] != d1.Addr() || got[id2] != d2.Addr() {
		t.Fatalf("nodes seen by d1: %v, want %s=%s %s=%s", got, id1, d1.Addr(), id2, d2.Addr())
	}
	for path, want := range map[string]string{"/healthz": `{"status":"ok"}`, "/readyz": `{"status":"ready"}`} {
		if code, body := probe(t, d1, path); code != 200 || strings.TrimSpace(body) != want {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	resp := signed(t, "GET", "http://"+d1.Addr()+"/metrics", nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `node="`+id1+`"`) || strings.Contains(string(b), `node="`+id2+`"`) {
		t.Errorf("d1's metrics do not carry node=%q alone", id1)
	}

	if err := d2.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if got := nodes(t, d1); len(got) != 1 {
		t.Fatalf("nodes after d2 shut down: %v", got)
	}
	d2 = clusterNode(t, c.URL(), dir2)
	if d2.NodeID() != id2 {
		t.Fatalf("restarted on its data dir, d2 is %q, was %q", d2.NodeID(), id2)
	}
}

// A node whose engine is gone fails /readyz (still alive on /healthz) and
// answers calls with 503 ServiceException instead of hanging or 500s; it is
// ready again once the engine is back.
func TestEngineLoss(t *testing.T) {
	t.Parallel()
	c := enginetest.Cluster(t, 1)
	d := clusterNode(t, c.URL(), t.TempDir())
	base := createFunction(t, d, 128)
	c.Server(0).Stop()

	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := probe(t, d, "/readyz")
		if code == 503 && strings.Contains(body, `"reason":"engine unreachable"`) {
			if strings.Contains(body, d.NodeID()) || strings.Contains(body, "nats") {
				t.Errorf("readyz says more than a reason: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz with the engine gone: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := probe(t, d, "/healthz"); code != 200 {
		t.Errorf("healthz with the engine gone: %d", code)
	}
	start := time.Now()
	resp := signed(t, "POST", base+"/f/invocations", map[string]string{"x": "y"})
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("X-Amzn-ErrorType") != "ServiceException" || !strings.Contains(string(b), "retry on another node") {
		t.Fatalf("invoke with the engine gone: %d %s %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), b)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("refusing the call took %s", took)
	}

	c.Server(0).Restart()
	deadline = time.Now().Add(15 * time.Second)
	for {
		if code, _ := probe(t, d, "/readyz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready again after the engine came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp = signed(t, "POST", base+"/f/invocations", map[string]string{"x": "y"})
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("invoke after the engine came back: %d", resp.StatusCode)
	}
}

// A cluster node whose admission bucket stops answering (here: deleted,
// as a bucket whose stream lost its leader answers nothing) fails /readyz
// with its own reason while the rest of the engine is fine, and is ready
// again once the bucket is back.
func TestReadyzAdmission(t *testing.T) {
	t.Parallel()
	c := enginetest.Cluster(t, 1)
	d := clusterNode(t, c.URL(), t.TempDir())
	waitReadyz := func(want int, reason string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := probe(t, d, "/readyz")
			if code == want && strings.Contains(body, reason) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("readyz: %d %s, want %d %s", code, body, want, reason)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitReadyz(200, `"status":"ready"`)

	nc, err := nats.Connect(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := js.DeleteKeyValue(ctx, admission.LeaseBucket); err != nil {
		t.Fatal(err)
	}
	waitReadyz(503, `"reason":"admission unavailable"`)
	if code, _ := probe(t, d, "/healthz"); code != 200 {
		t.Errorf("healthz with the admission bucket gone: %d", code)
	}

	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: admission.LeaseBucket, History: 1}); err != nil {
		t.Fatal(err)
	}
	waitReadyz(200, `"status":"ready"`)
}
