package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"icebox/internal/engine"
	"icebox/internal/engine/enginetest"
	"icebox/internal/testkit"
)

// TestClusterKill9DuringAsyncEvents: three `icebox serve` nodes on one
// external JetStream share a function with reserved concurrency and its
// async queue. One node is killed outright (SIGKILL: no shutdown, no lease
// returned, no ack of what it was running) while a backlog of events is
// being worked off. Then:
//
//   - every event runs at least once: what the killed node had pulled and not
//     finished is redelivered to the survivors after --async-ack-wait;
//     events run twice (at least once, not exactly once) are counted and
//     reported, not failed;
//   - the survivors' admission takes over the killed node's share of the
//     reservation within the lease TTL (10 s): the whole reservation runs
//     at once on the two survivors;
//   - the killed node's watchdog ends its sandboxes and removes their cgroups.
//
// Evidence that an event ran is the EVENT line the function prints when it
// starts, read back through FilterLogEvents; the function sleeps 300 ms
// after printing, so an event the killed node finished (and acked) has its
// line stored.
func TestClusterKill9DuringAsyncEvents(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	binaries(t)
	// What is left after the kill must keep the survivors asking for the
	// whole reservation past the lease TTL: ~300 events of 300 ms on the
	// survivors' ~7 units take ~13 s (with 200 left, the backlog once
	// drained in 9.9 s, before the killed node's leases had expired).
	const (
		fn         = "slow"
		events     = 400
		killAfter  = 100 // events seen running before the kill
		reserved   = 10
		ttl        = 10 * time.Second // the nodes' default lease and membership TTL
		ackWait    = 2 * time.Second
		eventSleep = 300
	)
	engine := enginetest.Cluster(t, 1)
	nodes := make([]*server, 3)
	for i := range nodes {
		nodes[i] = startServer(t, how{}, "serve", "--data-dir", t.TempDir(), "--nats-url", engine.URL(),
			"--async-ack-wait", ackWait.String(), "--async-retry-delays", "100ms,200ms")
	}
	nodes[0].createWithEnv(t, fn, build.slowZip, map[string]string{"PRINT_EVENT": "1"})
	putConcurrency(t, nodes[0], fn, reserved)
	for _, s := range nodes {
		testkit.WaitFor(t, 10*time.Second, "every node to see the function's reservation", func() bool {
			return reservedConcurrency(t, s, fn) == reserved
		})
	}

	// The events, spread over the three nodes.
	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, events)
	for n, s := range nodes {
		wg.Go(func() {
			for i := n; i < events; i += len(nodes) {
				if err := sendEvent(s.url, fn, fmt.Sprintf(`{"action":"sleep","ms":%d,"data":"%d"}`, eventSleep, i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sent := time.Since(began)

	// Kill the node running the most events once a good part of the
	// backlog ran: it holds units of the reservation and events in flight.
	var victim *server
	var survivors []*server
	var before map[string]int
	testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("%d events to run and a node to be running some", killAfter), func() bool {
		before = ranEvents(t, nodes[0], fn)
		if len(before) < killAfter {
			return false
		}
		most := 0.0
		for i, s := range nodes {
			if c := concurrentExecutions(t, s, fn); c > most {
				most, victim = c, s
				survivors = append(append([]*server{}, nodes[:i]...), nodes[i+1:]...)
			}
		}
		return victim != nil
	})
	concurrentBefore := concurrentExecutions(t, victim, fn)
	crashed := record(t, victim)
	t.Cleanup(func() { releaseCgroups(t, cgroupDirs(crashed.hash)) })
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	killed := time.Now()
	dupsBefore := 0
	for _, n := range before {
		dupsBefore += n - 1
	}
	t.Logf("SIGKILL of a node running %v events, with %d of %d events run (%d duplicate runs so far)",
		concurrentBefore, len(before), events, dupsBefore)

	// Every event runs; the queue empties (nothing left to redeliver).
	// Meanwhile the backlog asks for the whole reservation: the survivors
	// hold all of it once the killed node's leases expired.
	queue := eventQueue(t, engine.URL())
	leases := survivorLeases(t, engine.URL(), "fn."+fn, victim.dataDir)
	var recovered time.Duration // read once watching is done
	watching, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-watching:
				return
			case <-tick.C:
			}
			if n, err := leases(); err == nil && n == reserved {
				recovered = time.Since(killed)
				return
			}
		}
	}()
	var after map[string]int
	testkit.WaitFor(t, 60*time.Second, fmt.Sprintf("all %d events to run and the queue to empty", events), func() bool {
		after = ranEvents(t, survivors[0], fn)
		return len(after) >= events && queue() == 0
	})
	close(watching)
	<-watched
	drained := time.Since(killed)
	// A redelivered event may have run a second time just now; its line
	// is stored 300 ms before its ack, so it is in this read.
	after = ranEvents(t, survivors[0], fn)
	runs, twice := 0, []string{}
	for i := range events {
		id := strconv.Itoa(i)
		switch n := after[id]; {
		case n == 0:
			t.Errorf("event %s never ran", id)
		case n > 1:
			twice = append(twice, fmt.Sprintf("%s×%d", id, n))
		}
		runs += after[id]
	}
	if len(after) != events {
		t.Errorf("%d distinct events ran, want %d: %v", len(after), events, after)
	}
	t.Logf("%-5s %-5s %-5s %-11s %-17s %-10s %-17s %s", "sent", "ran", "runs", "duplicates", "before the kill", "send time", "drained after kill", "run more than once")
	t.Logf("%-5d %-5d %-5d %-11d %-17d %-10v %-18v %v", events, len(after), runs, runs-len(after), dupsBefore,
		sent.Round(time.Millisecond), drained.Round(time.Millisecond), twice)

	// The killed node's watchdog ends its sandboxes.
	waitGone(t, crashed, 10*time.Second)

	// The survivors' admission took the killed node's share over within
	// the TTL of the kill (its leases expire TTL after its last renewal),
	// and they can run the whole reservation at once.
	if recovered == 0 {
		t.Fatalf("while the backlog drained, the survivors never held all %d units of the reservation", reserved)
	}
	t.Logf("the survivors held all %d units of the reservation %v after the kill (lease TTL %v)", reserved, recovered.Round(time.Millisecond), ttl)
	if recovered > ttl+2*time.Second { // the survivors ask again every 100 ms, under load later
		t.Errorf("the survivors took the killed node's share over %v after the kill, want within its lease TTL %v", recovered, ttl)
	}
	var codes []int
	testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("%d concurrent calls on the survivors to all run", reserved), func() bool {
		codes = make([]int, reserved)
		var wg sync.WaitGroup
		for i := range reserved {
			wg.Go(func() {
				code, _, _, err := tryPost(survivors[i%len(survivors)].url+"/2015-03-31/functions/"+fn+"/invocations",
					"application/json", `{"action":"sleep","ms":1000}`)
				if err != nil {
					code = -1
				}
				codes[i] = code
			})
		}
		wg.Wait()
		for _, c := range codes {
			if c != http.StatusOK {
				t.Logf("concurrent calls on the survivors: %v", codes)
				return false
			}
		}
		return true
	})
}

// survivorLeases returns a probe of the units of pool the nodes other than
// the one of deadDir hold in the admission bucket, expired leases left out;
// the probe may run off the test's goroutine.
func survivorLeases(t *testing.T, url, pool, deadDir string) func() (int, error) {
	t.Helper()
	id, err := os.ReadFile(filepath.Join(deadDir, "node-id"))
	if err != nil {
		t.Fatal(err)
	}
	dead := strings.TrimSpace(string(id))
	js := enginetest.Open(t, engine.Config{URL: url, DataDir: t.TempDir()}).JetStream()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "admission")
	if err != nil {
		t.Fatal(err)
	}
	return func() (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e, err := kv.Get(ctx, pool)
		if err != nil {
			return 0, err
		}
		var held map[string]struct {
			N   int   `json:"n"`
			Exp int64 `json:"exp"`
		}
		if err := json.Unmarshal(e.Value(), &held); err != nil {
			return 0, fmt.Errorf("admission key %s: %w: %s", pool, err, e.Value())
		}
		n, now := 0, time.Now().UnixMilli()
		for node, l := range held {
			if node != dead && l.Exp > now {
				n += l.N
			}
		}
		return n, nil
	}
}

// sendEvent queues event for fn as an asynchronous invocation; safe off the
// test's goroutine.
func sendEvent(url, fn, event string) error {
	req, err := http.NewRequest(http.MethodPost, url+"/2015-03-31/functions/"+fn+"/invocations", strings.NewReader(event))
	if err != nil {
		return err
	}
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	resp, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("Event invoke %s: %w", fn, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("Event invoke %s(%s): %s, want 202", fn, event, resp.Status)
	}
	return nil
}

// reservedConcurrency is fn's reserved concurrency as node s answers it.
func reservedConcurrency(t *testing.T, s *server, fn string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+"/2019-09-30/functions/"+fn+"/concurrency", nil)
	if err != nil {
		t.Fatal(err)
	}
	code, body := doRequest(t, req)
	if code != http.StatusOK {
		return -1
	}
	var out struct{ ReservedConcurrentExecutions *int }
	if json.Unmarshal(body, &out) != nil || out.ReservedConcurrentExecutions == nil {
		return -1
	}
	return *out.ReservedConcurrentExecutions
}

// concurrentExecutions sums fn's icebox_concurrent_executions series on
// node s (on an external engine they carry the node's label).
func concurrentExecutions(t *testing.T, s *server, fn string) float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	code, body := doRequest(t, req)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	re := regexp.MustCompile(`(?m)^icebox_concurrent_executions\{[^}]*function="` + regexp.QuoteMeta(fn) + `"[^}]*\} (\S+)$`)
	sum := 0.0
	for _, m := range re.FindAllSubmatch(body, -1) {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		sum += v
	}
	return sum
}

// eventQueue returns a probe of how many events the EVENTS work queue holds
// (stored and not yet acked), read from the engine directly.
func eventQueue(t *testing.T, url string) func() uint64 {
	t.Helper()
	js := enginetest.Open(t, engine.Config{URL: url, DataDir: t.TempDir()}).JetStream()
	return func() uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, "EVENTS")
		if err != nil {
			t.Fatalf("stream EVENTS: %v", err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatalf("stream EVENTS: %v", err)
		}
		return info.State.Msgs
	}
}
