package runtimeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"

	"icebox/internal/environment"
	"icebox/internal/environment/envtest"
	"icebox/internal/model"
	"icebox/internal/testkit"
)

const wait = 5 * time.Second

var _ Environment = (*environment.Env)(nil)

// harness is one environment (a fake sandbox) served on a loopback
// listener, and the runtime's side of it.
type harness struct {
	t      *testing.T
	s      *Server
	env    *environment.Env
	sb     *envtest.Sandbox
	base   string
	client *http.Client
	served chan error
	start  chan environment.Outcome // the outcome of the environment's Start
}

// serve starts an environment and its server (cfg, else Lambda's
// limits); its init is under way.
func serve(t *testing.T, cfg ...Config) *harness {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env := environment.New(environment.Config{})
	h := &harness{
		t:      t,
		s:      New(env, append(cfg, Config{})[0]),
		env:    env,
		sb:     envtest.New(),
		base:   "http://" + l.Addr().String() + "/2018-06-01",
		client: &http.Client{Transport: &http.Transport{}},
		served: make(chan error, 1),
		start:  make(chan environment.Outcome, 1),
	}
	go func() { h.served <- h.s.Serve(l) }()
	go func() {
		out, err := env.Start(environment.Runtime{Sandbox: h.sb}, "init", time.Minute)
		if err != nil {
			t.Error(err)
		}
		h.start <- out
	}()
	// As in a sandbox, where the runtime exists only once Start ran it: a
	// /next before that would find no init to end.
	testkit.WaitFor(t, wait, "the environment's init to be under way", func() bool { return env.State() == environment.Initializing })
	t.Cleanup(func() {
		env.Destroy()
		h.sb.Kill()
		_ = h.s.Close()
		h.client.CloseIdleConnections()
		select {
		case err := <-h.served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(wait):
			t.Error("Serve did not return after Close")
		}
	})
	return h
}

// start is a served environment past its init and a first call, its
// runtime between calls (not in /next).
func start(t *testing.T, cfg ...Config) *harness {
	t.Helper()
	h := serve(t, cfg...)
	evc := h.next(context.Background())
	if out := recvOutcome(t, h.start); out.Kind != environment.Ready {
		t.Fatalf("start: %+v", out)
	}
	res := h.invoke(testInvocation("first"))
	h.recv(evc)
	h.post("/runtime/invocation/first/response", nil, []byte(`1`))
	h.result(res)
	if frozen, freezes, thaws := h.sb.Frozen(); frozen || freezes != 0 || thaws != 0 {
		t.Fatalf("around the first event: frozen=%v freezes=%d thaws=%d; want no freezing while init ends", frozen, freezes, thaws)
	}
	return h
}

// event is what the runtime got from /next.
type event struct {
	header http.Header
	body   []byte
	// frozenAtReceipt: the sandbox was frozen when the event arrived and
	// no thaw followed within a few seconds. (A small event is written to
	// a frozen runtime's connection, then the sandbox is thawed: a real
	// runtime reads it only then.)
	frozenAtReceipt bool
	err             error
}

// next long-polls /next in the background, like a runtime.
func (h *harness) next(ctx context.Context) <-chan event {
	ch := make(chan event, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/runtime/invocation/next", nil)
		resp, err := h.client.Do(req)
		if err != nil {
			ch <- event{err: err}
			return
		}
		defer resp.Body.Close()
		ev := event{header: resp.Header}
		for deadline := time.Now().Add(5 * time.Second); resp.StatusCode == http.StatusOK; time.Sleep(100 * time.Microsecond) {
			if ev.frozenAtReceipt, _, _ = h.sb.Frozen(); !ev.frozenAtReceipt || time.Now().After(deadline) {
				break
			}
		}
		if resp.StatusCode != http.StatusOK {
			ev.err = fmt.Errorf("next: %s", resp.Status)
		}
		ev.body, _ = io.ReadAll(resp.Body)
		ch <- ev
	}()
	return ch
}

func (h *harness) recv(ch <-chan event) event {
	h.t.Helper()
	select {
	case ev := <-ch:
		if ev.err != nil {
			h.t.Fatalf("runtime /next: %v", ev.err)
		}
		return ev
	case <-time.After(wait):
		h.t.Fatal("runtime got no event")
	}
	return event{}
}

func (h *harness) post(path string, hdr map[string]string, body []byte) (int, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.base+path, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (h *harness) invoke(inv *model.Invocation) <-chan environment.Outcome {
	ch := make(chan environment.Outcome, 1)
	go func() {
		out, err := h.env.Invoke(inv, time.Minute)
		if err != nil {
			h.t.Errorf("Invoke: %v", err)
		}
		ch <- out
	}()
	return ch
}

func recvOutcome(t *testing.T, ch <-chan environment.Outcome) environment.Outcome {
	t.Helper()
	select {
	case out := <-ch:
		return out
	case <-time.After(wait):
		t.Fatal("no outcome")
	}
	return environment.Outcome{}
}

func (h *harness) result(ch <-chan environment.Outcome) environment.Outcome {
	h.t.Helper()
	return recvOutcome(h.t, ch)
}

func (h *harness) until(what string, cond func() bool) {
	h.t.Helper()
	testkit.WaitFor(h.t, wait, what, cond)
}

func (h *harness) waitPending() {
	h.until("a call handed over", func() bool { return h.env.State() == environment.HandingOver })
}

// waitPolling waits for the runtime to wait in /next, frozen.
func (h *harness) waitPolling() {
	h.until("the runtime in /next", func() bool { return h.env.State() == environment.Frozen })
}

func testInvocation(id string) *model.Invocation {
	return &model.Invocation{
		RequestID:   id,
		FunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:f",
		Payload:     []byte(`{"key":"value"}`),
		TraceID:     "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
		Deadline:    time.Now().Add(3 * time.Second),
	}
}

func checkEvent(t *testing.T, ev event, inv *model.Invocation) {
	t.Helper()
	if string(ev.body) != string(inv.Payload) {
		t.Errorf("event body = %q, want %q", ev.body, inv.Payload)
	}
	want := map[string]string{
		"Content-Type":                        "application/json",
		"Lambda-Runtime-Aws-Request-Id":       inv.RequestID,
		"Lambda-Runtime-Deadline-Ms":          strconv.FormatInt(inv.Deadline.UnixMilli(), 10),
		"Lambda-Runtime-Invoked-Function-Arn": inv.FunctionARN,
		"Lambda-Runtime-Trace-Id":             inv.TraceID,
	}
	for k, v := range want {
		if got := ev.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	cc, ok := ev.header["Lambda-Runtime-Client-Context"]
	switch {
	case inv.ClientContext == "" && ok:
		t.Errorf("Lambda-Runtime-Client-Context sent without a client context: %q", cc)
	case inv.ClientContext != "" && ev.header.Get("Lambda-Runtime-Client-Context") != inv.ClientContext:
		t.Errorf("Lambda-Runtime-Client-Context = %q, want %q", cc, inv.ClientContext)
	}
	ms, err := strconv.ParseInt(ev.header.Get("Lambda-Runtime-Deadline-Ms"), 10, 64)
	if err != nil || time.UnixMilli(ms).Sub(inv.Deadline).Abs() >= time.Millisecond {
		t.Errorf("Lambda-Runtime-Deadline-Ms %q is not the deadline %v in epoch ms", ev.header.Get("Lambda-Runtime-Deadline-Ms"), inv.Deadline)
	}
}

func TestInvokeBeforePoll(t *testing.T) {
	h := start(t)
	inv := testInvocation("req-1")
	res := h.invoke(inv)
	h.waitPending()

	ev := h.recv(h.next(context.Background()))
	checkEvent(t, ev, inv)

	code, _ := h.post("/runtime/invocation/req-1/response", nil, []byte(`{"ok":true}`))
	if code != http.StatusAccepted {
		t.Fatalf("/response status = %d, want 202", code)
	}
	if r := h.result(res); r.Kind != environment.Answered || string(r.Payload) != `{"ok":true}` {
		t.Fatalf("outcome %+v; want payload {\"ok\":true}", r)
	}
}

func TestInvokeWhileRuntimeWaits(t *testing.T) {
	h := start(t)
	evc := h.next(context.Background())
	h.waitPolling()

	inv := testInvocation("req-2")
	inv.ClientContext = `{"custom":{"k":"v"}}`
	res := h.invoke(inv)
	ev := h.recv(evc)
	checkEvent(t, ev, inv)
	if ev.frozenAtReceipt {
		t.Error("event delivered while the sandbox was frozen")
	}

	if code, _ := h.post("/runtime/invocation/req-2/response", nil, []byte(`"hi"`)); code != http.StatusAccepted {
		t.Fatalf("/response status = %d, want 202", code)
	}
	if r := h.result(res); string(r.Payload) != `"hi"` {
		t.Fatalf("outcome %+v", r)
	}
}

// Several calls in a row on one environment: each /next completes the
// previous answer cycle and the state is clean for the next call.
func TestSequentialInvocations(t *testing.T) {
	h := start(t)
	for i := range 5 {
		id := "seq-" + strconv.Itoa(i)
		evc := h.next(context.Background())
		h.waitPolling()
		res := h.invoke(testInvocation(id))
		if ev := h.recv(evc); ev.header.Get("Lambda-Runtime-Aws-Request-Id") != id || ev.frozenAtReceipt {
			t.Fatalf("got request id %q (frozen %v), want %q", ev.header.Get("Lambda-Runtime-Aws-Request-Id"), ev.frozenAtReceipt, id)
		}
		if code, _ := h.post("/runtime/invocation/"+id+"/response", nil, []byte(strconv.Itoa(i))); code != http.StatusAccepted {
			t.Fatalf("/response status = %d", code)
		}
		if r := h.result(res); string(r.Payload) != strconv.Itoa(i) {
			t.Fatalf("call %d: outcome %+v", i, r)
		}
	}
	if _, freezes, thaws := h.sb.Frozen(); freezes != 5 || thaws != 5 {
		t.Errorf("freezes %d, thaws %d; want one each per call", freezes, thaws)
	}
}

func TestErrorResponses(t *testing.T) {
	tests := []struct {
		name        string
		header      string
		body        string
		wantType    string
		wantPayload string
	}{
		{"json with header", "Handled.ValueError", `{"errorMessage":"bad value","errorType":"ValueError","stackTrace":["a","b"]}`,
			"Handled.ValueError", `{"errorMessage":"bad value","errorType":"ValueError","stackTrace":["a","b"]}`},
		{"json without header", "", `{"errorMessage":"m","errorType":"TypeError"}`,
			"TypeError", `{"errorMessage":"m","errorType":"TypeError"}`},
		{"not json", "Runtime.Crash", `segfault at 0x0`,
			"Runtime.Crash", `{"errorMessage":"segfault at 0x0","errorType":"Runtime.Crash"}`},
		{"not json without header", "", `oops`,
			"Runtime.Unknown", `{"errorMessage":"oops","errorType":"Runtime.Unknown"}`},
		{"empty body", "Runtime.Exit", ``,
			"Runtime.Exit", `{"errorMessage":"","errorType":"Runtime.Exit"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t)
			res := h.invoke(testInvocation("e1"))
			h.recv(h.next(context.Background()))
			hdr := map[string]string{}
			if tc.header != "" {
				hdr["Lambda-Runtime-Function-Error-Type"] = tc.header
			}
			if code, _ := h.post("/runtime/invocation/e1/error", hdr, []byte(tc.body)); code != http.StatusAccepted {
				t.Fatalf("/error status = %d, want 202", code)
			}
			r := h.result(res)
			if r.Kind != environment.FunctionError || r.ErrorType != tc.wantType {
				t.Errorf("outcome %s %q, want a function error %q", r.Kind, r.ErrorType, tc.wantType)
			}
			if string(r.Payload) != tc.wantPayload {
				t.Errorf("Payload = %s, want %s", r.Payload, tc.wantPayload)
			}
		})
	}
}

func TestWrongRequestID(t *testing.T) {
	h := start(t)
	res := h.invoke(testInvocation("right"))
	h.waitPending()

	// Before the runtime took the event, even the right id is not held.
	if code, _ := h.post("/runtime/invocation/right/response", nil, []byte(`1`)); code != http.StatusBadRequest {
		t.Fatalf("/response before /next: status %d, want 400", code)
	}
	h.recv(h.next(context.Background()))
	for _, path := range []string{"/runtime/invocation/wrong/response", "/runtime/invocation/wrong/error", "/runtime/invocation/Right/response"} {
		code, body := h.post(path, nil, []byte(`{}`))
		if code != http.StatusBadRequest {
			t.Errorf("POST %s: status %d, want 400", path, code)
		}
		var e struct{ ErrorType, ErrorMessage string }
		if err := json.Unmarshal(body, &e); err != nil || e.ErrorType == "" {
			t.Errorf("POST %s: body %q is not a Runtime API error", path, body)
		}
	}
	select {
	case r := <-res:
		t.Fatalf("call completed by a wrong request id: %+v", r)
	case <-time.After(20 * time.Millisecond):
	}
	if code, _ := h.post("/runtime/invocation/right/response", nil, []byte(`"done"`)); code != http.StatusAccepted {
		t.Fatalf("/response status = %d, want 202", code)
	}
	if r := h.result(res); string(r.Payload) != `"done"` {
		t.Fatalf("outcome %+v", r)
	}
	// Answering twice: the call is gone.
	if code, _ := h.post("/runtime/invocation/right/response", nil, []byte(`1`)); code != http.StatusBadRequest {
		t.Fatalf("second /response: status %d, want 400", code)
	}
}

func TestResponseSize(t *testing.T) {
	// A body of exactly the limit is accepted.
	t.Run("at limit", func(t *testing.T) {
		h := start(t)
		res := h.invoke(testInvocation("big"))
		h.recv(h.next(context.Background()))
		body := bytes.Repeat([]byte("a"), model.MaxSyncPayloadBytes)
		if code, _ := h.post("/runtime/invocation/big/response", nil, body); code != http.StatusAccepted {
			t.Fatalf("status %d, want 202", code)
		}
		if r := h.result(res); r.Kind != environment.Answered || len(r.Payload) != model.MaxSyncPayloadBytes {
			t.Fatalf("outcome %s, %d bytes", r.Kind, len(r.Payload))
		}
	})
	t.Run("over limit", func(t *testing.T) {
		h := start(t)
		res := h.invoke(testInvocation("big"))
		h.recv(h.next(context.Background()))
		body := bytes.Repeat([]byte("a"), model.MaxSyncPayloadBytes+1)
		if code, _ := h.post("/runtime/invocation/big/response", nil, body); code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", code)
		}
		r := h.result(res)
		if r.Kind != environment.FunctionError || r.ErrorType != "Function.ResponseSizeTooLarge" {
			t.Errorf("outcome %s %q", r.Kind, r.ErrorType)
		}
		const want = `{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}`
		if string(r.Payload) != want {
			t.Errorf("Payload = %s\nwant      %s", r.Payload, want)
		}
	})
}

// A runtime that asks for the next event without answering fails the call.
func TestNextWithoutAnswer(t *testing.T) {
	h := start(t)
	res := h.invoke(testInvocation("x"))
	h.recv(h.next(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.next(ctx)
	if r := h.result(res); r.Kind != environment.FunctionError || r.ErrorType != "Runtime.InvalidResponse" {
		t.Fatalf("outcome %+v; want Runtime.InvalidResponse", r)
	}
}

func TestInit(t *testing.T) {
	t.Run("done at first next", func(t *testing.T) {
		h := serve(t)
		select {
		case out := <-h.start:
			t.Fatalf("init over before the runtime asked for an event: %+v", out)
		case <-time.After(20 * time.Millisecond):
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h.next(ctx)
		if out := recvOutcome(t, h.start); out.Kind != environment.Ready {
			t.Fatalf("start: %+v", out)
		}
		if frozen, _, _ := h.sb.Frozen(); frozen {
			t.Error("frozen at the first /next")
		}
	})
	for _, tc := range []struct {
		name, header, body, want string
	}{
		{"json init error", "Runtime.ImportModuleError", `{"errorMessage":"Unable to import module 'app'","errorType":"Runtime.ImportModuleError","stackTrace":[]}`,
			`{"errorMessage":"Unable to import module 'app'","errorType":"Runtime.ImportModuleError","stackTrace":[]}`},
		{"text init error", "", "no handler", `{"errorMessage":"no handler","errorType":"Runtime.InitError"}`},
		{"text init error with a type", "Runtime.HandlerNotFound", "no handler", `{"errorMessage":"no handler","errorType":"Runtime.HandlerNotFound"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := serve(t)
			hdr := map[string]string{}
			if tc.header != "" {
				hdr["Lambda-Runtime-Function-Error-Type"] = tc.header
			}
			if code, _ := h.post("/runtime/init/error", hdr, []byte(tc.body)); code != http.StatusAccepted {
				t.Fatalf("status %d, want 202", code)
			}
			if out := recvOutcome(t, h.start); out.Kind != environment.FunctionError || string(out.Payload) != tc.want {
				t.Fatalf("start: %s %s, want %s", out.Kind, out.Payload, tc.want)
			}
			// The environment is done for: its /next is refused.
			if ev := <-h.next(context.Background()); ev.err == nil {
				t.Error("/next after an init error was served")
			}
		})
	}
}

// Over HTTP too, an event never reaches a frozen runtime, and a queued
// event is handed over without a freeze.
func TestFreezeThaw(t *testing.T) {
	h := start(t)
	evc := h.next(context.Background())
	h.waitPolling()
	res := h.invoke(testInvocation("f"))
	if ev := h.recv(evc); ev.frozenAtReceipt {
		t.Fatal("event delivered while frozen")
	}
	h.post("/runtime/invocation/f/response", nil, []byte(`null`))
	h.result(res)

	res = h.invoke(testInvocation("queued"))
	h.waitPending()
	_, freezes, thaws := h.sb.Frozen()
	if ev := h.recv(h.next(context.Background())); ev.frozenAtReceipt {
		t.Fatal("queued event delivered while frozen")
	}
	if _, f2, t2 := h.sb.Frozen(); f2 != freezes || t2 != thaws {
		t.Fatalf("freeze/thaw around a queued event: freezes %d→%d thaws %d→%d", freezes, f2, thaws, t2)
	}
	h.post("/runtime/invocation/queued/response", nil, []byte(`1`))
	h.result(res)
}

// A runtime waiting in /next returns when its environment is destroyed or
// its server closed; a destroyed environment's /next is refused.
func TestClose(t *testing.T) {
	for name, end := range map[string]func(h *harness){
		"destroyed": func(h *harness) { h.env.Destroy() },
		"closed":    func(h *harness) { _ = h.s.Close() },
	} {
		t.Run(name, func(t *testing.T) {
			h := start(t)
			evc := h.next(context.Background())
			h.waitPolling()
			end(h)
			select {
			case ev := <-evc:
				if ev.err == nil {
					t.Fatalf("runtime got an event: %+v", ev)
				}
			case <-time.After(wait):
				t.Fatal("runtime still blocked in /next")
			}
			if name == "destroyed" {
				if ev := <-h.next(context.Background()); ev.err == nil {
					t.Error("/next of a destroyed environment served")
				}
			}
		})
	}
}

// Many environments opened and closed leave no goroutines behind.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		env := environment.New(environment.Config{})
		sb := envtest.New()
		s := New(env, Config{})
		served := make(chan error, 1)
		go func() { served <- s.Serve(l) }()
		started := make(chan struct{})
		go func() {
			defer close(started)
			env.Start(environment.Runtime{Sandbox: sb}, "init", time.Minute)
		}()
		tr := &http.Transport{}
		client := &http.Client{Transport: tr}
		got := make(chan error, 1)
		go func() {
			resp, err := client.Get("http://" + l.Addr().String() + "/2018-06-01/runtime/invocation/next")
			if err == nil {
				resp.Body.Close()
			}
			got <- err
		}()
		<-started
		env.Destroy()
		sb.Kill()
		_ = s.Close()
		<-got
		<-served
		tr.CloseIdleConnections()
	}
	settled := false
	defer func() {
		if !settled {
			buf := make([]byte, 1<<16)
			t.Logf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
	}()
	testkit.WaitFor(t, wait, fmt.Sprintf("the goroutines to settle back to %d (+2)", before), func() bool { return runtime.NumGoroutine() <= before+2 })
	settled = true
}

// TestBodiesAreReadAsTheyArrive: a function's code that opens connections
// to its Runtime API announcing full-size bodies it never sends gets a few
// connections, and the daemon holds no buffer of the announced size.
func TestBodiesAreReadAsTheyArrive(t *testing.T) {
	h := start(t)
	addr := h.base[len("http://") : len(h.base)-len("/2018-06-01")]
	heap := func() int64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapInuse)
	}
	before := heap()
	var conns []net.Conn
	for range 20 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{", model.MaxSyncPayloadBytes)
		conns = append(conns, c)
	}
	time.Sleep(200 * time.Millisecond) // let the server take up what it will; nothing to wait on
	if grown := heap() - before; grown > 8<<20 {
		t.Errorf("heap grew %d MiB for 20 announced, unsent 6 MB bodies", grown>>20)
	}
	// The runtime's own calls still get through once those go away.
	for _, c := range conns {
		c.Close()
	}
	inv := testInvocation("after-abuse")
	out := h.invoke(inv)
	checkEvent(t, h.recv(h.next(context.Background())), inv)
	if code, _ := h.post("/runtime/invocation/after-abuse/response", nil, []byte(`"ok"`)); code != http.StatusAccepted {
		t.Fatalf("response after the abuse: %d", code)
	}
	if o := h.result(out); string(o.Payload) != `"ok"` {
		t.Errorf("outcome %+v", o)
	}
}
