package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"icebox/internal/errdefs"
	"icebox/internal/policy"
)

// Patterns are compiled on first use, not at package init: every sandbox's
// init re-executes this binary and would build and keep them for nothing.
var namePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\w+=,.@-]{1,64}$`) })

// validName checks a user or role name as IAM does.
func validName(name string) error {
	if !namePattern().MatchString(name) {
		return fmt.Errorf("name %q must be 1-64 letters, digits or +=,.@_-: %w", name, errdefs.ErrInvalid)
	}
	return nil
}

// CreateAccessKey makes a new access key for user with an identity policy.
// The returned key is the only time its secret is shown.
func (a *Authority) CreateAccessKey(ctx context.Context, user string, doc policy.Document) (AccessKey, error) {
	if err := validName(user); err != nil {
		return AccessKey{}, err
	}
	if err := doc.Validate(); err != nil {
		return AccessKey{}, fmt.Errorf("%w: %w", err, errdefs.ErrInvalid)
	}
	ak := AccessKey{AccessKeyID: newAccessKeyID("AKIA"), SecretAccessKey: newSecret(), UserName: user, Policy: doc, Created: a.cfg.Now().UTC()}
	b, err := json.Marshal(ak)
	if err != nil {
		return AccessKey{}, err
	}
	rev, err := a.kv.Create(ctx, keyPrefix+ak.AccessKeyID, b)
	if err != nil {
		return AccessKey{}, engineErr("create access key", err)
	}
	a.mu.Lock()
	if a.advanceLocked(keyPrefix+ak.AccessKeyID, rev) {
		a.keys[ak.AccessKeyID] = ak
	}
	a.mu.Unlock()
	return ak, nil
}

// ListAccessKeys lists keys without their secrets, oldest first.
func (a *Authority) ListAccessKeys() []AccessKey {
	a.mu.RLock()
	out := make([]AccessKey, 0, len(a.keys))
	for _, k := range a.keys {
		k.SecretAccessKey = ""
		out = append(out, k)
	}
	a.mu.RUnlock()
	slices.SortFunc(out, func(x, y AccessKey) int { return x.Created.Compare(y.Created) })
	return out
}

// DeleteAccessKey removes a key; calls signed with it fail from then on.
func (a *Authority) DeleteAccessKey(ctx context.Context, id string) error {
	a.mu.RLock()
	_, ok := a.keys[id]
	rev := a.revs[keyPrefix+id]
	a.mu.RUnlock()
	if !ok {
		return fmt.Errorf("The access key %q does not exist: %w", id, errdefs.ErrNotFound)
	}
	if err := a.kv.Delete(ctx, keyPrefix+id); err != nil {
		return engineErr("delete access key", err)
	}
	a.mu.Lock()
	a.forgetLocked(keyPrefix+id, rev)
	delete(a.keys, id)
	a.mu.Unlock()
	return nil
}

// PutRole creates or replaces the role called name.
func (a *Authority) PutRole(ctx context.Context, name string, doc policy.Document) (Role, error) {
	if err := validName(name); err != nil {
		return Role{}, err
	}
	if err := doc.Validate(); err != nil {
		return Role{}, fmt.Errorf("%w: %w", err, errdefs.ErrInvalid)
	}
	r := Role{Name: name, Policy: doc, Created: a.cfg.Now().UTC()}
	b, err := json.Marshal(r)
	if err != nil {
		return Role{}, err
	}
	rev, err := a.kv.Put(ctx, rolePrefix+name, b)
	if err != nil {
		return Role{}, engineErr("put role", err)
	}
	a.mu.Lock()
	if a.advanceLocked(rolePrefix+name, rev) {
		a.roles[name] = r
	}
	a.mu.Unlock()
	return r, nil
}

// ListRoles lists roles by name.
func (a *Authority) ListRoles() []Role {
	a.mu.RLock()
	out := make([]Role, 0, len(a.roles))
	for _, r := range a.roles {
		out = append(out, r)
	}
	a.mu.RUnlock()
	slices.SortFunc(out, func(x, y Role) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// DeleteRole removes a role; environments using it lose every permission.
func (a *Authority) DeleteRole(ctx context.Context, name string) error {
	a.mu.RLock()
	_, ok := a.roles[name]
	rev := a.revs[rolePrefix+name]
	a.mu.RUnlock()
	if !ok {
		return fmt.Errorf("The role with name %s cannot be found: %w", name, errdefs.ErrNotFound)
	}
	if err := a.kv.Delete(ctx, rolePrefix+name); err != nil {
		return engineErr("delete role", err)
	}
	a.mu.Lock()
	a.forgetLocked(rolePrefix+name, rev)
	delete(a.roles, name)
	a.mu.Unlock()
	return nil
}

func engineErr(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%s: %w: %w", what, errdefs.ErrUnavailable, err)
}

// RootCredentialsFile is where generated root credentials are kept, in the
// AWS shared-credentials format (profile "icebox").
const RootCredentialsFile = "root-credentials"

// LoadOrCreateRoot returns the root credentials kept in dataDir, generating
// and saving them (mode 0600) on first use; created says whether they are new.
func LoadOrCreateRoot(dataDir string) (id, secret string, created bool, err error) {
	path := filepath.Join(dataDir, RootCredentialsFile)
	if id, secret, err = ReadCredentialsFile(path); err == nil {
		return id, secret, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", "", false, err
	}
	id, secret = newAccessKeyID("AKIA"), newSecret()
	body := fmt.Sprintf("[icebox]\naws_access_key_id = %s\naws_secret_access_key = %s\n", id, secret)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", false, fmt.Errorf("save root credentials: %w", err)
	}
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		os.Remove(path)
		return "", "", false, fmt.Errorf("save root credentials: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", "", false, fmt.Errorf("save root credentials: %w", err)
	}
	return id, secret, true, nil
}

// ReadCredentialsFile reads the first key id and secret of an AWS
// shared-credentials file.
func ReadCredentialsFile(path string) (id, secret string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			id = strings.TrimSpace(v)
		case "aws_secret_access_key":
			secret = strings.TrimSpace(v)
		}
	}
	if id == "" || secret == "" {
		return "", "", fmt.Errorf("%s: no aws_access_key_id and aws_secret_access_key", path)
	}
	return id, secret, nil
}
