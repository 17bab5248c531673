// Package authtest signs test requests the way AWS clients do, with the
// fixed root credentials test servers are started with.
package authtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The root credentials test servers use.
const (
	AccessKeyID     = "AKIDEXAMPLE"
	SecretAccessKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	Region          = "us-east-1"
)

// Env is the environment a CLI or SDK process needs to sign as root.
func Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + SecretAccessKey, "AWS_DEFAULT_REGION=" + Region}
}

// ServerEnv is the environment that makes `icebox serve` use these
// credentials as root.
func ServerEnv() []string {
	return []string{"ICEBOX_ROOT_ACCESS_KEY_ID=" + AccessKeyID, "ICEBOX_ROOT_SECRET_ACCESS_KEY=" + SecretAccessKey}
}

// Sign signs req (buffering its body) as root; the service is "logs" for
// CloudWatch Logs targets and "lambda" otherwise.
func Sign(req *http.Request) error {
	return SignAs(req, aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey})
}

// SignAs signs req (buffering its body) with creds, as Sign does.
func SignAs(req *http.Request, creds aws.Credentials) error {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	service := "lambda"
	if strings.HasPrefix(req.Header.Get("X-Amz-Target"), "Logs_") {
		service = "logs"
	}
	sum := sha256.Sum256(body)
	return v4.NewSigner().SignHTTP(req.Context(), creds, req, hex.EncodeToString(sum[:]), service, Region, time.Now())
}

// Transport signs every request before base (nil: the default) sends it.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return signer{base}
}

type signer struct{ base http.RoundTripper }

func (s signer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	if err := Sign(req); err != nil {
		return nil, err
	}
	return s.base.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach base.
func (s signer) CloseIdleConnections() {
	if c, ok := s.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
