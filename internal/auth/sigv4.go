package auth

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"icebox/internal/errdefs"
)

const (
	algorithm     = "AWS4-HMAC-SHA256"
	amzDateFormat = "20060102T150405Z"
	// MaxSkew is how far a signature's time may be from the server's clock.
	MaxSkew = 5 * time.Minute
	// maxPresignExpiry is SigV4's longest presigned URL lifetime.
	maxPresignExpiry = 7 * 24 * time.Hour
	unsignedPayload  = "UNSIGNED-PAYLOAD"
)

// signature is what a request claims about its SigV4 signature, parsed from
// the Authorization header or, for presigned URLs, the query.
type signature struct {
	AccessKeyID   string
	SessionToken  string
	Date          time.Time
	Scope         string // YYYYMMDD/region/service/aws4_request
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
	Presigned     bool
	Expires       time.Duration // presigned only
}

// parseSignature reads a request's SigV4 claims. It only checks the form;
// Verify checks the signature.
func parseSignature(r *http.Request) (*signature, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		return parseHeader(h, r.Header)
	}
	q := r.URL.Query()
	if q.Get("X-Amz-Algorithm") != "" || q.Get("X-Amz-Signature") != "" {
		return parseQuery(q)
	}
	return nil, &errdefs.AuthError{Kind: errdefs.AuthMissing, Message: "Missing Authentication Token"}
}

func parseHeader(h string, hdr http.Header) (*signature, error) {
	rest, ok := strings.CutPrefix(h, algorithm+" ")
	if !ok {
		return nil, incomplete("Authorization header requires the " + algorithm + " algorithm")
	}
	s := &signature{}
	var cred string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, incomplete("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters")
		}
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			s.SignedHeaders = strings.Split(v, ";")
		case "Signature":
			s.Signature = v
		}
	}
	if cred == "" || len(s.SignedHeaders) == 0 || s.Signature == "" {
		return nil, incomplete("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters")
	}
	date := hdr.Get("X-Amz-Date")
	if date == "" {
		return nil, incomplete("Authorization header requires existence of the 'X-Amz-Date' header")
	}
	s.SessionToken = hdr.Get("X-Amz-Security-Token")
	return s, s.fill(cred, date)
}

func parseQuery(q url.Values) (*signature, error) {
	if a := q.Get("X-Amz-Algorithm"); a != algorithm {
		return nil, incomplete(fmt.Sprintf("X-Amz-Algorithm %q is not supported; use %s", a, algorithm))
	}
	s := &signature{Presigned: true, Signature: q.Get("X-Amz-Signature"), SessionToken: q.Get("X-Amz-Security-Token")}
	if sh := q.Get("X-Amz-SignedHeaders"); sh != "" {
		s.SignedHeaders = strings.Split(sh, ";")
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || secs < 0 || time.Duration(secs)*time.Second > maxPresignExpiry {
		return nil, incomplete("X-Amz-Expires must be a number of seconds between 0 and 604800")
	}
	s.Expires = time.Duration(secs) * time.Second
	if s.Signature == "" || len(s.SignedHeaders) == 0 {
		return nil, incomplete("presigned requests require X-Amz-Credential, X-Amz-SignedHeaders, X-Amz-Date, X-Amz-Expires and X-Amz-Signature")
	}
	return s, s.fill(q.Get("X-Amz-Credential"), q.Get("X-Amz-Date"))
}

// fill parses the credential scope (AKID/date/region/service/aws4_request)
// and the request time.
func (s *signature) fill(cred, date string) error {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" {
		return incomplete(fmt.Sprintf("Credential %q must have the form <access key>/<date>/<region>/<service>/aws4_request", cred))
	}
	t, err := time.Parse(amzDateFormat, date)
	if err != nil {
		return incomplete(fmt.Sprintf("X-Amz-Date %q must have the form %s", date, "YYYYMMDD'T'HHMMSS'Z'"))
	}
	s.AccessKeyID, s.Date, s.Region, s.Service = parts[0], t, parts[2], parts[3]
	s.Scope = strings.Join(parts[1:], "/")
	if parts[1] != t.Format("20060102") {
		return &errdefs.AuthError{Kind: errdefs.AuthBadSignature, Message: fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", parts[1], t.Format("20060102"), date)}
	}
	return nil
}

func incomplete(msg string) error {
	return &errdefs.AuthError{Kind: errdefs.AuthIncomplete, Message: msg}
}

// checkTime refuses a signature outside the allowed clock skew, or a
// presigned URL past its expiry, with AWS's messages.
func (s *signature) checkTime(now time.Time) error {
	now = now.UTC()
	f := func(t time.Time) string { return t.UTC().Format(amzDateFormat) }
	if s.Presigned {
		if end := s.Date.Add(s.Expires); now.After(end) {
			return &errdefs.AuthError{Kind: errdefs.AuthBadSignature, Message: fmt.Sprintf("Signature expired: the presigned request signed at %s for %d seconds expired at %s; it is now %s.", f(s.Date), int(s.Expires.Seconds()), f(end), f(now))}
		}
		if s.Date.After(now.Add(MaxSkew)) {
			return &errdefs.AuthError{Kind: errdefs.AuthBadSignature, Message: fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 5 min.)", f(s.Date), f(now.Add(MaxSkew)), f(now))}
		}
		return nil
	}
	if s.Date.Before(now.Add(-MaxSkew)) {
		return &errdefs.AuthError{Kind: errdefs.AuthBadSignature, Message: fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 5 min.)", f(s.Date), f(now.Add(-MaxSkew)), f(now))}
	}
	if s.Date.After(now.Add(MaxSkew)) {
		return &errdefs.AuthError{Kind: errdefs.AuthBadSignature, Message: fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 5 min.)", f(s.Date), f(now.Add(MaxSkew)), f(now))}
	}
	return nil
}

var mismatch = &errdefs.AuthError{Kind: errdefs.AuthBadSignature, Message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}

// verify recomputes the signature of r with the secret and compares it in
// constant time. payloadHash is the hex SHA-256 of the body.
func (s *signature) verify(signer *v4.Signer, r *http.Request, payloadHash, secret string) error {
	// Rebuild the request with exactly the headers the client signed, so the
	// SDK's signer reproduces the client's canonical request.
	u := *r.URL
	u.Host = r.Host
	u.Scheme = "http"
	c := &http.Request{Method: r.Method, URL: &u, Host: r.Host, Header: http.Header{}}
	for _, h := range s.SignedHeaders {
		switch h {
		case "host":
		case "content-length":
			c.ContentLength = r.ContentLength
		default:
			if v, ok := r.Header[http.CanonicalHeaderKey(h)]; ok {
				c.Header[http.CanonicalHeaderKey(h)] = v
			} else {
				return mismatch
			}
		}
	}
	creds := aws.Credentials{AccessKeyID: s.AccessKeyID, SecretAccessKey: secret, SessionToken: s.SessionToken}
	ctx := context.Background()
	var got string
	if s.Presigned {
		q := u.Query()
		q.Del("X-Amz-Signature")
		u.RawQuery = q.Encode()
		// A presigned URL is made before any body exists.
		claimed := q.Get("X-Amz-Content-Sha256")
		if claimed == "" {
			claimed = unsignedPayload
		}
		payloadHash, err := claimedHash(claimed, payloadHash)
		if err != nil {
			return err
		}
		signed, _, err := signer.PresignHTTP(ctx, creds, c, payloadHash, s.Service, s.Region, s.Date, noHoisting)
		if err != nil {
			return mismatch
		}
		su, err := url.Parse(signed)
		if err != nil {
			return mismatch
		}
		got = su.Query().Get("X-Amz-Signature")
	} else {
		if claimed := r.Header.Get("X-Amz-Content-Sha256"); claimed != "" {
			var err error
			if payloadHash, err = claimedHash(claimed, payloadHash); err != nil {
				return err
			}
		}
		if err := signer.SignHTTP(ctx, creds, c, payloadHash, s.Service, s.Region, s.Date); err != nil {
			return mismatch
		}
		_, sig, _ := strings.Cut(c.Header.Get("Authorization"), "Signature=")
		got = sig
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.Signature)) != 1 {
		return mismatch
	}
	return nil
}

// claimedHash checks a payload hash the client states (the
// X-Amz-Content-Sha256 header or query parameter) against the body's.
func claimedHash(claimed, actual string) (string, error) {
	if claimed == unsignedPayload || claimed == actual {
		return claimed, nil
	}
	return "", &errdefs.AuthError{Kind: errdefs.AuthBadSignature, Message: "The provided 'x-amz-content-sha256' header does not match what was computed."}
}

func noHoisting(o *v4.SignerOptions) { o.DisableHeaderHoisting = true }
