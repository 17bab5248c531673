package model_test

import (
	"encoding/json"
	"testing"
	"time"

	"icebox/internal/model"
)

func TestErrorBody(t *testing.T) {
	got := model.ErrorBody("Sandbox.Timedout", `Task "timed" out <&>`)
	var e map[string]string
	if err := json.Unmarshal(got, &e); err != nil {
		t.Fatal(err)
	}
	if e["errorType"] != "Sandbox.Timedout" || e["errorMessage"] != `Task "timed" out <&>` || len(e) != 2 {
		t.Fatalf("ErrorBody = %s", got)
	}
}

func TestPlatformErrorBodies(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{string(model.RequestErrorBody("r1", model.ErrorTypeTimedOut, model.TimedOutMessage(1500*time.Millisecond))),
			`{"errorMessage":"RequestId: r1 Error: Task timed out after 1.50 seconds","errorType":"Sandbox.Timedout"}`},
		{string(model.ResponseTooLargeBody()),
			`{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}`},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %s\nwant %s", tc.got, tc.want)
		}
	}
}
