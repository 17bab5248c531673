// Command sleep is the bench's slow aws-lambda-go function: it holds its
// environment for the event's sleepMs, so concurrent calls each need an
// environment of their own, and tells which environment ran it and when the
// handler started. Given "fetch", it downloads that URL instead and says
// how many bytes it got (the egress download row).
package main

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	SleepMs int    `json:"sleepMs"`
	Fetch   string `json:"fetch"`
}

type result struct {
	Env     string `json:"env"`
	StartNs int64  `json:"startNs"`
	Bytes   int64  `json:"bytes,omitempty"`
	Error   string `json:"error,omitempty"`
}

func main() {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	env := hex.EncodeToString(b)
	lambda.Start(func(ev event) (result, error) {
		start := time.Now()
		res := result{Env: env, StartNs: start.UnixNano()}
		if ev.Fetch != "" {
			res.Bytes, res.Error = fetch(ev.Fetch)
			return res, nil
		}
		time.Sleep(time.Duration(ev.SleepMs) * time.Millisecond)
		return res, nil
	})
}

func fetch(url string) (int64, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return n, err.Error()
	}
	return n, ""
}
