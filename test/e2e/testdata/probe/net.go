package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"syscall"
	"time"
)

// dialResult is what "dial" found for one URL.
type dialResult struct {
	Status  int     `json:"status,omitempty"`
	Body    string  `json:"body,omitempty"`
	Error   string  `json:"error,omitempty"`
	Refused bool    `json:"refused"` // a reset or an ICMP error, not a timeout
	Seconds float64 `json:"seconds"`
}

// dial fetches each of the event's URLs with a 3 s budget, and reports
// what the sandbox's resolver files say.
func dial(raw []byte) any {
	var ev struct {
		URLs []string `json:"urls"`
	}
	_ = json.Unmarshal(raw, &ev)
	client := &http.Client{Timeout: 3 * time.Second}
	out := map[string]dialResult{}
	for _, u := range ev.URLs {
		began := time.Now()
		var r dialResult
		resp, err := client.Get(u)
		r.Seconds = time.Since(began).Seconds()
		if err != nil {
			r.Error = err.Error()
			r.Refused = errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
				errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
		} else {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
			resp.Body.Close()
			r.Status, r.Body = resp.StatusCode, string(b)
		}
		out[u] = r
	}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	hosts, _ := os.ReadFile("/etc/hosts")
	return map[string]any{"results": out, "resolvConf": string(resolv), "hosts": string(hosts)}
}
