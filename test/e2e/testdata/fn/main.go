// Command fn is the aws-lambda-go function the end-to-end tests deploy. The
// event's "action" picks a behaviour.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Action string `json:"action"`
	Ms     int    `json:"ms"`
	Code   int    `json:"code"`
	Data   string `json:"data"`
	Size   int    `json:"size"`
	// URLs are what "fetch" gets.
	URLs []string `json:"urls"`
}

var (
	calls int
	ticks atomic.Int64
	start = time.Now()
)

func init() {
	if os.Getenv("INIT_EXIT") != "" {
		fmt.Println("init failing on purpose")
		os.Exit(7)
	}
	// A background ticker: it must not advance while the environment is frozen.
	go func() {
		for range time.Tick(time.Millisecond) {
			ticks.Add(1)
		}
	}()
}

func handler(ctx context.Context, raw json.RawMessage) (any, error) {
	var ev event
	_ = json.Unmarshal(raw, &ev)
	if os.Getenv("PRINT_EVENT") != "" {
		fmt.Println("EVENT " + string(raw))
	}
	calls++
	lc, _ := lambdacontext.FromContext(ctx)
	deadline, _ := ctx.Deadline()
	switch ev.Action {
	case "fetch":
		return fetch(ev.URLs), nil
	case "fail":
		return nil, errors.New("failing on request")
	case "sleep":
		time.Sleep(time.Duration(ev.Ms) * time.Millisecond)
	case "exit":
		fmt.Println("exiting with", ev.Code)
		os.Exit(ev.Code)
	case "oom":
		var hog [][]byte
		for {
			b := make([]byte, 16<<20)
			for i := range b {
				b[i] = 1
			}
			hog = append(hog, b)
		}
	case "orphan":
		// A grandchild that ignores SIGTERM and outlives its parent shell.
		cmd := exec.Command("/bin/sh", "-c", `trap "" TERM; (trap "" TERM; exec sleep 4711) & echo started`)
		out, err := cmd.Output()
		fmt.Println("orphan", strings.TrimSpace(string(out)), err)
		time.Sleep(time.Hour)
	case "big":
		return strings.Repeat("x", ev.Size), nil
	case "log":
		for i := 0; i < ev.Size; i++ {
			fmt.Printf("line %d %s\n", i, ev.Data)
		}
	}
	var tmp string
	if b, err := os.ReadFile("/tmp/state"); err == nil {
		tmp = string(b)
	}
	if ev.Data != "" {
		_ = os.WriteFile("/tmp/state", []byte(ev.Data), 0o644)
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	host, _ := os.Hostname()
	fmt.Println("handled", ev.Action, calls)
	return map[string]any{
		"calls":         calls,
		"ticks":         ticks.Load(),
		"sinceStartMs":  time.Since(start).Milliseconds(),
		"tmp":           tmp,
		"requestId":     lc.AwsRequestID,
		"functionArn":   lc.InvokedFunctionArn,
		"clientContext": lc.ClientContext.Custom,
		"deadlineInMs":  time.Until(deadline).Milliseconds(),
		"env":           env,
		"uid":           os.Getuid(),
		"pid":           os.Getpid(),
		"hostname":      host,
	}, nil
}

func main() { lambda.Start(handler) }

// fetch gets each URL with net/http and reports its status, size and first
// bytes (the shape the Python and Node.js fetchers in the tests return).
func fetch(urls []string) map[string]any {
	out := map[string]any{}
	for _, u := range urls {
		resp, err := http.Get(u)
		if err != nil {
			out[u] = map[string]any{"error": err.Error()}
			continue
		}
		head := make([]byte, 64)
		h, _ := io.ReadFull(resp.Body, head)
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		r := map[string]any{"status": resp.StatusCode, "bytes": int64(h) + n, "head": string(head[:h])}
		if err != nil {
			r["error"] = err.Error()
		}
		out[u] = r
	}
	return out
}
