package bench

import (
	"context"
	"testing"
	"time"
)

// TestRuntimeFloor: copies of the echo runtime on the host answer the
// trivial Runtime API's events back to back, and their CPU per call is
// measured; one copy answers events handed to it one at a time, and each
// round trip is timed.
func TestRuntimeFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the echo function")
	}
	root, err := ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	zips, err := BuildZips(root, EchoPackage)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := unpackBootstrap(zips[0], t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	per, calls, err := runtimeFloor(ctx, bin, 4, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d calls, %v of the runtime's CPU per call", calls, per)
	// Each call is at least one event read and one answer written by the
	// runtime; a call answered without the runtime using CPU is no call.
	if calls < 50 || per <= 0 {
		t.Errorf("%d calls at %v each; want the runtime answering events and its CPU counted", calls, per)
	}

	trips, err := runtimeRoundTrips(ctx, bin, 50)
	if err != nil {
		t.Fatal(err)
	}
	st := trips.stat()
	t.Logf("round trips: p50 %.0f µs, p99 %.0f µs", st.P50, st.P99)
	if st.Samples != 50 || st.P50 <= 0 {
		t.Errorf("round trips %+v; want 50, each timed", st)
	}
}
