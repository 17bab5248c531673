// Command caller is an aws-lambda-go function that calls icebox back with
// the AWS SDK, configured only by what Lambda puts in its environment
// (AWS_ENDPOINT_URL, the role's temporary credentials): it invokes the
// function named in the event and reports what happened.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"
)

type event struct {
	Target string `json:"target"`
}

type report struct {
	Payload     string `json:"payload,omitempty"`
	ErrorCode   string `json:"errorCode,omitempty"`
	Message     string `json:"message,omitempty"`
	AccessKeyID string `json:"accessKeyId"`
	Endpoint    string `json:"endpoint"`
}

func main() {
	lambda.Start(func(ctx context.Context, ev event) (report, error) {
		r := report{AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), Endpoint: os.Getenv("AWS_ENDPOINT_URL")}
		cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryMaxAttempts(1))
		if err != nil {
			return r, err
		}
		out, err := awslambda.NewFromConfig(cfg).Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(ev.Target), Payload: []byte(`{"from":"caller"}`)})
		var ae smithy.APIError
		switch {
		case errors.As(err, &ae):
			r.ErrorCode, r.Message = ae.ErrorCode(), ae.ErrorMessage()
		case err != nil:
			return r, err
		default:
			r.Payload = string(out.Payload)
		}
		return r, nil
	})
}
