// Package testkit holds what icebox's tests share: the one gate for tests
// that need root, the one way to wait for a condition, and a transport for
// SDK clients reading event streams.
package testkit

import (
	"bytes"
	"cmp"
	"io"
	"net/http"
	"os"
	"testing"
	"time"
)

// NeedRoot skips tb unless it runs as root. Tests that build real sandboxes
// (namespaces, cgroups, mounts) use it; CI runs as root, and everything
// above the sandbox is tested without root through sandbox/sandboxtest.
func NeedRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("builds real sandboxes (namespaces, cgroups, mounts) and needs root; CI runs as root")
	}
}

// WaitFor polls cond until it holds, failing tb once within has passed.
func WaitFor(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SDKTransport is an HTTP transport for aws-sdk-go-v2 clients that read
// event streams (InvokeWithResponseStream) from a server on loopback. The
// SDK closes a request's body as soon as the response headers arrive; when
// they arrive before net/http's writer has finished with the body (a fast
// server, a busy machine), its final read of the closed body fails with
// io.EOF and the transport tears down the connection, cutting off the
// events still to come ("use of closed network connection" on the
// client). SDKTransport hands the transport its own copy of the body, so
// the SDK's close cannot reach it.
type SDKTransport struct{ Base http.RoundTripper }

func (t SDKTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	return cmp.Or(t.Base, http.DefaultTransport).RoundTrip(r)
}
