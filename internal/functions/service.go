// Package functions manages functions' configuration and code: validation,
// content-addressed code storage on the engine, and the on-disk cache of
// unpacked code that sandboxes mount at /var/task.
package functions

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"icebox/internal/errdefs"
	"icebox/internal/model"
	"icebox/internal/policy"
	"icebox/internal/store"
	"icebox/internal/store/codezip"
)

// Config configures the service.
type Config struct {
	// CodeDir caches unpacked code, one directory per CodeSha256.
	CodeDir string
	// CheckRuntime says whether the host can run a runtime id, and if not
	// what is missing (an error wrapping errdefs.ErrInvalid).
	CheckRuntime func(id string) error
	// Reservations checks a reserved concurrency against the account's
	// unreserved minimum.
	Reservations interface {
		CheckReservation(name string, r int) error
		CheckProvisioned(name string, reserved *int, n int) error
	}
	// Layers keeps layer versions; nil refuses the layer operations.
	Layers *store.LayerStore
}

// Service is the control plane for functions.
type Service struct {
	cfg     Config
	catalog *store.Catalog
	code    *store.CodeStore
	log     *slog.Logger

	// extracting serialises unpacking of one code sha.
	mu         sync.Mutex
	extracting map[string]*sync.Mutex
}

// New makes the service.
func New(cfg Config, c *store.Catalog, code *store.CodeStore, log *slog.Logger) (*Service, error) {
	if cfg.CodeDir == "" || cfg.CheckRuntime == nil || cfg.Reservations == nil {
		return nil, errors.New("functions: CodeDir, CheckRuntime and Reservations are required")
	}
	// The unpacked code is only a cache of the engine's object store. A crash
	// can leave half-written or temporary directories in it, so it starts empty.
	if err := os.RemoveAll(cfg.CodeDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.CodeDir, 0o755); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, catalog: c, code: code, log: log, extracting: map[string]*sync.Mutex{}}, nil
}

// Get returns a function from the catalog cache.
func (s *Service) Get(name string) (model.Function, error) { return s.catalog.Get(name) }

// List returns every function, sorted by name.
func (s *Service) List() []model.Function { return s.catalog.List() }

func (s *Service) validate(fn *model.Function) error {
	if fn.Runtime == "" || fn.Handler == "" {
		return fmt.Errorf("Runtime and Handler are mandatory parameters for functions created with deployment packages.: %w", errdefs.ErrInvalid)
	}
	if err := s.cfg.CheckRuntime(fn.Runtime); err != nil {
		return err
	}
	return fn.Validate()
}

// storeCode checks a zip (with layers, that code and layers together stay
// within Lambda's unzipped limit) and stores it on the engine. A function's
// code is unpacked at once too, so the first cold start does not pay for it;
// a layer's on the first cold start that uses it.
func (s *Service) storeCode(ctx context.Context, zip []byte, layers []model.FunctionLayer, unpack bool) (codezip.Info, error) {
	if len(zip) == 0 {
		return codezip.Info{}, fmt.Errorf("Please provide a source for function code.: %w", errdefs.ErrInvalid)
	}
	info, err := codezip.Inspect(zip)
	if err != nil {
		return info, err
	}
	if err := model.CheckUnzippedTotal(info.UnzippedSize, layers); err != nil {
		return info, err
	}
	if err := s.code.Put(ctx, info.Sha256Base64, zip); err != nil {
		return info, err
	}
	if unpack {
		if _, err := s.unpack(info.Sha256Base64, zip); err != nil {
			return info, err
		}
	}
	return info, nil
}

// Create adds a function.
func (s *Service) Create(ctx context.Context, fn model.Function, zip []byte) (model.Function, error) {
	fn.ApplyDefaults()
	if err := s.validate(&fn); err != nil {
		return model.Function{}, err
	}
	if _, err := s.catalog.Get(fn.Name); err == nil {
		return model.Function{}, fmt.Errorf("Function already exist: %s: %w", fn.Name, errdefs.ErrConflict)
	}
	info, err := s.storeCode(ctx, zip, fn.Layers, true)
	if err != nil {
		return model.Function{}, err
	}
	fn.CodeSha256, fn.CodeSize, fn.UnzippedSize = info.Sha256Base64, info.Size, info.UnzippedSize
	return s.catalog.Create(ctx, fn)
}

// UpdateCode replaces a function's code. revisionID, when set, must match.
func (s *Service) UpdateCode(ctx context.Context, name string, zip []byte, revisionID string) (model.Function, error) {
	cur, err := s.catalog.Get(name)
	if err != nil {
		return model.Function{}, err
	}
	info, err := s.storeCode(ctx, zip, cur.Layers, true)
	if err != nil {
		return model.Function{}, err
	}
	var old string
	fn, err := s.catalog.Update(ctx, name, func(f *model.Function) error {
		if err := checkRevision(f, revisionID); err != nil {
			return err
		}
		if err := model.CheckUnzippedTotal(info.UnzippedSize, f.Layers); err != nil {
			return err
		}
		old = f.CodeSha256
		f.CodeSha256, f.CodeSize, f.UnzippedSize = info.Sha256Base64, info.Size, info.UnzippedSize
		return nil
	})
	if err == nil && old != info.Sha256Base64 {
		s.collect(ctx, old)
	}
	return fn, err
}

// UpdateConfig applies mutate to a function's configuration and validates
// the result. revisionID, when set, must match.
func (s *Service) UpdateConfig(ctx context.Context, name, revisionID string, mutate func(*model.Function)) (model.Function, error) {
	var old []model.FunctionLayer
	fn, err := s.catalog.Update(ctx, name, func(f *model.Function) error {
		if err := checkRevision(f, revisionID); err != nil {
			return err
		}
		old = slices.Clone(f.Layers)
		mutate(f)
		if err := s.validate(f); err != nil {
			return err
		}
		if len(f.Layers) == 0 || slices.Equal(old, f.Layers) {
			return nil
		}
		size, err := s.unzippedSize(ctx, f)
		if err != nil {
			return err
		}
		return model.CheckUnzippedTotal(size, f.Layers)
	})
	if err == nil && !slices.Equal(old, fn.Layers) {
		s.collectLayers(ctx, old)
	}
	return fn, err
}

// checkRevision refuses a change based on a stale RevisionId.
func checkRevision(f *model.Function, revisionID string) error {
	if revisionID != "" && revisionID != f.RevisionID {
		return errRevision
	}
	return nil
}

var errRevision = fmt.Errorf("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id: %w", errdefs.ErrPreconditionFailed)

// AddPermission adds a statement to the resource policy of a function's
// qualifier q ("" for the function). Its Sid must be new; revisionID, when
// set, must match.
func (s *Service) AddPermission(ctx context.Context, name, q, revisionID string, st policy.Statement) (model.Function, error) {
	return s.UpdateSettings(ctx, name, q, revisionID, func(set model.Settings) error {
		p := *set.Policy
		if p == nil {
			p = &policy.Document{Version: "2012-10-17", ID: "default"}
		}
		for _, old := range p.Statement {
			if old.Sid == st.Sid {
				return fmt.Errorf("The statement id (%s) provided already exists. Please specify a new statement id, or remove the existing statement.: %w", st.Sid, errdefs.ErrConflict)
			}
		}
		p.Statement = append(p.Statement, st)
		if b, _ := json.Marshal(p); len(b) > maxResourcePolicyBytes {
			return fmt.Errorf("The final policy size (%d) is bigger than the limit (%d).: %w", len(b), maxResourcePolicyBytes, errdefs.ErrInvalid)
		}
		*set.Policy = p
		return nil
	})
}

// Lambda's limit on a function's resource policy.
const maxResourcePolicyBytes = 20480

// RemovePermission removes the statement sid from the resource policy of
// a function's qualifier q; revisionID, when set, must match.
func (s *Service) RemovePermission(ctx context.Context, name, q, sid, revisionID string) error {
	_, err := s.UpdateSettings(ctx, name, q, revisionID, func(set model.Settings) error {
		if p := *set.Policy; p != nil {
			for i, st := range p.Statement {
				if st.Sid == sid {
					p.Statement = slices.Delete(p.Statement, i, i+1)
					if len(p.Statement) == 0 {
						*set.Policy = nil
					}
					return nil
				}
			}
		}
		return fmt.Errorf("Statement %s is not found in resource policy.: %w", sid, errdefs.ErrNotFound)
	})
	return err
}

// Tag adds tags to a function, replacing the values of keys it has.
func (s *Service) Tag(ctx context.Context, name string, tags map[string]string) (model.Function, error) {
	if err := model.ValidateTags(tags); err != nil {
		return model.Function{}, err
	}
	return s.catalog.Update(ctx, name, func(f *model.Function) error {
		merged := maps.Clone(f.Tags)
		if merged == nil {
			merged = map[string]string{}
		}
		maps.Copy(merged, tags)
		if err := model.CheckTagCount(len(merged)); err != nil {
			return err
		}
		f.Tags = merged
		return nil
	})
}

// Untag removes tags from a function; keys it does not have are ignored,
// as Lambda ignores them.
func (s *Service) Untag(ctx context.Context, name string, keys []string) (model.Function, error) {
	if err := model.ValidateTagKeys(keys); err != nil {
		return model.Function{}, err
	}
	return s.catalog.Update(ctx, name, func(f *model.Function) error {
		for _, k := range keys {
			delete(f.Tags, k)
		}
		if len(f.Tags) == 0 {
			f.Tags = nil
		}
		return nil
	})
}

// CheckCode validates a zip as UpdateFunctionCode would, storing nothing
// (UpdateFunctionCode's DryRun).
func (s *Service) CheckCode(zip []byte) error {
	if len(zip) == 0 {
		return fmt.Errorf("Please provide a source for function code.: %w", errdefs.ErrInvalid)
	}
	_, err := codezip.Inspect(zip)
	return err
}

// PutConcurrency reserves n concurrent executions for a function (and caps
// it there); 0 stops the function from being invoked.
func (s *Service) PutConcurrency(ctx context.Context, name string, n int) (model.Function, error) {
	if err := s.cfg.Reservations.CheckReservation(name, n); err != nil {
		return model.Function{}, err
	}
	return s.catalog.Update(ctx, name, func(f *model.Function) error {
		f.ReservedConcurrency = &n
		return nil
	})
}

// DeleteConcurrency removes a function's reservation.
func (s *Service) DeleteConcurrency(ctx context.Context, name string) error {
	_, err := s.catalog.Update(ctx, name, func(f *model.Function) error {
		f.ReservedConcurrency = nil
		return nil
	})
	if err == nil {
		s.releaseReservation(name)
	}
	return err
}

// releaseReservation tells cluster-wide admission a reservation is gone
// (admission.Leases withdraws its claim); the in-process counter needs not.
func (s *Service) releaseReservation(name string) {
	if r, ok := s.cfg.Reservations.(interface{ ReleaseReservation(string) }); ok {
		r.ReleaseReservation(name)
	}
}

// Delete removes a function and, when no other function uses it, its code.
func (s *Service) Delete(ctx context.Context, name string) error {
	fn, err := s.catalog.Get(name)
	if err != nil {
		return err
	}
	if err := s.catalog.Delete(ctx, name); err != nil {
		return err
	}
	s.releaseReservation(name)
	s.collect(ctx, fn.CodeSha256)
	for _, v := range fn.Versions {
		s.collect(ctx, v.CodeSha256)
		s.collectLayers(ctx, v.Layers)
	}
	s.collectLayers(ctx, fn.Layers)
	return nil
}

// Code returns a function's zip.
func (s *Service) Code(ctx context.Context, fn *model.Function) ([]byte, error) {
	return s.code.Get(ctx, fn.CodeSha256)
}

// collect deletes code no function (as code or layer) and no layer version
// refers to any more. Failure only leaks storage, so it is logged, not
// returned.
func (s *Service) collect(ctx context.Context, sha string) {
	if s.catalog.UsesCode(sha) || (s.cfg.Layers != nil && s.cfg.Layers.UsesCode(sha)) {
		return
	}
	if err := s.code.Delete(ctx, sha); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		s.log.Warn("delete unused code", "sha256", sha, "err", err)
	}
	// Running environments keep their bind mount; the directory can go.
	if dir, err := s.dir(sha); err == nil {
		_ = os.RemoveAll(dir)
	}
}

func (s *Service) dir(sha string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(sha)
	if err != nil || len(raw) != 32 {
		return "", fmt.Errorf("bad code sha %q", sha)
	}
	return filepath.Join(s.cfg.CodeDir, hex.EncodeToString(raw)), nil
}

// lock takes the lock serialising the making of one cache directory.
func (s *Service) lock(key string) *sync.Mutex {
	s.mu.Lock()
	m, ok := s.extracting[key]
	if !ok {
		m = &sync.Mutex{}
		s.extracting[key] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m
}

// unpack extracts zip into its cache directory unless it is already there.
func (s *Service) unpack(sha string, zip []byte) (string, error) {
	dir, err := s.dir(sha)
	if err != nil {
		return "", err
	}
	m := s.lock(sha)
	defer m.Unlock()
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if zip == nil {
		return "", errNeedZip
	}
	return dir, codezip.Extract(zip, dir)
}

var errNeedZip = errors.New("code not unpacked")

// CodeDir returns the unpacked code of fn, fetching it from the engine when
// this node has not unpacked it yet (after a restart or on another node).
func (s *Service) CodeDir(ctx context.Context, fn *model.Function) (string, error) {
	dir, err := s.codeDir(ctx, fn.CodeSha256)
	if err != nil {
		return "", fmt.Errorf("fetch code of %s: %w", fn.Name, err)
	}
	return dir, nil
}

// codeDir returns the unpacked content stored under sha.
func (s *Service) codeDir(ctx context.Context, sha string) (string, error) {
	dir, err := s.unpack(sha, nil)
	if !errors.Is(err, errNeedZip) {
		return dir, err
	}
	zip, err := s.code.Get(ctx, sha)
	if err != nil {
		return "", err
	}
	return s.unpack(sha, zip)
}

// CreateURL gives a function the URL u for u.Qualifier; there must be none
// for that qualifier yet.
func (s *Service) CreateURL(ctx context.Context, name string, u model.FunctionURL) (model.FunctionURL, error) {
	if err := u.Validate(); err != nil {
		return model.FunctionURL{}, err
	}
	_, err := s.catalog.Update(ctx, name, func(f *model.Function) error {
		if u.Qualifier != "" && f.AliasNamed(u.Qualifier) == nil {
			return aliasNotFound(name, u.Qualifier) // deleted since the caller looked
		}
		if _, ok := f.URLOf(u.Qualifier); ok {
			return ErrURLExists
		}
		f.URLs = append(f.URLs, u)
		return nil
	})
	return u, err
}

// UpdateURL applies change to the function's URL for qualifier and
// validates the result.
func (s *Service) UpdateURL(ctx context.Context, name, qualifier string, change func(*model.FunctionURL)) (model.FunctionURL, error) {
	var out model.FunctionURL
	_, err := s.catalog.Update(ctx, name, func(f *model.Function) error {
		i := slices.IndexFunc(f.URLs, func(u model.FunctionURL) bool { return u.Qualifier == qualifier })
		if i < 0 {
			return ErrNoURL
		}
		u := f.URLs[i]
		change(&u)
		if err := u.Validate(); err != nil {
			return err
		}
		f.URLs[i], out = u, u
		return nil
	})
	return out, err
}

// DeleteURL removes the function's URL for qualifier.
func (s *Service) DeleteURL(ctx context.Context, name, qualifier string) error {
	_, err := s.catalog.Update(ctx, name, func(f *model.Function) error {
		i := slices.IndexFunc(f.URLs, func(u model.FunctionURL) bool { return u.Qualifier == qualifier })
		if i < 0 {
			return ErrNoURL
		}
		f.URLs = slices.Delete(f.URLs, i, i+1)
		if len(f.URLs) == 0 {
			f.URLs = nil
		}
		return nil
	})
	return err
}

// ErrURLExists: the qualifier has a function URL already.
var ErrURLExists = fmt.Errorf("FunctionUrlConfig exists for this Lambda function: %w", errdefs.ErrConflict)

// ErrNoURL is Lambda's answer for a qualifier without a function URL.
var ErrNoURL = fmt.Errorf("The resource you requested does not exist.: %w", errdefs.ErrNotFound)
