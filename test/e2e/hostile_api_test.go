package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"icebox/internal/testkit"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/auth/authtest"
)

// What an anonymous client, or a function's own code, can make the daemon
// hold: the API reads no body before the signature's key and date check,
// refuses an announced size over the operation's limit at once, grows
// buffers as bytes arrive under a global budget, and bounds the
// connections that have not authenticated.

// heapInUse is the daemon's heap (it runs in this process) after a GC.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// rawRequest opens a connection and sends a request's headers (and no body).
func rawRequest(t *testing.T, s *server, method, path string, contentLength int64, headers string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.url, "http://"), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n",
		method, path, strings.TrimPrefix(s.url, "http://"), contentLength, headers); err != nil {
		t.Fatal(err)
	}
	return c
}

// answer reads the response to a raw request; the status is 0 if none
// came within the wait.
func answer(c net.Conn, wait time.Duration) (status int, errorType string) {
	c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err.Error()
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType")
}

// rootClaim signs as root with a wrong signature: key, scope and date pass
// the checks made before the body is read.
func rootClaim(akid string) string {
	now := time.Now().UTC()
	return fmt.Sprintf("Authorization: AWS4-HMAC-SHA256 Credential=%s/%s/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=%s\r\nX-Amz-Date: %s\r\n",
		akid, now.Format("20060102"), strings.Repeat("0", 64), now.Format("20060102T150405Z"))
}

// TestAnonymousBodiesAreNotRead: twenty anonymous connections announcing
// the largest CreateFunction and sending nothing more get their 403 at once,
// and the daemon allocates nothing for the bodies they announced.
func TestAnonymousBodiesAreNotRead(t *testing.T) {
	s := startServer(t)
	before := heapInUse()
	var conns []net.Conn
	for range 20 {
		conns = append(conns, rawRequest(t, s, "POST", "/2015-03-31/functions", 69_000_000, ""))
	}
	for i, c := range conns {
		if status, typ := answer(c, 5*time.Second); status != http.StatusForbidden || typ != "MissingAuthenticationTokenException" {
			t.Fatalf("anonymous connection %d: status %d %s, want 403 MissingAuthenticationTokenException before any body", i, status, typ)
		}
	}
	if grown := int64(heapInUse()) - int64(before); grown > 64<<20 {
		t.Errorf("heap grew %d MiB for 20 anonymous headers", grown>>20)
	}

	// An unknown key is refused before its body too.
	c := rawRequest(t, s, "POST", "/2015-03-31/functions", 69_000_000, rootClaim("AKIAUNKNOWNKEY000000"))
	if status, typ := answer(c, 5*time.Second); status != http.StatusForbidden || typ != "UnrecognizedClientException" {
		t.Errorf("unknown key: %d %s, want 403 UnrecognizedClientException before any body", status, typ)
	}
	// A known key announcing more than the operation takes gets Lambda's
	// 413 at once.
	c = rawRequest(t, s, "POST", "/2015-03-31/functions", 69_905_068, rootClaim(authtest.AccessKeyID))
	if status, typ := answer(c, 5*time.Second); status != http.StatusRequestEntityTooLarge || typ != "RequestTooLargeException" {
		t.Errorf("oversized CreateFunction: %d %s, want 413 RequestTooLargeException before any body", status, typ)
	}
	c = rawRequest(t, s, "POST", "/2015-03-31/functions/f/invocations", 7<<20, rootClaim(authtest.AccessKeyID))
	if status, typ := answer(c, 5*time.Second); status != http.StatusRequestEntityTooLarge || typ != "RequestTooLargeException" {
		t.Errorf("oversized Invoke: %d %s, want 413 RequestTooLargeException before any body", status, typ)
	}
}

// TestBodyBudget: bodies announced by signed-looking requests are charged
// to one budget before they are read; past it the API answers 503 at once,
// and the budget comes back when those requests end.
func TestBodyBudget(t *testing.T) {
	s := startServer(t)
	var held []net.Conn
	refused := 0
	for range 10 { // 10 × 66 MiB > the 512 MiB budget
		c := rawRequest(t, s, "POST", "/2015-03-31/functions", 69_000_000, rootClaim(authtest.AccessKeyID))
		held = append(held, c)
	}
	for _, c := range held {
		if status, typ := answer(c, 500*time.Millisecond); status != 0 {
			if status != http.StatusServiceUnavailable || typ != "ServiceException" {
				t.Fatalf("over budget: %d %s, want 503 ServiceException", status, typ)
			}
			refused++
		}
	}
	if refused == 0 || refused == len(held) {
		t.Fatalf("%d of %d large requests refused, want those past the budget only", refused, len(held))
	}
	for _, c := range held {
		c.Close()
	}
	testkit.WaitFor(t, 10*time.Second, "the budget to come back", func() bool {
		_, err := s.client.ListFunctions(context.Background(), &lambda.ListFunctionsInput{})
		return err == nil
	})
	s.create("after-budget")
	if out := s.invoke("after-budget", map[string]string{}); out.FunctionError != nil {
		t.Fatalf("invoke after the budget came back: %s", out.Payload)
	}
}

// TestUnauthenticatedConnectionCap: connections that never authenticate
// cannot crowd out a client that does; the oldest of them are closed.
func TestUnauthenticatedConnectionCap(t *testing.T) {
	s := startServer(t)
	addr := strings.TrimPrefix(s.url, "http://")
	var idle []net.Conn
	for range 300 { // the cap is 256
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		idle = append(idle, c)
	}
	if _, err := s.client.ListFunctions(context.Background(), &lambda.ListFunctionsInput{}); err != nil {
		t.Fatalf("signed call past 300 idle anonymous connections: %v", err)
	}
	closed := 0
	for _, c := range idle[:40] {
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			closed++
		}
	}
	if closed == 0 {
		t.Errorf("none of the oldest anonymous connections was closed past the cap")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestSandboxCannotPinDaemonMemory: a function that opens connections to
// icebox's API from inside its sandbox, announcing bodies it never sends,
// gets a few connections and a small byte budget, and the half-sent
// requests are cut when its environment is frozen.
func TestSandboxCannotPinDaemonMemory(t *testing.T) {
	s := startServer(t)
	s.create("pinner", withProbe(t, nil), func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(30) })
	s.invokeJSON("pinner", map[string]string{"action": "report"}, &probeReport{}) // warm
	before := heapInUse()
	var opened map[string]any
	s.invokeJSON("pinner", map[string]any{"action": "pin", "conns": 20, "announce": 6 << 20, "send": 1 << 20, "path": "/2015-03-31/functions/pinner/invocations"}, &opened)
	if grown := int64(heapInUse()) - int64(before); grown > 32<<20 {
		t.Errorf("daemon heap grew %d MiB after a frozen function pinned 20 × 6 MiB requests", grown>>20)
	}
	var conns map[string]int
	s.invokeJSON("pinner", map[string]string{"action": "pinned"}, &conns)
	t.Logf("opened %v; after the freeze: %v", opened, conns)
	if conns["open"] > 0 {
		t.Errorf("%d half-sent requests of a frozen environment are still held open: %v", conns["open"], conns)
	}
	// The environment still reaches the API afterwards.
	var got map[string]any
	s.invokeJSON("pinner", map[string]string{"action": "get", "path": "/2015-03-31/functions"}, &got)
	if got["status"] != float64(http.StatusForbidden) || got["errorType"] != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned call from the sandbox after pinning: %v", got)
	}
}

// TestMetricsNeedTheRoleFromSandbox: /metrics, public on the host's
// listener, is refused to a function's code unless its role grants it.
func TestMetricsNeedTheRoleFromSandbox(t *testing.T) {
	s := startServer(t)
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics on the host: %d", resp.StatusCode)
	}
	s.create("metrics-probe", withProbe(t, nil))
	var got map[string]any
	s.invokeJSON("metrics-probe", map[string]string{"action": "get", "path": "/metrics"}, &got)
	if got["status"] != float64(http.StatusForbidden) || got["errorType"] != "MissingAuthenticationTokenException" {
		t.Errorf("/metrics from a sandbox: %v, want 403 MissingAuthenticationTokenException", got)
	}
}

// TestLogsAuthorizedOnTheGroup: a Deny on one log group holds whichever
// parameter names it (logGroupName, or logGroupIdentifier as a name or an
// ARN).
func TestLogsAuthorizedOnTheGroup(t *testing.T) {
	s := startServer(t)
	s.create("secret")
	s.invoke("secret", map[string]string{})
	_, creds := s.userClient("carol", `{"Statement":[
		{"Effect":"Allow","Action":"logs:*","Resource":"*"},
		{"Effect":"Deny","Action":"logs:*","Resource":"arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/secret:*"}]}`)
	logsClient := cloudwatchlogs.New(cloudwatchlogs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url), Retryer: aws.NopRetryer{},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })})
	ctx := context.Background()
	for _, in := range []*cloudwatchlogs.FilterLogEventsInput{
		{LogGroupName: aws.String("/aws/lambda/secret")},
		{LogGroupIdentifier: aws.String("/aws/lambda/secret")},
		{LogGroupIdentifier: aws.String("arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/secret")},
		{LogGroupIdentifier: aws.String("arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/secret:*")},
	} {
		_, err := logsClient.FilterLogEvents(ctx, in)
		apiError(t, "FilterLogEvents", err, "AccessDeniedException", "explicit deny")
	}
	_, err := logsClient.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupIdentifier: aws.String("/aws/lambda/secret")})
	apiError(t, "DescribeLogStreams", err, "AccessDeniedException", "explicit deny")
	// Other groups stay readable.
	s.create("open")
	s.invoke("open", map[string]string{})
	if _, err := logsClient.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupIdentifier: aws.String("/aws/lambda/open")}); err != nil {
		t.Errorf("allowed group: %v", err)
	}
}

// TestNULInEnvironmentRefusedAtCreate: a value no process environment can
// hold is a 400 when the function is made, not a failure at every invoke.
func TestNULInEnvironmentRefusedAtCreate(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	_, err := s.client.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("nul"), Runtime: types.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/x"), Code: &types.FunctionCode{ZipFile: functionZip(t)},
		Environment: &types.Environment{Variables: map[string]string{"KEY": "a\x00b"}}})
	wantAPIError(t, "create with NUL", err, "InvalidParameterValueException", http.StatusBadRequest, "NUL")
	if _, err := s.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("nul")}); errorCode(err) != "ResourceNotFoundException" {
		t.Errorf("a refused create left a function behind: %v", err)
	}
	s.create("nul")
	_, err = s.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("nul"),
		Environment: &types.Environment{Variables: map[string]string{"KEY": "\x00"}}})
	wantAPIError(t, "update with NUL", err, "InvalidParameterValueException", http.StatusBadRequest, "NUL")
}
