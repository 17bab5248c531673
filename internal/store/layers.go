package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/errdefs"
	"icebox/internal/model"
)

const layersBucket = "layers"

// LayerStore keeps layer versions in the KV bucket "layers"; their content
// is in the CodeStore, under its CodeSha256 like function code.
//
// Keys: "<name>" holds the last version number handed out for a layer, and
// "<name>.<version>" each version (layer names cannot hold a dot). The
// counter outlives every version, so a number is never reused, even after
// all of a layer's versions are deleted. Layers are read by the control
// API and by cold starts never (a function keeps what it needs of its
// layers), so reads go to the engine.
type LayerStore struct {
	kv jetstream.KeyValue
}

// OpenLayerStore creates the bucket if needed.
func OpenLayerStore(ctx context.Context, js jetstream.JetStream) (*LayerStore, error) {
	kv, err := openBucket(ctx, js, layersBucket, "icebox layer versions, keyed by name.version, and each layer's last version number")
	if err != nil {
		return nil, fmt.Errorf("layer store: %w", err)
	}
	return &LayerStore{kv: kv}, nil
}

func versionKey(name string, version int64) string {
	return name + "." + strconv.FormatInt(version, 10)
}

// Publish stores lv as its layer's next version, stamping Version, Created
// and RevisionID, and returns it.
func (s *LayerStore) Publish(ctx context.Context, lv model.LayerVersion) (model.LayerVersion, error) {
	n, err := s.nextVersion(ctx, lv.Name)
	if err != nil {
		return model.LayerVersion{}, err
	}
	lv.Version, lv.Created, lv.RevisionID = n, now(), model.NewUUID()
	b, err := json.Marshal(&lv)
	if err != nil {
		return model.LayerVersion{}, fmt.Errorf("layer store: encode %s: %w", lv.Name, err)
	}
	// The number is ours alone: nobody else can have written this key.
	if _, err := s.kv.Create(ctx, versionKey(lv.Name, n), b); err != nil {
		return model.LayerVersion{}, fmt.Errorf("layer store: create %s: %w", versionKey(lv.Name, n), engineErr(err))
	}
	return lv, nil
}

// nextVersion takes the layer's next version number (compare-and-set on its
// counter). A crash after taking it leaves a gap, never a reuse.
func (s *LayerStore) nextVersion(ctx context.Context, name string) (int64, error) {
	for attempt := 1; ; attempt++ {
		var last int64
		var err error
		e, gerr := s.kv.Get(ctx, name)
		switch {
		case gerr == nil:
			if last, err = strconv.ParseInt(string(e.Value()), 10, 64); err != nil {
				return 0, fmt.Errorf("layer store: counter of %s: %w", name, err)
			}
			_, err = s.kv.Update(ctx, name, []byte(strconv.FormatInt(last+1, 10)), e.Revision())
		case errors.Is(gerr, jetstream.ErrKeyNotFound):
			_, err = s.kv.Create(ctx, name, []byte("1"))
		default:
			return 0, fmt.Errorf("layer store: counter of %s: %w", name, engineErr(gerr))
		}
		if err == nil {
			return last + 1, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("layer store: counter of %s: %w", name, engineErr(err))
		}
		if attempt == maxUpdateAttempts {
			return 0, fmt.Errorf("layer %q published concurrently %d times in a row: %w", name, attempt, errdefs.ErrConflict)
		}
		if err := backoff(ctx, attempt); err != nil {
			return 0, err
		}
	}
}

// Get returns one version; ErrNotFound when it does not exist (or was deleted).
func (s *LayerStore) Get(ctx context.Context, name string, version int64) (model.LayerVersion, error) {
	lv, _, err := s.get(ctx, name, version)
	return lv, err
}

func (s *LayerStore) get(ctx context.Context, name string, version int64) (model.LayerVersion, uint64, error) {
	e, err := s.kv.Get(ctx, versionKey(name, version))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return model.LayerVersion{}, 0, fmt.Errorf("The resource you requested does not exist.: %w", errdefs.ErrNotFound)
	}
	if err != nil {
		return model.LayerVersion{}, 0, fmt.Errorf("layer store: get %s: %w", versionKey(name, version), engineErr(err))
	}
	var lv model.LayerVersion
	if err := json.Unmarshal(e.Value(), &lv); err != nil {
		return model.LayerVersion{}, 0, fmt.Errorf("layer store: decode %s: %w", versionKey(name, version), err)
	}
	return lv, e.Revision(), nil
}

// List returns every existing version, of the layer name or (name "") of
// all layers, sorted by name and then newest version first. One watch
// streams the current values, rather than a read per key.
func (s *LayerStore) List(ctx context.Context, name string) ([]model.LayerVersion, error) {
	filter := "*.*" // versions only: counters are one token
	if name != "" {
		filter = name + ".*"
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.kv.WatchFiltered(ctx, []string{filter}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("layer store: list: %w", engineErr(err))
	}
	defer w.Stop()
	var out []model.LayerVersion
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("layer store: list: watch closed: %w", errdefs.ErrUnavailable)
			}
			if e == nil { // every current value delivered
				slices.SortFunc(out, func(a, b model.LayerVersion) int {
					if c := strings.Compare(a.Name, b.Name); c != 0 {
						return c
					}
					return int(b.Version - a.Version)
				})
				return out, nil
			}
			var lv model.LayerVersion
			if err := json.Unmarshal(e.Value(), &lv); err != nil {
				return nil, fmt.Errorf("layer store: decode %s: %w", e.Key(), err)
			}
			out = append(out, lv)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Delete removes a version; deleting one that does not exist succeeds, as
// DeleteLayerVersion does. Its number stays taken.
func (s *LayerStore) Delete(ctx context.Context, name string, version int64) error {
	if err := s.kv.Delete(ctx, versionKey(name, version)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("layer store: delete %s: %w", versionKey(name, version), engineErr(err))
	}
	return nil
}

// Update applies mutate to a version and writes it back only if nobody
// wrote in between, retrying on a lost race; the write gets a fresh
// RevisionID. mutate may run more than once; its error is returned as is.
func (s *LayerStore) Update(ctx context.Context, name string, version int64, mutate func(*model.LayerVersion) error) (model.LayerVersion, error) {
	for attempt := 1; ; attempt++ {
		lv, rev, err := s.get(ctx, name, version)
		if err != nil {
			return model.LayerVersion{}, err
		}
		if err := mutate(&lv); err != nil {
			return model.LayerVersion{}, err
		}
		lv.RevisionID = model.NewUUID()
		b, err := json.Marshal(&lv)
		if err != nil {
			return model.LayerVersion{}, fmt.Errorf("layer store: encode %s: %w", versionKey(name, version), err)
		}
		_, err = s.kv.Update(ctx, versionKey(name, version), b, rev)
		if err == nil {
			return lv, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return model.LayerVersion{}, fmt.Errorf("layer store: update %s: %w", versionKey(name, version), engineErr(err))
		}
		if attempt == maxUpdateAttempts {
			return model.LayerVersion{}, fmt.Errorf("layer version %s changed concurrently %d times in a row: %w", versionKey(name, version), attempt, errdefs.ErrConflict)
		}
		if err := backoff(ctx, attempt); err != nil {
			return model.LayerVersion{}, err
		}
	}
}

// usesCodeTimeout bounds UsesCode's reads of the engine.
const usesCodeTimeout = 10 * time.Second

// UsesCode reports whether a layer version's content is the code key (a
// CodeSha256); a CodeStore's collection keeps such code. When the engine
// cannot say, it answers true: keeping garbage is better than losing a layer.
func (s *LayerStore) UsesCode(key string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), usesCodeTimeout)
	defer cancel()
	all, err := s.List(ctx, "")
	if err != nil {
		return true
	}
	return slices.ContainsFunc(all, func(lv model.LayerVersion) bool { return lv.CodeSha256 == key })
}
