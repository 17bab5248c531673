package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"icebox/internal/errdefs"
	"icebox/internal/policy"
)

// Credentials are temporary credentials for an execution role.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expires         time.Time
}

// sessionClaims is what a session token carries. Tokens are signed with
// the engine-wide signing key, so nothing is stored per session and every
// node can check every token; the secret is derived from the key id.
type sessionClaims struct {
	AccessKeyID string `json:"k"`
	Role        string `json:"r"` // role name
	Session     string `json:"s"` // function name
	Expires     int64  `json:"x"` // unix seconds
}

// RoleName extracts the role name from a role ARN
// (arn:aws:iam::ACCOUNT:role[/path]/NAME).
func RoleName(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
		return "", fmt.Errorf("%q is not a role ARN (arn:aws:iam::<account>:role/<name>): %w", arn, errdefs.ErrInvalid)
	}
	// A name no role can have (CreateFunction's pattern is looser than
	// IAM's) simply matches no role.
	return parts[5][strings.LastIndexByte(parts[5], '/')+1:], nil
}

// SessionCredentials issues credentials for the role named by roleARN,
// for an environment of function fn. A role that was never defined grants
// nothing: the credentials work, but every action is denied.
func (a *Authority) SessionCredentials(roleARN, fn string) (Credentials, error) {
	name, err := RoleName(roleARN)
	if err != nil {
		return Credentials{}, err
	}
	c := sessionClaims{AccessKeyID: newAccessKeyID("ASIA"), Role: name, Session: fn, Expires: a.cfg.Now().Add(a.cfg.SessionLifetime).Unix()}
	payload, err := json.Marshal(c)
	if err != nil {
		return Credentials{}, err
	}
	key := a.sessionKey()
	token := signToken(key, "token", payload)
	return Credentials{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: sessionSecret(key, c.AccessKeyID),
		SessionToken:    token,
		Expires:         time.Unix(c.Expires, 0),
	}, nil
}

// session resolves a session token to its identity and secret.
func (a *Authority) session(accessKeyID, token string) (Identity, string, error) {
	key := a.sessionKey()
	payload, ok := openToken(key, "token", token)
	if !ok {
		return Identity{}, "", unknownKey
	}
	var c sessionClaims
	if err := json.Unmarshal(payload, &c); err != nil || c.AccessKeyID != accessKeyID {
		return Identity{}, "", unknownKey
	}
	if a.cfg.Now().Unix() >= c.Expires {
		return Identity{}, "", &errdefs.AuthError{Kind: errdefs.AuthExpiredToken, Message: "The security token included in the request is expired"}
	}
	return a.roleIdentity(c.Role, c.Session), sessionSecret(key, accessKeyID), nil
}

// RoleIdentity is who an environment of function fn acts as with the
// credentials SessionCredentials issues for roleARN, with the role's
// policies as they are now. Asynchronous delivery asks it what a
// function's role may invoke.
func (a *Authority) RoleIdentity(roleARN, fn string) (Identity, error) {
	name, err := RoleName(roleARN)
	if err != nil {
		return Identity{}, err
	}
	return a.roleIdentity(name, fn), nil
}

func (a *Authority) roleIdentity(role, session string) Identity {
	id := Identity{ARN: "arn:aws:sts::" + a.cfg.AccountID + ":assumed-role/" + role + "/" + session}
	a.mu.RLock()
	if r, ok := a.roles[role]; ok {
		id.Policies = []policy.Document{r.Policy}
	}
	a.mu.RUnlock()
	return id
}

// sessionKey is the engine-wide key session tokens and code URLs are signed with.
func (a *Authority) sessionKey() []byte {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.signingKey
}

// tokenEncoding spells the halves of every token icebox signs. Strict
// decoding gives a token one spelling only: an altered last character never
// decodes to the same bytes.
var tokenEncoding = base64.RawURLEncoding.Strict()

// signToken is "payload.mac", the payload signed with key for purpose.
func signToken(key []byte, purpose string, payload []byte) string {
	return tokenEncoding.EncodeToString(payload) + "." + tokenEncoding.EncodeToString(mac(key, purpose, payload))
}

// openToken is the payload of a token signToken made with key for purpose;
// ok is false for any other string.
func openToken(key []byte, purpose, token string) (payload []byte, ok bool) {
	p, m, ok := strings.Cut(token, ".")
	payload, err1 := tokenEncoding.DecodeString(p)
	sum, err2 := tokenEncoding.DecodeString(m)
	if !ok || err1 != nil || err2 != nil || !hmac.Equal(sum, mac(key, purpose, payload)) {
		return nil, false
	}
	return payload, true
}

func mac(key []byte, purpose string, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write(msg)
	return h.Sum(nil)
}

func sessionSecret(key []byte, accessKeyID string) string {
	return base64.RawStdEncoding.EncodeToString(mac(key, "secret", []byte(accessKeyID)))[:40]
}

// CodeToken authorizes downloading a function's code (name at sha) without
// a signature for ttl, like Lambda's presigned code location.
func (a *Authority) CodeToken(name, sha string, ttl time.Duration) string {
	exp := strconv.FormatInt(a.cfg.Now().Add(ttl).Unix(), 10)
	key := a.sessionKey()
	return exp + "." + tokenEncoding.EncodeToString(mac(key, "code", []byte(name+"\x00"+sha+"\x00"+exp)))
}

// CheckCodeToken reports whether token authorizes downloading name at sha now.
func (a *Authority) CheckCodeToken(name, sha, token string) bool {
	exp, sum, ok := strings.Cut(token, ".")
	t, err := strconv.ParseInt(exp, 10, 64)
	got, err2 := tokenEncoding.DecodeString(sum)
	if !ok || err != nil || err2 != nil || a.cfg.Now().Unix() > t {
		return false
	}
	key := a.sessionKey()
	return hmac.Equal(got, mac(key, "code", []byte(name+"\x00"+sha+"\x00"+exp)))
}
