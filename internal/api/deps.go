package api

import (
	"context"
	"net/http"
	"time"

	"icebox/internal/auth"
	"icebox/internal/console"
	"icebox/internal/functions"
	"icebox/internal/invoke"
	"icebox/internal/model"
	"icebox/internal/policy"
	"icebox/internal/store"
)

// What the API needs from the rest of icebox, defined here so handlers can
// be tested with fakes.

// Functions keeps functions: their configuration, code and policies.
type Functions interface {
	Get(name string) (model.Function, error)
	List() []model.Function
	Create(ctx context.Context, fn model.Function, zip []byte) (model.Function, error)
	UpdateCode(ctx context.Context, name string, zip []byte, revisionID string) (model.Function, error)
	UpdateConfig(ctx context.Context, name, revisionID string, mutate func(*model.Function)) (model.Function, error)
	Delete(ctx context.Context, name string) error
	Code(ctx context.Context, fn *model.Function) ([]byte, error)
	AddPermission(ctx context.Context, name, qualifier, revisionID string, st policy.Statement) (model.Function, error)
	RemovePermission(ctx context.Context, name, qualifier, sid, revisionID string) error
	UpdateSettings(ctx context.Context, name, qualifier, revisionID string, mutate func(model.Settings) error) (model.Function, error)
	Publish(ctx context.Context, name, codeSha, revisionID, description string) (model.Function, error)
	DeleteVersion(ctx context.Context, name, version string) error
	CreateAlias(ctx context.Context, name string, a model.Alias) (model.Alias, error)
	UpdateAlias(ctx context.Context, name, alias, revisionID string, mutate func(*model.Alias)) (model.Alias, error)
	DeleteAlias(ctx context.Context, name, alias string) error
	PutProvisioned(ctx context.Context, name, qualifier string, n int) (model.ProvisionedConfig, error)
	DeleteProvisioned(ctx context.Context, name, qualifier string) error
	PutConcurrency(ctx context.Context, name string, n int) (model.Function, error)
	DeleteConcurrency(ctx context.Context, name string) error
	Tag(ctx context.Context, name string, tags map[string]string) (model.Function, error)
	Untag(ctx context.Context, name string, keys []string) (model.Function, error)
	CheckCode(zip []byte) error
	CreateURL(ctx context.Context, name string, u model.FunctionURL) (model.FunctionURL, error)
	UpdateURL(ctx context.Context, name, qualifier string, change func(*model.FunctionURL)) (model.FunctionURL, error)
	DeleteURL(ctx context.Context, name, qualifier string) error
	PublishLayerVersion(ctx context.Context, lv model.LayerVersion, zip []byte) (model.LayerVersion, error)
	GetLayerVersion(ctx context.Context, name string, version int64) (model.LayerVersion, error)
	ListLayerVersions(ctx context.Context, name string) ([]model.LayerVersion, error)
	DeleteLayerVersion(ctx context.Context, name string, version int64) error
	LayerZip(ctx context.Context, lv model.LayerVersion) ([]byte, error)
	AddLayerVersionPermission(ctx context.Context, name string, version int64, revisionID string, st policy.Statement) (model.LayerVersion, error)
	RemoveLayerVersionPermission(ctx context.Context, name string, version int64, sid, revisionID string) error
}

// Invoker resolves and runs calls.
type Invoker interface {
	Resolve(ref, qualifier string) (name string, fn model.Function, err error)
	Invoke(ctx context.Context, req invoke.Request) (model.Result, error)
	QueueDepth(ctx context.Context) map[string]float64
}

// Identities authenticates callers and keeps access keys and roles.
type Identities interface {
	Check(r *http.Request) (*auth.Claim, error)
	CodeToken(name, sha string, ttl time.Duration) string
	CheckCodeToken(name, sha, token string) bool
	UserARN(name string) string
	RoleARN(name string) string
	CreateAccessKey(ctx context.Context, user string, doc policy.Document) (auth.AccessKey, error)
	ListAccessKeys() []auth.AccessKey
	DeleteAccessKey(ctx context.Context, id string) error
	PutRole(ctx context.Context, name string, doc policy.Document) (auth.Role, error)
	ListRoles() []auth.Role
	DeleteRole(ctx context.Context, name string) error
	console.Sessions
}

var (
	_ Functions  = (*functions.Service)(nil)
	_ Invoker    = (*invoke.Invoker)(nil)
	_ Identities = (*auth.Authority)(nil)
	_ Networks   = (*store.Networks)(nil)
)
