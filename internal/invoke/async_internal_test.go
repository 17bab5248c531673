package invoke

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"icebox/internal/engine/enginetest"
	"icebox/internal/errdefs"
	"icebox/internal/metrics"
	"icebox/internal/model"
	"icebox/internal/testkit"
)

type mapCatalog map[string]model.Function

func (c mapCatalog) Get(name string) (model.Function, error) {
	if fn, ok := c[name]; ok {
		return fn, nil
	}
	return model.Function{}, fmt.Errorf("function %s: %w", name, errdefs.ErrNotFound)
}

func (c mapCatalog) View(name, q string) (model.Function, error) {
	fn, err := c.Get(name)
	if err != nil {
		return fn, err
	}
	return fn.View(q)
}

func (c mapCatalog) Alias(name, alias string) (model.Alias, error) {
	fn := c[name]
	if a := fn.AliasNamed(alias); a != nil {
		return *a, nil
	}
	return model.Alias{}, fmt.Errorf("alias %s:%s: %w", name, alias, errdefs.ErrNotFound)
}

type admitAll struct{}

func (admitAll) Admit(*model.Function) (func(), error) { return func() {}, nil }

type ran struct {
	function string
	payload  []byte
	trace    string
}

type recordingRunner struct {
	mu   sync.Mutex
	runs []ran
}

func (r *recordingRunner) Invoke(_ context.Context, fn model.Function, inv *model.Invocation) (model.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = append(r.runs, ran{fn.Name, append([]byte(nil), inv.Payload...), inv.TraceID})
	return model.Result{RequestID: inv.RequestID, Payload: []byte(`{}`)}, nil
}

// all lists the runs so far.
func (r *recordingRunner) all() []ran {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ran(nil), r.runs...)
}

// wait waits for n runs and lists those made so far.
func (r *recordingRunner) wait(t *testing.T, n int) []ran {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("%d runs", n), func() bool { return len(r.all()) >= n })
	return r.all()
}

func startQueue(t *testing.T, cat Catalog) (*Invoker, *recordingRunner, *metrics.Metrics) {
	t.Helper()
	e := enginetest.Embedded(t)
	run := &recordingRunner{}
	m := metrics.New(nil)
	iv := New(Config{Region: "us-east-1", AccountID: "000000000000"}, cat, admitAll{}, run, m)
	if err := iv.StartAsync(context.Background(), e.JetStream(), AsyncConfig{AckWait: 2 * time.Second}, enginetest.Logger(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iv.StopAsync(context.Background()) })
	return iv, run, m
}

// An event older than MaximumEventAgeInSeconds is not run: its record goes
// to the OnFailure destination with condition EventAgeExceeded.
func TestEventAgeExceeded(t *testing.T) {
	age := 60
	src := model.Function{Name: "src", EventInvoke: &model.EventInvokeConfig{
		MaximumEventAgeInSeconds: &age, OnFailure: "arn:aws:lambda:us-east-1:000000000000:function:dst"}}
	iv, run, m := startQueue(t, mapCatalog{"src": src, "dst": {Name: "dst"}})
	old := event{requestID: "r-1", function: "src", received: time.Now().Add(-2 * time.Minute)}
	if err := iv.async.enqueue(context.Background(), old, []byte(`{"k":1}`)); err != nil {
		t.Fatal(err)
	}
	runs := run.wait(t, 1)
	if len(runs) != 1 || runs[0].function != "dst" {
		t.Fatalf("runs = %+v; want only the destination", runs)
	}
	var rec struct {
		RequestContext struct {
			RequestID              string
			Condition              string
			ApproximateInvokeCount int
		} `json:"requestContext"`
		RequestPayload  json.RawMessage `json:"requestPayload"`
		ResponseContext *struct{}       `json:"responseContext"`
	}
	if err := json.Unmarshal(runs[0].payload, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.RequestContext.Condition != "EventAgeExceeded" || rec.RequestContext.RequestID != "r-1" ||
		rec.RequestContext.ApproximateInvokeCount != 0 || string(rec.RequestPayload) != `{"k":1}` || rec.ResponseContext != nil {
		t.Errorf("record = %s", runs[0].payload)
	}
	// Both the expired event and the destination's event had their age observed.
	if n := testutil.CollectAndCount(m.AsyncEventAge); n != 2 {
		t.Errorf("event age observed for %d functions, want 2", n)
	}
}

// Events of a deleted function are dropped and counted, once the catalog
// has had time to learn of a function created on another node.
func TestEventOfDeletedFunctionDropped(t *testing.T) {
	iv, run, m := startQueue(t, mapCatalog{})
	old := event{requestID: "r-2", function: "gone", received: time.Now().Add(-catalogLag)}
	if err := iv.async.enqueue(context.Background(), old, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the event of a deleted function to be counted as dropped", func() bool {
		return testutil.ToFloat64(m.AsyncDropped.WithLabelValues("gone")) == 1
	})
	if runs := run.all(); len(runs) != 0 {
		t.Errorf("runs = %+v", runs)
	}
}

// laggingCatalog knows its functions only from a moment on, like a node
// whose catalog watch has not yet seen a function created on another node.
type laggingCatalog struct {
	mapCatalog
	from time.Time
}

func (c laggingCatalog) View(name, q string) (model.Function, error) {
	if time.Now().Before(c.from) {
		return mapCatalog{}.View(name, q)
	}
	return c.mapCatalog.View(name, q)
}

// An event of a function this node's catalog does not know yet waits for
// it, and runs once the catalog has it.
func TestEventWaitsForCatalog(t *testing.T) {
	iv, run, m := startQueue(t, laggingCatalog{mapCatalog{"late": {Name: "late"}}, time.Now().Add(2 * time.Second)})
	if err := iv.async.enqueue(context.Background(), event{requestID: "r-3", function: "late", received: time.Now()}, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if runs := run.wait(t, 1); runs[0].function != "late" {
		t.Fatalf("runs = %+v", runs)
	}
	if n := testutil.ToFloat64(m.AsyncDropped.WithLabelValues("late")); n != 0 {
		t.Errorf("%v events dropped", n)
	}
}

func TestThrottleBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	for i, w := range want {
		if got := throttleBackoff(uint64(i + 1)); got != w {
			t.Errorf("backoff after %d deliveries = %v, want %v", i+1, got, w)
		}
	}
	if got := throttleBackoff(100); got != 5*time.Minute {
		t.Errorf("backoff cap = %v", got)
	}
}
