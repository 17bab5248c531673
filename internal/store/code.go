package store

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/errdefs"
)

const codeBucket = "code"

// CodeStore keeps code zips in the object store, content-addressed: the key is
// the zip's CodeSha256, so the same key always names the same bytes.
type CodeStore struct {
	obs jetstream.ObjectStore
}

// OpenCodeStore creates the bucket if needed.
func OpenCodeStore(ctx context.Context, js jetstream.JetStream) (*CodeStore, error) {
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
	return &CodeStore{obs: obs}, nil
}

// Put stores zip under key, which must be its CodeSha256 (not verified here:
// the caller has just computed it). Storing a key that is already present is a
// no-op, as the content is the same.
func (s *CodeStore) Put(ctx context.Context, key string, zip []byte) error {
	name, err := objectName(key)
	if err != nil {
		return err
	}
	// An object's info is published after its last chunk, so an existing
	// info means a complete object.
	if _, err := s.obs.GetInfo(ctx, name); err == nil {
		return nil
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
