// Package telemetry is the Telemetry API (2022-07-01) and the older Logs
// API (2020-08-15) of one execution environment: extensions subscribe to
// event types (platform, function, extension), and each subscription
// buffers events and delivers them in batches, in order, by HTTP POST (a
// JSON array) or over TCP (one JSON object a line) to the subscriber's own
// listener inside the sandbox.
//
// Nothing is delivered while the environment is frozen (the subscriber
// could not take it); what was published meanwhile waits in the buffer and
// is delivered after the thaw. Events published during init, before an
// extension could subscribe, are kept and given to every subscription made
// during init, as Lambda does. A subscriber that cannot keep up loses
// events past its buffer, and is told so by a platform.logsDropped event.
package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"icebox/internal/model"
)

// Schema versions a subscription may name.
const (
	SchemaTelemetry = "2022-07-01"
	SchemaLogs      = "2020-08-15"
)

// Event categories a subscription selects.
const (
	Platform  = "platform"
	Function  = "function"
	Extension = "extension"
)

// Buffering bounds and defaults, Lambda's.
const (
	minItems, maxItems, defaultItems = 1000, 10000, 10000
	minBytes, maxBytes, defaultBytes = 262144, 1048576, 262144
	minTimeout, maxTimeout           = 25, 30000
	defaultTimeoutMs                 = 1000
	// runtimeAPIPort is the Runtime API's own port, which no subscriber
	// may listen on.
	runtimeAPIPort = 9001
	// maxBacklog bounds the init events kept for subscriptions to come.
	maxBacklog = 1000
)

// ValidationError is a subscription refused for what it asks; Lambda
// answers it with 400.
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }

// Dialer connects to a port on the sandbox's own loopback.
type Dialer func(ctx context.Context, port int) (net.Conn, error)

// Hub is the Telemetry API of one environment.
type Hub struct {
	dial   Dialer
	ctx    context.Context
	cancel context.CancelFunc

	mu sync.Mutex
	// subs are the subscriptions, in order; a later one from the same
	// extension replaces its earlier one.
	subs []*subscription
	// backlog holds the events published during init; nil once it ended.
	backlog []event
	// initOver: init ended, and with it the time to subscribe.
	initOver bool
	paused   bool
}

// event is one published event, ready to be sent.
type event struct {
	category string
	// json is {"time","type","record"}; logsJSON its Logs API form, when
	// it differs.
	json, logsJSON []byte
}

// New makes the Telemetry API of an environment whose init is starting.
func New(dial Dialer) *Hub {
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{dial: dial, ctx: ctx, cancel: cancel, backlog: []event{}}
}

// Request is a subscription as an extension sends it (either API).
type Request struct {
	SchemaVersion string   `json:"schemaVersion"`
	Types         []string `json:"types"`
	Buffering     struct {
		MaxItems  *int `json:"maxItems"`
		MaxBytes  *int `json:"maxBytes"`
		TimeoutMs *int `json:"timeoutMs"`
	} `json:"buffering"`
	Destination struct {
		Protocol string `json:"protocol"`
		URI      string `json:"URI"`
	} `json:"destination"`
}

// Subscribe adds (or replaces) the subscription of the extension named
// name, from a request body sent to the API of schema (SchemaTelemetry or
// SchemaLogs). A bad request is a *ValidationError; one after init is
// refused as Lambda refuses it, a *model.ExtensionError of type
// Telemetry.SubscriptionClosed (Logs.SubscriptionClosed).
func (h *Hub) Subscribe(name, api string, body []byte) error {
	h.mu.Lock()
	over := h.initOver
	h.mu.Unlock()
	if over {
		if api == SchemaLogs {
			return &model.ExtensionError{Type: "Logs.SubscriptionClosed", Msg: "Logs API subscription is closed already"}
		}
		return &model.ExtensionError{Type: "Telemetry.SubscriptionClosed", Msg: "Telemetry API subscription is closed already"}
	}
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		return &ValidationError{"the body is not a subscription: " + err.Error()}
	}
	s, err := h.validate(name, api, &req)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs = slices.DeleteFunc(h.subs, func(o *subscription) bool {
		if o.name == name {
			o.stop()
			return true
		}
		return false
	})
	for _, ev := range h.backlog {
		s.add(ev)
	}
	h.subs = append(h.subs, s)
	s.paused = h.paused
	go s.deliver(h.ctx)
	h.publishLocked(time.Now(), "platform.telemetrySubscription", map[string]any{"name": name, "state": "Subscribed", "types": req.Types})
	return nil
}

func (h *Hub) validate(name, api string, req *Request) (*subscription, error) {
	if api == SchemaTelemetry && req.SchemaVersion != "" && req.SchemaVersion != SchemaTelemetry &&
		req.SchemaVersion != "2022-12-13" && req.SchemaVersion != "2025-01-29" {
		return nil, &ValidationError{fmt.Sprintf("schemaVersion %q is not supported", req.SchemaVersion)}
	}
	s := &subscription{name: name, logsAPI: api == SchemaLogs, types: map[string]bool{},
		maxItems: defaultItems, maxBytes: defaultBytes, timeout: defaultTimeoutMs * time.Millisecond, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if len(req.Types) == 0 {
		return nil, &ValidationError{"types must name at least one of platform, function, extension"}
	}
	for _, t := range req.Types {
		if t != Platform && t != Function && t != Extension {
			return nil, &ValidationError{fmt.Sprintf("type %q is not one of platform, function, extension", t)}
		}
		s.types[t] = true
	}
	b := req.Buffering
	for _, f := range []struct {
		v        *int
		lo, hi   int
		name     string
		assigned func(int)
	}{
		{b.MaxItems, minItems, maxItems, "maxItems", func(v int) { s.maxItems = v }},
		{b.MaxBytes, minBytes, maxBytes, "maxBytes", func(v int) { s.maxBytes = v }},
		{b.TimeoutMs, minTimeout, maxTimeout, "timeoutMs", func(v int) { s.timeout = time.Duration(v) * time.Millisecond }},
	} {
		if f.v == nil {
			continue
		}
		if *f.v < f.lo || *f.v > f.hi {
			return nil, &ValidationError{fmt.Sprintf("buffering.%s must be between %d and %d", f.name, f.lo, f.hi)}
		}
		f.assigned(*f.v)
	}
	switch req.Destination.Protocol {
	case "HTTP":
	case "TCP":
		s.tcp = true
	default:
		return nil, &ValidationError{fmt.Sprintf("destination.protocol %q is not HTTP or TCP", req.Destination.Protocol)}
	}
	u, err := url.Parse(req.Destination.URI)
	if err != nil || u.Hostname() != "sandbox.localdomain" && u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1" {
		return nil, &ValidationError{fmt.Sprintf("destination.URI %q must be http://sandbox.localdomain:PORT[/PATH]", req.Destination.URI)}
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil || port < 1 || port > 65535 || port == runtimeAPIPort {
		return nil, &ValidationError{fmt.Sprintf("destination.URI %q must name a port other than %d", req.Destination.URI, runtimeAPIPort)}
	}
	s.port, s.path = port, u.RequestURI()
	if !s.tcp {
		s.client = &http.Client{Transport: &http.Transport{
			DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return h.dial(ctx, port) },
			MaxIdleConnsPerHost: 1,
		}}
	}
	s.dial = h.dial
	return s, nil
}

// Publish sends one event of type typ ("platform.start", "function",
// "extension"…) with its record (marshalled to JSON; a json.RawMessage is
// taken as is) to every subscription of its category. Without
// subscriptions, past init, it costs a lock.
func (h *Hub) Publish(t time.Time, typ string, record any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishLocked(t, typ, record)
}

// ExtensionRegistered publishes an extension's registration.
func (h *Hub) ExtensionRegistered(name string, events []string) {
	h.Publish(time.Now(), "platform.extension", map[string]any{"name": name, "state": "Ready", "events": events})
}

// publishLocked is Publish. Preconditions: h.mu held.
func (h *Hub) publishLocked(t time.Time, typ string, record any) {
	if len(h.subs) == 0 && h.backlog == nil {
		return
	}
	rec, err := json.Marshal(record)
	if err != nil {
		return
	}
	ev := newEvent(t, typ, rec)
	if h.backlog != nil && len(h.backlog) < maxBacklog {
		h.backlog = append(h.backlog, ev)
	}
	for _, s := range h.subs {
		s.add(ev)
	}
}

func newEvent(t time.Time, typ string, record []byte) event {
	ev := event{category: Platform}
	switch typ {
	case Function, Extension:
		ev.category = typ
	}
	ts := t.UTC().Format("2006-01-02T15:04:05.000Z")
	ev.json, _ = json.Marshal(wire{ts, typ, record})
	if typ == "platform.runtimeDone" {
		// The Logs API names the runtime's end platform.end, with the
		// request id only.
		var r struct {
			RequestID string `json:"requestId"`
		}
		_ = json.Unmarshal(record, &r)
		end, _ := json.Marshal(map[string]string{"requestId": r.RequestID})
		ev.logsJSON, _ = json.Marshal(wire{ts, "platform.end", end})
	}
	return ev
}

// wire is an event as subscribers receive it.
type wire struct {
	Time   string          `json:"time"`
	Type   string          `json:"type"`
	Record json.RawMessage `json:"record"`
}

// InitDone ends init, and the time to subscribe (Lambda takes
// subscriptions during init only).
func (h *Hub) InitDone() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.backlog = nil
	h.initOver = true
}

// Pause stops deliveries (the environment freezes); Resume restarts them.
// Both are quick: the environment calls them under its lock.
func (h *Hub) Pause() { h.setPaused(true) }

// Resume restarts deliveries after a thaw.
func (h *Hub) Resume() { h.setPaused(false) }

func (h *Hub) setPaused(p bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.paused = p
	for _, s := range h.subs {
		s.mu.Lock()
		s.paused = p
		s.mu.Unlock()
		s.poke()
	}
}

// Close stops every delivery.
func (h *Hub) Close() {
	h.cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.subs {
		s.stop()
	}
	h.subs = nil
}

// subscription is one extension's.
type subscription struct {
	name     string
	logsAPI  bool
	types    map[string]bool
	maxItems int
	maxBytes int
	timeout  time.Duration
	tcp      bool
	port     int
	path     string
	client   *http.Client
	dial     Dialer
	conn     net.Conn // the TCP destination's connection, while open
	wake     chan struct{}
	done     chan struct{}

	mu      sync.Mutex
	queue   [][]byte
	bytes   int
	first   time.Time // when the oldest queued event came
	dropped struct{ records, bytes int }
	paused  bool
	// inFlight: a batch is being sent; the next waits, so batches arrive
	// in order.
	inFlight bool
	stopped  bool
}

// add queues ev if the subscription takes its category, dropping it when
// the buffer is full.
func (s *subscription) add(ev event) {
	if !s.types[ev.category] {
		return
	}
	b := ev.json
	if s.logsAPI && ev.logsJSON != nil {
		b = ev.logsJSON
	}
	s.mu.Lock()
	if len(s.queue) >= s.maxItems || s.bytes+len(b) > 4*s.maxBytes {
		s.dropped.records++
		s.dropped.bytes += len(b)
		s.mu.Unlock()
		return
	}
	if len(s.queue) == 0 {
		s.first = time.Now()
	}
	s.queue = append(s.queue, b)
	s.bytes += len(b)
	due := len(s.queue) >= s.maxItems || s.bytes >= s.maxBytes
	s.mu.Unlock()
	if due {
		s.poke()
	}
}

func (s *subscription) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscription) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.stopped = true
		close(s.done)
	}
}

// deliver sends batches until the subscription stops: when its buffer is
// full, or timeout after its oldest event, unless paused.
func (s *subscription) deliver(ctx context.Context) {
	defer func() {
		if s.conn != nil {
			s.conn.Close()
		}
		if s.client != nil {
			s.client.CloseIdleConnections()
		}
	}()
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		batch, wait := s.take()
		s.mu.Unlock()
		if batch != nil {
			s.send(ctx, batch)
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// take returns the batch due now, or how long until one may be. It marks
// the batch in flight. Preconditions: s.mu held.
func (s *subscription) take() ([][]byte, time.Duration) {
	if s.paused || s.inFlight || len(s.queue) == 0 && s.dropped.records == 0 {
		return nil, s.timeout
	}
	age := time.Since(s.first)
	if len(s.queue) < s.maxItems && s.bytes < s.maxBytes && age < s.timeout && s.dropped.records == 0 {
		return nil, s.timeout - age
	}
	var batch [][]byte
	n := 0
	for len(s.queue) > 0 && len(batch) < s.maxItems && (len(batch) == 0 || n+len(s.queue[0]) <= s.maxBytes) {
		n += len(s.queue[0])
		batch = append(batch, s.queue[0])
		s.queue = s.queue[1:]
	}
	s.bytes -= n
	s.first = time.Now()
	if s.dropped.records > 0 {
		rec, _ := json.Marshal(map[string]any{"reason": "Consumer seems to have fallen behind as it has not acknowledged receipt of logs.",
			"droppedRecords": s.dropped.records, "droppedBytes": s.dropped.bytes})
		batch = append(batch, newEvent(time.Now(), "platform.logsDropped", rec).json)
		s.dropped.records, s.dropped.bytes = 0, 0
	}
	s.inFlight = true
	return batch, 0
}

// send delivers one batch. A failed delivery is dropped (and counted):
// the subscriber had its chance, and holding on would stall the rest.
func (s *subscription) send(ctx context.Context, batch [][]byte) {
	err := s.post(ctx, batch)
	s.mu.Lock()
	s.inFlight = false
	if err != nil {
		for _, b := range batch {
			s.dropped.records++
			s.dropped.bytes += len(b)
		}
	}
	s.mu.Unlock()
}

func (s *subscription) post(ctx context.Context, batch [][]byte) error {
	if s.tcp {
		return s.write(ctx, batch)
	}
	body := append([]byte{'['}, bytes.Join(batch, []byte{','})...)
	body = append(body, ']')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://sandbox.localdomain:"+strconv.Itoa(s.port)+s.path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("subscriber answered %s", resp.Status)
	}
	return nil
}

// write sends a batch over the TCP destination's connection, one event a
// line, opening it first if needed.
func (s *subscription) write(ctx context.Context, batch [][]byte) error {
	if s.conn == nil {
		c, err := s.dial(ctx, s.port)
		if err != nil {
			return err
		}
		s.conn = c
	}
	w := bufio.NewWriter(s.conn)
	for _, b := range batch {
		w.Write(b)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		s.conn.Close()
		s.conn = nil
		return err
	}
	return nil
}
