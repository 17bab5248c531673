package model

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"
	"unicode"

	"icebox/internal/errdefs"
)

// A function URL's auth types and invoke modes, as Lambda spells them.
const (
	URLAuthNone    = "NONE"
	URLAuthIAM     = "AWS_IAM"
	InvokeBuffered = "BUFFERED"
	InvokeStream   = "RESPONSE_STREAM"
)

// FunctionURL is one function URL: a function has at most one per
// qualifier ($LATEST or an alias).
type FunctionURL struct {
	// ID is the URL's host label, 32 lowercase letters and digits as
	// Lambda's: random, so a URL deleted and made again is a new address.
	ID string `json:"id"`
	// Qualifier is the alias the URL invokes; "" for $LATEST.
	Qualifier        string    `json:"qualifier,omitempty"`
	AuthType         string    `json:"authType"`
	InvokeMode       string    `json:"invokeMode"`
	Cors             *URLCors  `json:"cors,omitempty"`
	CreationTime     time.Time `json:"creationTime"`
	LastModifiedTime time.Time `json:"lastModifiedTime"`
}

// URLCors is a function URL's CORS configuration (Lambda's Cors).
type URLCors struct {
	AllowCredentials bool     `json:"AllowCredentials"`
	AllowHeaders     []string `json:"AllowHeaders,omitempty"`
	AllowMethods     []string `json:"AllowMethods,omitempty"`
	AllowOrigins     []string `json:"AllowOrigins,omitempty"`
	ExposeHeaders    []string `json:"ExposeHeaders,omitempty"`
	MaxAge           int      `json:"MaxAge"`
}

// URLIDLength is the length of a function URL's id.
const URLIDLength = 32

// NewURLID returns a random function URL id.
func NewURLID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [URLIDLength]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		// 252 = 7 × 36: bytes past it would bias the first letters; redraw.
		for b[i] >= 252 {
			_, _ = rand.Read(b[i : i+1])
		}
		b[i] = alphabet[b[i]%36]
	}
	return string(b[:])
}

// ValidURLID says whether id has the form of a function URL id.
func ValidURLID(id string) bool {
	if len(id) != URLIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// URLOf returns fn's URL for qualifier ("" or $LATEST for $LATEST).
func (f *Function) URLOf(qualifier string) (FunctionURL, bool) {
	if qualifier == LatestVersion {
		qualifier = ""
	}
	for _, u := range f.URLs {
		if u.Qualifier == qualifier {
			return u, true
		}
	}
	return FunctionURL{}, false
}

// Validate checks a URL's settings against Lambda's constraints.
func (u *FunctionURL) Validate() error {
	if u.AuthType != URLAuthNone && u.AuthType != URLAuthIAM {
		return urlEnum(u.AuthType, "authType", "[NONE, AWS_IAM]")
	}
	if u.InvokeMode != InvokeBuffered && u.InvokeMode != InvokeStream {
		return urlEnum(u.InvokeMode, "invokeMode", "[BUFFERED, RESPONSE_STREAM]")
	}
	if c := u.Cors; c != nil {
		lists := []struct {
			field                 string
			values                []string
			count, least, longest int
		}{
			{"cors.allowOrigins", c.AllowOrigins, 100, 1, 253},
			{"cors.allowMethods", c.AllowMethods, 6, 0, 6},
			{"cors.allowHeaders", c.AllowHeaders, 100, 0, 1024},
			{"cors.exposeHeaders", c.ExposeHeaders, 100, 0, 1024},
		}
		for _, l := range lists {
			if len(l.values) > l.count {
				return fmt.Errorf("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d: %w", l.field, l.count, errdefs.ErrInvalid)
			}
			for _, v := range l.values {
				if len(v) < l.least || len(v) > l.longest {
					return fmt.Errorf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length between %d and %d: %w", v, l.field, l.least, l.longest, errdefs.ErrInvalid)
				}
				// Every value ends up in a response header.
				if strings.ContainsFunc(v, unicode.IsControl) {
					return fmt.Errorf("1 validation error detected: Value %q at '%s' failed to satisfy constraint: Member must not contain control characters: %w", v, l.field, errdefs.ErrInvalid)
				}
			}
		}
		if c.MaxAge < 0 || c.MaxAge > 86400 {
			return fmt.Errorf("1 validation error detected: Value '%d' at 'cors.maxAge' failed to satisfy constraint: Member must have value between 0 and 86400, inclusive: %w", c.MaxAge, errdefs.ErrInvalid)
		}
	}
	return nil
}

func urlEnum(value, field, set string) error {
	return fmt.Errorf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy enum value set: %s: %w", value, field, set, errdefs.ErrInvalid)
}
