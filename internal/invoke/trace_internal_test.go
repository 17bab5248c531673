package invoke

import (
	"context"
	"regexp"
	"testing"
)

// A caller's X-Amzn-Trace-Id becomes the call's trace, as Lambda passes it
// on; anything that is not a valid X-Ray header gets a new trace.
func TestTraceID(t *testing.T) {
	const root = "1-5759e988-bd862e3fe1be46a994272793"
	fresh := regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$`)
	for _, tc := range []struct{ header, want string }{
		{"Root=" + root + ";Parent=53995c3f42cd8ad8;Sampled=1", "Root=" + root + ";Parent=53995c3f42cd8ad8;Sampled=1"},
		{"Root=" + root + ";Sampled=0;Lineage=a:1", "Root=" + root + ";Parent=*;Sampled=0"},
		{" Root=" + root + " ; Parent=53995c3f42cd8ad8", "Root=" + root + ";Parent=53995c3f42cd8ad8;Sampled=0"},
		{"", ""},
		{"Root=1-xyz", ""},
		{"Root=" + root + ";Parent=not-hex", ""},
		{"Root=" + root + "\r\nX-Evil: 1", ""},
	} {
		got := TraceID(tc.header)
		switch {
		case tc.want == "":
			if !fresh.MatchString(got) || regexp.MustCompile(root).MatchString(got) {
				t.Errorf("%q: %q, want a new trace", tc.header, got)
			}
		case regexp.MustCompile(`Parent=\*`).MatchString(tc.want):
			if !regexp.MustCompile(`^Root=` + root + `;Parent=[0-9a-f]{16};Sampled=0$`).MatchString(got) {
				t.Errorf("%q: %q, want the caller's root with a new parent", tc.header, got)
			}
		case got != tc.want:
			t.Errorf("%q: %q, want %q", tc.header, got, tc.want)
		}
	}
}

// An asynchronous call keeps its caller's trace through the queue.
func TestAsyncEventKeepsTheCallersTrace(t *testing.T) {
	iv, run, _ := startQueue(t, mapCatalog{"f": {Name: "f"}})
	const header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	for _, h := range []string{header, ""} {
		if _, err := iv.Invoke(context.Background(), Request{FunctionName: "f", Type: Event, Payload: []byte(`{}`), TraceHeader: h}); err != nil {
			t.Fatal(err)
		}
	}
	runs := run.wait(t, 2)
	traces := map[string]bool{}
	for _, r := range runs {
		traces[r.trace] = true
	}
	if !traces[header] || len(traces) != 2 {
		t.Errorf("traces %v: want the caller's %s and a new one", traces, header)
	}
}
