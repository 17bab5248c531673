package api

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"

	"icebox/internal/errdefs"
	"icebox/internal/httpbody"
)

// What a caller can make the daemon hold, and for how long. A body is read
// only after its signature's key and date were checked, into a buffer that
// grows as bytes arrive (never one of the size a header announces), under
// a budget of bytes in flight shared by every request.
const (
	// DefaultBodyBudget bounds the request body bytes held at once.
	DefaultBodyBudget = 512 << 20
	// DefaultMaxUnauthenticated bounds connections that have not yet sent
	// a request that passed authentication.
	DefaultMaxUnauthenticated = 256
	// idleTimeout closes a keep-alive connection that sends nothing.
	idleTimeout = 2 * time.Minute

	// A sandbox's code gets its own, smaller share: a few connections and
	// enough bytes in flight for two full-size synchronous invokes.
	envMaxConns   = 8
	envBodyBudget = 16 << 20
)

// budget counts bytes in flight against a limit.
type budget struct {
	limit int64
	used  atomic.Int64
}

// take reserves n bytes, or reports that the budget is spent.
func (b *budget) take(n int64) bool {
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *budget) give(n int64) { b.used.Add(-n) }

var errFrozen = fmt.Errorf("the environment was frozen while sending the request: %w", errdefs.ErrInvalidContent)

var errBusy = fmt.Errorf("icebox is receiving too many request bytes at once; retry the request: %w", errdefs.ErrUnavailable)

// connKey carries a request's connection in its context (ConnContext).
type connKey struct{}

// budgetKey carries the body budget of a listener that has its own.
type budgetKey struct{}

// envKey carries the environment a sandbox API connection belongs to.
type envKey struct{}

// sandboxEnv is what one sandbox's code may hold in the daemon: its body
// budget, and the connections reading a body right now, which are cut when
// it freezes (a frozen sandbox must not keep the daemon's memory pinned
// with half-sent requests).
type sandboxEnv struct {
	budget budget

	mu      sync.Mutex
	frozen  bool
	reading map[net.Conn]struct{}
}

// freezing closes every connection that is mid-body, and any that starts
// one until thawing: the daemon may still be parsing requests the sandbox
// sent just before it was frozen.
func (e *sandboxEnv) freezing() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.frozen = true
	for c := range e.reading {
		c.Close()
	}
}

func (e *sandboxEnv) thawing() {
	e.mu.Lock()
	e.frozen = false
	e.mu.Unlock()
}

// startReading registers c as reading a body; false means the
// environment is frozen and c was closed.
func (e *sandboxEnv) startReading(c net.Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.frozen {
		c.Close()
		return false
	}
	e.reading[c] = struct{}{}
	return true
}

func (e *sandboxEnv) doneReading(c net.Conn) {
	e.mu.Lock()
	delete(e.reading, c)
	e.mu.Unlock()
}

// heldBody is a request body read under budget; release gives its bytes back.
type heldBody struct {
	data  []byte
	taken []*budget
	n     int64
}

func (h *heldBody) release() {
	for _, b := range h.taken {
		b.give(h.n)
	}
	h.taken, h.n = nil, 0
}

// readBody reads r's body, at most limit bytes (tooLarge says what to
// answer past it), charging every byte to the daemon's budget and, for a
// sandbox's request, to its environment's. It sets a read deadline from the
// announced size and clears it afterwards (a deadline left in place would
// cancel the request's context during a long call).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64, tooLarge func(size int64) error) (_ *heldBody, err error) {
	// Before the environment's check below, as httpbody.Read would: an
	// oversized request is a 413 whoever sent it.
	if r.ContentLength > limit {
		return nil, tooLarge(r.ContentLength)
	}
	b := s.bodyBudget
	if lb, ok := r.Context().Value(budgetKey{}).(*budget); ok {
		b = lb // a listener with a budget of its own (function URLs)
	}
	h := &heldBody{taken: []*budget{b}}
	env, _ := r.Context().Value(envKey{}).(*sandboxEnv)
	if env != nil {
		h.taken = append(h.taken, &env.budget)
		conn := r.Context().Value(connKey{}).(net.Conn)
		if !env.startReading(conn) {
			return nil, errFrozen
		}
		defer env.doneReading(conn)
	}
	defer func() {
		if err != nil {
			h.release()
		}
	}()
	// The buffer's size is charged to every budget before it grows to it.
	reserve := func(size int64) error {
		n := size - h.n
		for i, b := range h.taken {
			if !b.take(n) {
				for _, u := range h.taken[:i] {
					u.give(n)
				}
				return errBusy
			}
		}
		h.n += n
		return nil
	}
	h.data, err = httpbody.Read(w, r, limit, reserve)
	var tl *httpbody.TooLargeError
	switch {
	case errors.As(err, &tl):
		return nil, tooLarge(tl.Size)
	case errors.Is(err, errBusy):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("read request body: %v: %w", err, errdefs.ErrInvalidContent)
	}
	return h, nil
}

// connGuard bounds connections that have not yet authenticated a request.
// Past the bound the oldest of them is closed: a client that opens
// connections and sends nothing can push out only its own kind, while a
// real client authenticates within one round trip.
type connGuard struct {
	max int

	mu     sync.Mutex
	unauth map[net.Conn]*list.Element
	order  *list.List // of net.Conn, oldest first
}

func newConnGuard(max int) *connGuard {
	return &connGuard{max: max, unauth: map[net.Conn]*list.Element{}, order: list.New()}
}

func (g *connGuard) connState(c net.Conn, st http.ConnState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch st {
	case http.StateNew:
		if len(g.unauth) >= g.max {
			oldest := g.order.Remove(g.order.Front()).(net.Conn)
			delete(g.unauth, oldest)
			oldest.Close()
		}
		g.unauth[c] = g.order.PushBack(c)
	case http.StateClosed, http.StateHijacked:
		g.forget(c)
	}
}

// forget takes c off the unauthenticated list.
// Preconditions: mu held.
func (g *connGuard) forget(c net.Conn) {
	if e, ok := g.unauth[c]; ok {
		g.order.Remove(e)
		delete(g.unauth, c)
	}
}

// authenticated takes the request's connection off the unauthenticated list.
func (g *connGuard) authenticated(ctx context.Context) {
	if c, ok := ctx.Value(connKey{}).(net.Conn); ok {
		g.mu.Lock()
		g.forget(c)
		g.mu.Unlock()
	}
}

func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// HTTPServer returns the server for the API's own listener: bounded
// headers, read deadlines, and the unauthenticated-connection cap.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: httpbody.ReadHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    httpbody.MaxHeaderBytes,
		ConnState:         s.conns.connState,
		ConnContext:       withConn,
	}
}

// ServeEnvironment serves the API on one sandbox's listener until it is
// closed, with the environment's own connection and byte budgets. The pool
// calls freezing before each freeze (requests still sending their body are
// cut) and thawing right before each thaw.
func (s *Server) ServeEnvironment(l net.Listener) (freezing, thawing func()) {
	env := &sandboxEnv{budget: budget{limit: envBodyBudget}, reading: map[net.Conn]struct{}{}}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: httpbody.ReadHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    httpbody.MaxHeaderBytes,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(withConn(ctx, c), envKey{}, env)
		},
	}
	go srv.Serve(netutil.LimitListener(l, envMaxConns))
	return env.freezing, env.thawing
}
