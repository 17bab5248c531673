package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"icebox/internal/metrics"
)

// TestExposition: every metric a dashboard reads is served, with its
// function label, and the watchers are read on each scrape.
func TestExposition(t *testing.T) {
	m := metrics.New(func() float64 { return 7 })
	depth := 3.0
	m.WatchAccount(func() (float64, float64) { return 5, 2 })
	m.WatchQueue(func() map[string]float64 { return map[string]float64{"f": depth} })
	m.WatchLogDrops(func(emit func(string, string, uint64)) { emit("f", "budget", 11) })
	f := m.Function("f")
	f.Invocations().Inc()
	f.Errors().Inc()
	f.Throttles().Add(2)
	f.Duration().Observe(0.002)
	m.Environment("idle").Inc()

	scrape := func() string {
		w := httptest.NewRecorder()
		m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		b, _ := io.ReadAll(w.Body)
		return string(b)
	}
	out := scrape()
	for _, want := range []string{
		`icebox_invocations_total{function="f"} 1`,
		`icebox_errors_total{function="f"} 1`,
		`icebox_throttles_total{function="f"} 2`,
		`icebox_duration_seconds_count{function="f"} 1`,
		`icebox_environments{state="idle"} 1`,
		`icebox_account_concurrent_executions 5`,
		`icebox_unreserved_concurrent_executions 2`,
		`icebox_async_queue_depth{function="f"} 3`,
		`icebox_log_lines_dropped_total 7`,
		`icebox_function_log_lines_dropped_total{function="f",reason="budget"} 11`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	depth = 4
	if !strings.Contains(scrape(), `icebox_async_queue_depth{function="f"} 4`) {
		t.Error("queue depth is not read on each scrape")
	}
}

// With a node set, every series carries it, collectors registered later too.
func TestNodeLabel(t *testing.T) {
	m := metrics.New(nil)
	m.SetNode("n-1")
	m.Function("f").Invocations().Inc()
	m.Environment("idle").Inc()
	m.WatchQueue(func() map[string]float64 { return map[string]float64{"f": 2} })
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	out := w.Body.String()
	for _, want := range []string{
		`icebox_invocations_total{function="f",node="n-1"} 1`,
		`icebox_environments{node="n-1",state="idle"} 1`,
		`icebox_async_queue_depth{function="f",node="n-1"} 2`,
		`icebox_log_lines_dropped_total{node="n-1"} 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") && !strings.Contains(line, `node="n-1"`) {
			t.Errorf("series without the node label: %s", line)
		}
	}
}
