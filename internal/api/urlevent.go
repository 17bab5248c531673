package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"icebox/internal/auth"
	"icebox/internal/model"
)

// What a function URL hands a function and how its answer becomes the HTTP
// response. Kept apart from the call itself so a streamed response (whose
// head comes first, as a prelude) maps headers, cookies and CORS the same
// way: urlEvent builds the event, parseURLResponse reads a buffered result,
// writeURLHead writes any response's head.

// urlRequest is the payload format 2.0 event, with the fields and order of
// aws-lambda-go's events.LambdaFunctionURLRequest and Lambda's own events.
type urlRequest struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	RequestContext        urlRequestContext `json:"requestContext"`
	Body                  string            `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

type urlRequestContext struct {
	AccountID      string         `json:"accountId"`
	APIID          string         `json:"apiId"`
	Authentication *struct{}      `json:"authentication"`
	Authorizer     *urlAuthorizer `json:"authorizer"` // null for NONE
	DomainName     string         `json:"domainName"`
	DomainPrefix   string         `json:"domainPrefix"`
	HTTP           urlHTTP        `json:"http"`
	RequestID      string         `json:"requestId"`
	RouteKey       string         `json:"routeKey"`
	Stage          string         `json:"stage"`
	Time           string         `json:"time"`
	TimeEpoch      int64          `json:"timeEpoch"`
}

type urlHTTP struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

type urlAuthorizer struct {
	IAM urlIAM `json:"iam"`
}

// iamAuthorizer describes the caller id, who signed with accessKey.
func (s *Server) iamAuthorizer(id auth.Identity, accessKey string) *urlAuthorizer {
	return &urlAuthorizer{IAM: urlIAM{AccessKey: accessKey, AccountID: s.cfg.AccountID, CallerID: accessKey, UserARN: id.ARN, UserID: accessKey}}
}

// urlIAM describes an AWS_IAM caller. icebox has no unique ids (AIDA…):
// callerId and userId are the caller's access key id.
type urlIAM struct {
	AccessKey       string  `json:"accessKey"`
	AccountID       string  `json:"accountId"`
	CallerID        string  `json:"callerId"`
	CognitoIdentity *string `json:"cognitoIdentity"`
	PrincipalOrgID  *string `json:"principalOrgId"`
	UserARN         string  `json:"userArn"`
	UserID          string  `json:"userId"`
}

// urlEventTime is the event's requestContext.time layout.
const urlEventTime = "02/Jan/2006:15:04:05 -0700"

// urlEvent builds the event for a call to URL id: headers lower-cased with
// repeated values comma-joined, Cookie headers as cookies, query values
// comma-joined, a body that is not text base64-encoded, the call's trace
// as x-amzn-trace-id. authorizer describes the AWS_IAM caller, nil for
// NONE.
func (s *Server) urlEvent(r *http.Request, body []byte, id, requestID, trace string, authorizer *urlAuthorizer) ([]byte, error) {
	now := time.Now().UTC()
	ev := urlRequest{Version: "2.0", RouteKey: "$default", RawPath: r.URL.EscapedPath(), RawQueryString: r.URL.RawQuery,
		Headers: map[string]string{},
		RequestContext: urlRequestContext{AccountID: s.cfg.AccountID, APIID: id, DomainName: id + "." + s.urlDomain(),
			DomainPrefix: id, RequestID: requestID, RouteKey: "$default", Stage: "$default",
			Time: now.Format(urlEventTime), TimeEpoch: now.UnixMilli(),
			HTTP: urlHTTP{Method: r.Method, Path: r.URL.EscapedPath(), Protocol: r.Proto, UserAgent: r.UserAgent()}}}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ev.RequestContext.HTTP.SourceIP = host
	}
	for k, vs := range r.Header {
		k = strings.ToLower(k)
		if hopByHop[k] {
			continue // the connection's to the URL listener, not the call's
		}
		if k == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						ev.Cookies = append(ev.Cookies, c)
					}
				}
			}
			continue
		}
		ev.Headers[k] = strings.Join(vs, ",")
	}
	// What Lambda's front end adds (Go's server keeps Host apart).
	ev.Headers["host"] = r.Host
	ev.Headers["x-forwarded-for"] = ev.RequestContext.HTTP.SourceIP
	ev.Headers["x-forwarded-proto"] = "http"
	ev.Headers["x-forwarded-port"] = strconv.Itoa(s.cfg.URLPort)
	ev.Headers["x-amzn-trace-id"] = trace
	if r.URL.RawQuery != "" {
		q, _ := url.ParseQuery(r.URL.RawQuery) // what parses; rawQueryString has it all
		ev.QueryStringParameters = map[string]string{}
		for k, vs := range q {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	if len(body) > 0 {
		if textual(r.Header.Get("Content-Type")) && utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	ev.RequestContext.Authorizer = authorizer
	return json.Marshal(ev)
}

// hopByHop are the request headers that describe the client's connection
// to the listener (RFC 9110 §7.6.1); a proxy does not pass them on, nor
// does Lambda's front end.
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-authorization": true, "proxy-connection": true,
	"te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
}

// textual says whether a body of this content type is passed as text:
// text/*, JSON, XML, JavaScript, YAML and form data; anything else is
// binary.
func textual(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	typ, sub, _ := strings.Cut(mt, "/")
	return typ == "text" || sub == "json" || sub == "xml" || sub == "javascript" || sub == "x-www-form-urlencoded" ||
		sub == "yaml" || strings.HasSuffix(sub, "+json") || strings.HasSuffix(sub, "+xml")
}

// urlHead is a response's status, headers and cookies: the buffered
// result's fields, and a streamed response's prelude.
type urlHead struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Cookies    []string          `json:"cookies"`
}

// urlResult is a buffered response.
type urlResult struct {
	head urlHead
	body []byte
}

var errBadURLResponse = errors.New("the function's response is not a valid function URL response")

// parseURLResponse reads a function's result the way Lambda does: an
// object with statusCode is a response (headers, cookies, body,
// isBase64Encoded); any other JSON is a 200 application/json body as is.
// A status outside 200–599 is no final HTTP answer: it is refused.
func parseURLResponse(payload []byte) (urlResult, error) {
	var fields map[string]json.RawMessage
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(trimmed, &fields) != nil || fields["statusCode"] == nil {
		return urlResult{head: urlHead{StatusCode: http.StatusOK, Headers: map[string]string{"content-type": "application/json"}}, body: payload}, nil
	}
	var out urlResult
	if err := json.Unmarshal(fields["statusCode"], &out.head.StatusCode); err != nil || out.head.StatusCode < 200 || out.head.StatusCode > 599 {
		return out, fmt.Errorf("%w: statusCode %s", errBadURLResponse, fields["statusCode"])
	}
	if raw := fields["headers"]; raw != nil && string(raw) != "null" {
		var hs map[string]json.RawMessage
		if err := json.Unmarshal(raw, &hs); err != nil {
			return out, fmt.Errorf("%w: headers: %v", errBadURLResponse, err)
		}
		out.head.Headers = make(map[string]string, len(hs))
		for k, v := range hs {
			out.head.Headers[k] = jsonText(v)
		}
	}
	if raw := fields["cookies"]; raw != nil && string(raw) != "null" {
		if err := json.Unmarshal(raw, &out.head.Cookies); err != nil {
			return out, fmt.Errorf("%w: cookies: %v", errBadURLResponse, err)
		}
	}
	var b64 bool
	if raw := fields["isBase64Encoded"]; raw != nil && string(raw) != "null" {
		if err := json.Unmarshal(raw, &b64); err != nil {
			return out, fmt.Errorf("%w: isBase64Encoded: %v", errBadURLResponse, err)
		}
	}
	if raw := fields["body"]; raw != nil && string(raw) != "null" {
		body := jsonText(raw)
		if b64 {
			b, err := base64.StdEncoding.DecodeString(body)
			if err != nil {
				return out, fmt.Errorf("%w: body is not base64: %v", errBadURLResponse, err)
			}
			out.body = b
		} else {
			out.body = []byte(body)
		}
	}
	if out.head.Headers == nil {
		out.head.Headers = map[string]string{}
	}
	if !hasHeader(out.head.Headers, "content-type") {
		out.head.Headers["content-type"] = "application/json"
	}
	return out, nil
}

// jsonText is a JSON string's value, or any other JSON value's text.
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// remappedHeaders are the response headers a function may not set: the
// connection's own and the front end's. Lambda passes them on renamed
// x-amzn-Remapped-<name>, as it does.
var remappedHeaders = map[string]bool{
	"connection": true, "content-length": true, "date": true, "keep-alive": true, "proxy-authenticate": true,
	"proxy-authorization": true, "server": true, "te": true, "trailer": true, "transfer-encoding": true,
	"upgrade": true, "via": true, "x-amzn-requestid": true,
}

// writeURLHead writes a function URL response's status and headers: the
// function's headers (invalid ones dropped, reserved ones remapped), its
// cookies as Set-Cookie, and the URL's CORS headers, which replace any the
// function set.
func writeURLHead(w http.ResponseWriter, r *http.Request, cors *model.URLCors, head urlHead) {
	h := w.Header()
	for k, v := range head.Headers {
		if !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidHeaderFieldValue(v) {
			continue
		}
		lk := strings.ToLower(k)
		switch {
		case cors != nil && strings.HasPrefix(lk, "access-control-"):
			continue
		case remappedHeaders[lk]:
			k = "x-amzn-Remapped-" + k
		}
		if lk == "set-cookie" {
			h.Add(k, hostOnly(v))
		} else {
			h.Set(k, v)
		}
	}
	for _, c := range head.Cookies {
		if httpguts.ValidHeaderFieldValue(c) {
			h.Add("Set-Cookie", hostOnly(c))
		}
	}
	corsHeaders(h, r, cors)
	w.WriteHeader(head.StatusCode)
}

// hostOnly is a Set-Cookie value without its Domain attributes. Every URL
// is a name under lambda-url.<region>.localhost, which browsers do not
// treat as a public suffix (Lambda's on.aws names are one), so a Domain
// would let one function set cookies on every other function's URL and on
// the console's host; without it the cookie stays on the URL's own host.
func hostOnly(cookie string) string {
	parts := strings.Split(cookie, ";")
	kept := []string{parts[0]}
	for _, a := range parts[1:] {
		name, _, _ := strings.Cut(a, "=")
		if !strings.EqualFold(strings.TrimSpace(name), "domain") {
			kept = append(kept, a)
		}
	}
	return strings.Join(kept, ";")
}

// corsOrigin is the Access-Control-Allow-Origin answer to origin, "" when
// the configuration does not allow it.
func corsOrigin(c *model.URLCors, origin string) string {
	if c == nil || origin == "" {
		return ""
	}
	for _, o := range c.AllowOrigins {
		switch {
		case o == "*" && !c.AllowCredentials:
			return "*"
		case o == "*", strings.EqualFold(o, origin):
			return origin
		}
	}
	return ""
}

// corsHeaders adds the CORS headers of an actual (not preflight) response.
func corsHeaders(h http.Header, r *http.Request, c *model.URLCors) {
	origin := corsOrigin(c, r.Header.Get("Origin"))
	if origin == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(c.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ","))
	}
}

// corsPreflight answers a CORS preflight (OPTIONS with Origin and
// Access-Control-Request-Method) when the URL has a CORS configuration,
// without calling the function or asking for a signature, as Lambda does;
// it reports whether it answered.
func corsPreflight(w http.ResponseWriter, r *http.Request, c *model.URLCors) bool {
	if c == nil || r.Method != http.MethodOptions || r.Header.Get("Origin") == "" || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h := w.Header()
	if origin := corsOrigin(c, r.Header.Get("Origin")); origin != "" {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		if len(c.AllowMethods) > 0 {
			h.Set("Access-Control-Allow-Methods", strings.Join(c.AllowMethods, ","))
		}
		if len(c.AllowHeaders) > 0 {
			h.Set("Access-Control-Allow-Headers", strings.Join(c.AllowHeaders, ","))
		}
		if c.AllowCredentials {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		if c.MaxAge > 0 {
			h.Set("Access-Control-Max-Age", strconv.Itoa(c.MaxAge))
		}
	}
	w.WriteHeader(http.StatusOK)
	return true
}
