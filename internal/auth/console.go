package auth

import (
	"crypto/rand"
	"encoding/json"
	"time"

	"icebox/internal/errdefs"
	"icebox/internal/policy"
)

// Console sessions: after a sign-in signed with an access key, the console
// holds a token instead of the secret. Like role session tokens it is signed
// with the engine-wide key (every node accepts it, nothing is stored), but
// it names a long-term key, whose identity is looked up on every request:
// a deleted key's session stops working at once, and a changed policy
// applies at once.

// consoleClaims is what a console token carries.
type consoleClaims struct {
	AccessKeyID string `json:"k"`
	Expires     int64  `json:"x"` // unix seconds
	Nonce       []byte `json:"n"` // makes every token unique
}

// ConsoleToken issues a console session for the long-term access key id,
// valid for ttl, and the token the console must echo in a header on every
// call (its CSRF token, derived from the session).
func (a *Authority) ConsoleToken(accessKeyID string, ttl time.Duration) (token, csrf string, expires time.Time) {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	expires = time.Unix(a.cfg.Now().Add(ttl).Unix(), 0)
	payload, _ := json.Marshal(consoleClaims{AccessKeyID: accessKeyID, Expires: expires.Unix(), Nonce: nonce})
	key := a.sessionKey()
	token = signToken(key, "console", payload)
	return token, consoleCSRF(key, token), expires
}

func consoleCSRF(key []byte, token string) string {
	return tokenEncoding.EncodeToString(mac(key, "console-csrf", []byte(token)))
}

// ConsoleIdentity resolves a console token to its key's identity as it is
// now, the session's CSRF token and its expiry. A forged or altered token,
// or one whose key was deleted, is an unknown key; an old one is expired.
func (a *Authority) ConsoleIdentity(token string) (id Identity, csrf string, expires time.Time, err error) {
	key := a.sessionKey()
	p, ok := openToken(key, "console", token)
	if !ok {
		return Identity{}, "", time.Time{}, unknownKey
	}
	var c consoleClaims
	if err := json.Unmarshal(p, &c); err != nil {
		return Identity{}, "", time.Time{}, unknownKey
	}
	if a.cfg.Now().Unix() >= c.Expires {
		return Identity{}, "", time.Time{}, &errdefs.AuthError{Kind: errdefs.AuthExpiredToken, Message: "The console session has expired; sign in again."}
	}
	if id, _, ok = a.longTermIdentity(c.AccessKeyID); !ok {
		return Identity{}, "", time.Time{}, unknownKey
	}
	return id, consoleCSRF(key, token), time.Unix(c.Expires, 0), nil
}

// longTermIdentity is the identity and secret of root's or a user's
// access key.
func (a *Authority) longTermIdentity(accessKeyID string) (_ Identity, secret string, ok bool) {
	if accessKeyID == a.cfg.RootAccessKeyID {
		return Identity{ARN: "arn:aws:iam::" + a.cfg.AccountID + ":root", Root: true, AccessKeyID: accessKeyID}, a.cfg.RootSecretAccessKey, true
	}
	a.mu.RLock()
	ak, ok := a.keys[accessKeyID]
	a.mu.RUnlock()
	if !ok {
		return Identity{}, "", false
	}
	return Identity{ARN: a.UserARN(ak.UserName), Policies: []policy.Document{ak.Policy}, AccessKeyID: accessKeyID}, ak.SecretAccessKey, true
}
