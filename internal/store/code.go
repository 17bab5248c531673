package store

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/errdefs"
)

const codeBucket = "code"

// CodeConfig configures a CodeStore. Zero fields take the documented defaults.
type CodeConfig struct {
	// InUse reports whether a function refers to a code key. With it, opening
	// the store also deletes complete objects no function uses (a crash
	// between storing the code and creating the function leaves one); nil
	// keeps them.
	InUse func(key string) bool
	// Grace protects what was written recently from collection: it may
	// belong to an upload or a CreateFunction still running on another node
	// sharing the engine. Default 1 minute.
	Grace time.Duration
	// Log receives what collection did. Default: discard.
	Log *slog.Logger
}

func (c *CodeConfig) setDefaults() {
	if c.Grace == 0 {
		c.Grace = time.Minute
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Validate checks a CodeConfig.
func (c CodeConfig) Validate() error {
	if c.Grace < 0 {
		return fmt.Errorf("code store: Grace %s is negative: %w", c.Grace, errdefs.ErrInvalid)
	}
	return nil
}

// CodeStore keeps code zips in the object store, content-addressed: the key is
// the zip's CodeSha256, so the same key always names the same bytes.
type CodeStore struct {
	obs    jetstream.ObjectStore
	stream jetstream.Stream // the bucket's stream, for collection
	cfg    CodeConfig
}

// OpenCodeStore creates the bucket if needed and collects what interrupted
// uploads left in it (see collect). Leftovers younger than cfg.Grace are
// collected by a second pass once they are old enough.
func OpenCodeStore(ctx context.Context, js jetstream.JetStream, cfg CodeConfig) (*CodeStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	obs, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      codeBucket,
		Description: "icebox code zips, keyed by SHA-256",
		Storage:     jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		obs, err = js.ObjectStore(ctx, codeBucket) // configured differently by an operator
	}
	if err != nil {
		return nil, fmt.Errorf("code store: open bucket %q: %w", codeBucket, engineErr(err))
	}
	stream, err := js.Stream(ctx, objStream)
	if err != nil {
		return nil, fmt.Errorf("code store: open stream %q: %w", objStream, engineErr(err))
	}
	s := &CodeStore{obs: obs, stream: stream, cfg: cfg}
	young, err := s.collect(ctx)
	if err != nil {
		// Collection only reclaims space: a store that cannot collect
		// still serves.
		cfg.Log.Warn("code store: collecting leftovers", "err", err)
	}
	if young {
		// Runs once, off the start path, with its own deadline.
		time.AfterFunc(cfg.Grace, func() {
			ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
			defer cancel()
			if _, err := s.collect(ctx); err != nil {
				cfg.Log.Warn("code store: collecting leftovers", "err", err)
			}
		})
	}
	return s, nil
}

// Put stores zip under key, which must be its CodeSha256 (not verified here:
// the caller has just computed it). Storing a key that is already present is a
// no-op, as the content is the same, except that an old object's time is
// refreshed: collection spares recent objects, so one that a CreateFunction is
// about to refer to is never collected as unused meanwhile.
func (s *CodeStore) Put(ctx context.Context, key string, zip []byte) error {
	name, err := objectName(key)
	if err != nil {
		return err
	}
	// An object's info is published after its last chunk, so an existing
	// info means a complete object.
	if info, err := s.obs.GetInfo(ctx, name); err == nil {
		if time.Since(info.ModTime) < s.cfg.Grace/2 {
			return nil
		}
		if err := s.obs.UpdateMeta(ctx, name, info.ObjectMeta); err == nil {
			return nil
		} else if !errors.Is(err, jetstream.ErrUpdateMetaDeleted) {
			return fmt.Errorf("code store: refresh %s: %w", key, engineErr(err))
		}
		// Deleted meanwhile: store it again.
	} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("code store: stat %s: %w", key, engineErr(err))
	}
	if _, err := s.obs.PutBytes(ctx, name, zip); err != nil {
		return fmt.Errorf("code store: put %s: %w", key, engineErr(err))
	}
	return nil
}

// Get returns the zip stored under key; ErrNotFound if there is none. The
// object store checks the content against its digest on the way out.
func (s *CodeStore) Get(ctx context.Context, key string) ([]byte, error) {
	name, err := objectName(key)
	if err != nil {
		return nil, err
	}
	b, err := s.obs.GetBytes(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("code %s: %w", key, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("code store: get %s: %w", key, engineErr(err))
	}
	return b, nil
}

// Delete removes the zip stored under key; ErrNotFound if there is none.
func (s *CodeStore) Delete(ctx context.Context, key string) error {
	name, err := objectName(key)
	if err != nil {
		return err
	}
	// The object store's Delete happily deletes a deleted object again;
	// GetInfo (which hides deleted ones) tells absence apart.
	if _, err := s.obs.GetInfo(ctx, name); errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("code %s: %w", key, errdefs.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("code store: stat %s: %w", key, engineErr(err))
	}
	if err := s.obs.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("code store: delete %s: %w", key, engineErr(err))
	}
	return nil
}

// objectName maps a CodeSha256 (standard base64, which may hold '/' and '+')
// to the hex of the digest: an object name that is safe everywhere and still
// greppable against `sha256sum` output.
func objectName(key string) (string, error) {
	sum, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(sum) == 0 {
		return "", fmt.Errorf("code key %q is not a base64 CodeSha256: %w", key, errdefs.ErrInvalid)
	}
	return hex.EncodeToString(sum), nil
}

// objectKey is the inverse of objectName; false for a name icebox did not make.
func objectKey(name string) (string, bool) {
	sum, err := hex.DecodeString(name)
	if err != nil || len(sum) == 0 {
		return "", false
	}
	return base64.StdEncoding.EncodeToString(sum), true
}
