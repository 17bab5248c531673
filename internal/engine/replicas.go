package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
)

// MaxReplicas is JetStream's limit on a stream's replicas.
const MaxReplicas = 5

// replicated is the JetStream API every icebox package gets from the engine.
// It applies the replica policy to each stream, KV bucket and object store
// created through it, so no package has to know about it:
//
//   - a new asset gets max(asked, Config.Replicas) replicas;
//   - an existing asset with fewer is raised to that (how `--replicas 3` on
//     the next start raises a store);
//   - an existing asset with more keeps them: an operator who raised one with
//     `nats stream edit --replicas` is never undone, even by CreateOrUpdate*
//     calls that would otherwise write the caller's (lower) count back.
//
// Update* calls pass through untouched: they state a whole configuration on
// purpose.
type replicated struct {
	jetstream.JetStream
	replicas int
	log      *slog.Logger
}

// want returns the replica count the asset backed by stream should have and
// raises the stream to it first when it exists with fewer.
func (r replicated) want(ctx context.Context, stream string, asked int) (int, error) {
	n := max(asked, r.replicas, 1)
	s, err := r.JetStream.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return n, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	cfg := s.CachedInfo().Config
	if cfg.Replicas >= n {
		return cfg.Replicas, nil
	}
	old := cfg.Replicas
	cfg.Replicas = n
	if _, err := r.JetStream.UpdateStream(ctx, cfg); err != nil {
		return 0, fmt.Errorf("raise replicas of stream %s from %d to %d: %w", stream, old, n, err)
	}
	r.log.Info("engine: raised replicas", "stream", stream, "from", old, "to", n)
	return n, nil
}

func (r replicated) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	n, err := r.want(ctx, cfg.Name, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	cfg.Replicas = n
	return r.JetStream.CreateStream(ctx, cfg)
}

func (r replicated) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	n, err := r.want(ctx, cfg.Name, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	cfg.Replicas = n
	return r.JetStream.CreateOrUpdateStream(ctx, cfg)
}

func (r replicated) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	n, err := r.want(ctx, "KV_"+cfg.Bucket, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	cfg.Replicas = n
	return r.JetStream.CreateKeyValue(ctx, cfg)
}

func (r replicated) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	n, err := r.want(ctx, "KV_"+cfg.Bucket, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	cfg.Replicas = n
	return r.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
}

func (r replicated) CreateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	n, err := r.want(ctx, "OBJ_"+cfg.Bucket, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	cfg.Replicas = n
	return r.JetStream.CreateObjectStore(ctx, cfg)
}

func (r replicated) CreateOrUpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	n, err := r.want(ctx, "OBJ_"+cfg.Bucket, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	cfg.Replicas = n
	return r.JetStream.CreateOrUpdateObjectStore(ctx, cfg)
}
