// Package invoke runs calls to functions: it resolves the function from the
// catalog cache (never the engine), checks the request, and hands it to the
// pool. Admission and asynchronous dispatch hang off this package.
package invoke

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"time"

	"icebox/internal/errdefs"
	"icebox/internal/metrics"
	"icebox/internal/model"
)

// Catalog is where functions are looked up; it must not block on I/O.
type Catalog interface {
	// View is the function name as the qualifier q names it
	// (model.Function.View), without what only its record holds (published
	// versions, aliases): what runs, at a cost that does not grow with them.
	View(name, q string) (model.Function, error)
	// Alias is one of the function's aliases.
	Alias(name, alias string) (model.Alias, error)
}

// Runner runs an invocation on an environment of fn.
type Runner interface {
	Invoke(ctx context.Context, fn model.Function, inv *model.Invocation) (model.Result, error)
}

// Admission decides whether a call may run now; see package admission.
type Admission interface {
	// Admit returns a release func, or an error wrapping errdefs.ErrThrottled.
	Admit(fn *model.Function) (release func(), err error)
}

// Config configures the invoker.
type Config struct {
	Region    string
	AccountID string
}

// Invoker runs calls.
type Invoker struct {
	cfg     Config
	catalog Catalog
	admit   Admission
	runner  Runner
	metrics *metrics.Metrics
	async   *queue // nil until StartAsync
}

// New makes an invoker.
func New(cfg Config, c Catalog, a Admission, r Runner, m *metrics.Metrics) *Invoker {
	return &Invoker{cfg: cfg, catalog: c, admit: a, runner: r, metrics: m}
}

// Type is Lambda's invocation type.
type Type string

const (
	RequestResponse Type = "RequestResponse"
	Event           Type = "Event"
	DryRun          Type = "DryRun"
)

// Request is one call as the API received it.
type Request struct {
	FunctionName  string // name, ARN or partial ARN, optionally with :qualifier
	Qualifier     string
	Type          Type
	Payload       []byte
	ClientContext string // base64, as the caller sent it
	// Stream, when set, takes a response the function streams as it
	// arrives (InvokeWithResponseStream); RequestResponse and DryRun only.
	Stream model.ResponseStream
	// Routed, when set, is told the version that runs before the call
	// starts (a weighted alias picks one per call): a streamed response
	// names it before the function answers.
	Routed func(version string)
	// Function, when set, is FunctionName and Qualifier already resolved
	// (by the API, which resolved them to authorize the call).
	Function *model.Function
	// RequestID, when set, is the invocation's request id (a function
	// URL's event carries it before the call is made); else a new one.
	RequestID string
	// TraceHeader is the caller's X-Amzn-Trace-Id: when it is a valid X-Ray
	// header its trace is the call's, as Lambda passes it on.
	TraceHeader string
	// Tail: the caller takes the call's log (LogType Tail), END and REPORT
	// included.
	Tail bool
}

// Invoke resolves and runs a call. For DryRun it only resolves.
func (iv *Invoker) Invoke(ctx context.Context, req Request) (_ model.Result, err error) {
	var fn model.Function
	if req.Function != nil {
		fn = *req.Function
	} else if _, fn, err = iv.Resolve(req.FunctionName, req.Qualifier); err != nil {
		return model.Result{}, err
	}
	limit := model.MaxSyncPayloadBytes
	switch req.Type {
	case "", RequestResponse:
		req.Type = RequestResponse
	case DryRun:
		return model.Result{ExecutedVersion: fn.VersionName()}, nil
	case Event:
		if iv.async == nil {
			return model.Result{}, fmt.Errorf("asynchronous invocation is not running: %w", errdefs.ErrUnavailable)
		}
		limit = model.MaxAsyncPayloadBytes
	default:
		return model.Result{}, fmt.Errorf("1 validation error detected: Value '%s' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]: %w", req.Type, errdefs.ErrInvalid)
	}
	if len(req.Payload) > limit {
		return model.Result{}, fmt.Errorf("%d byte payload is too large for the %s invocation type (limit %d bytes): %w", len(req.Payload), req.Type, limit, errdefs.ErrTooLarge)
	}
	payload := req.Payload
	if len(payload) == 0 {
		payload = []byte("{}")
	} else if !json.Valid(payload) {
		return model.Result{}, fmt.Errorf("Could not parse request body into json: Could not parse payload into json: Unexpected character: was expecting a JSON value: %w", errdefs.ErrInvalidContent)
	}
	if req.Type == Event {
		id := model.NewUUID()
		e := event{requestID: id, function: fn.Name, qualifier: fn.Qualifier, received: time.Now()}
		if req.TraceHeader != "" {
			e.traceID = TraceID(req.TraceHeader)
		}
		if err := iv.async.enqueue(ctx, e, payload); err != nil {
			return model.Result{}, err
		}
		iv.metrics.AsyncReceived.WithLabelValues(fn.Name).Inc()
		return model.Result{RequestID: id, ExecutedVersion: fn.VersionName()}, nil
	}
	if fn, err = iv.route(fn); err != nil {
		return model.Result{}, err
	}
	if req.RequestID == "" {
		req.RequestID = model.NewUUID()
	}
	if req.Routed != nil {
		req.Routed(fn.VersionName())
	}
	inv := &model.Invocation{
		RequestID:   req.RequestID,
		FunctionARN: fn.QualifiedARN(iv.cfg.Region, iv.cfg.AccountID),
		Payload:     payload,
		TraceID:     TraceID(req.TraceHeader),
		Stream:      req.Stream,
		Tail:        req.Tail,
	}
	if req.ClientContext != "" {
		cc, err := base64.StdEncoding.DecodeString(req.ClientContext)
		if err != nil || !json.Valid(cc) {
			return model.Result{}, fmt.Errorf("Client context must be a valid Base64-encoded JSON object: %w", errdefs.ErrInvalidContent)
		}
		if len(cc) > 3583 {
			return model.Result{}, fmt.Errorf("Client context is too long (limit 3583 bytes): %w", errdefs.ErrInvalid)
		}
		inv.ClientContext = string(cc)
	}
	return iv.run(ctx, fn, inv, true)
}

// run admits and runs one invocation, for synchronous calls and for each
// attempt of an asynchronous one. countThrottle is false for an event's
// retries while it waits for capacity: the event counts one throttle.
func (iv *Invoker) run(ctx context.Context, fn model.Function, inv *model.Invocation, countThrottle bool) (model.Result, error) {
	m := iv.metrics.Function(fn.Name)
	release, err := iv.admit.Admit(&fn)
	if err != nil {
		// A throttled call does not run and is not an invocation.
		if countThrottle {
			m.Throttles().Inc()
		}
		return model.Result{}, err
	}
	m.Invocations().Inc()
	conc := m.Concurrent()
	conc.Inc()
	res, err := iv.runner.Invoke(ctx, fn, inv)
	conc.Dec()
	release()
	if err != nil {
		if errors.Is(err, errdefs.ErrThrottled) {
			m.Throttles().Inc()
		}
		return res, err
	}
	if res.FunctionError != "" {
		m.Errors().Inc()
	}
	m.Duration().Observe(res.Duration.Seconds())
	if res.ColdStart {
		m.InitDuration().Observe(res.InitDuration.Seconds())
	}
	return res, nil
}

// route picks the version a call through a weighted alias runs, by the
// alias's weights; any other view runs as it is. The view keeps the alias
// as its qualifier, with the alias's policy and event invoke configuration.
func (iv *Invoker) route(fn model.Function) (model.Function, error) {
	if !fn.IsAliasView() {
		return fn, nil
	}
	a, err := iv.catalog.Alias(fn.Name, fn.Qualifier)
	if err != nil || len(a.Weights) == 0 {
		return fn, nil // unweighted, or changed since: run the view resolved
	}
	v, err := iv.catalog.View(fn.Name, a.Route(mrand.Float64()))
	if err != nil {
		return fn, err
	}
	v.Qualifier, v.Policy, v.EventInvoke = fn.Qualifier, fn.Policy, fn.EventInvoke
	return v, nil
}

// Resolve finds the function a name (plain, ARN or partial ARN, optionally
// with :qualifier) refers to, as a view of the version or alias named
// (model.Function.View). name is the function's name whenever the
// reference parses, even when the function or qualifier does not exist
// (authorization needs it).
func (iv *Invoker) Resolve(ref, qualifier string) (name string, fn model.Function, err error) {
	name, q, err := ParseFunctionRef(ref, iv.cfg.Region, iv.cfg.AccountID)
	if err != nil {
		return "", model.Function{}, err
	}
	if qualifier == "" {
		qualifier = q
	} else if q != "" && q != qualifier {
		return name, model.Function{}, fmt.Errorf("The derived qualifier from the function name does not match the specified qualifier: %w", errdefs.ErrInvalid)
	}
	// Lambda names what is missing by its ARN.
	switch fn, err = iv.catalog.View(name, qualifier); {
	case model.IsNoQualifier(err):
		return name, model.Function{}, fmt.Errorf("Function not found: %s:%s: %w", model.ARN(iv.cfg.Region, iv.cfg.AccountID, name), qualifier, errdefs.ErrNotFound)
	case errors.Is(err, errdefs.ErrNotFound):
		return name, model.Function{}, fmt.Errorf("Function not found: %s: %w", model.ARN(iv.cfg.Region, iv.cfg.AccountID, name), errdefs.ErrNotFound)
	case err != nil:
		return name, model.Function{}, err
	}
	return name, fn, nil
}

// ParseFunctionRef splits a FunctionName parameter into name and qualifier.
// It accepts "name", "name:qual", "ACCOUNT:function:name[:qual]" and
// "arn:aws:lambda:REGION:ACCOUNT:function:name[:qual]".
func ParseFunctionRef(ref, region, account string) (name, qualifier string, err error) {
	parts := strings.Split(ref, ":")
	// Only a ref with a qualifier part must have a non-empty one ("f:" is
	// malformed; an unqualified ARN is not).
	qualified := false
	bad := func() (string, string, error) {
		return "", "", fmt.Errorf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?: %w", ref, errdefs.ErrInvalid)
	}
	switch {
	case len(parts) == 1:
		name = parts[0]
	case len(parts) == 2:
		name, qualifier, qualified = parts[0], parts[1], true
	case (len(parts) == 3 || len(parts) == 4) && parts[1] == "function":
		if parts[0] != account {
			return "", "", fmt.Errorf("Function not found: %s: %w", ref, errdefs.ErrNotFound)
		}
		name = parts[2]
		if len(parts) == 4 {
			qualifier, qualified = parts[3], true
		}
	case (len(parts) == 7 || len(parts) == 8) && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function":
		if parts[3] != region || parts[4] != account {
			return "", "", fmt.Errorf("Function not found: %s: %w", ref, errdefs.ErrNotFound)
		}
		name = parts[6]
		if len(parts) == 8 {
			qualifier, qualified = parts[7], true
		}
	default:
		return bad()
	}
	if model.ValidateName(name) != nil || (qualified && qualifier == "") {
		return bad()
	}
	return name, qualifier, nil
}

// TraceID is the call's trace header: the caller's Root, Parent and
// Sampled when it sent a valid X-Ray header, else a new trace. A trace
// header it returns comes back unchanged.
func TraceID(header string) string {
	var root, parent, sampled string
	for _, f := range strings.Split(header, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "Root":
			root = v
		case "Parent":
			parent = v
		case "Sampled":
			sampled = v
		}
	}
	if !xrayRootRE().MatchString(root) || parent != "" && !xrayParentRE().MatchString(parent) {
		return newTraceID()
	}
	if sampled != "1" {
		sampled = "0"
	}
	if parent == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		parent = hex.EncodeToString(b[:])
	}
	return "Root=" + root + ";Parent=" + parent + ";Sampled=" + sampled
}

var (
	xrayRootRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^1-[0-9a-f]{8}-[0-9a-f]{24}$`) })
	xrayParentRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{16}$`) })
)

// newTraceID returns an X-Ray trace header value like Lambda passes runtimes:
// Root=1-<8 hex of the time>-<24 hex>;Parent=<16 hex>;Sampled=0.
func newTraceID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	var hx [40]byte
	hex.Encode(hx[:], b[:])
	var ts [8]byte
	t := uint32(time.Now().Unix())
	for i := 7; i >= 0; i-- {
		ts[i] = "0123456789abcdef"[t&0xf]
		t >>= 4
	}
	out := make([]byte, 0, 82)
	out = append(out, "Root=1-"...)
	out = append(out, ts[:]...)
	out = append(out, '-')
	out = append(out, hx[:24]...)
	out = append(out, ";Parent="...)
	out = append(out, hx[24:]...)
	out = append(out, ";Sampled=0"...)
	return string(out)
}
