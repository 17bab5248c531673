package telemetry

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"icebox/internal/model"
)

// loopback dials the host's loopback, standing for the sandbox's.
func loopback(ctx context.Context, port int) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
}

type received struct {
	Time   string          `json:"time"`
	Type   string          `json:"type"`
	Record json.RawMessage `json:"record"`
}

// subscriber is an extension's HTTP listener, recording every event.
type subscriber struct {
	port  int
	mu    sync.Mutex
	got   []received
	posts int
}

func listen(t *testing.T) *subscriber {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &subscriber{port: l.Addr().(*net.TCPAddr).Port}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []received
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil || r.Method != http.MethodPost || r.URL.Path != "/lambda" {
			t.Errorf("delivery %s %s: %v", r.Method, r.URL.Path, err)
		}
		s.mu.Lock()
		s.got = append(s.got, batch...)
		s.posts++
		s.mu.Unlock()
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *subscriber) types() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.got {
		out = append(out, r.Type)
	}
	return out
}

func waitTypes(t *testing.T, s *subscriber, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Join(s.types(), " ") != want {
		if time.Now().After(deadline) {
			t.Fatalf("received %v, want %s", s.types(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func subscribe(t *testing.T, h *Hub, port int, types string) {
	t.Helper()
	body := `{"schemaVersion":"2022-07-01","types":[` + types + `],"buffering":{"timeoutMs":25},
		"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:` + strconv.Itoa(port) + `/lambda"}}`
	if err := h.Subscribe("ext", SchemaTelemetry, []byte(body)); err != nil {
		t.Fatal(err)
	}
}

// Init's events reach a subscription made during init; later events of the
// types it chose follow in order; nothing is delivered while paused (the
// sandbox frozen), and what was published meanwhile comes after Resume.
func TestDeliveryInOrderAcrossPause(t *testing.T) {
	sub := listen(t)
	h := New(loopback)
	defer h.Close()
	h.Publish(time.Now(), "platform.initStart", map[string]string{"phase": "init"})
	subscribe(t, h, sub.port, `"platform","function"`)
	h.Publish(time.Now(), "extension", "an extension's line")
	h.InitDone()
	waitTypes(t, sub, "platform.initStart platform.telemetrySubscription")

	h.Publish(time.Now(), "platform.start", map[string]string{"requestId": "a"})
	h.Publish(time.Now(), Function, "hello")
	h.Pause()
	h.Publish(time.Now(), "platform.runtimeDone", map[string]string{"requestId": "a", "status": "success"})
	h.Publish(time.Now(), "platform.report", map[string]string{"requestId": "a"})
	time.Sleep(100 * time.Millisecond)
	got := strings.Join(sub.types(), " ")
	if strings.Contains(got, "platform.report") {
		t.Fatalf("delivered while paused: %s", got)
	}
	h.Resume()
	waitTypes(t, sub, "platform.initStart platform.telemetrySubscription platform.start function platform.runtimeDone platform.report")
	sub.mu.Lock()
	if string(sub.got[3].Record) != `"hello"` || sub.got[0].Time == "" {
		t.Errorf("function record %s, time %q", sub.got[3].Record, sub.got[0].Time)
	}
	sub.mu.Unlock()
}

// The Logs API names the runtime's end platform.end; TCP destinations get
// one event a line.
func TestLogsAPIOverTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lines := make(chan string, 16)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	h := New(loopback)
	defer h.Close()
	port := l.Addr().(*net.TCPAddr).Port
	body := `{"types":["platform"],"buffering":{"timeoutMs":25},"destination":{"protocol":"TCP","URI":"http://sandbox.localdomain:` + strconv.Itoa(port) + `"}}`
	if err := h.Subscribe("ext", SchemaLogs, []byte(body)); err != nil {
		t.Fatal(err)
	}
	h.InitDone()
	h.Publish(time.Now(), "platform.runtimeDone", map[string]any{"requestId": "a", "status": "success", "metrics": map[string]int{"durationMs": 1}})
	for _, want := range []string{"platform.telemetrySubscription", `"type":"platform.end","record":{"requestId":"a"}`} {
		select {
		case line := <-lines:
			if !strings.Contains(line, want) {
				t.Errorf("line %s, want %s", line, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no line with %s", want)
		}
	}
}

// What a subscription may not ask for.
func TestSubscriptionValidation(t *testing.T) {
	h := New(loopback)
	defer h.Close()
	for _, body := range []string{
		`{`,
		`{"types":[],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080"}}`,
		`{"types":["metrics"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080"}}`,
		`{"types":["platform"],"buffering":{"maxItems":10},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080"}}`,
		`{"types":["platform"],"buffering":{"timeoutMs":10},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080"}}`,
		`{"types":["platform"],"destination":{"protocol":"UDP","URI":"http://sandbox.localdomain:8080"}}`,
		`{"types":["platform"],"destination":{"protocol":"HTTP","URI":"http://198.18.0.1:8080"}}`,
		`{"types":["platform"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:9001"}}`,
		`{"schemaVersion":"1999-01-01","types":["platform"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080"}}`,
	} {
		if err := h.Subscribe("ext", SchemaTelemetry, []byte(body)); err == nil {
			t.Errorf("accepted %s", body)
		}
	}
}

// A subscriber that never takes its events loses those past its buffer,
// and is told how many with platform.logsDropped once it is back.
func TestLogsDropped(t *testing.T) {
	sub := listen(t)
	h := New(loopback)
	defer h.Close()
	subscribe(t, h, sub.port, `"function"`)
	h.InitDone()
	h.Pause()
	for i := 0; i < defaultItems+5; i++ {
		h.Publish(time.Now(), Function, "line")
	}
	h.Resume()
	deadline := time.Now().Add(5 * time.Second)
	for {
		functions, dropped := 0, ""
		sub.mu.Lock()
		for _, r := range sub.got {
			switch r.Type {
			case Function:
				functions++
			case "platform.logsDropped":
				dropped = string(r.Record)
			}
		}
		sub.mu.Unlock()
		if functions == defaultItems && dropped != "" {
			if !strings.Contains(dropped, `"droppedRecords":5`) {
				t.Errorf("logsDropped %s", dropped)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d function events, logsDropped %q", functions, dropped)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Subscriptions are taken during init only, as on Lambda: later ones are
// refused with Telemetry.SubscriptionClosed (Logs.SubscriptionClosed for
// the Logs API).
func TestSubscriptionClosedAfterInit(t *testing.T) {
	h := New(loopback)
	defer h.Close()
	h.InitDone()
	body := []byte(`{"schemaVersion":"2022-07-01","types":["platform"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:4243"}}`)
	for api, typ := range map[string]string{SchemaTelemetry: "Telemetry.SubscriptionClosed", SchemaLogs: "Logs.SubscriptionClosed"} {
		var xe *model.ExtensionError
		if err := h.Subscribe("ext", api, body); !errors.As(err, &xe) || xe.Type != typ {
			t.Errorf("%s after init: %v, want %s", api, err, typ)
		}
	}
}
