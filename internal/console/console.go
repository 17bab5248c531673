// Package console serves icebox's web console at /console on the API's
// port: the page and its assets (embedded, no build step), and the console
// session. The browser signs its sign-in request with SigV4 (the secret
// stays in the page, used through WebCrypto); the session is then an
// HttpOnly, SameSite=Strict cookie holding a token auth signs, and every
// console action is an ordinary API call that the API authenticates with
// that cookie plus a CSRF header and authorizes like any other call.
package console

import (
	"crypto/subtle"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"icebox/internal/auth"
	"icebox/internal/errdefs"
)

// CookieName is the session cookie; CSRFHeader carries the session's CSRF
// token on every call the console makes.
const (
	CookieName = "icebox-console"
	CSRFHeader = "X-Icebox-Console-Csrf"
	// DefaultSessionTTL is how long a sign-in lasts.
	DefaultSessionTTL = time.Hour
)

//go:embed assets
var assets embed.FS

// Sessions issues and checks console session tokens (auth.Authority).
type Sessions interface {
	ConsoleToken(accessKeyID string, ttl time.Duration) (token, csrf string, expires time.Time)
	ConsoleIdentity(token string) (id auth.Identity, csrf string, expires time.Time, err error)
}

var _ Sessions = (*auth.Authority)(nil)

// Config configures the console.
type Config struct {
	Region string
	// NoAuth: the API takes unsigned calls, so the console needs no sign-in.
	NoAuth bool
	// SessionTTL is a session's lifetime. Default DefaultSessionTTL.
	SessionTTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Console serves the console's pages and sessions.
type Console struct {
	cfg      Config
	sessions Sessions
	files    http.Handler

	mu sync.Mutex
	// ended are this node's signed-out sessions until they expire: a
	// token copied before sign-out is refused here.
	ended map[string]time.Time
	// used are the sign-in signatures seen until they could no longer pass
	// SigV4's clock check, so a captured sign-in request cannot be replayed.
	used map[string]time.Time
}

// New returns the console.
func New(cfg Config, sessions Sessions) *Console {
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	sub, _ := fs.Sub(assets, "assets")
	return &Console{cfg: cfg, sessions: sessions, files: http.StripPrefix("/console/", http.FileServerFS(sub)),
		ended: map[string]time.Time{}, used: map[string]time.Time{}}
}

// secure sets the headers every console response carries: nothing but the
// console's own files runs or loads, it cannot be framed, and nothing is
// sniffed or cached.
func secure(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// ServeHTTP serves GET /console/… (the page and its assets),
// GET /console/api/session and POST /console/api/sign-out. Sign-in is
// SignIn, behind the API's signature check.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	secure(w.Header())
	switch {
	case r.URL.Path == "/console/api/session" && r.Method == http.MethodGet:
		c.session(w, r)
	case r.URL.Path == "/console/api/sign-out" && r.Method == http.MethodPost:
		c.signOut(w, r)
	case strings.HasPrefix(r.URL.Path, "/console/api/"):
		http.NotFound(w, r)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		c.files.ServeHTTP(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// sessionInfo is what the page learns about its session.
type sessionInfo struct {
	SignedIn bool      `json:"signedIn"`
	NoAuth   bool      `json:"noAuth,omitempty"`
	Region   string    `json:"region"`
	User     string    `json:"user,omitempty"`
	CSRF     string    `json:"csrf,omitempty"`
	Expires  time.Time `json:"expires,omitzero"`
}

// session tells the page whether it is signed in, and as whom, with the
// session's CSRF token (a page of another site cannot read it: the cookie
// is not sent cross-site, and the same-origin policy hides the answer).
func (c *Console) session(w http.ResponseWriter, r *http.Request) {
	info := sessionInfo{Region: c.cfg.Region, NoAuth: c.cfg.NoAuth, SignedIn: c.cfg.NoAuth}
	if ck, err := r.Cookie(CookieName); err == nil && !c.cfg.NoAuth {
		if id, csrf, exp, err := c.check(ck.Value); err == nil {
			info = sessionInfo{SignedIn: true, Region: c.cfg.Region, User: id.ARN, CSRF: csrf, Expires: exp}
		} else {
			clearCookie(w)
		}
	}
	writeJSON(w, http.StatusOK, info)
}

// check resolves a session token, refusing one signed out on this node.
func (c *Console) check(token string) (auth.Identity, string, time.Time, error) {
	c.mu.Lock()
	_, ended := c.ended[token]
	c.mu.Unlock()
	if ended {
		return auth.Identity{}, "", time.Time{}, &errdefs.AuthError{Kind: errdefs.AuthExpiredToken, Message: "The console session has ended; sign in again."}
	}
	return c.sessions.ConsoleIdentity(token)
}

// Authenticate finds the console session of a request that carries no
// SigV4 signature: ok is false when it has no session cookie. A session
// call must carry the session's CSRF token in CSRFHeader.
func (c *Console) Authenticate(r *http.Request) (id auth.Identity, ok bool, err error) {
	ck, err := r.Cookie(CookieName)
	if err != nil || r.Header.Get("Authorization") != "" || r.URL.Query().Get("X-Amz-Signature") != "" {
		return auth.Identity{}, false, nil
	}
	id, csrf, _, err := c.check(ck.Value)
	if err != nil {
		return auth.Identity{}, true, err
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(csrf)) != 1 {
		return auth.Identity{}, true, &errdefs.AuthError{Kind: errdefs.AuthDenied, Message: "A console call must carry its session's " + CSRFHeader + " header."}
	}
	return id, true, nil
}

// SignIn starts a session for id, the identity that signed r with SigV4
// (the API checked the signature). Only a long-term access key signs in,
// and each signed sign-in request counts once.
func (c *Console) SignIn(w http.ResponseWriter, r *http.Request, id auth.Identity) error {
	secure(w.Header())
	if id.AccessKeyID == "" {
		return &errdefs.AuthError{Kind: errdefs.AuthDenied, Message: "Sign in to the console with an access key (root's or a user's), not temporary credentials."}
	}
	if err := c.once(r.Header.Get("Authorization")); err != nil {
		return err
	}
	token, csrf, exp := c.sessions.ConsoleToken(id.AccessKeyID, c.cfg.SessionTTL)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: token, Path: "/", Expires: exp, MaxAge: int(c.cfg.SessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	writeJSON(w, http.StatusOK, sessionInfo{SignedIn: true, Region: c.cfg.Region, User: id.ARN, CSRF: csrf, Expires: exp})
	return nil
}

// once records a sign-in's signature, refusing one seen before. An entry
// is kept until SigV4's clock check would refuse the request anyway.
func (c *Console) once(authorization string) error {
	_, sig, _ := strings.Cut(authorization, "Signature=")
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for s, until := range c.used {
		if now.After(until) {
			delete(c.used, s)
		}
	}
	if _, seen := c.used[sig]; seen || sig == "" {
		return &errdefs.AuthError{Kind: errdefs.AuthBadSignature, Message: "This sign-in request was already used; sign in again."}
	}
	c.used[sig] = now.Add(2*auth.MaxSkew + time.Minute)
	return nil
}

// signOut ends the session: the cookie is cleared, and the token is
// refused on this node until it expires. It needs the CSRF token, so
// another site cannot sign a user out.
func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(CookieName)
	if err == nil {
		if _, csrf, exp, err := c.check(ck.Value); err == nil && subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(csrf)) == 1 {
			now := c.cfg.Now()
			c.mu.Lock()
			for t, until := range c.ended {
				if now.After(until) {
					delete(c.ended, t)
				}
			}
			c.ended[ck.Value] = exp
			c.mu.Unlock()
		} else if err == nil {
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "Signing out needs the session's " + CSRFHeader + " header."})
			return
		}
	}
	clearCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

func clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
