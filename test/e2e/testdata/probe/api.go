package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Actions against icebox's own API inside the sandbox (AWS_ENDPOINT_URL),
// as a hostile function would use it.

// pinned are the connections "pin" left open, checked by "pinned".
var pinned []net.Conn

type pinEvent struct {
	Conns    int    `json:"conns"`
	Announce int64  `json:"announce"` // Content-Length each request claims
	Send     int    `json:"send"`     // body bytes each actually sends
	Path     string `json:"path"`
}

func endpoint() string { return strings.TrimPrefix(os.Getenv("AWS_ENDPOINT_URL"), "http://") }

// claimHeaders sign as the function's role with a signature that is wrong
// but whose key, scope and date are right: everything the daemon can check
// before reading a body passes.
func claimHeaders() string {
	now := time.Now().UTC()
	return fmt.Sprintf("Authorization: AWS4-HMAC-SHA256 Credential=%s/%s/%s/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=%s\r\n"+
		"X-Amz-Date: %s\r\nX-Amz-Security-Token: %s\r\n",
		os.Getenv("AWS_ACCESS_KEY_ID"), now.Format("20060102"), os.Getenv("AWS_REGION"), strings.Repeat("0", 64),
		now.Format("20060102T150405Z"), os.Getenv("AWS_SESSION_TOKEN"))
}

// pin opens connections that announce a large body and send only part of
// it, then returns with them open: the environment is frozen next.
func pin(raw []byte) any {
	var ev pinEvent
	_ = json.Unmarshal(raw, &ev)
	chunk := make([]byte, ev.Send)
	for i := range chunk {
		chunk[i] = '{'
	}
	errs := map[string]int{}
	for range ev.Conns {
		c, err := net.DialTimeout("tcp", endpoint(), time.Second)
		if err != nil {
			errs["dial"]++
			continue
		}
		c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, err = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n", ev.Path, endpoint(), ev.Announce, claimHeaders())
		if err == nil {
			_, err = c.Write(chunk)
		}
		if err != nil {
			errs["write"]++
		}
		pinned = append(pinned, c)
	}
	return map[string]any{"opened": len(pinned), "errors": errs}
}

// checkPinned says, for every pinned connection, whether the daemon still
// holds it open waiting for the rest of the body ("open"), closed it, or
// answered (the status line).
func checkPinned() any {
	out := map[string]int{}
	for _, c := range pinned {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		var ne net.Error
		switch {
		case line != "":
			out[strings.TrimSpace(line)]++
		case errors.As(err, &ne) && ne.Timeout():
			out["open"]++
		default:
			out["closed"]++
		}
		c.Close()
	}
	pinned = nil
	return out
}

// get fetches a path of icebox's API unsigned and reports the answer.
func get(raw []byte) any {
	var ev struct {
		Path string `json:"path"`
	}
	_ = json.Unmarshal(raw, &ev)
	resp, err := http.Get("http://" + endpoint() + ev.Path)
	if err != nil {
		return map[string]string{"error": err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	return map[string]any{"status": resp.StatusCode, "errorType": resp.Header.Get("X-Amzn-ErrorType"), "body": string(body)}
}
