// Package admission decides whether a call may run now: Lambda's account
// concurrency limit and per-function reserved concurrency. Concurrency is the
// number of environments busy with an event. The in-process Counter is the
// single place the decision is made, for synchronous and asynchronous calls
// alike; a cluster-wide counter on the shared engine can replace it behind
// the same interface.
package admission

import (
	"fmt"
	"sync"

	"icebox/internal/errdefs"
	"icebox/internal/model"
)

// Config configures the counter.
type Config struct {
	// AccountLimit bounds concurrent executions across all functions. Default 100.
	AccountLimit int
	// UnreservedMin is what reservations must leave to functions without
	// one. Default 10.
	UnreservedMin int
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.AccountLimit < 1 {
		return fmt.Errorf("account concurrency must be at least 1, not %d", c.AccountLimit)
	}
	if c.UnreservedMin < 0 || c.UnreservedMin > c.AccountLimit {
		return fmt.Errorf("unreserved minimum %d must be between 0 and the account limit %d", c.UnreservedMin, c.AccountLimit)
	}
	return nil
}

// Counter is the in-process admission counter.
type Counter struct {
	cfg Config

	mu         sync.Mutex
	busy       map[string]int // function → executions in progress
	total      int
	unreserved int            // executions of functions without a reservation
	reserved   map[string]int // function → reservation
	// provisioned is, per function without a reservation, its provisioned
	// concurrency: kept out of the unreserved pool for it, as a
	// reservation is (a function with a reservation provisions within it).
	provisioned map[string]int
	sumReserve  int // reservations and such provisioned concurrency
	// freed is closed on the next release; nil while nobody waits, so
	// the hot path allocates nothing for it.
	freed chan struct{}
}

// New makes a counter.
func New(cfg Config) (*Counter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Counter{cfg: cfg, busy: map[string]int{}, reserved: map[string]int{}, provisioned: map[string]int{}}, nil
}

// SetReservation records a function's reservation (nil: none). The catalog
// feeds it on every change so the pool of unreserved concurrency is right.
func (c *Counter) SetReservation(name string, r *int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sumReserve -= c.reserved[name]
	delete(c.reserved, name)
	if r != nil {
		c.reserved[name] = *r
		c.sumReserve += *r
	}
}

// SetProvisioned records a function's provisioned concurrency, over all
// its versions and aliases (0: none). The catalog feeds it on every change.
func (c *Counter) SetProvisioned(name string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sumReserve -= c.provisioned[name]
	delete(c.provisioned, name)
	if n > 0 {
		c.provisioned[name] = n
		c.sumReserve += n
	}
}

// Admit reserves one execution for fn or returns a *errdefs.ThrottleError.
// release must be called exactly once when the execution ends.
func (c *Counter) Admit(fn *model.Function) (release func(), err error) {
	release, _, err = c.admit(fn)
	return release, err
}

// Pools an execution draws from (the cluster's leases follow them).
const (
	poolReserved    = iota // the function's reservation
	poolProvisioned        // the function's provisioned concurrency
	poolUnreserved         // the account's unreserved pool
)

// admit is Admit, also saying which pool the execution draws from.
func (c *Counter) admit(fn *model.Function) (release func(), pool int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	name := fn.Name
	// The caller's copy of the function is authoritative for its own
	// reservation; the map (fed by the catalog watch, possibly a moment
	// behind) only sizes the unreserved pool.
	r, hasReservation := 0, fn.ReservedConcurrency != nil
	if hasReservation {
		r = *fn.ReservedConcurrency
	}
	if hasReservation {
		if c.busy[name] >= r {
			return nil, 0, &errdefs.ThrottleError{Reason: errdefs.ReasonReservedConcurrentLimit, Message: "Rate Exceeded.", RetryAfterSeconds: 1}
		}
	}
	// A function without a reservation runs first within its provisioned
	// concurrency, then in the unreserved pool.
	unreserved := !hasReservation && c.busy[name] >= c.provisioned[name]
	pool = poolReserved
	switch {
	case unreserved:
		if c.unreserved >= c.cfg.AccountLimit-c.sumReserve {
			return nil, 0, &errdefs.ThrottleError{Reason: errdefs.ReasonConcurrentLimit, Message: "Rate Exceeded.", RetryAfterSeconds: 1}
		}
		c.unreserved++
		pool = poolUnreserved
	case !hasReservation:
		pool = poolProvisioned
	}
	c.busy[name]++
	c.total++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.busy[name]--; c.busy[name] == 0 {
				delete(c.busy, name)
			}
			c.total--
			if unreserved {
				c.unreserved--
			}
			if c.freed != nil {
				close(c.freed)
				c.freed = nil
			}
		})
	}, pool, nil
}

// Freed is closed when an execution next ends on this node: a throttled
// asynchronous event waits on it for capacity instead of backing off.
func (c *Counter) Freed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.freed == nil {
		c.freed = make(chan struct{})
	}
	return c.freed
}

// Usage is a snapshot of the counter.
type Usage struct {
	Concurrent, Unreserved, UnreservedLimit int
}

// Usage reports current executions and the unreserved pool's size.
func (c *Counter) Usage() Usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Usage{Concurrent: c.total, Unreserved: c.unreserved, UnreservedLimit: c.cfg.AccountLimit - c.sumReserve}
}

// CheckReservation validates a new reservation for name against the
// unreserved minimum, given everyone else's current reservations.
func (c *Counter) CheckReservation(name string, r int) error {
	if r < 0 {
		return fmt.Errorf("1 validation error detected: Value '%d' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0: %w", r, errdefs.ErrInvalid)
	}
	c.mu.Lock()
	others := c.sumReserve - c.reserved[name] - c.provisioned[name]
	c.mu.Unlock()
	if c.cfg.AccountLimit-others-r < c.cfg.UnreservedMin {
		return fmt.Errorf("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].: %w", c.cfg.UnreservedMin, errdefs.ErrInvalid)
	}
	return nil
}

// CheckProvisioned validates n as name's provisioned concurrency over all
// its versions and aliases: within its reservation when it has one, else
// leaving the unreserved minimum to everyone else.
func (c *Counter) CheckProvisioned(name string, reserved *int, n int) error {
	if reserved != nil {
		if n > *reserved {
			return fmt.Errorf("Requested Provisioned Concurrency (%d in total) should not be greater than the reservedConcurrentExecution (%d) for function %s.: %w", n, *reserved, name, errdefs.ErrInvalid)
		}
		return nil
	}
	c.mu.Lock()
	others := c.sumReserve - c.provisioned[name] - c.reserved[name]
	c.mu.Unlock()
	if c.cfg.AccountLimit-others-n < c.cfg.UnreservedMin {
		return fmt.Errorf("Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].: %w", c.cfg.UnreservedMin, errdefs.ErrInvalid)
	}
	return nil
}

// Limits reports the configuration.
func (c *Counter) Limits() Config { return c.cfg }
