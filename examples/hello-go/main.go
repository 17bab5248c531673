// Command hello is the quick start's Go function: a custom runtime
// (provided.al2023) built with aws-lambda-go.
//
//	CGO_ENABLED=0 go build -o bootstrap && zip hello-go.zip bootstrap
package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/lambda"
)

// Event is what the function is called with.
type Event struct {
	Name string `json:"name"`
}

// Response is what it answers.
type Response struct {
	Message string `json:"message"`
}

func handle(ctx context.Context, e Event) (Response, error) {
	if e.Name == "" {
		e.Name = "world"
	}
	fmt.Printf("saying hello to %s\n", e.Name)
	return Response{Message: "Hello, " + e.Name + "!"}, nil
}

func main() { lambda.Start(handle) }
