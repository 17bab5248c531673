// Package auth authenticates API callers (SigV4, recomputed with the AWS
// SDK's signer) and owns the identities they authenticate as: the root
// credentials, access keys with identity policies, execution roles, and the
// short-lived session credentials environments receive for their role.
//
// Keys, roles and the session signing key live in the engine's KV bucket
// "iam" and are cached in memory (kept fresh by a watch), so authenticating
// a call never waits on the engine.
package auth

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/errdefs"
	"icebox/internal/policy"
)

// Config configures the authority.
type Config struct {
	Region    string
	AccountID string
	// Root credentials may do everything.
	RootAccessKeyID     string
	RootSecretAccessKey string
	// SessionLifetime is how long environment credentials are valid.
	// Default 12h.
	SessionLifetime time.Duration
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.RootAccessKeyID == "" || c.RootSecretAccessKey == "" {
		return errors.New("auth: root credentials are required")
	}
	if c.Region == "" || c.AccountID == "" {
		return errors.New("auth: region and account id are required")
	}
	return nil
}

// Identity is an authenticated caller.
type Identity struct {
	// ARN names the caller in policies and error messages.
	ARN string
	// Root may do everything; policies are not consulted.
	Root bool
	// Policies are the caller's identity policies.
	Policies []policy.Document
	// AccessKeyID is the long-term access key (root's or a user's) the
	// caller signed with; empty for a role session.
	AccessKeyID string
}

// AccessKey is a long-term credential for a named user.
type AccessKey struct {
	AccessKeyID     string          `json:"accessKeyId"`
	SecretAccessKey string          `json:"secretAccessKey,omitempty"`
	UserName        string          `json:"userName"`
	Policy          policy.Document `json:"policy"`
	Created         time.Time       `json:"created"`
}

// Role is an execution role: what a function's code may do.
type Role struct {
	Name    string          `json:"name"`
	Policy  policy.Document `json:"policy"`
	Created time.Time       `json:"created"`
}

// Authority authenticates requests and manages identities.
type Authority struct {
	cfg    Config
	kv     jetstream.KeyValue
	signer *v4.Signer
	log    *slog.Logger
	stop   func()

	mu    sync.RWMutex
	keys  map[string]AccessKey
	roles map[string]Role
	// revs is the KV revision of what keys and roles hold for each KV key
	// (for a local delete, a lower bound of its marker's). Entries only
	// move forward: a late watch event never brings back a deleted key or
	// an older policy.
	revs       map[string]uint64
	signingKey []byte
}

const (
	bucket        = "iam"
	keyPrefix     = "key."
	rolePrefix    = "role."
	signingKeyKey = "session-signing-key"
)

// Open loads identities from the engine and keeps them fresh.
func Open(ctx context.Context, cfg Config, js jetstream.JetStream, log *slog.Logger) (_ *Authority, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SessionLifetime == 0 {
		cfg.SessionLifetime = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("iam bucket: %w", err)
	}
	a := &Authority{cfg: cfg, kv: kv, signer: v4.NewSigner(), log: log, keys: map[string]AccessKey{}, roles: map[string]Role{}, revs: map[string]uint64{}}
	if err := a.ensureSigningKey(ctx); err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("iam watch: %w", err)
	}
	// The watch first replays every key, then marks the end with nil.
	for e := range w.Updates() {
		if e == nil {
			break
		}
		a.observe(e)
	}
	a.stop = func() { _ = w.Stop() }
	go func() {
		for e := range w.Updates() {
			if e != nil {
				a.observe(e)
			}
		}
	}()
	return a, nil
}

// Close stops the watch.
func (a *Authority) Close() { a.stop() }

// ensureSigningKey makes the key session tokens are signed with, once per
// engine, so every node accepts every node's tokens.
func (a *Authority) ensureSigningKey(ctx context.Context) error {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if _, err := a.kv.Create(ctx, signingKeyKey, key); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("session signing key: %w", err)
	}
	return nil
}

func (a *Authority) observe(e jetstream.KeyValueEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k, del := e.Key(), e.Operation() != jetstream.KeyValuePut
	if !a.advanceLocked(k, e.Revision()) {
		return // a local write or delete is ahead of the watch
	}
	switch {
	case k == signingKeyKey && !del:
		a.signingKey = append([]byte(nil), e.Value()...)
	case strings.HasPrefix(k, keyPrefix):
		id := strings.TrimPrefix(k, keyPrefix)
		var ak AccessKey
		if del || json.Unmarshal(e.Value(), &ak) != nil {
			delete(a.keys, id)
			return
		}
		a.keys[id] = ak
	case strings.HasPrefix(k, rolePrefix):
		name := strings.TrimPrefix(k, rolePrefix)
		var r Role
		if del || json.Unmarshal(e.Value(), &r) != nil {
			delete(a.roles, name)
			return
		}
		a.roles[name] = r
	}
}

// advanceLocked moves kvKey's cached revision to rev, or says the cache
// already holds a newer state of it.
// Preconditions: mu held.
func (a *Authority) advanceLocked(kvKey string, rev uint64) bool {
	if rev < a.revs[kvKey] {
		return false
	}
	a.revs[kvKey] = rev
	return true
}

// forgetLocked records a local delete of kvKey: its marker's revision is
// above the entry's last known one.
// Preconditions: mu held.
func (a *Authority) forgetLocked(kvKey string, lastRev uint64) {
	a.revs[kvKey] = max(a.revs[kvKey], lastRev+1)
}

// Authenticate checks r's SigV4 signature. payloadHash is the hex SHA-256
// of the body (computed by the caller, who owns the body).
func (a *Authority) Authenticate(r *http.Request, payloadHash string) (Identity, error) {
	c, err := a.Check(r)
	if err != nil {
		return Identity{}, err
	}
	return c.Verify(r, payloadHash)
}

// Claim is a request whose signature claims passed every check that needs
// no body: form, region, time, and a known access key. Verify finishes the
// check once the body is read, so a server reads no body for a caller that
// cannot be who it claims.
type Claim struct {
	a      *Authority
	sig    *signature
	id     Identity
	secret string
}

// Check runs the checks of r's signature that need no body.
func (a *Authority) Check(r *http.Request) (*Claim, error) {
	sig, err := parseSignature(r)
	if err != nil {
		return nil, err
	}
	if sig.Region != a.cfg.Region {
		return nil, &errdefs.AuthError{Kind: errdefs.AuthBadSignature, Message: fmt.Sprintf("Credential should be scoped to a valid region, not '%s'; this server's region is '%s'.", sig.Region, a.cfg.Region)}
	}
	if err := sig.checkTime(a.cfg.Now()); err != nil {
		return nil, err
	}
	id, secret, err := a.lookup(sig)
	if err != nil {
		return nil, err
	}
	return &Claim{a: a, sig: sig, id: id, secret: secret}, nil
}

// Service is the service the signature is scoped to (its credential's
// fourth part): "lambda" for Lambda's API and function URLs.
func (c *Claim) Service() string { return c.sig.Service }

// AccessKeyID is the access key the request is signed with.
func (c *Claim) AccessKeyID() string { return c.sig.AccessKeyID }

// Verify recomputes the signature over r and the body's hex SHA-256 and
// returns the caller's identity when it matches.
func (c *Claim) Verify(r *http.Request, payloadHash string) (Identity, error) {
	if err := c.sig.verify(c.a.signer, r, payloadHash, c.secret); err != nil {
		return Identity{}, err
	}
	return c.id, nil
}

var unknownKey = &errdefs.AuthError{Kind: errdefs.AuthUnknownKey, Message: "The security token included in the request is invalid."}

// lookup finds the identity and secret for the signature's access key.
func (a *Authority) lookup(sig *signature) (Identity, string, error) {
	if sig.SessionToken != "" || strings.HasPrefix(sig.AccessKeyID, "ASIA") {
		return a.session(sig.AccessKeyID, sig.SessionToken)
	}
	id, secret, ok := a.longTermIdentity(sig.AccessKeyID)
	if !ok {
		return Identity{}, "", unknownKey
	}
	return id, secret, nil
}

// UserARN is the ARN of the user called name.
func (a *Authority) UserARN(name string) string {
	return "arn:aws:iam::" + a.cfg.AccountID + ":user/" + name
}

// RoleARN is the ARN of the role called name.
func (a *Authority) RoleARN(name string) string {
	return "arn:aws:iam::" + a.cfg.AccountID + ":role/" + name
}

// newAccessKeyID makes a key id of AWS's form: a 4-letter prefix and 16
// base32 characters.
func newAccessKeyID(prefix string) string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return prefix + base32.StdEncoding.EncodeToString(b)
}

// newSecret makes a 40-character secret access key.
func newSecret() string {
	b := make([]byte, 30)
	_, _ = rand.Read(b)
	s := base32.StdEncoding.EncodeToString(b) // 48 characters, [A-Z2-7]
	return strings.ToLower(s[:20]) + s[20:40]
}
