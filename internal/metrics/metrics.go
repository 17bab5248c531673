// Package metrics defines icebox's Prometheus metrics, named after Lambda's
// CloudWatch metrics, on a registry of their own.
package metrics

import (
	"net/http"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Metrics holds every collector. Label "function" is the function name.
type Metrics struct {
	Registry *prometheus.Registry

	Invocations  *prometheus.CounterVec
	Errors       *prometheus.CounterVec
	Throttles    *prometheus.CounterVec
	Duration     *prometheus.HistogramVec
	InitDuration *prometheus.HistogramVec
	Concurrent   *prometheus.GaugeVec
	Environments *prometheus.GaugeVec
	LogDrops     prometheus.CounterFunc
	NetworkIn    *prometheus.CounterVec
	NetworkOut   *prometheus.CounterVec

	AsyncReceived       *prometheus.CounterVec
	AsyncEventAge       *prometheus.HistogramVec
	AsyncDropped        *prometheus.CounterVec
	DestinationFailures *prometheus.CounterVec
	DeadLetterErrors    *prometheus.CounterVec

	functions    sync.Map // function name → *Function
	environments sync.Map // state → prometheus.Gauge
	node         atomic.Pointer[string]
}

// Environment returns the Environments gauge of one state, looked up once
// (the pool moves environments between states twice per invocation). Like
// WithLabelValues it creates the series on first use.
func (m *Metrics) Environment(state string) prometheus.Gauge {
	if g, ok := m.environments.Load(state); ok {
		return g.(prometheus.Gauge)
	}
	g, _ := m.environments.LoadOrStore(state, m.Environments.WithLabelValues(state))
	return g.(prometheus.Gauge)
}

// Function holds one function's children of the per-function metrics of the
// synchronous invoke path, resolved once: WithLabelValues hashes the label
// and takes the vector's lock on every call. Children are still created on
// first use, so a series appears in the output exactly when it did before.
type Function struct {
	m    *Metrics
	name string

	invocations, errors, throttles child[prometheus.Counter]
	concurrent                     child[prometheus.Gauge]
	duration, initDuration         child[prometheus.Observer]
	networkIn, networkOut          child[prometheus.Counter]
}

// child is a label child looked up once.
type child[T any] struct {
	once sync.Once
	v    T
}

func (c *child[T]) get(lookup func() T) T {
	c.once.Do(func() { c.v = lookup() })
	return c.v
}

// Function returns the cached metrics of one function. Entries are never
// removed: the vectors keep a function's series after it is deleted anyway.
func (m *Metrics) Function(name string) *Function {
	if f, ok := m.functions.Load(name); ok {
		return f.(*Function)
	}
	f, _ := m.functions.LoadOrStore(name, &Function{m: m, name: name})
	return f.(*Function)
}

func (f *Function) Invocations() prometheus.Counter {
	return f.invocations.get(func() prometheus.Counter { return f.m.Invocations.WithLabelValues(f.name) })
}

func (f *Function) Errors() prometheus.Counter {
	return f.errors.get(func() prometheus.Counter { return f.m.Errors.WithLabelValues(f.name) })
}

func (f *Function) Throttles() prometheus.Counter {
	return f.throttles.get(func() prometheus.Counter { return f.m.Throttles.WithLabelValues(f.name) })
}

func (f *Function) Concurrent() prometheus.Gauge {
	return f.concurrent.get(func() prometheus.Gauge { return f.m.Concurrent.WithLabelValues(f.name) })
}

func (f *Function) Duration() prometheus.Observer {
	return f.duration.get(func() prometheus.Observer { return f.m.Duration.WithLabelValues(f.name) })
}

func (f *Function) InitDuration() prometheus.Observer {
	return f.initDuration.get(func() prometheus.Observer { return f.m.InitDuration.WithLabelValues(f.name) })
}

// NetworkIn counts bytes the function's sandboxes received from their
// network interface (with egress; loopback traffic is not counted).
func (f *Function) NetworkIn() prometheus.Counter {
	return f.networkIn.get(func() prometheus.Counter { return f.m.NetworkIn.WithLabelValues(f.name) })
}

// NetworkOut counts bytes the function's sandboxes sent.
func (f *Function) NetworkOut() prometheus.Counter {
	return f.networkOut.get(func() prometheus.Counter { return f.m.NetworkOut.WithLabelValues(f.name) })
}

// New registers every collector on a fresh registry. logDrops reports log
// lines dropped under pressure; it may be nil.
func New(logDrops func() float64) *Metrics {
	fn := []string{"function"}
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900}
	m := &Metrics{
		Registry:     prometheus.NewRegistry(),
		Invocations:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "icebox_invocations_total", Help: "Invocations of a function, successful or not (Lambda's Invocations)."}, fn),
		Errors:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "icebox_errors_total", Help: "Invocations that ended in a function error (Lambda's Errors)."}, fn),
		Throttles:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "icebox_throttles_total", Help: "Invocation requests throttled (Lambda's Throttles)."}, fn),
		Duration:     prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "icebox_duration_seconds", Help: "Time the function code ran per invocation (Lambda's Duration).", Buckets: buckets}, fn),
		InitDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "icebox_init_duration_seconds", Help: "Cold start: sandbox creation plus runtime init.", Buckets: buckets}, fn),
		Concurrent:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "icebox_concurrent_executions", Help: "Environments busy with an event (Lambda's ConcurrentExecutions)."}, fn),
		Environments: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "icebox_environments", Help: "Execution environments by lifecycle state."}, []string{"state"}),
		NetworkIn:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "icebox_network_received_bytes_total", Help: "Bytes a function's sandboxes received over their network interface (egress on; counted at each call's end and when a sandbox goes)."}, fn),
		NetworkOut:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "icebox_network_sent_bytes_total", Help: "Bytes a function's sandboxes sent over their network interface (egress on; counted at each call's end and when a sandbox goes)."}, fn),

		AsyncReceived:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "icebox_async_events_received_total", Help: "Events queued for asynchronous invocation (Lambda's AsyncEventsReceived)."}, fn),
		AsyncEventAge:       prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "icebox_async_event_age_seconds", Help: "Time from queueing to each attempt (Lambda's AsyncEventAge).", Buckets: buckets}, fn),
		AsyncDropped:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "icebox_async_events_dropped_total", Help: "Events dropped without reaching a destination or dead-letter target (Lambda's AsyncEventsDropped)."}, fn),
		DestinationFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "icebox_destination_delivery_failures_total", Help: "Records that could not be sent to a destination (Lambda's DestinationDeliveryFailures)."}, fn),
		DeadLetterErrors:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "icebox_dead_letter_errors_total", Help: "Events that could not be sent to the dead-letter target (Lambda's DeadLetterErrors)."}, fn),
	}
	if logDrops == nil {
		logDrops = func() float64 { return 0 }
	}
	m.LogDrops = prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "icebox_log_lines_dropped_total", Help: "Function log lines dropped because the log store could not keep up."}, logDrops)
	m.Registry.MustRegister(m.Invocations, m.Errors, m.Throttles, m.Duration, m.InitDuration, m.Concurrent, m.Environments, m.LogDrops,
		m.NetworkIn, m.NetworkOut,
		m.AsyncReceived, m.AsyncEventAge, m.AsyncDropped, m.DestinationFailures, m.DeadLetterErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// WatchAccount exports account-wide concurrency read from usage:
// executions in progress and those of functions without a reservation.
func (m *Metrics) WatchAccount(usage func() (concurrent, unreserved float64)) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "icebox_account_concurrent_executions", Help: "Executions in progress across all functions (Lambda's account ConcurrentExecutions)."},
			func() float64 { c, _ := usage(); return c }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "icebox_unreserved_concurrent_executions", Help: "Executions in progress of functions without reserved concurrency (Lambda's UnreservedConcurrentExecutions)."},
			func() float64 { _, u := usage(); return u }),
	)
}

// WatchQueue exports icebox_async_queue_depth{function}, read from depth
// on every scrape.
func (m *Metrics) WatchQueue(depth func() map[string]float64) {
	m.Registry.MustRegister(&queueCollector{depth: depth})
}

var queueDesc = prometheus.NewDesc("icebox_async_queue_depth", "Asynchronous events queued per function (waiting or parked for a retry; not those running).", []string{"function"}, nil)

type queueCollector struct{ depth func() map[string]float64 }

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- queueDesc }
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	for fn, n := range c.depth() {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, n, fn)
	}
}

// WatchLogDrops exports icebox_function_log_lines_dropped_total{function,
// reason}, read from each on every scrape: each calls emit once per function
// and reason with the lines lost since start.
func (m *Metrics) WatchLogDrops(each func(emit func(function, reason string, n uint64))) {
	m.Registry.MustRegister(&logDropsCollector{each: each})
}

var logDropsDesc = prometheus.NewDesc("icebox_function_log_lines_dropped_total",
	"Log lines of a function lost before their retention age: reason buffer (its share of the log write buffer was full), budget (its oldest lines removed to keep its log group, or the log store, within its byte budget), engine (the log store did not acknowledge them).",
	[]string{"function", "reason"}, nil)

type logDropsCollector struct {
	each func(emit func(function, reason string, n uint64))
}

func (c *logDropsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- logDropsDesc }
func (c *logDropsCollector) Collect(ch chan<- prometheus.Metric) {
	c.each(func(function, reason string, n uint64) {
		ch <- prometheus.MustNewConstMetric(logDropsDesc, prometheus.CounterValue, float64(n), function, reason)
	})
}

// SetNode labels every metric served with node="id", so the series of a
// cluster's nodes stay apart when one Prometheus scrapes them all. Call it
// before serving.
func (m *Metrics) SetNode(id string) { m.node.Store(&id) }

// Handler serves the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(nodeLabeled{m}, promhttp.HandlerOpts{})
}

// nodeLabeled adds the node label at gather time, so it covers every
// collector, including ones registered after SetNode.
type nodeLabeled struct{ m *Metrics }

func (g nodeLabeled) Gather() ([]*dto.MetricFamily, error) {
	families, err := g.m.Registry.Gather()
	node := g.m.node.Load()
	if node == nil {
		return families, err
	}
	name := "node"
	for _, f := range families {
		for _, metric := range f.Metric {
			metric.Label = append(metric.Label, &dto.LabelPair{Name: &name, Value: node})
			sort.Slice(metric.Label, func(i, j int) bool { return metric.Label[i].GetName() < metric.Label[j].GetName() })
		}
	}
	return families, err
}
