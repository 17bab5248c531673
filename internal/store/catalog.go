// Package store keeps icebox's function catalog and code on the engine
// (NATS JetStream): functions in the KV bucket "functions", code zips in the
// object store bucket "code".
//
// The invoke hot path reads the catalog on every call and must never wait on
// the engine, so Catalog serves reads from an in-memory copy of the whole
// bucket. A KV watch keeps that copy fresh, including writes made by other
// icebox nodes sharing the engine; local writes update it at once, so a
// caller always reads its own writes.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/engine"
	"icebox/internal/errdefs"
	"icebox/internal/model"
	"icebox/internal/policy"
)

const (
	functionsBucket = "functions"
	// MaxRecordBytes bounds one function's catalog record: its $LATEST,
	// published versions and aliases are one value, written whole, below
	// the engine's message limit (8 MiB embedded) with room for headers.
	MaxRecordBytes = 8<<20 - 64<<10
	// maxUpdateAttempts bounds Update's optimistic-concurrency retries; past
	// it the caller gets ErrConflict rather than an unbounded wait.
	maxUpdateAttempts = 10
)

// Catalog is the function catalog. Get and List never touch the engine.
//
// Cache invariant: an entry only ever moves to a higher KV revision. Both the
// watch and local writes update the cache; whichever lands second is ignored
// when it carries an older revision, so a late watch event can never undo a
// newer local write, and a local write the watch has already overtaken is
// dropped.
//
// Subscribers are told about cache transitions, not KV revisions: with history
// 1 the engine may coalesce quick successive writes before the watch delivers
// them, but each notification's old value is always the state this node last
// served (and announced) for that function.
type Catalog struct {
	kv     jetstream.KeyValue
	log    *slog.Logger
	cancel context.CancelFunc // stops the watch
	done   chan struct{}      // closed when the watch goroutine has exited
	kick   chan struct{}      // (cap 1) wakes the watch goroutine to notify
	once   sync.Once

	mu sync.RWMutex
	// fns holds every live function; an entry with fn == nil is a local
	// delete the watch has not delivered yet.
	fns map[string]cached
	// watchRev is the highest revision the watch has delivered: the cache
	// reflects every write up to it.
	watchRev uint64
	subs     []func(old, new *model.Function)
	pending  []change // cache transitions not yet handed to subs, in order
}

type cached struct {
	fn  *model.Function // private copy; never handed out while cached
	rev uint64
}

type change struct{ old, new *model.Function }

// OpenCatalog creates the bucket if needed, loads every function and starts
// watching for changes. It returns only once the cache holds the whole
// bucket, so a restarted daemon sees all its functions at once.
func OpenCatalog(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (_ *Catalog, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := openBucket(ctx, js, functionsBucket, "icebox function configurations ($LATEST), keyed by name")
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}

	// The watch lives as long as the catalog, not as long as ctx: cancelling
	// its context unsubscribes it.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			cancel()
		}
	}()
	w, err := kv.WatchAll(wctx)
	if err != nil {
		return nil, fmt.Errorf("catalog: watch: %w", engineErr(err))
	}
	c := &Catalog{
		kv: kv, log: log, cancel: cancel,
		done: make(chan struct{}), kick: make(chan struct{}, 1),
		fns: make(map[string]cached),
	}
	if err := load(ctx, w, c.observe); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	go c.watch(w)
	log.Debug("catalog loaded", "functions", len(c.fns), "revision", c.watchRev)
	return c, nil
}

// watch applies changes from the engine and hands every cache transition to
// the subscribers, until the watch is stopped. It keeps reading until the
// channel closes: the watcher blocks on a full channel, and a blocked watcher
// would never finish unsubscribing.
func (c *Catalog) watch(w jetstream.KeyWatcher) {
	defer close(c.done)
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil {
				c.observe(e)
			}
		case <-c.kick: // a local write
		}
		c.mu.Lock()
		pending, subs := c.pending, c.subs
		c.pending = nil
		c.mu.Unlock()
		for _, ch := range pending {
			for _, fn := range subs {
				fn(ch.old, ch.new)
			}
		}
	}
}

// observe applies one watch entry to the cache.
func (c *Catalog) observe(e jetstream.KeyValueEntry) {
	name, rev := e.Key(), e.Revision()
	var cur *model.Function
	if e.Operation() == jetstream.KeyValuePut {
		cur = new(model.Function)
		if err := json.Unmarshal(e.Value(), cur); err != nil {
			// Not ours to fix (another node's newer format?); skipping keeps
			// the rest of the catalog serving.
			c.log.Error("catalog: undecodable function ignored", "name", name, "revision", rev, "err", err)
			return
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watchRev = max(c.watchRev, rev)
	prev, ok := c.fns[name]
	if ok && prev.rev > rev {
		return // a local write is ahead of the watch
	}
	if cur == nil {
		delete(c.fns, name) // the watch has the delete now: no tombstone needed
	} else {
		c.fns[name] = cached{fn: cur, rev: rev}
	}
	if ok && prev.rev == rev {
		return // this node's own write, applied and announced already
	}
	c.changedLocked(prev.fn, cur)
}

// applyPut records a local write of fn at rev.
func (c *Catalog) applyPut(fn *model.Function, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev <= c.watchRev {
		return // the watch has delivered this write or a newer one
	}
	prev, ok := c.fns[fn.Name]
	if ok && prev.rev >= rev {
		return
	}
	cur := clone(fn)
	c.fns[fn.Name] = cached{fn: cur, rev: rev}
	c.changedLocked(prev.fn, cur)
}

// applyDelete records a local delete of the entry at rev. KV's Delete does
// not return the marker's revision, only that it is above rev, so rev+1 is
// used as a lower bound: it is newer than anything the key held and older
// than any later write to it.
func (c *Catalog) applyDelete(name string, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Absent: the watch has already delivered the delete (or a later one).
	// Newer: the key was written again after the delete.
	if prev, ok := c.fns[name]; ok && prev.fn != nil && prev.rev <= rev {
		c.fns[name] = cached{rev: rev + 1}
		c.changedLocked(prev.fn, nil)
	}
}

// changedLocked queues the transition old → cur for the subscribers and wakes
// the watch goroutine to deliver it. Subscribers get their own copy of cur,
// and old has just left the cache, so nothing they hold aliases the cache.
// Preconditions: mu held; cur is the value now cached (or nil).
func (c *Catalog) changedLocked(old, cur *model.Function) {
	if (old == nil && cur == nil) || len(c.subs) == 0 {
		return
	}
	if cur != nil {
		cur = clone(cur)
	}
	c.pending = append(c.pending, change{old, cur})
	select {
	case c.kick <- struct{}{}:
	default: // already kicked
	}
}

// Create stores a new function, stamping a fresh RevisionID and LastModified.
// It fails with ErrConflict when the name is taken.
func (c *Catalog) Create(ctx context.Context, fn model.Function) (model.Function, error) {
	if err := model.ValidateName(fn.Name); err != nil {
		return model.Function{}, err
	}
	fn = *clone(&fn)
	fn.RevisionID, fn.LastModified = model.NewUUID(), now()
	b, err := json.Marshal(&fn)
	if err != nil {
		return model.Function{}, fmt.Errorf("catalog: encode %q: %w", fn.Name, err)
	}
	rev, err := c.kv.Create(ctx, fn.Name, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return model.Function{}, fmt.Errorf("Function already exist: %s: %w", fn.Name, errdefs.ErrConflict)
	}
	if err != nil {
		return model.Function{}, fmt.Errorf("catalog: create %q: %w", fn.Name, engineErr(err))
	}
	c.applyPut(&fn, rev)
	return fn, nil
}

// Get returns the function from the cache. The result is the caller's own copy.
func (c *Catalog) Get(name string) (model.Function, error) {
	c.mu.RLock()
	e := c.fns[name]
	c.mu.RUnlock()
	if e.fn == nil {
		return model.Function{}, notFound(name)
	}
	return *clone(e.fn), nil
}

// View returns the function name as the qualifier q names it
// (model.Function.View), copying only what runs: a $LATEST view leaves its
// published versions, aliases and provisioned concurrency out, so that
// resolving a call costs the same however many versions a function has.
func (c *Catalog) View(name, q string) (model.Function, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.fns[name]
	if e.fn == nil {
		return model.Function{}, notFound(name)
	}
	v, err := e.fn.View(q)
	if err != nil {
		return model.Function{}, err
	}
	v.Versions, v.Aliases, v.Provisioned = nil, nil, nil
	return *clone(&v), nil
}

// Alias returns the alias called alias of the function name.
func (c *Catalog) Alias(name, alias string) (model.Alias, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.fns[name]
	if e.fn == nil {
		return model.Alias{}, notFound(name)
	}
	a := e.fn.AliasNamed(alias)
	if a == nil {
		return model.Alias{}, fmt.Errorf("Alias not found: %s:%s: %w", name, alias, errdefs.ErrNotFound)
	}
	out := *a
	out.Weights = maps.Clone(a.Weights)
	out.Policy = clonePolicy(a.Policy)
	out.EventInvoke = cloneEventInvoke(a.EventInvoke)
	return out, nil
}

// List returns every function, sorted by name.
func (c *Catalog) List() []model.Function {
	c.mu.RLock()
	out := make([]model.Function, 0, len(c.fns))
	for _, e := range c.fns {
		if e.fn != nil {
			out = append(out, *clone(e.fn))
		}
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b model.Function) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// UsesCode reports whether any function refers to the code key (a
// CodeSha256) as its code or a layer's; a CodeStore's collection keeps
// such code.
func (c *Catalog) UsesCode(key string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.fns {
		if e.fn != nil && e.fn.UsesCode(key) {
			return true
		}
	}
	return false
}

// Update applies mutate to the stored function and writes it back only if
// nobody wrote in between (compare-and-set on the KV revision), retrying on a
// lost race with the then-current value. mutate may run more than once and its
// error is returned unchanged; it must not rename the function. The write gets
// a fresh RevisionID and LastModified.
func (c *Catalog) Update(ctx context.Context, name string, mutate func(*model.Function) error) (model.Function, error) {
	if err := model.ValidateName(name); err != nil {
		return model.Function{}, err
	}
	for attempt := 1; ; attempt++ {
		// Read the engine, not the cache: the cache may lag another node's write.
		e, err := c.kv.Get(ctx, name)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return model.Function{}, notFound(name)
		}
		if err != nil {
			return model.Function{}, fmt.Errorf("catalog: get %q: %w", name, engineErr(err))
		}
		var fn model.Function
		if err := json.Unmarshal(e.Value(), &fn); err != nil {
			return model.Function{}, fmt.Errorf("catalog: decode %q at revision %d: %w", name, e.Revision(), err)
		}
		if err := mutate(&fn); err != nil {
			return model.Function{}, err
		}
		if fn.Name != name {
			return model.Function{}, fmt.Errorf("catalog: update of %q renamed it to %q: %w", name, fn.Name, errdefs.ErrInvalid)
		}
		fn.RevisionID, fn.LastModified = model.NewUUID(), now()
		b, err := json.Marshal(&fn)
		if err != nil {
			return model.Function{}, fmt.Errorf("catalog: encode %q: %w", name, err)
		}
		if len(b) > MaxRecordBytes {
			return model.Function{}, fmt.Errorf("function %s would take %d bytes of icebox's catalog, over its limit of %d for one function with its versions and aliases: delete versions it no longer needs: %w", name, len(b), MaxRecordBytes, errdefs.ErrInvalid)
		}
		rev, err := c.kv.Update(ctx, name, b, e.Revision())
		if err == nil {
			c.applyPut(&fn, rev)
			return fn, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return model.Function{}, fmt.Errorf("catalog: update %q: %w", name, engineErr(err))
		}
		if attempt == maxUpdateAttempts {
			return model.Function{}, fmt.Errorf("function %q changed concurrently %d times in a row: %w", name, attempt, errdefs.ErrConflict)
		}
		if err := backoff(ctx, attempt); err != nil {
			return model.Function{}, err
		}
	}
}

// Delete removes a function; ErrNotFound if there is none.
func (c *Catalog) Delete(ctx context.Context, name string) error {
	if err := model.ValidateName(name); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		e, err := c.kv.Get(ctx, name)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return notFound(name)
		}
		if err != nil {
			return fmt.Errorf("catalog: get %q: %w", name, engineErr(err))
		}
		// Conditional on the revision read, so "absent" is decided atomically
		// with the delete.
		err = c.kv.Delete(ctx, name, jetstream.LastRevision(e.Revision()))
		if err == nil {
			c.applyDelete(name, e.Revision())
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("catalog: delete %q: %w", name, engineErr(err))
		}
		if attempt == maxUpdateAttempts {
			return fmt.Errorf("function %q changed concurrently %d times in a row: %w", name, attempt, errdefs.ErrConflict)
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// Subscribe registers fn to be called after each change to a function has
// reached the cache: old == nil for a create, new == nil for a delete. Changes
// made by other nodes are included. Calls come one at a time from the watch
// goroutine, in the order the cache changed; fn must not block, and must treat
// its arguments as read-only (all subscribers share them).
func (c *Catalog) Subscribe(fn func(old, new *model.Function)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Copy on write: the watch goroutine iterates the slice without the lock.
	c.subs = append(slices.Clip(c.subs), fn)
}

// Close stops the watch and waits for the watch goroutine, so no subscriber
// runs after Close returns. Get and List keep serving the last state.
func (c *Catalog) Close() {
	c.once.Do(func() {
		c.cancel()
		<-c.done
	})
}

func notFound(name string) error {
	return fmt.Errorf("Function not found: %s: %w", name, errdefs.ErrNotFound)
}

// engineErr classifies a failure to talk to the engine as ErrUnavailable,
// keeping the cause (and context errors as they are).
func engineErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", errdefs.ErrUnavailable, err)
}

// backoff waits a random time below an exponentially growing bound (2 ms,
// 4 ms, … capped at 50 ms) so racing writers fall out of lockstep.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(min(time.Millisecond<<attempt, 50*time.Millisecond))))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// clone deep-copies the reference fields so cache entries never alias memory a
// caller holds.
func clone(f *model.Function) *model.Function {
	c := *f
	c.Environment = maps.Clone(f.Environment)
	c.Architectures = slices.Clone(f.Architectures)
	c.URLs = slices.Clone(f.URLs)
	c.Layers = slices.Clone(f.Layers)
	c.Vpc = f.Vpc.Clone()
	c.Tags = maps.Clone(f.Tags)
	c.Policy = clonePolicy(f.Policy)
	c.EventInvoke = cloneEventInvoke(f.EventInvoke)
	if f.Logging != nil {
		l := *f.Logging
		c.Logging = &l
	}
	if f.ReservedConcurrency != nil {
		n := *f.ReservedConcurrency
		c.ReservedConcurrency = &n
	}
	if f.Versions != nil {
		c.Versions = make([]model.Function, len(f.Versions))
		for i := range f.Versions {
			c.Versions[i] = *clone(&f.Versions[i])
		}
	}
	if f.Aliases != nil {
		c.Aliases = make([]model.Alias, len(f.Aliases))
		for i, a := range f.Aliases {
			a.Weights = maps.Clone(a.Weights)
			a.Policy = clonePolicy(a.Policy)
			a.EventInvoke = cloneEventInvoke(a.EventInvoke)
			c.Aliases[i] = a
		}
	}
	c.Provisioned = slices.Clone(f.Provisioned)
	return &c
}

func clonePolicy(p *policy.Document) *policy.Document {
	if p == nil {
		return nil
	}
	c := *p
	c.Statement = slices.Clone(p.Statement)
	return &c
}

func cloneEventInvoke(e *model.EventInvokeConfig) *model.EventInvokeConfig {
	if e == nil {
		return nil
	}
	c := *e
	return &c
}

func now() time.Time { return time.Now().UTC() }

// load passes each value the watch w delivers to observe until it has
// delivered the bucket's initial values.
func load(ctx context.Context, w jetstream.KeyWatcher, observe func(jetstream.KeyValueEntry)) error {
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watch closed while loading: %w", errdefs.ErrUnavailable)
			}
			if e == nil { // marker: initial values delivered
				return nil
			}
			observe(e)
		case <-ctx.Done():
			return fmt.Errorf("loading: %w", ctx.Err())
		}
	}
}

// openBucket creates a one-revision, file-backed KV bucket, or opens it as it
// is when it exists with another configuration (an operator may have raised
// replicas on a cluster).
func openBucket(ctx context.Context, js jetstream.JetStream, bucket, description string) (jetstream.KeyValue, error) {
	kv, err := engine.OpenKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: bucket, Description: description, History: 1, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("open bucket %q: %w", bucket, engineErr(err))
	}
	return kv, nil
}
