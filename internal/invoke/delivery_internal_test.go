package invoke

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"icebox/internal/auth"
	"icebox/internal/engine/enginetest"
	"icebox/internal/metrics"
	"icebox/internal/model"
	"icebox/internal/policy"
	"icebox/internal/testkit"
)

// A destination or dead-letter target gets an event only if the source
// function's role may invoke it; a refusal is counted, not retried.
func TestDeliveryAsksTheRole(t *testing.T) {
	const base = "arn:aws:lambda:us-east-1:000000000000:function:"
	allowSink := policy.Document{Statement: []policy.Statement{{Effect: policy.Allow,
		Action: policy.Values{"lambda:InvokeFunction"}, Resource: policy.Values{base + "sink"}}}}
	roles := map[string][]policy.Document{"arn:aws:iam::000000000000:role/r": {allowSink}}
	asked := make(chan string, 10)
	identity := func(role, fn string) (auth.Identity, error) {
		asked <- role + " " + fn
		return auth.Identity{ARN: "arn:aws:sts::000000000000:assumed-role/r/" + fn, Policies: roles[role]}, nil
	}
	src := func(name, dest string) model.Function {
		return model.Function{Name: name, Role: "arn:aws:iam::000000000000:role/r", EventInvoke: &model.EventInvokeConfig{OnSuccess: base + dest}}
	}
	cat := mapCatalog{"to-sink": src("to-sink", "sink"), "to-other": src("to-other", "other"), "sink": {Name: "sink"}, "other": {Name: "other"}}
	e := enginetest.Embedded(t)
	run := &recordingRunner{}
	m := metrics.New(nil)
	iv := New(Config{Region: "us-east-1", AccountID: "000000000000"}, cat, admitAll{}, run, m)
	if err := iv.StartAsync(context.Background(), e.JetStream(), AsyncConfig{AckWait: 2 * time.Second, RoleIdentity: identity}, enginetest.Logger(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iv.StopAsync(context.Background()) })

	for _, fn := range []string{"to-other", "to-sink"} {
		if err := iv.async.enqueue(context.Background(), event{requestID: "r-" + fn, function: fn, received: time.Now()}, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	failures := m.DestinationFailures.WithLabelValues("to-other")
	testkit.WaitFor(t, 10*time.Second, "the refused delivery of to-other to be counted", func() bool { return testutil.ToFloat64(failures) == 1 })
	names := map[string]int{}
	for _, r := range run.wait(t, 3) { // both sources, and sink
		names[r.function]++
	}
	if names["sink"] != 1 || names["other"] != 0 {
		t.Errorf("runs = %v; want both sources and sink, never other", names)
	}
	if got := testutil.ToFloat64(m.DestinationFailures.WithLabelValues("to-sink")); got != 0 {
		t.Errorf("delivery failures of to-sink = %v", got)
	}
	if got := <-asked; got != "arn:aws:iam::000000000000:role/r to-other" && got != "arn:aws:iam::000000000000:role/r to-sink" {
		t.Errorf("asked about %q", got)
	}
}
