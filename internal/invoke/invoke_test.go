package invoke_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"icebox/internal/errdefs"
	"icebox/internal/invoke"
	"icebox/internal/metrics"
	"icebox/internal/model"
)

const (
	region  = "us-east-1"
	account = "000000000000"
)

func TestParseFunctionRef(t *testing.T) {
	long := strings.Repeat("a", 64)
	ok := []struct{ ref, name, qual string }{
		{"f", "f", ""},
		{"my-Function_1", "my-Function_1", ""},
		{long, long, ""},
		{"f:$LATEST", "f", "$LATEST"},
		{"f:prod", "f", "prod"},
		{"f:7", "f", "7"},
		{"000000000000:function:f", "f", ""},
		{"000000000000:function:f:$LATEST", "f", "$LATEST"},
		{"000000000000:function:f:live", "f", "live"},
		{"arn:aws:lambda:us-east-1:000000000000:function:f", "f", ""},
		{"arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST", "f", "$LATEST"},
		{"arn:aws:lambda:us-east-1:000000000000:function:f:3", "f", "3"},
	}
	for _, tc := range ok {
		name, qual, err := invoke.ParseFunctionRef(tc.ref, region, account)
		if err != nil || name != tc.name || qual != tc.qual {
			t.Errorf("ParseFunctionRef(%q) = %q, %q, %v; want %q, %q", tc.ref, name, qual, err, tc.name, tc.qual)
		}
	}

	notFound := []string{
		"111111111111:function:f",
		"111111111111:function:f:1",
		"arn:aws:lambda:eu-west-1:000000000000:function:f",
		"arn:aws:lambda:us-east-1:111111111111:function:f",
		"arn:aws:lambda:eu-west-1:000000000000:function:f:$LATEST",
	}
	for _, ref := range notFound {
		if _, _, err := invoke.ParseFunctionRef(ref, region, account); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("ParseFunctionRef(%q) = %v, want ErrNotFound", ref, err)
		}
	}

	invalid := []string{
		"",
		long + "a",
		"f:",
		"f g",
		"f/g",
		"a:b:c",
		"f:1:2",
		"000000000000:function:",
		"000000000000:function:f:",
		"000000000000:function:f:1:2",
		"arn:aws:lambda:us-east-1:000000000000:function:",
		"arn:aws:lambda:us-east-1:000000000000:function:f:",
		"arn:aws:s3:us-east-1:000000000000:function:f",
		"arn:aws:lambda:us-east-1:000000000000:layer:f",
		"arn:aws:lambda:us-east-1:000000000000:function:f:1:2",
		"arn:aws:lambda:us-east-1:000000000000:function:bad name",
		"::::::",
		"🙂",
	}
	for _, ref := range invalid {
		if _, _, err := invoke.ParseFunctionRef(ref, region, account); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("ParseFunctionRef(%q) = %v, want ErrInvalid", ref, err)
		}
	}
}

func FuzzParseFunctionRef(f *testing.F) {
	for _, s := range []string{
		"f", "f:$LATEST", "f:", ":f", "000000000000:function:f:1",
		"arn:aws:lambda:us-east-1:000000000000:function:f",
		"arn:aws:lambda:us-east-1:000000000000:function:f:prod",
		"arn:aws:lambda:us-east-1:000000000000:function:", "a:function:b", "::", "\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		name, qual, err := invoke.ParseFunctionRef(ref, region, account)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) && !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("ParseFunctionRef(%q): unclassified error %v", ref, err)
			}
			return
		}
		if verr := model.ValidateName(name); verr != nil {
			t.Fatalf("ParseFunctionRef(%q) accepted name %q: %v", ref, name, verr)
		}
		if !strings.Contains(ref, name) || !strings.HasSuffix(ref, name+":"+qual) && !(qual == "" && strings.HasSuffix(ref, name)) {
			t.Fatalf("ParseFunctionRef(%q) = %q, %q: not a part of the reference", ref, name, qual)
		}
	})
}

// fakeCatalog serves functions from a map; err, when set, is returned for every Get.
type fakeCatalog struct {
	fns map[string]model.Function
	err error
}

func (c *fakeCatalog) Get(name string) (model.Function, error) {
	if c.err != nil {
		return model.Function{}, c.err
	}
	fn, ok := c.fns[name]
	if !ok {
		return model.Function{}, fmt.Errorf("function %q: %w", name, errdefs.ErrNotFound)
	}
	return fn, nil
}

func (c *fakeCatalog) View(name, q string) (model.Function, error) {
	fn, err := c.Get(name)
	if err != nil {
		return fn, err
	}
	return fn.View(q)
}

func (c *fakeCatalog) Alias(name, alias string) (model.Alias, error) {
	fn, err := c.Get(name)
	if a := fn.AliasNamed(alias); err == nil && a != nil {
		return *a, nil
	}
	return model.Alias{}, fmt.Errorf("alias %s:%s: %w", name, alias, errdefs.ErrNotFound)
}

// fakeRunner records what it was asked to run and answers with result/err.
type fakeRunner struct {
	adm *fakeAdmission

	mu         sync.Mutex
	calls      []model.Invocation
	fns        []model.Function
	result     model.Result
	err        error
	unadmitted int // calls made outside an admission
}

func (r *fakeRunner) Invoke(_ context.Context, fn model.Function, inv *model.Invocation) (model.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.adm != nil {
		r.adm.mu.Lock()
		if !r.adm.running {
			r.unadmitted++
		}
		r.adm.mu.Unlock()
	}
	r.calls = append(r.calls, *inv)
	r.fns = append(r.fns, fn)
	res := r.result
	res.RequestID = inv.RequestID
	return res, r.err
}

func (r *fakeRunner) n() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// fakeAdmission admits every call unless throttle is set, and counts
// admissions and releases.
type fakeAdmission struct {
	mu       sync.Mutex
	throttle bool
	admitted int
	released int
	// running is true between an admission and its release: the runner must
	// only be called then.
	running bool
}

func (a *fakeAdmission) Admit(fn *model.Function) (func(), error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.throttle {
		return nil, fmt.Errorf("Rate exceeded for %s: %w", fn.Name, errdefs.ErrThrottled)
	}
	a.admitted++
	a.running = true
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.released++
		a.running = false
	}, nil
}

func (a *fakeAdmission) counts() (admitted, released int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.admitted, a.released
}

func testFunction(name string) model.Function {
	fn := model.Function{Name: name, Runtime: "python3.12", Handler: "app.handler", Role: "arn:aws:iam::000000000000:role/r"}
	fn.ApplyDefaults()
	return fn
}

func newInvoker(t *testing.T) (*invoke.Invoker, *fakeCatalog, *fakeRunner, *metrics.Metrics) {
	iv, cat, _, run, m := newInvokerAdmission(t)
	return iv, cat, run, m
}

func newInvokerAdmission(t *testing.T) (*invoke.Invoker, *fakeCatalog, *fakeAdmission, *fakeRunner, *metrics.Metrics) {
	t.Helper()
	cat := &fakeCatalog{fns: map[string]model.Function{"f": testFunction("f"), "g": testFunction("g")}}
	adm := &fakeAdmission{}
	run := &fakeRunner{adm: adm, result: model.Result{Payload: []byte(`"ok"`), ExecutedVersion: model.LatestVersion, Duration: 5 * time.Millisecond}}
	m := metrics.New(nil)
	return invoke.New(invoke.Config{Region: region, AccountID: account}, cat, adm, run, m), cat, adm, run, m
}

func TestResolve(t *testing.T) {
	iv, cat, _, _ := newInvoker(t)
	arnF := "arn:aws:lambda:us-east-1:000000000000:function:f"
	tests := []struct {
		ref, qual string
		wantErr   error
		wantMsg   string
	}{
		{"f", "", nil, ""},
		{"f", "$LATEST", nil, ""},
		{"f:$LATEST", "", nil, ""},
		{"f:$LATEST", "$LATEST", nil, ""},
		{arnF, "", nil, ""},
		{arnF + ":$LATEST", "", nil, ""},
		{"000000000000:function:f", "$LATEST", nil, ""},
		{"f", "1", errdefs.ErrNotFound, "Function not found: " + arnF + ":1"},
		{"f:prod", "", errdefs.ErrNotFound, "Function not found: " + arnF + ":prod"},
		{arnF + ":2", "2", errdefs.ErrNotFound, "Function not found: " + arnF + ":2"},
		{"f:1", "2", errdefs.ErrInvalid, "does not match the specified qualifier"},
		{"f:$LATEST", "1", errdefs.ErrInvalid, "does not match"},
		{arnF + ":1", "$LATEST", errdefs.ErrInvalid, "does not match"},
		{"missing", "", errdefs.ErrNotFound, "Function not found: arn:aws:lambda:us-east-1:000000000000:function:missing"},
		{"missing", "$LATEST", errdefs.ErrNotFound, "Function not found: arn:aws:lambda:us-east-1:000000000000:function:missing"},
		{"bad name", "", errdefs.ErrInvalid, "functionName"},
	}
	for _, tc := range tests {
		_, fn, err := iv.Resolve(tc.ref, tc.qual)
		if tc.wantErr == nil {
			if err != nil || fn.Name != "f" {
				t.Errorf("Resolve(%q, %q) = %q, %v; want f", tc.ref, tc.qual, fn.Name, err)
			}
			continue
		}
		if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
			t.Errorf("Resolve(%q, %q) = %v; want %v containing %q", tc.ref, tc.qual, err, tc.wantErr, tc.wantMsg)
		}
	}

	// A catalog failure that is not "not found" is passed on as it is.
	boom := errors.New("catalog unavailable")
	cat.err = boom
	if _, _, err := iv.Resolve("f", ""); !errors.Is(err, boom) || errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Resolve with a failing catalog = %v, want %v", err, boom)
	}
}

func TestInvokeRunsFunction(t *testing.T) {
	iv, _, run, m := newInvoker(t)
	res, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f", Payload: []byte(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Payload) != `"ok"` || res.FunctionError != "" {
		t.Fatalf("Invoke = %+v", res)
	}
	if run.n() != 1 {
		t.Fatalf("runner called %d times", run.n())
	}
	inv := run.calls[0]
	if string(inv.Payload) != `{"a":1}` {
		t.Errorf("payload = %q", inv.Payload)
	}
	if inv.FunctionARN != "arn:aws:lambda:us-east-1:000000000000:function:f" {
		t.Errorf("FunctionARN = %q", inv.FunctionARN)
	}
	if inv.ClientContext != "" {
		t.Errorf("ClientContext = %q without one sent", inv.ClientContext)
	}
	if !regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$`).MatchString(inv.TraceID) {
		t.Errorf("TraceID = %q is not an X-Ray trace header", inv.TraceID)
	}
	if run.fns[0].Name != "f" {
		t.Errorf("runner got function %q", run.fns[0].Name)
	}
	if got := counter(t, m, "icebox_invocations_total", "f"); got != 1 {
		t.Errorf("icebox_invocations_total = %v, want 1", got)
	}
	if got := counter(t, m, "icebox_errors_total", "f"); got != 0 {
		t.Errorf("icebox_errors_total = %v after a success, want 0", got)
	}
	if got := gauge(t, m, "icebox_concurrent_executions", "f"); got != 0 {
		t.Errorf("icebox_concurrent_executions = %v after the call, want 0", got)
	}
}

func TestInvokePayload(t *testing.T) {
	t.Run("too large", func(t *testing.T) {
		iv, _, run, _ := newInvoker(t)
		big := bytes.Repeat([]byte(" "), model.MaxSyncPayloadBytes+1)
		_, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f", Payload: big})
		if !errors.Is(err, errdefs.ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
		const want = "6291457 byte payload is too large for the RequestResponse invocation type (limit 6291456 bytes)"
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("message = %q, want %q", err.Error(), want)
		}
		if run.n() != 0 {
			t.Error("runner called with an oversized payload")
		}
	})
	t.Run("at limit", func(t *testing.T) {
		iv, _, run, _ := newInvoker(t)
		p := append(append([]byte(`"`), bytes.Repeat([]byte("x"), model.MaxSyncPayloadBytes-2)...), '"')
		if _, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f", Payload: p}); err != nil {
			t.Fatalf("payload of exactly %d bytes: %v", len(p), err)
		}
		if run.n() != 1 {
			t.Fatal("runner not called")
		}
	})
	t.Run("not json", func(t *testing.T) {
		iv, _, run, _ := newInvoker(t)
		for _, p := range []string{"hello", "{", `{"a":}`, "\xff"} {
			if _, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f", Payload: []byte(p)}); !errors.Is(err, errdefs.ErrInvalidContent) {
				t.Errorf("payload %q: %v, want ErrInvalidContent", p, err)
			}
		}
		if run.n() != 0 {
			t.Error("runner called with an invalid payload")
		}
	})
	t.Run("empty is {}", func(t *testing.T) {
		iv, _, run, _ := newInvoker(t)
		for _, p := range [][]byte{nil, {}} {
			if _, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f", Payload: p}); err != nil {
				t.Fatal(err)
			}
		}
		for _, inv := range run.calls {
			if string(inv.Payload) != "{}" {
				t.Errorf("empty payload delivered as %q, want {}", inv.Payload)
			}
		}
	})
	t.Run("json scalars", func(t *testing.T) {
		iv, _, run, _ := newInvoker(t)
		for _, p := range []string{`"s"`, `42`, `null`, `[1,2]`, " {} "} {
			if _, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f", Payload: []byte(p)}); err != nil {
				t.Errorf("payload %q: %v", p, err)
			}
		}
		if run.n() != 5 {
			t.Errorf("runner called %d times, want 5", run.n())
		}
	})
}

func TestInvokeClientContext(t *testing.T) {
	iv, _, run, _ := newInvoker(t)
	cc := `{"client":{"installation_id":"i"},"custom":{"k":"v"},"env":{}}`
	if _, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f", ClientContext: base64.StdEncoding.EncodeToString([]byte(cc))}); err != nil {
		t.Fatal(err)
	}
	if got := run.calls[0].ClientContext; got != cc {
		t.Fatalf("ClientContext = %q, want %q", got, cc)
	}

	bad := map[string]error{
		"not base64!": errdefs.ErrInvalidContent,
		base64.StdEncoding.EncodeToString([]byte("text")):                                      errdefs.ErrInvalidContent,
		base64.StdEncoding.EncodeToString([]byte(`{"k":"` + strings.Repeat("v", 3600) + `"}`)): errdefs.ErrInvalid,
	}
	for in, want := range bad {
		if _, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f", ClientContext: in}); !errors.Is(err, want) {
			t.Errorf("client context %.20q…: %v, want %v", in, err, want)
		}
	}
	if run.n() != 1 {
		t.Errorf("runner called %d times, want 1", run.n())
	}
}

func TestInvokeTypes(t *testing.T) {
	iv, _, run, _ := newInvoker(t)
	res, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f", Type: invoke.DryRun, Payload: []byte("not json")})
	if err != nil {
		t.Fatalf("DryRun: %v", err)
	}
	if res.ExecutedVersion != model.LatestVersion {
		t.Errorf("DryRun ExecutedVersion = %q", res.ExecutedVersion)
	}
	if _, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "nope", Type: invoke.DryRun}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("DryRun of a missing function: %v, want ErrNotFound", err)
	}
	for _, typ := range []invoke.Type{"Bogus", "requestresponse", "dryrun"} {
		_, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f", Type: typ})
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), string(typ)) {
			t.Errorf("type %q: %v, want ErrInvalid naming it", typ, err)
		}
	}
	if run.n() != 0 {
		t.Fatalf("runner called %d times by DryRun and invalid types", run.n())
	}
	if _, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f", Type: invoke.RequestResponse}); err != nil {
		t.Fatal(err)
	}
	if run.n() != 1 {
		t.Fatal("RequestResponse did not run")
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRequestIDs(t *testing.T) {
	iv, _, run, _ := newInvoker(t)
	for range 50 {
		if _, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f"}); err != nil {
			t.Fatal(err)
		}
	}
	ids, traces := map[string]bool{}, map[string]bool{}
	for _, inv := range run.calls {
		if !uuidV4.MatchString(inv.RequestID) {
			t.Fatalf("invocation request id %q is not a UUIDv4", inv.RequestID)
		}
		ids[inv.RequestID], traces[inv.TraceID] = true, true
	}
	if len(ids) != 50 || len(traces) != 50 {
		t.Fatalf("%d distinct request ids and %d trace ids over 50 calls", len(ids), len(traces))
	}
}

func TestInvokeMetrics(t *testing.T) {
	iv, _, run, m := newInvoker(t)
	run.result = model.Result{FunctionError: model.FunctionErrorUnhandled, Payload: []byte(`{"errorType":"X"}`), ColdStart: true, InitDuration: 100 * time.Millisecond}
	for range 2 {
		res, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f"})
		if err != nil {
			t.Fatalf("a function error is a Result, not an error: %v", err)
		}
		if res.FunctionError != model.FunctionErrorUnhandled {
			t.Fatalf("FunctionError = %q", res.FunctionError)
		}
	}
	run.result = model.Result{}
	if _, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "g"}); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, m, "icebox_errors_total", "f"); got != 2 {
		t.Errorf("icebox_errors_total{f} = %v, want 2", got)
	}
	if got := counter(t, m, "icebox_errors_total", "g"); got != 0 {
		t.Errorf("icebox_errors_total{g} = %v, want 0", got)
	}
	if got := counter(t, m, "icebox_invocations_total", "f"); got != 2 {
		t.Errorf("icebox_invocations_total{f} = %v, want 2", got)
	}
	if got := histogramCount(t, m, "icebox_init_duration_seconds", "f"); got != 2 {
		t.Errorf("icebox_init_duration_seconds{f} count = %v, want 2 (two cold starts)", got)
	}
	if got := histogramCount(t, m, "icebox_init_duration_seconds", "g"); got != 0 {
		t.Errorf("icebox_init_duration_seconds{g} count = %v, want 0 (warm)", got)
	}

	// The platform failing is an error, and not a function error.
	boom := errors.New("sandbox create failed")
	run.err = boom
	if _, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "g"}); !errors.Is(err, boom) {
		t.Fatalf("runner error = %v, want %v", err, boom)
	}
	if got := counter(t, m, "icebox_errors_total", "g"); got != 0 {
		t.Errorf("icebox_errors_total{g} = %v after a platform error, want 0", got)
	}
	if got := gauge(t, m, "icebox_concurrent_executions", "g"); got != 0 {
		t.Errorf("icebox_concurrent_executions{g} = %v after a failed call, want 0", got)
	}
}

func TestInvokeAdmission(t *testing.T) {
	iv, _, adm, run, m := newInvokerAdmission(t)
	for range 3 {
		if _, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f"}); err != nil {
			t.Fatal(err)
		}
	}
	if a, r := adm.counts(); a != 3 || r != 3 {
		t.Fatalf("admitted %d, released %d; want 3, 3", a, r)
	}
	if run.unadmitted != 0 {
		t.Fatalf("runner called %d times outside an admission", run.unadmitted)
	}

	// Released after a platform error too.
	run.err = errors.New("boom")
	if _, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f"}); err == nil {
		t.Fatal("runner error lost")
	}
	if a, r := adm.counts(); a != 4 || r != 4 {
		t.Fatalf("after a runner error: admitted %d, released %d; want 4, 4", a, r)
	}
	run.err = nil

	// Bad requests and DryRun are refused before admission.
	_, _ = iv.Invoke(context.Background(), invoke.Request{FunctionName: "f", Payload: []byte("{")})
	_, _ = iv.Invoke(context.Background(), invoke.Request{FunctionName: "f", Type: invoke.DryRun})
	_, _ = iv.Invoke(context.Background(), invoke.Request{FunctionName: "missing"})
	if a, _ := adm.counts(); a != 4 {
		t.Fatalf("admitted %d, want 4: rejected or dry-run calls took capacity", a)
	}

	adm.throttle = true
	calls := run.n()
	_, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f"})
	if !errors.Is(err, errdefs.ErrThrottled) {
		t.Fatalf("throttled call: %v, want ErrThrottled", err)
	}
	if run.n() != calls {
		t.Fatal("throttled call ran")
	}
	if got := counter(t, m, "icebox_throttles_total", "f"); got != 1 {
		t.Errorf("icebox_throttles_total = %v, want 1", got)
	}
	if got := counter(t, m, "icebox_invocations_total", "f"); got != 4 {
		t.Errorf("icebox_invocations_total = %v, want 4: a throttled call is not an invocation", got)
	}

	// A runner that finds no capacity (host memory) throttles as well.
	adm.throttle = false
	run.err = fmt.Errorf("no memory: %w", errdefs.ErrThrottled)
	if _, err := iv.Invoke(context.Background(), invoke.Request{FunctionName: "f"}); !errors.Is(err, errdefs.ErrThrottled) {
		t.Fatalf("runner throttle: %v", err)
	}
	if got := counter(t, m, "icebox_throttles_total", "f"); got != 2 {
		t.Errorf("icebox_throttles_total = %v, want 2", got)
	}
}

// metric finds the series of family name with label function=fn.
func metric(t *testing.T, m *metrics.Metrics, name, fn string) *dto.Metric {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "function" && l.GetValue() == fn {
					return s
				}
			}
		}
	}
	return nil
}

func counter(t *testing.T, m *metrics.Metrics, name, fn string) float64 {
	t.Helper()
	return metric(t, m, name, fn).GetCounter().GetValue()
}

func gauge(t *testing.T, m *metrics.Metrics, name, fn string) float64 {
	t.Helper()
	return metric(t, m, name, fn).GetGauge().GetValue()
}

func histogramCount(t *testing.T, m *metrics.Metrics, name, fn string) uint64 {
	t.Helper()
	return metric(t, m, name, fn).GetHistogram().GetSampleCount()
}
