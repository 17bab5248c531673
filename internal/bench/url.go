package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// The function URL row: the warm echo function called through its URL.

// functionURL gives name a public (NONE) function URL and returns it.
func (t *target) functionURL(ctx context.Context, name string) (string, error) {
	out, err := t.lambda.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String(name), AuthType: types.FunctionUrlAuthTypeNone})
	if err != nil {
		return "", fmt.Errorf("function URL of %s: %w", name, err)
	}
	if _, err := t.lambda.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String(name), StatementId: aws.String("bench-url"),
		Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"), FunctionUrlAuthType: types.FunctionUrlAuthTypeNone}); err != nil {
		return "", fmt.Errorf("function URL permission of %s: %w", name, err)
	}
	return aws.ToString(out.FunctionUrl), nil
}

// urlClient is the target's HTTP client reaching *.localhost names (every
// function URL's) at the target's host: Go's resolver asks DNS for them.
func (t *target) urlClient() *http.Client {
	host := "127.0.0.1"
	if u, err := url.Parse(t.url); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	tr := t.http.Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if h, port, err := net.SplitHostPort(addr); err == nil && strings.HasSuffix(h, ".localhost") {
			addr = net.JoinHostPort(host, port)
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr}
}

// measureWarmURL times sequential calls to the warm echo function through
// its function URL, then as many round trips to the bare echo with the
// same client.
func (r *run) measureWarmURL(ctx context.Context, n int) (Row, error) {
	u, err := r.t.functionURL(ctx, r.fn)
	if err != nil {
		return Row{}, err
	}
	c := r.t.urlClient()
	if err := postTo(ctx, c, u, payload); err != nil {
		return Row{}, err
	}
	var warm, floor samples
	for range n {
		d, err := timed(func() error { return postTo(ctx, c, u, payload) })
		if err != nil {
			return Row{}, err
		}
		warm = append(warm, d)
	}
	quiesce()
	for range n {
		f, err := timed(func() error { return r.echo.post(ctx, c, payload) })
		if err != nil {
			return Row{}, err
		}
		floor = append(floor, f)
	}
	return Row{
		ID: RowWarmURL, Name: "warm function URL call, sequential (net/http POST, AuthType NONE)", Unit: UnitMicros,
		Result: warm.stat(), FloorName: "bare loopback HTTP echo, same client", Floor: floor.stat(),
		Note: "the function echoes the ~1 KB URL event; the floor echoes the 17-byte payload",
	}, nil
}
