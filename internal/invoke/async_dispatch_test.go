package invoke_test

import (
	"context"
	"fmt"
	"icebox/internal/testkit"
	"sync"
	"testing"
	"time"

	"icebox/internal/engine/enginetest"
	"icebox/internal/errdefs"
	"icebox/internal/invoke"
	"icebox/internal/metrics"
	"icebox/internal/model"
)

// How the dispatcher takes events off the queue, against a real embedded
// JetStream: an event waiting for a free slot must not be redelivered, and
// events parked on a delay must not hold up others.

// recordingRunner counts runs per request id, each taking d.
type recordingRunner struct {
	d time.Duration

	mu   sync.Mutex
	runs map[string]int
	last map[string]time.Time // function → when it last ran
}

func (r *recordingRunner) Invoke(ctx context.Context, fn model.Function, inv *model.Invocation) (model.Result, error) {
	r.mu.Lock()
	r.runs[inv.RequestID]++
	r.last[fn.Name] = time.Now()
	r.mu.Unlock()
	time.Sleep(r.d)
	return model.Result{Payload: []byte(`"ok"`), ExecutedVersion: model.LatestVersion}, nil
}

func (r *recordingRunner) ran(fn string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.last[fn]
	return t, ok
}

// throttling throttles the functions it names and admits the others.
type throttling map[string]bool

func (th throttling) Admit(fn *model.Function) (func(), error) {
	if th[fn.Name] {
		return nil, fmt.Errorf("Rate exceeded for %s: %w", fn.Name, errdefs.ErrThrottled)
	}
	return func() {}, nil
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
	run := &recordingRunner{d: time.Second, runs: map[string]int{}, last: map[string]time.Time{}}
	iv := startAsync(t, throttling{}, run, invoke.AsyncConfig{MaxInFlight: 1, AckWait: 300 * time.Millisecond}, "f")
	const n = 3
	for range n {
		queueEvent(t, iv, "f")
	}
	testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("%d events to run", n), func() bool {
		run.mu.Lock()
		defer run.mu.Unlock()
		return len(run.runs) == n
	})
	time.Sleep(time.Second) // long enough for a duplicate to show up
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
	run := &recordingRunner{runs: map[string]int{}, last: map[string]time.Time{}}
	iv := startAsync(t, throttling{"held": true}, run, invoke.AsyncConfig{MaxInFlight: 2}, "held", "f")
	for range 40 { // well over MaxInFlight
		queueEvent(t, iv, "held")
	}
	time.Sleep(500 * time.Millisecond) // every held event tried and parked
	sent := time.Now()
	queueEvent(t, iv, "f")
	testkit.WaitFor(t, 5*time.Second, "f's event to run behind held's backlog", func() bool {
		_, ok := run.ran("f")
		return ok
	})
	at, _ := run.ran("f")
	t.Logf("f ran %v after its event was queued", at.Sub(sent).Round(time.Microsecond))
}
