package functions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"icebox/internal/errdefs"
	"icebox/internal/model"
)

// errUnchanged aborts a catalog update that would write nothing new.
var errUnchanged = errors.New("unchanged")

// Publish publishes $LATEST as a new version (PublishVersion). codeSha and
// revisionID, when set, must match $LATEST's. With nothing changed since
// the newest version it publishes nothing and returns that version.
func (s *Service) Publish(ctx context.Context, name, codeSha, revisionID, description string) (model.Function, error) {
	var rec model.Function
	var num string
	updated, err := s.catalog.Update(ctx, name, func(f *model.Function) error {
		if codeSha != "" && codeSha != f.CodeSha256 {
			return fmt.Errorf("CodeSHA256 (%s) is different from current CodeSHA256 in $LATEST (%s). Please try again with the current CodeSHA256.: %w", codeSha, f.CodeSha256, errdefs.ErrPreconditionFailed)
		}
		if err := checkRevision(f, revisionID); err != nil {
			return err
		}
		v, published := f.Publish(description, time.Now().UTC())
		num = v.Version
		if !published {
			rec = *f
			return errUnchanged
		}
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		updated = rec
	case err != nil:
		return model.Function{}, err
	}
	return updated.View(num)
}

// DeleteVersion deletes a published version, its policy, event invoke and
// provisioned concurrency configuration with it. $LATEST cannot be deleted
// on its own, nor a version an alias routes to.
func (s *Service) DeleteVersion(ctx context.Context, name, version string) error {
	if version == model.LatestVersion {
		return fmt.Errorf("$LATEST version cannot be deleted without deleting the function.: %w", errdefs.ErrInvalid)
	}
	if !model.IsVersionNumber(version) {
		return fmt.Errorf("Deletion of aliases is not supported by DeleteFunction; use DeleteAlias (qualifier %s): %w", version, errdefs.ErrInvalid)
	}
	var sha string
	var layers []model.FunctionLayer
	_, err := s.catalog.Update(ctx, name, func(f *model.Function) error {
		i := slices.IndexFunc(f.Versions, func(v model.Function) bool { return v.Version == version })
		if i < 0 {
			return errUnchanged // deleting a version that is not there succeeds, as on Lambda
		}
		if aliases := f.AliasesOf(version); len(aliases) > 0 {
			return fmt.Errorf("Unable to delete version because the following aliases reference it: %v: %w", aliases, errdefs.ErrConflict)
		}
		sha, layers = f.Versions[i].CodeSha256, f.Versions[i].Layers
		f.Versions = slices.Delete(f.Versions, i, i+1)
		f.Provisioned = slices.DeleteFunc(f.Provisioned, func(p model.ProvisionedConfig) bool { return p.Qualifier == version })
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	if err == nil {
		s.collect(ctx, sha)
		s.collectLayers(ctx, layers)
	}
	return err
}

// CreateAlias adds an alias.
func (s *Service) CreateAlias(ctx context.Context, name string, a model.Alias) (model.Alias, error) {
	if err := model.ValidateAliasName(a.Name); err != nil {
		return model.Alias{}, err
	}
	a.RevisionID = model.NewUUID()
	_, err := s.catalog.Update(ctx, name, func(f *model.Function) error {
		if f.AliasNamed(a.Name) != nil {
			return fmt.Errorf("Alias already exists: %s:%s: %w", name, a.Name, errdefs.ErrConflict)
		}
		if err := f.ValidateAlias(&a); err != nil {
			return err
		}
		f.Aliases = append(f.Aliases, a)
		return nil
	})
	return a, err
}

// UpdateAlias applies mutate to an alias and validates the result;
// revisionID, when set, must be the alias's.
func (s *Service) UpdateAlias(ctx context.Context, name, alias, revisionID string, mutate func(*model.Alias)) (model.Alias, error) {
	var out model.Alias
	_, err := s.catalog.Update(ctx, name, func(f *model.Function) error {
		a := f.AliasNamed(alias)
		if a == nil {
			return aliasNotFound(name, alias)
		}
		if revisionID != "" && revisionID != a.RevisionID {
			return errRevision
		}
		mutate(a)
		if err := f.ValidateAlias(a); err != nil {
			return err
		}
		a.RevisionID = model.NewUUID()
		out = *a
		return nil
	})
	return out, err
}

// DeleteAlias deletes an alias, its provisioned concurrency and its
// function URL; deleting
// one that is not there succeeds, as on Lambda.
func (s *Service) DeleteAlias(ctx context.Context, name, alias string) error {
	_, err := s.catalog.Update(ctx, name, func(f *model.Function) error {
		i := slices.IndexFunc(f.Aliases, func(a model.Alias) bool { return a.Name == alias })
		if i < 0 {
			return errUnchanged
		}
		f.Aliases = slices.Delete(f.Aliases, i, i+1)
		f.Provisioned = slices.DeleteFunc(f.Provisioned, func(p model.ProvisionedConfig) bool { return p.Qualifier == alias })
		f.URLs = slices.DeleteFunc(f.URLs, func(u model.FunctionURL) bool { return u.Qualifier == alias })
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	return err
}

func aliasNotFound(name, alias string) error {
	return fmt.Errorf("Alias not found: %s:%s: %w", name, alias, errdefs.ErrNotFound)
}

// UpdateSettings applies mutate to what may change on the qualifier q (its
// policy and event invoke configuration); revisionID, when set, must be
// the qualifier's. The qualifier gets a new revision id.
func (s *Service) UpdateSettings(ctx context.Context, name, q, revisionID string, mutate func(model.Settings) error) (model.Function, error) {
	updated, err := s.catalog.Update(ctx, name, func(f *model.Function) error {
		st, err := f.SettingsOf(q)
		if err != nil {
			return fmt.Errorf("Function not found: %s:%s: %w", name, q, errdefs.ErrNotFound)
		}
		if revisionID != "" && revisionID != *st.RevisionID {
			return errRevision
		}
		if err := mutate(st); err != nil {
			return err
		}
		if q != "" && q != model.LatestVersion {
			*st.RevisionID = model.NewUUID()
		}
		return nil
	})
	if err != nil {
		return model.Function{}, err
	}
	return updated.View(q)
}

// PutProvisioned sets the provisioned concurrency of a version or alias q
// to n, within the function's reservation or the account's unreserved
// concurrency (over all of the function's qualifiers together).
func (s *Service) PutProvisioned(ctx context.Context, name, q string, n int) (model.ProvisionedConfig, error) {
	if q == "" || q == model.LatestVersion {
		return model.ProvisionedConfig{}, fmt.Errorf("Provisioned Concurrency Configs cannot be applied to unpublished function versions.: %w", errdefs.ErrInvalid)
	}
	if n < 1 {
		return model.ProvisionedConfig{}, fmt.Errorf("1 validation error detected: Value '%d' at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 1: %w", n, errdefs.ErrInvalid)
	}
	pc := model.ProvisionedConfig{Qualifier: q, Requested: n, LastModified: time.Now().UTC()}
	_, err := s.catalog.Update(ctx, name, func(f *model.Function) error {
		v, err := f.View(q)
		if err != nil {
			return fmt.Errorf("Function not found: %s:%s: %w", name, q, errdefs.ErrNotFound)
		}
		if v.Version == "" { // an alias of $LATEST
			return fmt.Errorf("Provisioned Concurrency Configs cannot be applied to unpublished function versions.: %w", errdefs.ErrInvalid)
		}
		total := n
		for _, other := range f.Provisioned {
			if other.Qualifier != q {
				total += other.Requested
			}
		}
		if err := s.cfg.Reservations.CheckProvisioned(name, f.ReservedConcurrency, total); err != nil {
			return err
		}
		f.Provisioned = slices.DeleteFunc(f.Provisioned, func(p model.ProvisionedConfig) bool { return p.Qualifier == q })
		f.Provisioned = append(f.Provisioned, pc)
		return nil
	})
	return pc, err
}

// DeleteProvisioned removes the provisioned concurrency of q; ErrNotFound
// when it has none.
func (s *Service) DeleteProvisioned(ctx context.Context, name, q string) error {
	_, err := s.catalog.Update(ctx, name, func(f *model.Function) error {
		if f.ProvisionedFor(q) == nil {
			return fmt.Errorf("No Provisioned Concurrency Config found for this function: %w", errdefs.ErrNotFound)
		}
		f.Provisioned = slices.DeleteFunc(f.Provisioned, func(p model.ProvisionedConfig) bool { return p.Qualifier == q })
		return nil
	})
	return err
}
