// streamfn answers with aws-lambda-go's streaming function URL response:
// three lines 200 ms apart, each with when it was written (epoch ms); on
// the path /fail its body reader then fails.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handler(ctx context.Context, req events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
	pr, pw := io.Pipe()
	go func() {
		for i := range 3 {
			if i > 0 {
				time.Sleep(200 * time.Millisecond)
			}
			fmt.Fprintf(pw, "line %d %d\n", i, time.Now().UnixMilli())
		}
		if req.RawPath == "/fail" {
			pw.CloseWithError(errors.New("reader failed"))
			return
		}
		pw.Close()
	}()
	return &events.LambdaFunctionURLStreamingResponse{
		StatusCode: 202,
		Headers:    map[string]string{"content-type": "text/plain", "x-go": "yes"},
		Cookies:    []string{"g=1"},
		Body:       pr,
	}, nil
}

func main() { lambda.Start(handler) }
