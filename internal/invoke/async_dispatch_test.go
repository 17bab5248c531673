package invoke_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"icebox/internal/admission"
	"icebox/internal/engine/enginetest"
	"icebox/internal/errdefs"
	"icebox/internal/invoke"
	"icebox/internal/metrics"
	"icebox/internal/model"
	"icebox/internal/testkit"
)

// How the dispatcher takes events off the queue, against a real embedded
// JetStream: an event waiting for a free slot must not be redelivered, and
// events parked on a delay must not hold up others.

// recordingRunner counts runs per request id, each taking d.
type recordingRunner struct {
	d time.Duration

	mu      sync.Mutex
	runs    map[string]int
	last    map[string]time.Time // function → when it last ran
	running int                  // runs in progress
}

func newRecordingRunner(d time.Duration) *recordingRunner {
	return &recordingRunner{d: d, runs: map[string]int{}, last: map[string]time.Time{}}
}

func (r *recordingRunner) Invoke(ctx context.Context, fn model.Function, inv *model.Invocation) (model.Result, error) {
	r.mu.Lock()
	r.runs[inv.RequestID]++
	r.last[fn.Name] = time.Now()
	r.running++
	r.mu.Unlock()
	time.Sleep(r.d) // the function's own run time: the dispatcher must keep a slot busy that long
	r.mu.Lock()
	r.running--
	r.mu.Unlock()
	return model.Result{Payload: []byte(`"ok"`), ExecutedVersion: model.LatestVersion}, nil
}

func (r *recordingRunner) ran(fn string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.last[fn]
	return t, ok
}

// throttling throttles the functions it names and admits the others. It
// counts every attempt to run each function.
type throttling struct {
	held map[string]bool

	mu       sync.Mutex
	attempts map[string]int
}

func newThrottling(held ...string) *throttling {
	th := &throttling{held: map[string]bool{}, attempts: map[string]int{}}
	for _, fn := range held {
		th.held[fn] = true
	}
	return th
}

func (th *throttling) Admit(fn *model.Function) (func(), error) {
	th.mu.Lock()
	defer th.mu.Unlock()
	th.attempts[fn.Name]++
	if th.held[fn.Name] {
		return nil, fmt.Errorf("Rate exceeded for %s: %w", fn.Name, errdefs.ErrThrottled)
	}
	return func() {}, nil
}

func (th *throttling) tried(fn string) int {
	th.mu.Lock()
	defer th.mu.Unlock()
	return th.attempts[fn]
}

func startAsync(t *testing.T, adm invoke.Admission, run invoke.Runner, cfg invoke.AsyncConfig, fns ...string) *invoke.Invoker {
	t.Helper()
	e := enginetest.Embedded(t)
	cat := &fakeCatalog{fns: map[string]model.Function{}}
	for _, name := range fns {
		cat.fns[name] = testFunction(name)
	}
	iv := invoke.New(invoke.Config{Region: region, AccountID: account}, cat, adm, run, metrics.New(func() float64 { return 0 }))
	if err := iv.StartAsync(context.Background(), e.JetStream(), cfg, enginetest.Logger(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iv.StopAsync(context.Background()) })
	return iv
}

func queueEvent(t *testing.T, iv *invoke.Invoker, fn string) {
	t.Helper()
	if _, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: fn, Type: invoke.Event, Payload: []byte(`{}`)}); err != nil {
		t.Fatalf("queue event for %s: %v", fn, err)
	}
}

// TestAsyncEventWaitingForSlotRunsOnce: with every slot busy for longer
// than AckWait, the events behind them must each still run exactly once.
// Taken off the queue before a slot was free, they would sit unacknowledged
// past AckWait and be delivered, and run, again.
func TestAsyncEventWaitingForSlotRunsOnce(t *testing.T) {
	t.Parallel()
	const ackWait = 300 * time.Millisecond
	run := newRecordingRunner(time.Second)
	iv := startAsync(t, newThrottling(), run, invoke.AsyncConfig{MaxInFlight: 1, AckWait: ackWait}, "f")
	const n = 3
	for range n {
		queueEvent(t, iv, "f")
	}
	testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("%d events to run and the last to finish", n), func() bool {
		run.mu.Lock()
		defer run.mu.Unlock()
		return len(run.runs) == n && run.running == 0
	})
	// The window is the test: an event taken too early was delivered again
	// AckWait after it was taken, long before the last run finished, and
	// that copy would start as soon as the slot freed. None may start.
	time.Sleep(ackWait)
	run.mu.Lock()
	defer run.mu.Unlock()
	for id, k := range run.runs {
		if k != 1 {
			t.Errorf("event %s ran %d times, want once", id, k)
		}
	}
}

// TestAsyncThrottledBacklogDoesNotBlockOthers: the events of a function
// that cannot run wait out their backoff parked in the queue; however many
// there are, another function's event must still run at once.
func TestAsyncThrottledBacklogDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	run := newRecordingRunner(0)
	th := newThrottling("held")
	iv := startAsync(t, th, run, invoke.AsyncConfig{MaxInFlight: 2}, "held", "f")
	const held = 40 // well over MaxInFlight
	for range held {
		queueEvent(t, iv, "held")
	}
	// A throttled event is parked (nakked with a delay) right after its
	// refusal.
	testkit.WaitFor(t, 10*time.Second, "every held event to be tried and parked", func() bool { return th.tried("held") >= held })
	sent := time.Now()
	queueEvent(t, iv, "f")
	testkit.WaitFor(t, 5*time.Second, "f's event to run behind held's backlog", func() bool {
		_, ok := run.ran("f")
		return ok
	})
	at, _ := run.ran("f")
	t.Logf("f ran %v after its event was queued", at.Sub(sent).Round(time.Microsecond))
}

// TestAsyncQueueDepthLeavesOutRunning: an event whose attempt runs is no
// longer queued; the ones waiting behind it are.
func TestAsyncQueueDepthLeavesOutRunning(t *testing.T) {
	t.Parallel()
	run := newRecordingRunner(2 * time.Second)
	iv := startAsync(t, newThrottling(), run, invoke.AsyncConfig{MaxInFlight: 1}, "f")
	for range 3 {
		queueEvent(t, iv, "f")
	}
	testkit.WaitFor(t, 5*time.Second, "the first event to run", func() bool {
		run.mu.Lock()
		defer run.mu.Unlock()
		return run.running == 1
	})
	if got := iv.QueueDepth(context.Background())["f"]; got != 2 {
		t.Errorf("queue depth with one of 3 events running = %v, want 2", got)
	}
}

// TestAsyncThrottledBacklogDrainsAtLimit: a backlog of a function with
// reserved concurrency 8 drains at the reservation's full rate: throttled
// events wait in their slot for an execution to end instead of backing off
// (1 s, 2 s, 4 s ... once, which took minutes for 200 one-second events).
// Scaled down to 80 events of 250 ms: ideally 10 rounds, 2.5 s.
func TestAsyncThrottledBacklogDrainsAtLimit(t *testing.T) {
	t.Parallel()
	const (
		n, reserved = 80, 8
		runTime     = 250 * time.Millisecond
		ideal       = n / reserved * runTime
		// Generous for a loaded CI machine: pulls, acks and wake-ups; the
		// backoff this replaces took well over 4× here.
		factor = 2.5
	)
	counter, err := admission.New(admission.Config{AccountLimit: 100, UnreservedMin: 10})
	if err != nil {
		t.Fatal(err)
	}
	run := newRecordingRunner(runTime)
	var peak atomic.Int32
	e := enginetest.Embedded(t)
	fn := testFunction("slow")
	r := reserved
	fn.ReservedConcurrency = &r
	cat := &fakeCatalog{fns: map[string]model.Function{"slow": fn}}
	iv := invoke.New(invoke.Config{Region: region, AccountID: account}, cat, counter, peakRunner{run, counter, &peak}, metrics.New(func() float64 { return 0 }))
	if err := iv.StartAsync(context.Background(), e.JetStream(), invoke.AsyncConfig{}, enginetest.Logger(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iv.StopAsync(context.Background()) })
	start := time.Now()
	for range n {
		queueEvent(t, iv, "slow")
	}
	testkit.WaitFor(t, 20*time.Second, fmt.Sprintf("%d events to run", n), func() bool {
		run.mu.Lock()
		defer run.mu.Unlock()
		return len(run.runs) == n && run.running == 0
	})
	took := time.Since(start)
	t.Logf("%d events of %s at reserved concurrency %d: drained in %s (ideal %s, bound %.1f×), peak concurrency %d",
		n, runTime, reserved, took.Round(time.Millisecond), ideal, factor, peak.Load())
	if p := peak.Load(); p > reserved {
		t.Errorf("peak concurrency %d over the reservation %d", p, reserved)
	}
	if took > time.Duration(factor*float64(ideal)) {
		t.Errorf("drain took %s, over %.1f× the ideal %s", took, factor, ideal)
	}
}

// peakRunner records the admission counter's highest concurrency.
type peakRunner struct {
	invoke.Runner
	c    *admission.Counter
	peak *atomic.Int32
}

func (p peakRunner) Invoke(ctx context.Context, fn model.Function, inv *model.Invocation) (model.Result, error) {
	if n := int32(p.c.Usage().Concurrent); n > p.peak.Load() {
		p.peak.Store(n)
	}
	return p.Runner.Invoke(ctx, fn, inv)
}
