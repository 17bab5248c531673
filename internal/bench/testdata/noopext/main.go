// Command noopext is the bench's no-op external extension: it registers for
// INVOKE and SHUTDOWN and asks for the next event as soon as it gets one,
// so the warm invoke row with it measures what an extension costs a call
// (its INVOKE event and its event/next round trip), nothing of its own.
package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
)

func main() {
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2020-01-01/extension"
	req, _ := http.NewRequest(http.MethodPost, base+"/register", bytes.NewReader([]byte(`{"events":["INVOKE","SHUTDOWN"]}`)))
	req.Header.Set("Lambda-Extension-Name", filepath.Base(os.Args[0]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		os.Exit(1)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("Lambda-Extension-Identifier")
	for {
		req, _ := http.NewRequest(http.MethodGet, base+"/event/next", nil)
		req.Header.Set("Lambda-Extension-Identifier", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			os.Exit(1)
		}
		var ev struct {
			EventType string `json:"eventType"`
		}
		err = json.NewDecoder(resp.Body).Decode(&ev)
		resp.Body.Close()
		if err != nil || ev.EventType == "SHUTDOWN" {
			return
		}
	}
}
