// Command echo is the benchmark's aws-lambda-go function: it returns its event.
package main

import (
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(ev json.RawMessage) (json.RawMessage, error) { return ev, nil })
}
