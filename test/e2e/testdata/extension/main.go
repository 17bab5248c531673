// Command extension is an external Lambda extension written the way AWS's
// Go sample writes one: it registers under its own file name for INVOKE
// and SHUTDOWN, then loops on event/next until SHUTDOWN. For the tests it
// creates /tmp/ext-registered once registered, appends "invoke REQUEST-ID"
// to /tmp/ext-events for every INVOKE, works
// EXT_WORK_MS milliseconds after it (as an agent flushing does) and then
// appends "done REQUEST-ID UNIX-NANOS", and prints the SHUTDOWN it gets.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

type event struct {
	EventType      string `json:"eventType"`
	DeadlineMs     int64  `json:"deadlineMs"`
	RequestID      string `json:"requestId"`
	ShutdownReason string `json:"shutdownReason"`
}

func main() {
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2020-01-01/extension"
	name := filepath.Base(os.Args[0])
	req, _ := http.NewRequest(http.MethodPost, base+"/register", bytes.NewReader([]byte(`{"events":["INVOKE","SHUTDOWN"]}`)))
	req.Header.Set("Lambda-Extension-Name", name)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Println("[extension] register failed:", err)
		os.Exit(1)
	}
	resp.Body.Close()
	id := resp.Header.Get("Lambda-Extension-Identifier")
	fmt.Println("[extension] registered as", name)
	if f, err := os.Create("/tmp/ext-registered"); err == nil {
		f.Close()
	}
	work, _ := strconv.Atoi(os.Getenv("EXT_WORK_MS"))
	for {
		req, _ := http.NewRequest(http.MethodGet, base+"/event/next", nil)
		req.Header.Set("Lambda-Extension-Identifier", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println("[extension] next failed:", err)
			os.Exit(1)
		}
		var ev event
		err = json.NewDecoder(resp.Body).Decode(&ev)
		resp.Body.Close()
		if err != nil {
			fmt.Println("[extension] bad event:", err)
			os.Exit(1)
		}
		switch ev.EventType {
		case "INVOKE":
			record("invoke " + ev.RequestID)
			if work > 0 {
				time.Sleep(time.Duration(work) * time.Millisecond)
				record(fmt.Sprintf("done %s %d", ev.RequestID, time.Now().UnixNano()))
			}
		case "SHUTDOWN":
			fmt.Printf("[extension] SHUTDOWN reason=%s deadline-in-future=%v\n", ev.ShutdownReason, ev.DeadlineMs > time.Now().UnixMilli())
			return
		}
	}
}

func record(line string) {
	f, err := os.OpenFile("/tmp/ext-events", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintln(f, line)
	f.Close()
}
