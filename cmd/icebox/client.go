package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"icebox/internal/auth"
	"icebox/internal/daemon"
)

// clientCredentials are what the icebox CLI signs with: the AWS_* variables
// when set, else the root credentials a server on this host keeps in its
// data dir.
func clientCredentials(dataDir string) (aws.Credentials, error) {
	if id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: os.Getenv("AWS_SESSION_TOKEN")}, nil
	}
	if dataDir == "" {
		dataDir = daemon.DefaultDataDir()
	}
	path := filepath.Join(dataDir, auth.RootCredentialsFile)
	id, secret, err := auth.ReadCredentialsFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return aws.Credentials{}, fmt.Errorf("no credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and there are no root credentials at %s (icebox serve writes them there on its first start; "+
			"if it runs with another --data-dir, pass the same --data-dir)", path)
	}
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run on the server's host with its --data-dir (%w)", err)
	}
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, nil
}

// clientFlags registers the flags every client command shares.
func clientFlags(fs *flag.FlagSet) func() (*client, error) {
	endpoint := fs.String("endpoint", "http://127.0.0.1:9070", "icebox API endpoint; $AWS_ENDPOINT_URL when set and this is not given")
	region := fs.String("region", "us-east-1", "region the server runs as")
	dataDir := fs.String("data-dir", "", "the server's data dir, for its root credentials when AWS_* are not set (default "+daemon.DefaultDataDir()+")")
	return func() (*client, error) {
		creds, err := clientCredentials(*dataDir)
		if err != nil {
			return nil, err
		}
		// The AWS CLI and SDKs read AWS_ENDPOINT_URL: one export points
		// them and icebox's own commands at the same server.
		url := *endpoint
		if env := os.Getenv("AWS_ENDPOINT_URL"); env != "" && !flagGiven(fs, "endpoint") {
			url = strings.TrimSuffix(env, "/")
		}
		return &client{endpoint: url, region: *region, creds: creds}, nil
	}
}

// client calls icebox's own JSON endpoints with SigV4.
type client struct {
	endpoint string
	region   string
	creds    aws.Credentials
}

// do sends in (JSON, when non-nil) to icebox's REST API and decodes the
// answer into out (when non-nil). An AWS error answer becomes an error
// naming its code.
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	return c.send(ctx, method, path, "", in, out)
}

// logsCall calls operation op of the CloudWatch Logs API (JSON 1.1).
func (c *client) logsCall(ctx context.Context, op string, in, out any) error {
	return c.send(ctx, http.MethodPost, "/", "Logs_20140328."+op, in, out)
}

func (c *client) send(ctx context.Context, method, path, target string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	service := "lambda"
	req.Header.Set("Content-Type", "application/json")
	if target != "" {
		service = "logs"
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", target)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, c.creds, req, hex.EncodeToString(sum[:]), service, c.region, time.Now()); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("cannot connect: is `icebox serve` running at %s? (--endpoint names another server): %w", c.endpoint, err)
		}
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e map[string]any
		_ = json.Unmarshal(b, &e)
		msg, _ := e["message"].(string)
		if msg == "" {
			msg, _ = e["Message"].(string)
		}
		code := resp.Header.Get("x-amzn-ErrorType")
		if t, ok := e["__type"].(string); ok && code == "" {
			code = t
		}
		return fmt.Errorf("%s (%s): %s", code, resp.Status, msg)
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, out)
}

// flagGiven reports whether the command line set the flag name.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
