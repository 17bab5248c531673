package runtimeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"icebox/internal/model"
)

const wait = 5 * time.Second

// fakeFreezer records freezes and thaws; failFreeze makes Freeze fail and
// leave the environment running.
type fakeFreezer struct {
	mu         sync.Mutex
	frozen     bool
	freezes    int
	thaws      int
	failFreeze bool
	// froze receives after every Freeze call (successful or not): the
	// runtime is then parked in /next.
	froze chan struct{}
}

func newFakeFreezer() *fakeFreezer { return &fakeFreezer{froze: make(chan struct{}, 16)} }

func (f *fakeFreezer) Freeze() error {
	f.mu.Lock()
	defer func() { f.mu.Unlock(); f.froze <- struct{}{} }()
	f.freezes++
	if f.failFreeze {
		return errors.New("cgroup.freeze: permission denied")
	}
	f.frozen = true
	return nil
}

func (f *fakeFreezer) Thaw() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.thaws++
	f.frozen = false
	return nil
}

func (f *fakeFreezer) state() (frozen bool, freezes, thaws int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frozen, f.freezes, f.thaws
}

// harness is one server on a loopback listener, and the runtime's side of it.
type harness struct {
	t      *testing.T
	s      *Server
	base   string
	client *http.Client
	served chan error
}

func start(t *testing.T, fr Freezer) *harness {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		t:      t,
		s:      New(fr),
		base:   "http://" + l.Addr().String() + "/2018-06-01",
		client: &http.Client{Transport: &http.Transport{}},
		served: make(chan error, 1),
	}
	go func() { h.served <- h.s.Serve(l) }()
	t.Cleanup(func() {
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

// event is what the runtime got from /next.
type event struct {
	header http.Header
	body   []byte
	// frozenAtReceipt is the freezer's state when the event arrived.
	frozenAtReceipt bool
	err             error
}

// next long-polls /next in the background, like a runtime.
func (h *harness) next(ctx context.Context, fr *fakeFreezer) <-chan event {
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
		if fr != nil {
			ev.frozenAtReceipt, _, _ = fr.state()
		}
		if resp.StatusCode != http.StatusOK {
			ev.err = errors.New("next: " + resp.Status)
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

type invokeResult struct {
	resp Response
	err  error
}

func (h *harness) invoke(ctx context.Context, inv *model.Invocation) <-chan invokeResult {
	ch := make(chan invokeResult, 1)
	go func() {
		r, err := h.s.Invoke(ctx, inv)
		ch <- invokeResult{r, err}
	}()
	return ch
}

func (h *harness) result(ch <-chan invokeResult) invokeResult {
	h.t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(wait):
		h.t.Fatal("Invoke did not return")
	}
	return invokeResult{}
}

// until polls cond under the server's lock.
func (h *harness) until(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		h.s.mu.Lock()
		ok := cond()
		h.s.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) waitPending() { h.until("a pending call", func() bool { return h.s.pending != nil }) }
func (h *harness) waitPolling() {
	h.until("the runtime in /next", func() bool { return h.s.waiter != nil })
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
	h := start(t, nil)
	inv := testInvocation("req-1")
	res := h.invoke(context.Background(), inv)
	h.waitPending()

	ev := h.recv(h.next(context.Background(), nil))
	checkEvent(t, ev, inv)

	code, _ := h.post("/runtime/invocation/req-1/response", nil, []byte(`{"ok":true}`))
	if code != http.StatusAccepted {
		t.Fatalf("/response status = %d, want 202", code)
	}
	r := h.result(res)
	if r.err != nil || r.resp.ErrorType != "" || string(r.resp.Payload) != `{"ok":true}` {
		t.Fatalf("Invoke = %+v, %v; want payload {\"ok\":true}", r.resp, r.err)
	}
}

func TestInvokeWhileRuntimeWaits(t *testing.T) {
	h := start(t, nil)
	evc := h.next(context.Background(), nil)
	h.waitPolling()

	inv := testInvocation("req-2")
	inv.ClientContext = `{"custom":{"k":"v"}}`
	res := h.invoke(context.Background(), inv)
	ev := h.recv(evc)
	checkEvent(t, ev, inv)

	if code, _ := h.post("/runtime/invocation/req-2/response", nil, []byte(`"hi"`)); code != http.StatusAccepted {
		t.Fatalf("/response status = %d, want 202", code)
	}
	if r := h.result(res); r.err != nil || string(r.resp.Payload) != `"hi"` {
		t.Fatalf("Invoke = %+v, %v", r.resp, r.err)
	}
}

// Several calls in a row on one environment: each /next completes the
// previous answer cycle and the state is clean for the next call.
func TestSequentialInvocations(t *testing.T) {
	h := start(t, nil)
	for i := range 5 {
		id := "seq-" + strconv.Itoa(i)
		evc := h.next(context.Background(), nil)
		res := h.invoke(context.Background(), testInvocation(id))
		if ev := h.recv(evc); ev.header.Get("Lambda-Runtime-Aws-Request-Id") != id {
			t.Fatalf("got request id %q, want %q", ev.header.Get("Lambda-Runtime-Aws-Request-Id"), id)
		}
		if code, _ := h.post("/runtime/invocation/"+id+"/response", nil, []byte(strconv.Itoa(i))); code != http.StatusAccepted {
			t.Fatalf("/response status = %d", code)
		}
		if r := h.result(res); r.err != nil || string(r.resp.Payload) != strconv.Itoa(i) {
			t.Fatalf("call %d: Invoke = %+v, %v", i, r.resp, r.err)
		}
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
			h := start(t, nil)
			res := h.invoke(context.Background(), testInvocation("e1"))
			h.recv(h.next(context.Background(), nil))
			hdr := map[string]string{}
			if tc.header != "" {
				hdr["Lambda-Runtime-Function-Error-Type"] = tc.header
			}
			if code, _ := h.post("/runtime/invocation/e1/error", hdr, []byte(tc.body)); code != http.StatusAccepted {
				t.Fatalf("/error status = %d, want 202", code)
			}
			r := h.result(res)
			if r.err != nil {
				t.Fatalf("Invoke error: %v", r.err)
			}
			if r.resp.ErrorType != tc.wantType {
				t.Errorf("ErrorType = %q, want %q", r.resp.ErrorType, tc.wantType)
			}
			if string(r.resp.Payload) != tc.wantPayload {
				t.Errorf("Payload = %s, want %s", r.resp.Payload, tc.wantPayload)
			}
		})
	}
}

func TestWrongRequestID(t *testing.T) {
	h := start(t, nil)
	res := h.invoke(context.Background(), testInvocation("right"))

	// Before the runtime took the event, even the right id is not current.
	if code, _ := h.post("/runtime/invocation/right/response", nil, []byte(`1`)); code != http.StatusBadRequest {
		t.Fatalf("/response before /next: status %d, want 400", code)
	}
	h.recv(h.next(context.Background(), nil))
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
		t.Fatalf("Invoke completed by a wrong request id: %+v, %v", r.resp, r.err)
	case <-time.After(20 * time.Millisecond):
	}
	if code, _ := h.post("/runtime/invocation/right/response", nil, []byte(`"done"`)); code != http.StatusAccepted {
		t.Fatalf("/response status = %d, want 202", code)
	}
	if r := h.result(res); r.err != nil || string(r.resp.Payload) != `"done"` {
		t.Fatalf("Invoke = %+v, %v", r.resp, r.err)
	}
	// Answering twice: the call is gone.
	if code, _ := h.post("/runtime/invocation/right/response", nil, []byte(`1`)); code != http.StatusBadRequest {
		t.Fatalf("second /response: status %d, want 400", code)
	}
}

func TestResponseSize(t *testing.T) {
	// A body of exactly the limit is accepted.
	t.Run("at limit", func(t *testing.T) {
		h := start(t, nil)
		res := h.invoke(context.Background(), testInvocation("big"))
		h.recv(h.next(context.Background(), nil))
		body := bytes.Repeat([]byte("a"), model.MaxSyncPayloadBytes)
		if code, _ := h.post("/runtime/invocation/big/response", nil, body); code != http.StatusAccepted {
			t.Fatalf("status %d, want 202", code)
		}
		if r := h.result(res); r.err != nil || r.resp.ErrorType != "" || len(r.resp.Payload) != model.MaxSyncPayloadBytes {
			t.Fatalf("Invoke: type %q, %d bytes, err %v", r.resp.ErrorType, len(r.resp.Payload), r.err)
		}
	})
	t.Run("over limit", func(t *testing.T) {
		h := start(t, nil)
		res := h.invoke(context.Background(), testInvocation("big"))
		h.recv(h.next(context.Background(), nil))
		body := bytes.Repeat([]byte("a"), model.MaxSyncPayloadBytes+1)
		if code, _ := h.post("/runtime/invocation/big/response", nil, body); code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", code)
		}
		r := h.result(res)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.resp.ErrorType != "Function.ResponseSizeTooLarge" {
			t.Errorf("ErrorType = %q", r.resp.ErrorType)
		}
		const want = `{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}`
		if string(r.resp.Payload) != want {
			t.Errorf("Payload = %s\nwant      %s", r.resp.Payload, want)
		}
	})
}

// A runtime that asks for the next event without answering fails the call.
func TestNextWithoutAnswer(t *testing.T) {
	h := start(t, nil)
	res := h.invoke(context.Background(), testInvocation("x"))
	h.recv(h.next(context.Background(), nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.next(ctx, nil)
	r := h.result(res)
	if r.err != nil || r.resp.ErrorType != "Runtime.InvalidResponse" {
		t.Fatalf("Invoke = %+v, %v; want Runtime.InvalidResponse", r.resp, r.err)
	}
}

func TestInit(t *testing.T) {
	t.Run("done at first next", func(t *testing.T) {
		h := start(t, nil)
		select {
		case <-h.s.InitDone():
			t.Fatal("InitDone closed before the runtime asked for an event")
		default:
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h.next(ctx, nil)
		select {
		case <-h.s.InitDone():
		case <-time.After(wait):
			t.Fatal("InitDone not closed at the first /next")
		}
		// A second /next must not close it again (panic).
		cancel()
		h.until("the first /next to end", func() bool { return h.s.waiter == nil })
		ctx2, cancel2 := context.WithCancel(context.Background())
		defer cancel2()
		h.next(ctx2, nil)
		h.waitPolling()
	})
	t.Run("json init error", func(t *testing.T) {
		h := start(t, nil)
		body := `{"errorMessage":"Unable to import module 'app'","errorType":"Runtime.ImportModuleError","stackTrace":[]}`
		code, _ := h.post("/runtime/init/error", map[string]string{"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"}, []byte(body))
		if code != http.StatusAccepted {
			t.Fatalf("status %d, want 202", code)
		}
		select {
		case got := <-h.s.InitError():
			if string(got) != body {
				t.Fatalf("InitError = %s, want %s", got, body)
			}
		case <-time.After(wait):
			t.Fatal("no InitError")
		}
	})
	t.Run("text init error", func(t *testing.T) {
		h := start(t, nil)
		if code, _ := h.post("/runtime/init/error", nil, []byte("no handler")); code != http.StatusAccepted {
			t.Fatalf("status %d, want 202", code)
		}
		got := <-h.s.InitError()
		if want := `{"errorMessage":"no handler","errorType":"Runtime.InitError"}`; string(got) != want {
			t.Fatalf("InitError = %s, want %s", got, want)
		}
	})
}

// warmUp runs the first event: the /next that ends init never freezes.
func warmUp(t *testing.T, h *harness, fr *fakeFreezer) {
	t.Helper()
	evc := h.next(context.Background(), fr)
	res := h.invoke(context.Background(), testInvocation("init"))
	h.recv(evc)
	h.post("/runtime/invocation/init/response", nil, []byte(`1`))
	h.result(res)
	if frozen, freezes, thaws := fr.state(); frozen || freezes != 0 || thaws != 0 {
		t.Fatalf("around the first event: frozen=%v freezes=%d thaws=%d; want no freezing while init ends", frozen, freezes, thaws)
	}
}

func TestFreezeThaw(t *testing.T) {
	fr := newFakeFreezer()
	h := start(t, fr)
	warmUp(t, h, fr)

	for i := range 3 {
		id := "f" + strconv.Itoa(i)
		evc := h.next(context.Background(), fr)
		select {
		case <-fr.froze:
		case <-time.After(wait):
			t.Fatal("not frozen while the runtime waits with nothing queued")
		}
		if frozen, freezes, thaws := fr.state(); !frozen || freezes != i+1 || thaws != i {
			t.Fatalf("round %d: frozen=%v freezes=%d thaws=%d", i, frozen, freezes, thaws)
		}
		res := h.invoke(context.Background(), testInvocation(id))
		ev := h.recv(evc)
		if ev.frozenAtReceipt {
			t.Fatal("event delivered while the environment was frozen")
		}
		if _, _, thaws := fr.state(); thaws != i+1 {
			t.Fatalf("thaws = %d, want %d", thaws, i+1)
		}
		h.post("/runtime/invocation/"+id+"/response", nil, []byte(`null`))
		if r := h.result(res); r.err != nil || string(r.resp.Payload) != "null" {
			t.Fatalf("Invoke = %+v, %v", r.resp, r.err)
		}
	}

	// A queued event is handed over at once: no freeze, no thaw.
	res := h.invoke(context.Background(), testInvocation("queued"))
	h.waitPending()
	_, freezes, thaws := fr.state()
	ev := h.recv(h.next(context.Background(), fr))
	if ev.frozenAtReceipt {
		t.Fatal("queued event delivered while frozen")
	}
	if _, f2, t2 := fr.state(); f2 != freezes || t2 != thaws {
		t.Fatalf("freeze/thaw around a queued event: freezes %d→%d thaws %d→%d", freezes, f2, thaws, t2)
	}
	h.post("/runtime/invocation/queued/response", nil, []byte(`1`))
	h.result(res)
}

// A frozen environment whose runtime drops its poll is thawed when the next
// call arrives, even though nobody is waiting for it yet.
func TestThawWithoutWaiter(t *testing.T) {
	fr := newFakeFreezer()
	h := start(t, fr)
	warmUp(t, h, fr)
	ctx, cancel := context.WithCancel(context.Background())
	h.next(ctx, fr)
	<-fr.froze
	cancel()
	h.until("the cancelled poll to end", func() bool { return h.s.waiter == nil })

	res := h.invoke(context.Background(), testInvocation("late"))
	h.waitPending()
	if frozen, _, _ := fr.state(); frozen {
		t.Fatal("call queued while the environment stays frozen")
	}
	ev := h.recv(h.next(context.Background(), fr))
	if ev.frozenAtReceipt {
		t.Fatal("event delivered while frozen")
	}
	h.post("/runtime/invocation/late/response", nil, []byte(`1`))
	h.result(res)
}

func TestFreezeErrorKeepsRunning(t *testing.T) {
	fr := newFakeFreezer()
	fr.failFreeze = true
	h := start(t, fr)
	warmUp(t, h, fr)
	evc := h.next(context.Background(), fr)
	<-fr.froze
	if frozen, freezes, _ := fr.state(); frozen || freezes != 1 {
		t.Fatalf("frozen=%v freezes=%d", frozen, freezes)
	}
	res := h.invoke(context.Background(), testInvocation("r"))
	h.recv(evc)
	if _, _, thaws := fr.state(); thaws != 0 {
		t.Fatalf("thawed %d times an environment that was never frozen", thaws)
	}
	h.post("/runtime/invocation/r/response", nil, []byte(`1`))
	if r := h.result(res); r.err != nil {
		t.Fatal(r.err)
	}
}

func TestInvokeContext(t *testing.T) {
	h := start(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.s.Invoke(ctx, testInvocation("c")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Invoke with a cancelled context: %v, want context.Canceled", err)
	}

	h2 := start(t, nil)
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	res := h2.invoke(ctx, testInvocation("d"))
	h2.recv(h2.next(context.Background(), nil))
	if r := h2.result(res); !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("Invoke past its deadline: %v, want context.DeadlineExceeded", r.err)
	}
}

func TestBusy(t *testing.T) {
	h := start(t, nil)
	res := h.invoke(context.Background(), testInvocation("one"))
	h.waitPending()
	if _, err := h.s.Invoke(context.Background(), testInvocation("two")); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("second Invoke while one is queued: %v, want busy", err)
	}
	h.recv(h.next(context.Background(), nil))
	if _, err := h.s.Invoke(context.Background(), testInvocation("two")); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("second Invoke while one runs: %v, want busy", err)
	}
	h.post("/runtime/invocation/one/response", nil, []byte(`1`))
	if r := h.result(res); r.err != nil {
		t.Fatal(r.err)
	}
}

func TestClose(t *testing.T) {
	t.Run("later invoke fails", func(t *testing.T) {
		h := start(t, nil)
		if err := h.s.Close(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if _, err := h.s.Invoke(ctx, testInvocation("x")); err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Invoke after Close: %v, want an immediate error", err)
		}
	})
	t.Run("unblocks a waiting runtime", func(t *testing.T) {
		h := start(t, nil)
		evc := h.next(context.Background(), nil)
		h.waitPolling()
		_ = h.s.Close()
		select {
		case ev := <-evc:
			if ev.err == nil {
				t.Fatalf("runtime got an event from a closed server: %+v", ev)
			}
		case <-time.After(wait):
			t.Fatal("runtime still blocked in /next after Close")
		}
		// The handler itself returned and dropped its registration.
		h.until("the /next handler to return", func() bool { return h.s.waiter == nil })
	})
	t.Run("fails the call in progress", func(t *testing.T) {
		for _, polled := range []bool{false, true} {
			h := start(t, nil)
			res := h.invoke(context.Background(), testInvocation("x"))
			if polled {
				h.recv(h.next(context.Background(), nil))
			} else {
				h.waitPending()
			}
			_ = h.s.Close()
			select {
			case r := <-res:
				if r.err == nil {
					t.Fatalf("polled=%v: Invoke succeeded after Close: %+v", polled, r.resp)
				}
			case <-time.After(wait):
				t.Fatalf("polled=%v: Invoke still blocked after Close", polled)
			}
		}
	})
}

// Many environments opened and closed leave no goroutines behind.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := New(newFakeFreezer())
		served := make(chan error, 1)
		go func() { served <- s.Serve(l) }()
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
		for {
			s.mu.Lock()
			polling := s.waiter != nil
			s.mu.Unlock()
			if polling {
				break
			}
			time.Sleep(time.Millisecond)
		}
		_ = s.Close()
		<-got
		<-served
		tr.CloseIdleConnections()
	}
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestErrorBody(t *testing.T) {
	got := ErrorBody("Sandbox.Timedout", `Task "timed" out <&>`)
	var e map[string]string
	if err := json.Unmarshal(got, &e); err != nil {
		t.Fatal(err)
	}
	if e["errorType"] != "Sandbox.Timedout" || e["errorMessage"] != `Task "timed" out <&>` || len(e) != 2 {
		t.Fatalf("ErrorBody = %s", got)
	}
}
