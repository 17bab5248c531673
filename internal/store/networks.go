package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/errdefs"
	"icebox/internal/model"
)

const networksBucket = "networks"

// Networks keeps the operator's network definitions in the KV bucket
// "networks", keyed by name, with an in-memory copy that a KV watch keeps
// fresh (other nodes' writes included) and local writes update at once.
// Each change hands the whole set to the subscribers, which apply it to the
// sandboxes' policy.
type Networks struct {
	kv     jetstream.KeyValue
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	nets map[string]netEntry
	subs []func([]model.Network)
	// notifyMu orders notifications, so subscribers see sets in the order
	// the cache took them.
	notifyMu sync.Mutex
}

type netEntry struct {
	n   model.Network
	rev uint64
	del bool // a local delete the watch has not delivered yet
}

// OpenNetworks creates the bucket if needed, loads it and starts watching.
func OpenNetworks(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (_ *Networks, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := openBucket(ctx, js, networksBucket, "icebox networks (function VpcConfig subnets), keyed by name")
	if err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			cancel()
		}
	}()
	w, err := kv.WatchAll(wctx)
	if err != nil {
		return nil, fmt.Errorf("networks: watch: %w", engineErr(err))
	}
	s := &Networks{kv: kv, log: log, cancel: cancel, done: make(chan struct{}), nets: map[string]netEntry{}}
	if err := load(ctx, w, func(e jetstream.KeyValueEntry) { s.observe(e) }); err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	go func() {
		defer close(s.done)
		for e := range w.Updates() {
			if e != nil && s.observe(e) {
				s.notify()
			}
		}
	}()
	return s, nil
}

// observe applies a watch entry; it reports whether the cache changed.
func (s *Networks) observe(e jetstream.KeyValueEntry) bool {
	var n model.Network
	del := e.Operation() != jetstream.KeyValuePut
	if !del {
		if err := json.Unmarshal(e.Value(), &n); err != nil {
			s.log.Error("networks: undecodable network ignored", "name", e.Key(), "err", err)
			return false
		}
	}
	return s.apply(e.Key(), n, e.Revision(), del)
}

// apply records name's value at rev unless the cache holds a later one.
func (s *Networks) apply(name string, n model.Network, rev uint64, del bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.nets[name]; ok && prev.rev >= rev {
		return false
	}
	s.nets[name] = netEntry{n: n, rev: rev, del: del}
	return true
}

// Subscribe calls fn with every network now and after each change.
func (s *Networks) Subscribe(fn func([]model.Network)) {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	s.mu.Lock()
	s.subs = append(s.subs, fn)
	s.mu.Unlock()
	fn(s.List())
}

func (s *Networks) notify() {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	s.mu.Lock()
	subs := slices.Clone(s.subs)
	s.mu.Unlock()
	list := s.List()
	for _, fn := range subs {
		fn(list)
	}
}

// Put creates or replaces a network (validated by the caller).
func (s *Networks) Put(ctx context.Context, n model.Network) (model.Network, error) {
	b, err := json.Marshal(n)
	if err != nil {
		return model.Network{}, err
	}
	rev, err := s.kv.Put(ctx, n.Name, b)
	if err != nil {
		return model.Network{}, fmt.Errorf("networks: put %s: %w", n.Name, engineErr(err))
	}
	if s.apply(n.Name, n, rev, false) {
		s.notify()
	}
	return n, nil
}

// Get returns the network called name.
func (s *Networks) Get(name string) (model.Network, error) {
	s.mu.Lock()
	e, ok := s.nets[name]
	s.mu.Unlock()
	if !ok || e.del {
		return model.Network{}, fmt.Errorf("network %s does not exist: %w", name, errdefs.ErrNotFound)
	}
	return e.n, nil
}

// List returns every network, by name.
func (s *Networks) List() []model.Network {
	s.mu.Lock()
	out := make([]model.Network, 0, len(s.nets))
	for _, e := range s.nets {
		if !e.del {
			out = append(out, e.n)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b model.Network) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Delete removes the network called name.
func (s *Networks) Delete(ctx context.Context, name string) error {
	if _, err := s.Get(name); err != nil {
		return err
	}
	if err := s.kv.Delete(ctx, name); err != nil {
		return fmt.Errorf("networks: delete %s: %w", name, engineErr(err))
	}
	// The delete's revision is not returned: the entry is marked now and
	// the watch's delete marker (a higher revision) replaces it.
	s.mu.Lock()
	e := s.nets[name]
	e.del = true
	s.nets[name] = e
	s.mu.Unlock()
	s.notify()
	return nil
}

// Close stops the watch.
func (s *Networks) Close() {
	s.cancel()
	<-s.done
}
