package invoke

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/auth"
	"icebox/internal/errdefs"
	"icebox/internal/model"
	"icebox/internal/policy"
)

// AsyncConfig configures asynchronous invocation.
type AsyncConfig struct {
	// RetryDelays are the waits before the retries of a failed event
	// (Lambda: about 1 and 2 minutes). Default 1m, 2m.
	RetryDelays []time.Duration
	// AckWait is how long an event being worked on may go without a sign of
	// life before it is redelivered (after a crash). Default 30s.
	AckWait time.Duration
	// MaxInFlight bounds events being worked on at once. Default 64.
	MaxInFlight int
	// RoleIdentity resolves a function's execution role to the identity its
	// environments act as (auth.Authority.RoleIdentity). A destination or
	// dead-letter target gets an event only if that identity may invoke it,
	// as in Lambda. Nil delivers without asking (authentication is off).
	RoleIdentity func(roleARN, function string) (auth.Identity, error)
}

func (c *AsyncConfig) setDefaults() {
	if len(c.RetryDelays) == 0 {
		c.RetryDelays = []time.Duration{time.Minute, 2 * time.Minute}
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 64
	}
}

const (
	eventStream = "EVENTS"
	// Events go to icebox.events.<function>: names are valid subject
	// tokens, and per-subject counts give each function's queue depth.
	eventSubjects = "icebox.events.>"
	eventPrefix   = "icebox.events."
	dispatcher    = "dispatcher"

	hdrRequestID = "Icebox-Request-Id"
	hdrFunction  = "Icebox-Function"
	hdrQualifier = "Icebox-Qualifier"  // the version or alias invoked; absent for none
	hdrReceived  = "Icebox-Received"   // unix ms when Lambda accepted the event
	hdrAttempts  = "Icebox-Attempts"   // runs that ended in a function error so far
	hdrNotBefore = "Icebox-Not-Before" // unix ms; a retry waits until then
	hdrTrace     = "Icebox-Trace-Id"   // the X-Ray trace header every attempt runs with
)

// event is an asynchronous invocation as queued.
type event struct {
	requestID string
	function  string
	qualifier string
	received  time.Time
	attempts  int
	notBefore time.Time
	// origin tells a destination or dead-letter delivery apart from the
	// event it came from, in the publish's de-duplication id only.
	origin string
	// traceID is the trace the caller's X-Amzn-Trace-Id gave; "" for a new
	// one per attempt.
	traceID string
}

// queue is the durable event queue (a JetStream work-queue stream) and its
// dispatcher. An event is stored before the caller gets 202, and acked only
// once its outcome is decided and any follow-up (retry, destination,
// dead-letter) is itself stored: delivery is at least once, across crashes.
type queue struct {
	iv   *Invoker
	cfg  AsyncConfig
	js   jetstream.JetStream
	log  *slog.Logger
	sem  chan struct{}
	wg   sync.WaitGroup
	ctx  context.Context
	stop context.CancelFunc
	// noPull ends pull; pulled is closed once it has returned.
	noPull context.CancelFunc
	pulled chan struct{}

	// pullCtx ends when the node stops taking events.
	pullCtx context.Context

	mu sync.Mutex
	// waiting counts, per function, the events waiting in a slot for
	// capacity.
	waiting map[string]int
	// running counts, per function, the events whose attempt runs now:
	// still in the stream until acked, but no longer queued.
	running map[string]int
}

// StartAsync opens the event stream and starts dispatching. Events accepted
// before a restart are picked up again.
func (iv *Invoker) StartAsync(ctx context.Context, js jetstream.JetStream, cfg AsyncConfig, log *slog.Logger) error {
	cfg.setDefaults()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:      eventStream,
		Subjects:  []string{eventSubjects},
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.FileStorage,
	}); err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, eventStream, jetstream.ConsumerConfig{
		Durable:   dispatcher,
		AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:   cfg.AckWait,
		// An event waiting out a throttle backoff or a retry delay stays
		// pending (nakked with a delay). A bound here would let one
		// throttled function's backlog hold up every other function's
		// events; MaxInFlight bounds what runs at once.
		MaxAckPending: -1,
		MaxDeliver:    -1,
	})
	if err != nil {
		return fmt.Errorf("event consumer: %w", err)
	}
	q := &queue{iv: iv, cfg: cfg, js: js, log: log, sem: make(chan struct{}, cfg.MaxInFlight), pulled: make(chan struct{}),
		running: map[string]int{}, waiting: map[string]int{}}
	q.ctx, q.stop = context.WithCancel(context.Background())
	pullCtx, noPull := context.WithCancel(context.Background())
	q.noPull, q.pullCtx = noPull, pullCtx
	go q.pull(pullCtx, cons)
	iv.async = q
	iv.metrics.WatchQueue(func() map[string]float64 { return q.depth(context.Background()) })
	return nil
}

// pull takes events one at a time, and only once a slot is free. An event
// JetStream has handed over is thus always being worked on and kept alive:
// one left waiting in a client-side buffer past AckWait would be delivered,
// and run, a second time.
func (q *queue) pull(ctx context.Context, cons jetstream.Consumer) {
	defer close(q.pulled)
	for {
		select {
		case q.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			<-q.sem
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, nats.ErrTimeout) {
				q.log.Warn("taking events from the queue", "err", err)
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
					return
				}
			}
			continue
		}
		q.wg.Add(1)
		go func() {
			defer func() { <-q.sem; q.wg.Done() }()
			q.handle(msg)
		}()
	}
}

// depth counts queued events per function: waiting, or parked for a retry
// or a throttle backoff; an event whose attempt runs now is not queued.
func (q *queue) depth(ctx context.Context) map[string]float64 {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := q.js.Stream(ctx, eventStream)
	if err != nil {
		return nil
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(eventSubjects))
	if err != nil {
		return nil
	}
	out := make(map[string]float64, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		out[strings.TrimPrefix(subj, eventPrefix)] = float64(n)
	}
	q.mu.Lock()
	for fn, n := range q.running {
		if _, ok := out[fn]; ok {
			out[fn] = max(0, out[fn]-float64(n))
		}
	}
	q.mu.Unlock()
	return out
}

// attempting counts an attempt of fn's event starting (+1) or ending (-1).
func (q *queue) attempting(fn string, delta int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running[fn] += delta; q.running[fn] <= 0 {
		delete(q.running, fn)
	}
}

// QueueDepth reports queued asynchronous events per function.
func (iv *Invoker) QueueDepth(ctx context.Context) map[string]float64 {
	if iv.async == nil {
		return nil
	}
	return iv.async.depth(ctx)
}

// StopAsync stops taking events and waits (until ctx ends) for those in
// progress. Unfinished events are redelivered after a restart.
func (iv *Invoker) StopAsync(ctx context.Context) {
	q := iv.async
	if q == nil {
		return
	}
	// Once pull has returned nothing calls wg.Add: Wait below is sound.
	q.noPull()
	<-q.pulled
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	q.stop()
}

// enqueue stores an event durably: it returns only once JetStream has
// acknowledged the write.
func (q *queue) enqueue(ctx context.Context, e event, payload []byte) error {
	msg := nats.NewMsg(eventPrefix + e.function)
	msg.Data = payload
	msg.Header.Set(hdrRequestID, e.requestID)
	msg.Header.Set(hdrFunction, e.function)
	if e.qualifier != "" {
		msg.Header.Set(hdrQualifier, e.qualifier)
	}
	msg.Header.Set(hdrReceived, strconv.FormatInt(e.received.UnixMilli(), 10))
	msg.Header.Set(hdrAttempts, strconv.Itoa(e.attempts))
	if !e.notBefore.IsZero() {
		msg.Header.Set(hdrNotBefore, strconv.FormatInt(e.notBefore.UnixMilli(), 10))
	}
	if e.traceID != "" {
		msg.Header.Set(hdrTrace, e.traceID)
	}
	// The message id makes a repeated publish of the same step harmless.
	id := e.requestID + "/" + e.function + "/" + strconv.Itoa(e.attempts) + "/" + e.origin
	if _, err := q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("queue event: %v: %w", err, errdefs.ErrUnavailable)
	}
	return nil
}

func parseEvent(msg jetstream.Msg) (event, error) {
	h := msg.Headers()
	e := event{requestID: h.Get(hdrRequestID), function: h.Get(hdrFunction), qualifier: h.Get(hdrQualifier), traceID: h.Get(hdrTrace)}
	rec, err := strconv.ParseInt(h.Get(hdrReceived), 10, 64)
	if err != nil || e.requestID == "" || e.function == "" {
		return e, errors.New("malformed event headers")
	}
	e.received = time.UnixMilli(rec)
	e.attempts, _ = strconv.Atoi(h.Get(hdrAttempts))
	if nb, err := strconv.ParseInt(h.Get(hdrNotBefore), 10, 64); err == nil {
		e.notBefore = time.UnixMilli(nb)
	}
	return e, nil
}

// throttleBackoff is the wait after a throttled or failed-to-run attempt:
// 1 s doubling up to 5 minutes, as Lambda retries throttles.
func throttleBackoff(deliveries uint64) time.Duration {
	d := time.Second
	for i := uint64(1); i < deliveries && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// catalogLag is how long an event waits for a function, version or alias
// this node's catalog does not know before it is dropped as deleted (Lambda
// drops a deleted function's events): in a cluster the node that accepted
// the event may have seen the function created before this node's catalog
// watch has, longer while JetStream elects new leaders.
const catalogLag = time.Minute

// handle decides one event's fate. Every path either acks (the outcome and
// any follow-up are stored) or naks with a delay (try again later).
func (q *queue) handle(msg jetstream.Msg) {
	e, err := parseEvent(msg)
	if err != nil {
		q.log.Error("dropping malformed event", "err", err)
		_ = msg.Term()
		return
	}
	now := time.Now()
	if wait := e.notBefore.Sub(now); wait > 0 {
		_ = msg.NakWithDelay(wait)
		return
	}
	fn, err := q.iv.catalog.View(e.function, e.qualifier)
	if err == nil {
		fn, err = q.iv.route(fn)
	}
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) && now.Sub(e.received) < catalogLag {
			_ = msg.NakWithDelay(time.Second)
			return
		}
		q.log.Warn("dropping event of a deleted function, version or alias", "function", e.function, "qualifier", e.qualifier, "request_id", e.requestID)
		q.iv.metrics.AsyncDropped.WithLabelValues(e.function).Inc()
		_ = msg.Ack()
		return
	}
	cfg := fn.EventInvoke
	age := now.Sub(e.received)
	q.iv.metrics.AsyncEventAge.WithLabelValues(fn.Name).Observe(age.Seconds())
	if age > cfg.MaxAge() {
		q.finish(msg, &fn, e, "EventAgeExceeded", nil)
		return
	}

	inv := &model.Invocation{
		RequestID:   e.requestID,
		FunctionARN: fn.QualifiedARN(q.iv.cfg.Region, q.iv.cfg.AccountID),
		Payload:     msg.Data(),
		TraceID:     TraceID(e.traceID),
	}
	stop := q.keepAlive(msg)
	res, err := q.attempt(fn, inv)
	stop()
	if err != nil {
		// Throttled, or icebox could not run it: not a retry of the
		// function; wait and try again until the event is too old.
		meta, _ := msg.Metadata()
		delivered := uint64(1)
		if meta != nil {
			delivered = meta.NumDelivered
		}
		if errors.Is(err, errdefs.ErrThrottled) && (fn.ReservedConcurrency == nil || *fn.ReservedConcurrency > 0) {
			// The function's capacity is busy: back soon, for a slot
			// that may be free by then (here or on another node). A
			// function reserved to 0 backs off: nothing frees up.
			_ = msg.NakWithDelay(throttleDelay())
			return
		}
		q.log.Warn("asynchronous attempt could not run", "function", fn.Name, "request_id", e.requestID, "err", err)
		_ = msg.NakWithDelay(throttleBackoff(delivered))
		return
	}
	e.attempts++
	if res.FunctionError == "" {
		q.finish(msg, &fn, e, "Success", &res)
		return
	}
	if retries := cfg.Retries(); e.attempts <= retries {
		delay := q.cfg.RetryDelays[min(e.attempts, len(q.cfg.RetryDelays))-1]
		e.notBefore = time.Now().Add(delay)
		if err := q.enqueue(q.ctx, e, msg.Data()); err != nil {
			_ = msg.NakWithDelay(time.Second)
			return
		}
		_ = msg.Ack()
		return
	}
	q.finish(msg, &fn, e, "RetriesExhausted", &res)
}

// Waiting for capacity: a throttled event is kept (alive, in its slot) and
// tried again as soon as an execution ends, so a throttled backlog drains at
// the limit's full rate instead of backing off. At most a quarter of the
// slots wait per function, so one function's backlog never holds them all;
// the others' events go back to the queue for a moment (throttleDelay).
const (
	// throttleDelayMin is the least wait of a throttled event sent back;
	// the wait is between it and twice it, spread so returns do not bunch.
	throttleDelayMin = 150 * time.Millisecond
	// capacityPoll is how often a waiting event tries again when no
	// execution ended here (capacity freed on another node).
	capacityPoll = 100 * time.Millisecond
	// maxCapacityWait bounds one event's wait in its slot.
	maxCapacityWait = 30 * time.Second
)

func throttleDelay() time.Duration {
	return throttleDelayMin + time.Duration(mrand.Int64N(int64(throttleDelayMin)))
}

// attempt runs an event's attempt, waiting in its slot for capacity while
// it is throttled (see maxCapacityWait).
func (q *queue) attempt(fn model.Function, inv *model.Invocation) (model.Result, error) {
	deadline := time.Now().Add(maxCapacityWait)
	waiting := false
	defer func() {
		if waiting {
			q.mu.Lock()
			q.waiting[fn.Name]--
			q.mu.Unlock()
		}
	}()
	for {
		// Freed is asked for before the attempt: an execution ending
		// between a refusal and the wait still wakes it.
		var freed <-chan struct{}
		if f, ok := q.iv.admit.(interface{ Freed() <-chan struct{} }); ok {
			freed = f.Freed()
		}
		q.attempting(fn.Name, 1)
		res, err := q.iv.run(q.ctx, fn, inv, !waiting)
		q.attempting(fn.Name, -1)
		if !errors.Is(err, errdefs.ErrThrottled) || time.Now().After(deadline) {
			return res, err
		}
		if fn.ReservedConcurrency != nil && *fn.ReservedConcurrency == 0 {
			// Nothing frees up: the event backs off (handle), and is
			// looked up again when it comes back, so a reservation
			// lifted meanwhile is seen.
			return res, err
		}
		if !waiting {
			q.mu.Lock()
			if q.waiting[fn.Name] >= q.cfg.MaxInFlight/4 {
				q.mu.Unlock()
				return res, err
			}
			q.waiting[fn.Name]++
			waiting = true
			q.mu.Unlock()
		}
		t := time.NewTimer(capacityPoll)
		select {
		case <-freed:
		case <-t.C:
		case <-q.pullCtx.Done(): // shutting down: the event goes back
			t.Stop()
			return res, err
		}
		t.Stop()
	}
}

// keepAlive tells JetStream the event is still being worked on while a long
// invocation runs, so it is not redelivered to another attempt.
func (q *queue) keepAlive(msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(q.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// finish sends the outcome where the function's configuration says, then
// acks the event. Destinations and dead-letter targets are functions: their
// delivery is an event of its own on the same durable queue.
func (q *queue) finish(msg jetstream.Msg, fn *model.Function, e event, condition string, res *model.Result) {
	cfg := fn.EventInvoke
	success := condition == "Success"
	var dest string
	if cfg != nil {
		dest = cfg.OnFailure
		if success {
			dest = cfg.OnSuccess
		}
	}
	delivered := false
	if dest != "" {
		if err := q.deliver(fn, dest, "destination", e, q.record(fn, e, condition, msg.Data(), res)); err != nil {
			q.log.Warn("destination delivery failed", "function", fn.Name, "destination", dest, "err", err)
			q.iv.metrics.DestinationFailures.WithLabelValues(fn.Name).Inc()
			if errors.Is(err, errdefs.ErrUnavailable) {
				_ = msg.NakWithDelay(time.Second)
				return
			}
		} else {
			delivered = true
		}
	}
	if !success && fn.DeadLetterTarget != "" {
		if err := q.deliver(fn, fn.DeadLetterTarget, "dead-letter", e, msg.Data()); err != nil {
			q.log.Warn("dead-letter delivery failed", "function", fn.Name, "target", fn.DeadLetterTarget, "err", err)
			q.iv.metrics.DeadLetterErrors.WithLabelValues(fn.Name).Inc()
			if errors.Is(err, errdefs.ErrUnavailable) {
				_ = msg.NakWithDelay(time.Second)
				return
			}
		} else {
			delivered = true
		}
	}
	if !success && !delivered {
		q.iv.metrics.AsyncDropped.WithLabelValues(fn.Name).Inc()
		q.log.Info("asynchronous event dropped", "function", fn.Name, "request_id", e.requestID, "condition", condition, "attempts", e.attempts)
	}
	_ = msg.Ack()
}

// deliver queues payload as an asynchronous invocation of the function a
// destination ARN names, on behalf of src.
func (q *queue) deliver(src *model.Function, arn, origin string, from event, payload []byte) error {
	name, _, err := ParseFunctionRef(arn, q.iv.cfg.Region, q.iv.cfg.AccountID)
	if err != nil {
		return err
	}
	target, err := q.iv.catalog.View(name, "")
	if err != nil {
		return err
	}
	if err := q.mayInvoke(src, &target); err != nil {
		return err
	}
	if err := q.enqueue(q.ctx, event{requestID: from.requestID, function: name, received: time.Now(), origin: origin}, payload); err != nil {
		return err
	}
	q.iv.metrics.AsyncReceived.WithLabelValues(name).Inc()
	return nil
}

// mayInvoke applies Lambda's rule for delivery: src's execution role must
// be allowed lambda:InvokeFunction on target, decided as a call signed with
// the role's credentials would be (the role's policy, the target's resource
// policy). Whoever configured the target was checked then; this holds the
// role to its policy as it is now.
func (q *queue) mayInvoke(src, target *model.Function) error {
	if q.cfg.RoleIdentity == nil {
		return nil
	}
	id, err := q.cfg.RoleIdentity(src.Role, src.Name)
	if err != nil {
		return err
	}
	req := policy.Request{Principal: id.ARN, Account: q.iv.cfg.AccountID, Action: "lambda:InvokeFunction",
		Resource: model.ARN(q.iv.cfg.Region, q.iv.cfg.AccountID, target.Name)}
	if policy.Evaluate(req, id.Policies, target.Policy) != policy.Allowed {
		return &errdefs.AuthError{Kind: errdefs.AuthDenied, Message: fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s", id.ARN, req.Action, req.Resource)}
	}
	return nil
}

// record is Lambda's destination record.
func (q *queue) record(fn *model.Function, e event, condition string, request []byte, res *model.Result) []byte {
	type requestContext struct {
		RequestID              string `json:"requestId"`
		FunctionArn            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	}
	type responseContext struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError,omitempty"`
	}
	r := struct {
		Version         string           `json:"version"`
		Timestamp       string           `json:"timestamp"`
		RequestContext  requestContext   `json:"requestContext"`
		RequestPayload  json.RawMessage  `json:"requestPayload"`
		ResponseContext *responseContext `json:"responseContext,omitempty"`
		ResponsePayload json.RawMessage  `json:"responsePayload,omitempty"`
	}{
		Version:   "1.0",
		Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		RequestContext: requestContext{
			RequestID:              e.requestID,
			FunctionArn:            model.ARN(q.iv.cfg.Region, q.iv.cfg.AccountID, fn.Name) + ":" + cmp.Or(fn.Qualifier, model.LatestVersion),
			Condition:              condition,
			ApproximateInvokeCount: e.attempts,
		},
		RequestPayload: json.RawMessage(request),
	}
	if res != nil {
		r.ResponseContext = &responseContext{StatusCode: 200, ExecutedVersion: fn.VersionName(), FunctionError: res.FunctionError}
		if json.Valid(res.Payload) {
			r.ResponsePayload = json.RawMessage(res.Payload)
		} else {
			b, _ := json.Marshal(string(res.Payload))
			r.ResponsePayload = b
		}
	}
	b, _ := json.Marshal(r)
	return b
}
