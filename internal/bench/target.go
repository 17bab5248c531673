package bench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/api"
	"icebox/internal/daemon"
)

// target is the icebox under measurement: a daemon started here, or a
// running one at cfg.Endpoint. Every request is signed (SigV4) with the
// target's credentials.
type target struct {
	url    string
	region string
	creds  aws.CredentialsProvider
	// http is shared by the SDK client and the floors, so both pay the same
	// client costs.
	http   *http.Client
	lambda *lambda.Client
	d      *daemon.Daemon // nil for an endpoint
	// prefix names this run's functions, so runs against one endpoint
	// never collide.
	prefix  string
	created []string
	layers  []string // layer version ARNs published by the run
}

// newHTTPClient keeps enough idle connections for the highest concurrency,
// so no level pays for new TCP connections after its warm-up.
func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 2048
	tr.MaxIdleConnsPerHost = 2048
	return &http.Client{Transport: tr}
}

// startTarget starts the in-process daemon in dir (with --egress nat when
// egress is set), or connects to the endpoint.
func startTarget(ctx context.Context, cfg *Config, dir string, egress bool) (_ *target, err error) {
	t := &target{region: cfg.Region, http: newHTTPClient(), prefix: "bench-" + randomHex(4) + "-"}
	key, secret, token := cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken
	if cfg.Endpoint == "" {
		key, secret, token = "AKIA"+randomUpper(16), randomHex(20), ""
		// Every row must be limited by the platform, not by its safety
		// limits: room for the burst, the highest concurrency and every
		// idle environment the memory row keeps alive.
		envs := cfg.ColdStarts + cfg.Burst + maxOf(cfg.Concurrency) + cfg.IdleEnvs + cfg.ScaleColdStarts*(len(cfg.ScaleFunctions)+1) + 64
		dcfg := daemon.Config{
			Listen:              "127.0.0.1:0",
			DataDir:             filepath.Join(dir, "data"),
			IdleTimeout:         time.Hour,
			ShutdownTimeout:     time.Minute,
			AccountConcurrency:  envs,
			MemoryBudgetMB:      envs * 128 * 2,
			ScaleBurst:          envs,
			ScaleRate:           float64(envs),
			RootAccessKeyID:     key,
			RootSecretAccessKey: secret,
		}
		if egress {
			dcfg.Egress = daemon.EgressNAT
		}
		if t.d, err = daemon.Start(ctx, dcfg, cfg.Log); err != nil {
			return nil, fmt.Errorf("start icebox: %w", err)
		}
		t.url = "http://" + t.d.Addr()
	} else {
		t.url = cfg.Endpoint
	}
	t.creds = credentials.NewStaticCredentialsProvider(key, secret, token)
	t.lambda = t.clientFor(t.url)
	return t, nil
}

// clientFor is the target's Lambda client (same credentials, signing and
// HTTP client) pointed at url: the SDK floor calls the invoke stub with it.
func (t *target) clientFor(url string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:       t.region,
		BaseEndpoint: aws.String(url),
		Credentials:  t.creds,
		HTTPClient:   t.http,
		Retryer:      aws.NopRetryer{},
	})
}

// invokeWith calls name on c, like invoke.
func invokeWith(ctx context.Context, c *lambda.Client, name string, payload []byte) error {
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: payload})
	if err != nil {
		return err
	}
	if out.FunctionError != nil {
		return fmt.Errorf("invoke %s: function error %s", name, *out.FunctionError)
	}
	return nil
}

// deleteFunction deletes a function the run created.
func (t *target) deleteFunction(ctx context.Context, name string) error {
	if _, err := t.lambda.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(name)}); err != nil {
		return fmt.Errorf("delete function %s: %w", name, err)
	}
	if i := slices.Index(t.created, name); i >= 0 {
		t.created = slices.Delete(t.created, i, i+1)
	}
	return nil
}

// close deletes this run's functions (an endpoint keeps running) or shuts
// the in-process daemon down.
func (t *target) close() error {
	if t.d != nil {
		return t.d.Shutdown()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, name := range t.created {
		_, _ = t.lambda.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(name)})
	}
	for _, arn := range t.layers {
		i := strings.LastIndexByte(arn, ':')
		v, _ := strconv.ParseInt(arn[i+1:], 10, 64)
		_, _ = t.lambda.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String(arn[:i]), VersionNumber: aws.Int64(v)})
	}
	return nil
}

// publishLayer publishes zip as a layer version and returns its ARN.
func (t *target) publishLayer(ctx context.Context, name string, zip []byte) (string, error) {
	out, err := t.lambda.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String(name), Content: &types.LayerVersionContentInput{ZipFile: zip}})
	if err != nil {
		return "", fmt.Errorf("publish layer %s: %w", name, err)
	}
	arn := aws.ToString(out.LayerVersionArn)
	t.layers = append(t.layers, arn)
	return arn, nil
}

// create makes a provided.al2023 function from zip, with layers.
func (t *target) create(ctx context.Context, name string, zip []byte, timeout time.Duration, layers ...string) error {
	_, err := t.lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		Role:         aws.String("arn:aws:iam::000000000000:role/icebox-bench"),
		MemorySize:   aws.Int32(128),
		Timeout:      aws.Int32(int32(timeout / time.Second)),
		Code:         &types.FunctionCode{ZipFile: zip},
		Layers:       layers,
	})
	if err != nil {
		return fmt.Errorf("create function %s: %w", name, err)
	}
	t.created = append(t.created, name)
	return nil
}

// invoke calls name synchronously; a function error is an error here, since
// the bench's functions never fail.
func (t *target) invoke(ctx context.Context, name string, payload []byte) ([]byte, error) {
	out, err := t.lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: payload})
	if err != nil {
		return nil, err
	}
	if out.FunctionError != nil {
		return nil, fmt.Errorf("invoke %s: function error %s: %s", name, *out.FunctionError, out.Payload)
	}
	return out.Payload, nil
}

// status reads /icebox/v1/status.
func (t *target) status(ctx context.Context) (api.Status, error) {
	var st api.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url+"/icebox/v1/status", nil)
	if err != nil {
		return st, err
	}
	if err := t.sign(ctx, req); err != nil {
		return st, err
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status: server answered %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// alive counts environments in every state but destroyed.
func (t *target) alive(ctx context.Context) (int, error) {
	st, err := t.status(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for state, c := range st.Environments {
		if state != "destroyed" {
			n += c
		}
	}
	return n, nil
}

// sign adds a SigV4 signature for the lambda service to a bodiless req.
func (t *target) sign(ctx context.Context, req *http.Request) error {
	creds, err := t.creds.Retrieve(ctx)
	if err != nil {
		return err
	}
	empty := sha256.Sum256(nil)
	return v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(empty[:]), "lambda", t.region, time.Now())
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomUpper(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// workDir makes the run's temporary directory.
func workDir() (string, error) { return os.MkdirTemp("", "icebox-bench-") }
