package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/engine"
	"icebox/internal/errdefs"
	"icebox/internal/model"
)

// Cluster-wide admission: nodes on one engine hold leases of concurrency
// units, granted from the "admission" KV bucket with compare-and-set, one
// key per pool: fn.<name> (a reservation), prov.<name> (provisioned
// concurrency of a function without one) and account (the unreserved
// pool). A key holds every node's lease: units and an expiry. A node admits
// within the units it holds without a round trip; only when they are all
// busy does it ask for more (one CAS). Units idle for a renewal interval go
// back; a node renews what it keeps every TTL/3, so a dead node's leases
// expire TTL after its last renewal and the survivors take them over.
//
// The local Counter still runs first: it keeps each node within the limits
// on its own and counts usage; a lease is the cluster's permission on top.

// LeaseBucket is the KV bucket of leases and claimed reservations.
const LeaseBucket = "admission"

const (
	keyAccount      = "account"
	keyReservations = "reservations"
	// claimTTL is how long a reservation claimed in the ledger counts
	// without the catalog showing it: the catalog's watch reaches every
	// node in milliseconds, so a claim only has to bridge that.
	claimTTL = time.Minute
	// casAttempts bounds the retries of one compare-and-set.
	casAttempts = 20
	// idleLinger is how long units stay with a node after its last call
	// ended: its next calls need no round trip, and units it no longer
	// uses reach other nodes this soon.
	idleLinger = 250 * time.Millisecond
	// contendedWait is how long a call that finds every unit of a pool
	// held (by other nodes too) keeps asking before it is throttled: long
	// enough for the holders' next renewal to give back units they held
	// above their use (see renew), so calls under the limit are never
	// throttled because the units sat on another node.
	contendedWait = 2 * idleLinger
	contendedPoll = 10 * time.Millisecond
	opTimeout     = 5 * time.Second
)

// LeaseConfig configures cluster-wide admission.
type LeaseConfig struct {
	Config
	// NodeID names the node's leases.
	NodeID string
	// TTL is how long a lease outlives its holder's last renewal.
	// Default 10s.
	TTL time.Duration
	// Now is the clock; default time.Now. Expiries are wall-clock times:
	// nodes' clocks must agree to well within TTL (NTP does).
	Now func() time.Time
}

// Leases is cluster-wide admission: a Counter whose every admission also
// holds a unit of a lease the cluster granted this node.
type Leases struct {
	*Counter
	lcfg LeaseConfig
	kv   jetstream.KeyValue
	log  *slog.Logger
	stop context.CancelFunc
	done chan struct{}

	mu    sync.Mutex
	pools map[string]*lease

	// lastOK is when the bucket last answered (a check or a write),
	// lastCheck when the loop last asked it, lastErr its last failure.
	health    sync.Mutex
	lastOK    time.Time
	lastCheck time.Time
	lastErr   error
}

// lease is this node's share of one pool.
type lease struct {
	acquire sync.Mutex // one CAS for more units at a time
	held    int        // units granted to this node
	used    int        // units busy
	// waiting counts calls that found every held unit busy and wait to
	// ask the cluster for more. Not busy units: a waiter is admitted on a
	// unit freed meanwhile, and idle units go back whatever waits.
	waiting int
	// peak is the most units busy at once since the last renewal: what
	// the node keeps of its lease while busy.
	peak    int
	expires time.Time // of the lease as last written
	lastUse time.Time
}

// use takes a held unit; l.mu is held.
func (p *lease) use(now time.Time) {
	p.used++
	p.peak = max(p.peak, p.used)
	p.lastUse = now
}

// entry is a node's lease as stored.
type entry struct {
	N       int   `json:"n"`
	Expires int64 `json:"exp"` // unix ms
}

// claim is a reservation in the ledger.
type claim struct {
	N  int   `json:"n"`
	At int64 `json:"at"` // unix ms
}

// NewLeases opens the bucket and starts renewing.
func NewLeases(ctx context.Context, js jetstream.JetStream, cfg LeaseConfig, log *slog.Logger) (*Leases, error) {
	c, err := New(cfg.Config)
	if err != nil {
		return nil, err
	}
	if cfg.NodeID == "" || strings.ContainsAny(cfg.NodeID, ".*> ") {
		return nil, fmt.Errorf("admission: node id %q: %w", cfg.NodeID, errdefs.ErrInvalid)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := engine.OpenKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      LeaseBucket,
		Description: "icebox admission: each node's leases of concurrency per pool, and claimed reservations",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("admission: open bucket %s: %w: %w", LeaseBucket, errdefs.ErrUnavailable, err)
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	l := &Leases{Counter: c, lcfg: cfg, kv: kv, log: log, stop: stop, done: make(chan struct{}), pools: map[string]*lease{}}
	l.lastOK, l.lastCheck = cfg.Now(), cfg.Now()
	go l.loop(bg)
	return l, nil
}

// Admit admits fn on this node and holds a unit of the cluster's lease for
// the pool it draws from, asking the cluster for more only when every unit
// the node holds is busy.
func (l *Leases) Admit(fn *model.Function) (func(), error) {
	release, pool, err := l.Counter.admit(fn)
	if err != nil {
		return nil, err
	}
	var key string
	var capacity int
	throttle := &errdefs.ThrottleError{Reason: errdefs.ReasonConcurrentLimit, Message: "Rate Exceeded.", RetryAfterSeconds: 1}
	switch pool {
	case poolReserved:
		key, capacity = "fn."+fn.Name, *fn.ReservedConcurrency
		throttle.Reason = errdefs.ReasonReservedConcurrentLimit
	case poolProvisioned:
		l.Counter.mu.Lock()
		capacity = l.Counter.provisioned[fn.Name]
		l.Counter.mu.Unlock()
		key = "prov." + fn.Name
	default:
		key, capacity = keyAccount, l.Counter.Usage().UnreservedLimit
	}
	p, ok, err := l.take(key, capacity)
	if !ok && err == nil && pool == poolProvisioned {
		// Other nodes hold the provisioned units: the unreserved pool
		// takes the call, as it takes calls beyond provisioned ones.
		p, ok, err = l.take(keyAccount, l.Counter.Usage().UnreservedLimit)
	}
	if err != nil || !ok {
		release()
		if err != nil {
			return nil, err
		}
		return nil, throttle
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.give(p)
			release()
		})
	}, nil
}

// take holds one unit of key's lease, acquiring more from the cluster when
// every held unit is busy, and asking again for contendedWait while other
// nodes hold every unit. false: the cluster has none free.
func (l *Leases) take(key string, capacity int) (*lease, bool, error) {
	if capacity <= 0 {
		return nil, false, nil
	}
	l.mu.Lock()
	p := l.pools[key]
	if p == nil {
		p = &lease{}
		l.pools[key] = p
	}
	now := l.lcfg.Now()
	if p.used < min(p.held, capacity) && now.Before(p.expires) {
		p.use(now)
		l.mu.Unlock()
		return p, true, nil
	}
	// Counted while waiting: p stays in the map, and the unit is asked
	// for by whichever waiter reaches the cluster first.
	p.waiting++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		p.waiting--
		l.mu.Unlock()
	}()
	giveUp := time.Now().Add(contendedWait)
	for {
		ok, err := l.acquire(p, key, capacity)
		if ok || err != nil || time.Now().After(giveUp) {
			return p, ok, err
		}
		time.Sleep(contendedPoll)
	}
}

// acquire is one attempt of take's slow path: a unit freed meanwhile, or
// granted by the cluster.
func (l *Leases) acquire(p *lease, key string, capacity int) (bool, error) {
	p.acquire.Lock()
	defer p.acquire.Unlock()
	l.mu.Lock()
	now := l.lcfg.Now()
	if !now.Before(p.expires) {
		// Units held past the lease's expiry may be someone else's by
		// now: the node asks again for all of them.
		p.held = 0
	}
	if p.used < min(p.held, capacity) {
		// Another waiter got enough for both, or a unit was freed.
		p.use(now)
		l.mu.Unlock()
		return true, nil
	}
	base, need := p.held, p.used+p.waiting-p.held
	l.mu.Unlock()
	// More at once for large pools, so a busy node asks rarely.
	_, err := l.grant(p, key, capacity, base, max(need, capacity/16))
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		return false, err
	}
	// Granted units, or one freed while the cluster was asked; either may
	// have gone to a call that found it free first.
	if p.used >= min(p.held, capacity) {
		return false, nil
	}
	p.use(l.lcfg.Now())
	return true, nil
}

// give returns a busy unit to the node's lease (not to the cluster).
func (l *Leases) give(p *lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p.used--
	p.lastUse = l.lcfg.Now()
}

// grant asks the cluster for up to want units of key on top of the base
// the node holds; p.acquire is held.
func (l *Leases) grant(p *lease, key string, capacity, base, want int) (int, error) {
	granted := 0
	err := l.update(key, func(leases map[string]entry, now time.Time) bool {
		others := 0
		for id, e := range leases {
			if id != l.lcfg.NodeID {
				others += e.N
			}
		}
		granted = min(capacity-others-base, want)
		if granted <= 0 {
			granted = 0
			return false
		}
		leases[l.lcfg.NodeID] = entry{N: base + granted, Expires: now.Add(l.lcfg.TTL).UnixMilli()}
		return true
	}, func(now time.Time) {
		l.mu.Lock()
		p.held = base + granted
		p.expires = now.Add(l.lcfg.TTL)
		l.mu.Unlock()
	})
	return granted, err
}

// update applies change to key's leases (expired ones dropped) and writes
// them back if change says so and the key is unchanged since the read;
// written runs after a successful write.
func (l *Leases) update(key string, change func(map[string]entry, time.Time) bool, written func(time.Time)) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for range casAttempts {
		leases := map[string]entry{}
		var rev uint64
		e, err := l.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("admission: read leases: %w: %w", errdefs.ErrUnavailable, err)
		default:
			rev = e.Revision()
			if len(e.Value()) > 0 {
				if err := json.Unmarshal(e.Value(), &leases); err != nil {
					l.log.Warn("admission: replacing malformed leases", "key", key, "err", err)
					leases = map[string]entry{}
				}
			}
		}
		now := l.lcfg.Now()
		for id, e := range leases {
			if e.Expires <= now.UnixMilli() || e.N <= 0 {
				delete(leases, id)
			}
		}
		if !change(leases, now) {
			return nil
		}
		b, _ := json.Marshal(leases)
		if rev == 0 {
			_, err = l.kv.Create(ctx, key, b)
		} else {
			_, err = l.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			l.reached(nil)
			written(now)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("admission: write leases: %w: %w", errdefs.ErrUnavailable, err)
		}
	}
	return fmt.Errorf("admission: leases of %s changed %d times in a row: %w", key, casAttempts, errdefs.ErrUnavailable)
}

// loop renews the node's leases and returns idle units.
func (l *Leases) loop(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(min(l.lcfg.TTL/3, idleLinger))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.renew(false)
		l.check(ctx)
	}
}

// check asks the bucket for its status once a third of the TTL has passed
// since the last check, so Ready knows whether it answers even while the
// node holds no lease.
func (l *Leases) check(ctx context.Context) {
	l.health.Lock()
	due := !l.lcfg.Now().Before(l.lastCheck.Add(l.lcfg.TTL / 3))
	if due {
		l.lastCheck = l.lcfg.Now()
	}
	l.health.Unlock()
	if !due {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, min(opTimeout, l.lcfg.TTL/3))
	defer cancel()
	_, err := l.kv.Status(ctx)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return // stopping, not unreachable
	}
	l.reached(err)
}

// reached records whether the bucket answered.
func (l *Leases) reached(err error) {
	l.health.Lock()
	defer l.health.Unlock()
	if err != nil {
		l.lastErr = err
		return
	}
	l.lastOK, l.lastErr = l.lcfg.Now(), nil
}

// Ready reports whether the leases bucket answered within TTL: a node that
// cannot reach it cannot be granted units beyond those it holds, nor renew
// them, and should not take calls.
func (l *Leases) Ready() error {
	l.health.Lock()
	defer l.health.Unlock()
	if age := l.lcfg.Now().Sub(l.lastOK); age > l.lcfg.TTL {
		return fmt.Errorf("admission: bucket %s unanswered for %s (%v): %w", LeaseBucket, age.Round(time.Second), l.lastErr, errdefs.ErrUnavailable)
	}
	return nil
}

// renew writes the leases the node holds with a fresh expiry once a third
// of their TTL has passed, and returns the units not busy of a pool idle
// for idleLinger (all units not busy when returning).
func (l *Leases) renew(returning bool) {
	l.mu.Lock()
	keys := make([]string, 0, len(l.pools))
	for k := range l.pools {
		keys = append(keys, k)
	}
	l.mu.Unlock()
	now := l.lcfg.Now()
	idleAfter, renewAfter := now.Add(-idleLinger), now.Add(l.lcfg.TTL*2/3)
	for _, key := range keys {
		l.mu.Lock()
		p := l.pools[key]
		l.mu.Unlock()
		if p == nil {
			continue
		}
		// Serialized with grants of the pool: a renewal never writes a
		// count older than a grant's.
		p.acquire.Lock()
		l.mu.Lock()
		write := !p.expires.After(renewAfter)
		// A busy node keeps the most it used at once since the last
		// renewal; the rest goes back, so units follow the load between
		// nodes rather than staying where they first landed. An idle one
		// (or one returning) keeps only what is busy.
		keep := max(p.peak, p.used)
		if returning || p.lastUse.Before(idleAfter) {
			keep = p.used
		}
		p.peak = p.used
		if p.held > keep {
			// Lowered first: the units going back are not taken meanwhile.
			p.held = keep
			write = true
		}
		if !write {
			l.mu.Unlock()
			p.acquire.Unlock()
			continue
		}
		if p.held == 0 && p.used == 0 && p.waiting == 0 && p.expires.IsZero() {
			delete(l.pools, key) // nothing held, nothing stored
			l.mu.Unlock()
			p.acquire.Unlock()
			continue
		}
		n := p.held
		l.mu.Unlock()
		err := l.update(key, func(leases map[string]entry, now time.Time) bool {
			if n == 0 {
				if _, ok := leases[l.lcfg.NodeID]; !ok {
					return false
				}
				delete(leases, l.lcfg.NodeID)
				return true
			}
			leases[l.lcfg.NodeID] = entry{N: n, Expires: now.Add(l.lcfg.TTL).UnixMilli()}
			return true
		}, func(now time.Time) {
			l.mu.Lock()
			p.expires = now.Add(l.lcfg.TTL)
			if n == 0 {
				p.expires = time.Time{}
			}
			l.mu.Unlock()
		})
		if err == nil && n == 0 {
			l.mu.Lock()
			p.expires = time.Time{}
			l.mu.Unlock()
		}
		p.acquire.Unlock()
		if err != nil && !returning {
			l.log.Warn("admission: renewing a lease; it expires unless a renewal succeeds within TTL", "pool", key, "ttl", l.lcfg.TTL, "err", err)
		}
	}
}

// Close stops renewing and returns every unit not busy (with in-flight
// calls drained first, all of them).
func (l *Leases) Close() {
	l.stop()
	<-l.done
	l.renew(true)
}

// Halt stops renewing without returning anything, as a killed node would.
func (l *Leases) Halt() {
	l.stop()
	<-l.done
}

// Held reports the units this node holds per pool (for status and tests).
func (l *Leases) Held() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, p := range l.pools {
		if p.held > 0 {
			out[k] = p.held
		}
	}
	return out
}

// CheckReservation validates a new reservation against the unreserved
// minimum atomically across the cluster: the reservation is claimed in the
// ledger key with compare-and-set, so two nodes cannot both grant the last
// units. Others' reservations count as the larger of what the catalog shows
// and what they claimed within claimTTL (a claim not yet in the catalog).
func (l *Leases) CheckReservation(name string, r int) error {
	if err := l.Counter.CheckReservation(name, r); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for range casAttempts {
		claims := map[string]claim{}
		var rev uint64
		e, err := l.kv.Get(ctx, keyReservations)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("admission: read reservations: %w: %w", errdefs.ErrUnavailable, err)
		default:
			rev = e.Revision()
			_ = json.Unmarshal(e.Value(), &claims)
		}
		now := l.lcfg.Now()
		l.Counter.mu.Lock()
		others := l.Counter.sumReserve - l.Counter.reserved[name] - l.Counter.provisioned[name]
		for n, c := range claims {
			if now.Sub(time.UnixMilli(c.At)) > claimTTL {
				delete(claims, n)
				continue
			}
			if n != name && c.N > l.Counter.reserved[n] {
				others += c.N - l.Counter.reserved[n]
			}
		}
		l.Counter.mu.Unlock()
		if l.cfg.AccountLimit-others-r < l.cfg.UnreservedMin {
			return fmt.Errorf("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].: %w", l.cfg.UnreservedMin, errdefs.ErrInvalid)
		}
		claims[name] = claim{N: r, At: now.UnixMilli()}
		b, _ := json.Marshal(claims)
		if err := l.writeClaims(ctx, rev, b); err == nil || !errors.Is(err, errRetry) {
			return err
		}
	}
	return fmt.Errorf("admission: reservations changed %d times in a row: %w", casAttempts, errdefs.ErrUnavailable)
}

var errRetry = errors.New("changed since read")

// writeClaims writes the ledger if unchanged since revision rev (0: absent);
// errRetry when it changed.
func (l *Leases) writeClaims(ctx context.Context, rev uint64, b []byte) error {
	var err error
	if rev == 0 {
		_, err = l.kv.Create(ctx, keyReservations, b)
	} else {
		_, err = l.kv.Update(ctx, keyReservations, b, rev)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return errRetry
	}
	return fmt.Errorf("admission: claim reservation: %w: %w", errdefs.ErrUnavailable, err)
}

// ReleaseReservation withdraws name's claim once its reservation is gone
// from the catalog (deleted, or the function deleted), so it stops counting
// against others' at once instead of after claimTTL. Best effort: a claim
// left behind expires.
func (l *Leases) ReleaseReservation(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for range casAttempts {
		e, err := l.kv.Get(ctx, keyReservations)
		if err != nil {
			return
		}
		claims := map[string]claim{}
		_ = json.Unmarshal(e.Value(), &claims)
		if _, ok := claims[name]; !ok {
			return
		}
		delete(claims, name)
		b, _ := json.Marshal(claims)
		if err := l.writeClaims(ctx, e.Revision(), b); !errors.Is(err, errRetry) {
			return
		}
	}
}
