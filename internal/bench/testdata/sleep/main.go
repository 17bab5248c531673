// Command sleep is the bench's slow aws-lambda-go function: it holds its
// environment for the event's sleepMs, so concurrent calls each need an
// environment of their own, and tells which environment ran it and when the
// handler started.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	SleepMs int `json:"sleepMs"`
}

type result struct {
	Env     string `json:"env"`
	StartNs int64  `json:"startNs"`
}

func main() {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	env := hex.EncodeToString(b)
	lambda.Start(func(ev event) (result, error) {
		start := time.Now()
		time.Sleep(time.Duration(ev.SleepMs) * time.Millisecond)
		return result{Env: env, StartNs: start.UnixNano()}, nil
	})
}
