package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"icebox/internal/auth/authtest"
	"icebox/internal/daemon"
	"icebox/internal/engine/enginetest"
	"icebox/internal/sandbox/sandboxtest"
	"icebox/internal/testkit"
)

// Cluster-wide admission: icebox nodes on one JetStream cluster share the
// account's and each reservation's concurrency, for sync and async calls.

// gauge counts the calls running on every node of a test, and the most at
// once.
type gauge struct {
	running, peak, done atomic.Int32
}

// factory's runtime holds each call for d (or until release closes, when
// set), counting it in g.
func (g *gauge) factory(d time.Duration, release <-chan struct{}) *sandboxtest.Factory {
	return &sandboxtest.Factory{Runtime: func(int) sandboxtest.Runtime {
		return func(ctx context.Context, sb *sandboxtest.Sandbox) {
			for ctx.Err() == nil {
				id, payload, err := sb.Next(ctx)
				if err != nil {
					return
				}
				n := g.running.Add(1)
				for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
				}
				if release != nil {
					select {
					case <-release:
					case <-ctx.Done():
					}
				} else {
					time.Sleep(d)
				}
				g.running.Add(-1)
				g.done.Add(1)
				if sb.Respond(ctx, id, "response", payload) != nil {
					return
				}
			}
		}
	}}
}

// startNodes starts n icebox nodes on the engine at url, each with its own
// data dir and factory.
func startNodes(t *testing.T, url string, n int, setup func(*daemon.Config), f func(i int) *sandboxtest.Factory) []*daemon.Daemon {
	t.Helper()
	ds := make([]*daemon.Daemon, n)
	for i := range ds {
		cfg := config(t.TempDir(), f(i))
		cfg.NatsURL = url
		if setup != nil {
			setup(&cfg)
		}
		d, err := daemon.Start(context.Background(), cfg, enginetest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Shutdown() })
		ds[i] = d
	}
	return ds
}

// seesConcurrency waits until every node's catalog shows fn's reservation.
func seesConcurrency(t *testing.T, ds []*daemon.Daemon, fn string, want int) {
	t.Helper()
	for i, d := range ds {
		testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("node %d to see %s's reservation", i, fn), func() bool {
			resp := signed(t, "GET", "http://"+d.Addr()+"/2019-09-30/functions/"+fn+"/concurrency", nil)
			defer resp.Body.Close()
			var c struct{ ReservedConcurrentExecutions *int }
			json.NewDecoder(resp.Body).Decode(&c)
			return resp.StatusCode == 200 && c.ReservedConcurrentExecutions != nil && *c.ReservedConcurrentExecutions == want
		})
	}
}

// createOn creates fn on d and waits until every node has it.
func createOn(t *testing.T, ds []*daemon.Daemon, fn string) {
	t.Helper()
	resp := signed(t, "POST", "http://"+ds[0].Addr()+"/2015-03-31/functions", createBody(fn))
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create %s: %d", fn, resp.StatusCode)
	}
	for i, d := range ds {
		testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("node %d to see %s", i, fn), func() bool {
			resp := signed(t, "GET", "http://"+d.Addr()+"/2015-03-31/functions/"+fn, nil)
			resp.Body.Close()
			return resp.StatusCode == 200
		})
	}
}

// callAll makes calls sync calls to fn at once, round robin over the
// nodes, and returns each one's status and Reason.
func callAll(t *testing.T, ds []*daemon.Daemon, fn string, calls int) (statuses []int, reasons []string) {
	t.Helper()
	statuses, reasons = make([]int, calls), make([]string, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", "http://"+ds[i%len(ds)].Addr()+"/2015-03-31/functions/"+fn+"/invocations", strings.NewReader(fmt.Sprintf(`"call-%d"`, i)))
			resp, err := signedDo(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var body struct{ Reason string }
			b, _ := io.ReadAll(resp.Body)
			json.Unmarshal(b, &body)
			statuses[i], reasons[i] = resp.StatusCode, body.Reason
		}()
	}
	wg.Wait()
	return statuses, reasons
}

func tally(t *testing.T, statuses []int, reasons []string, wantReason string) (ok, throttled int) {
	t.Helper()
	for i, s := range statuses {
		switch {
		case s == 200:
			ok++
		case s == 429 && reasons[i] == wantReason:
			throttled++
		default:
			t.Errorf("call %d: %d %q, want 200 or 429 %s", i, s, reasons[i], wantReason)
		}
	}
	return ok, throttled
}

// Reserved concurrency 2 over 3 nodes on a 3-server JetStream cluster: of 12
// slow calls spread over the nodes, 2 run and 10 get 429 with Lambda's
// Reason; never more than 2 run at once.
func TestClusterReservedConcurrency(t *testing.T) {
	t.Parallel()
	c := enginetest.Cluster(t, 3)
	g := &gauge{}
	ds := startNodes(t, c.URL(), 3, nil, func(int) *sandboxtest.Factory { return g.factory(1500*time.Millisecond, nil) })
	createOn(t, ds, "slow")
	resp := signed(t, "PUT", "http://"+ds[1].Addr()+"/2017-10-31/functions/slow/concurrency", map[string]int{"ReservedConcurrentExecutions": 2})
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("put concurrency: %d", resp.StatusCode)
	}
	seesConcurrency(t, ds, "slow", 2)
	statuses, reasons := callAll(t, ds, "slow", 12)
	ok, throttled := tally(t, statuses, reasons, "ReservedFunctionConcurrentInvocationLimitExceeded")
	t.Logf("12 calls over 3 nodes, reserved 2: %d ran, %d throttled, peak %d at once", ok, throttled, g.peak.Load())
	if ok != 2 || throttled != 10 || g.peak.Load() > 2 {
		t.Fatalf("reserved 2 over 3 nodes: %d ran, %d throttled (want 2, 10), peak %d", ok, throttled, g.peak.Load())
	}
}

// An account limit of 4 holds across 3 nodes (on one NATS server), for sync
// calls (the rest get 429 with the account's Reason) and for async events
// (all run, never more than 4 at once).
func TestClusterAccountConcurrency(t *testing.T) {
	t.Parallel()
	url := enginetest.ExternalServer(t)
	g := &gauge{}
	ds := startNodes(t, url, 3, func(cfg *daemon.Config) { cfg.AccountConcurrency, cfg.UnreservedMin = 4, 1 },
		func(int) *sandboxtest.Factory { return g.factory(time.Second, nil) })
	createOn(t, ds, "acct")
	statuses, reasons := callAll(t, ds, "acct", 12)
	ok, throttled := tally(t, statuses, reasons, "ConcurrentInvocationLimitExceeded")
	if ok != 4 || throttled != 8 || g.peak.Load() > 4 {
		t.Fatalf("account limit 4 over 3 nodes: %d ran, %d throttled (want 4, 8), peak %d", ok, throttled, g.peak.Load())
	}

	// Async: 12 events accepted by the 3 nodes run, at most 4 at a time.
	g.peak.Store(0)
	g.done.Store(0)
	start := time.Now()
	for i := range 12 {
		req, _ := http.NewRequest("POST", "http://"+ds[i%3].Addr()+"/2015-03-31/functions/acct/invocations", strings.NewReader(`"event"`))
		req.Header.Set("X-Amz-Invocation-Type", "Event")
		if resp := do(t, req); resp.StatusCode != 202 {
			t.Fatalf("async invoke: %d", resp.StatusCode)
		}
	}
	testkit.WaitFor(t, 20*time.Second, "12 async events to run", func() bool { return g.done.Load() >= 12 })
	t.Logf("12 one-second async events over 3 nodes at account limit 4: ran in %s, peak %d at once (sync: %d ran, %d throttled)",
		time.Since(start).Round(time.Millisecond), g.peak.Load(), ok, throttled)
	if p := g.peak.Load(); p > 4 {
		t.Fatalf("async peak %d over the account limit 4", p)
	}
}

// A node killed mid-call (its engine connection cut, nothing returned)
// holds its units until its leases expire: the survivors are throttled
// until then, and admit again within the TTL (plus a renewal) after.
func TestClusterDeadNodeLeasesExpire(t *testing.T) {
	t.Parallel()
	url := enginetest.ExternalServer(t)
	g := &gauge{}
	release := make(chan struct{})
	const ttl = time.Second
	ds := startNodes(t, url, 2, func(cfg *daemon.Config) { cfg.NodeHeartbeat, cfg.NodeTTL = 100*time.Millisecond, ttl },
		func(i int) *sandboxtest.Factory {
			if i == 0 {
				return g.factory(0, release) // node 0's calls never end
			}
			return g.factory(0, nil)
		})
	t.Cleanup(func() { close(release) }) // before the nodes shut down
	createOn(t, ds, "held")
	resp := signed(t, "PUT", "http://"+ds[0].Addr()+"/2017-10-31/functions/held/concurrency", map[string]int{"ReservedConcurrentExecutions": 2})
	resp.Body.Close()
	seesConcurrency(t, ds, "held", 2)
	for range 2 {
		go func() {
			req, _ := http.NewRequest("POST", "http://"+ds[0].Addr()+"/2015-03-31/functions/held/invocations", strings.NewReader(`"x"`))
			if resp, err := signedDo(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	testkit.WaitFor(t, 10*time.Second, "node 0 to run 2 calls", func() bool { return g.running.Load() == 2 })
	statuses, reasons := callAll(t, ds[1:], "held", 1)
	if statuses[0] != 429 || reasons[0] != "ReservedFunctionConcurrentInvocationLimitExceeded" {
		t.Fatalf("node 1 while node 0 runs 2 of 2: %d %q", statuses[0], reasons[0])
	}
	daemon.Kill(ds[0])
	killed := time.Now()
	for {
		statuses, _ := callAll(t, ds[1:], "held", 1)
		if statuses[0] == 200 {
			break
		}
		if time.Since(killed) > 3*ttl {
			t.Fatalf("node 1 still throttled %s after node 0 was killed (lease TTL %s)", time.Since(killed), ttl)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("node 0's 2 units taken over %s after it was killed (TTL %s)", time.Since(killed).Round(time.Millisecond), ttl)
}

func signedDo(req *http.Request) (*http.Response, error) {
	if err := authtest.Sign(req); err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}

// The functions' scaling limits are the cluster's too: with a burst of 3
// new environments over 3 nodes, 6 overlapping calls spread over the nodes
// get 3 environments (one per node) and 3 throttles with Lambda's Reason.
func TestClusterScalingRate(t *testing.T) {
	t.Parallel()
	url := enginetest.ExternalServer(t)
	g := &gauge{}
	ds := startNodes(t, url, 3, func(cfg *daemon.Config) {
		cfg.ScaleBurst, cfg.ScaleRate = 3, 0.001
		cfg.NodeHeartbeat, cfg.NodeTTL = 50*time.Millisecond, 500*time.Millisecond
	}, func(int) *sandboxtest.Factory { return g.factory(time.Second, nil) })
	createOn(t, ds, "burst")
	// Each node learns the count of live nodes after its heartbeats.
	time.Sleep(20 * 50 * time.Millisecond)
	statuses, reasons := callAll(t, ds, "burst", 6)
	ok, throttled := tally(t, statuses, reasons, "FunctionInvocationRateLimitExceeded")
	if ok != 3 || throttled != 3 {
		t.Fatalf("burst 3 over 3 nodes, 6 overlapping calls: %d ran, %d throttled; want 3 and 3", ok, throttled)
	}
}
