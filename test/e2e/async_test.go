package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/daemon"
	"icebox/internal/testkit"
)

func fastRetries(c *daemon.Config) {
	c.AsyncRetryDelays = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
}

// printEvents makes the test function log every event it receives.
func printEvents(in *lambda.CreateFunctionInput) {
	in.Environment = &types.Environment{Variables: map[string]string{"PRINT_EVENT": "1"}}
}

// events returns the events a function logged, waiting until there are n.
func events(t *testing.T, s *server, name string, n int) []json.RawMessage {
	t.Helper()
	logs := cloudwatchlogs.New(cloudwatchlogs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url),
		Credentials: rootCredentials})
	var out []json.RawMessage
	defer func() {
		if len(out) < n {
			t.Logf("%s logged %d events", name, len(out))
		}
	}()
	testkit.WaitFor(t, 20*time.Second, fmt.Sprintf("%s to log %d events", name, n), func() bool {
		out = out[:0]
		res, err := logs.FilterLogEvents(context.Background(), &cloudwatchlogs.FilterLogEventsInput{
			LogGroupName: aws.String("/aws/lambda/" + name), FilterPattern: aws.String("EVENT"),
		})
		if err == nil {
			for _, e := range res.Events {
				if msg := aws.ToString(e.Message); strings.HasPrefix(msg, "EVENT ") {
					out = append(out, json.RawMessage(strings.TrimPrefix(msg, "EVENT ")))
				}
			}
		}
		return len(out) >= n
	})
	return out
}

type record struct {
	Version        string `json:"version"`
	Timestamp      string `json:"timestamp"`
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionArn            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	RequestPayload  json.RawMessage `json:"requestPayload"`
	ResponseContext *struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError"`
	} `json:"responseContext"`
	ResponsePayload json.RawMessage `json:"responsePayload"`
}

func sinkArn(name string) string { return "arn:aws:lambda:us-east-1:000000000000:function:" + name }

// grantInvoke gives the role every test function runs as (lambda-role) the
// right to invoke targets: Lambda delivers to a destination only then.
func grantInvoke(s *server, targets ...string) {
	s.t.Helper()
	b, _ := json.Marshal(targets)
	s.putRole("lambda-role", `{"Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":`+string(b)+`}]}`)
}

func TestAsyncSuccessDestination(t *testing.T) {
	s := startServer(t, fastRetries)
	grantInvoke(s, sinkArn("sink"))
	s.create("sink", printEvents)
	s.create("src")
	ctx := context.Background()
	_, err := s.client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName:      aws.String("src"),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(sinkArn("sink"))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("src"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"data":"x"}`)})
	if err != nil || out.StatusCode != 202 {
		t.Fatalf("async invoke: %v %v", out, err)
	}
	var rec record
	json.Unmarshal(events(t, s, "sink", 1)[0], &rec)
	if rec.Version != "1.0" || rec.RequestContext.Condition != "Success" || rec.RequestContext.ApproximateInvokeCount != 1 ||
		rec.RequestContext.FunctionArn != sinkArn("src")+":$LATEST" || rec.RequestContext.RequestID == "" ||
		string(rec.RequestPayload) != `{"data":"x"}` || rec.ResponseContext == nil || rec.ResponseContext.StatusCode != 200 ||
		rec.ResponseContext.FunctionError != "" || !strings.Contains(string(rec.ResponsePayload), `"calls":1`) {
		t.Errorf("success record = %+v", rec)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", rec.Timestamp); err != nil {
		t.Errorf("timestamp %q: %v", rec.Timestamp, err)
	}
}

func TestAsyncRetriesThenFailureDestination(t *testing.T) {
	s := startServer(t, fastRetries)
	grantInvoke(s, sinkArn("sink"), sinkArn("dlq"))
	s.create("sink", printEvents)
	s.create("dlq", printEvents)
	s.create("bad", func(in *lambda.CreateFunctionInput) {
		in.DeadLetterConfig = &types.DeadLetterConfig{TargetArn: aws.String(sinkArn("dlq"))}
	})
	ctx := context.Background()
	_, err := s.client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName:      aws.String("bad"),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(sinkArn("sink"))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("bad"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"action":"fail"}`)}); err != nil {
		t.Fatal(err)
	}
	var rec record
	json.Unmarshal(events(t, s, "sink", 1)[0], &rec)
	if rec.RequestContext.Condition != "RetriesExhausted" || rec.RequestContext.ApproximateInvokeCount != 3 ||
		rec.ResponseContext == nil || rec.ResponseContext.FunctionError != "Unhandled" || !strings.Contains(string(rec.ResponsePayload), "failing on request") {
		t.Errorf("failure record = %+v %s", rec, rec.ResponsePayload)
	}
	// The dead-letter target gets the original event.
	if ev := events(t, s, "dlq", 1)[0]; string(ev) != `{"action":"fail"}` {
		t.Errorf("dead-letter event = %s", ev)
	}
	if got := metric(t, s, `icebox_invocations_total{function="bad"}`, ""); got != 3 {
		t.Errorf("attempts = %v, want 3 (1 + 2 retries)", got)
	}
	if got := metric(t, s, `icebox_async_events_received_total{function="bad"}`, ""); got != 1 {
		t.Errorf("events received = %v", got)
	}

	// MaximumRetryAttempts 0: one attempt, then the dead-letter target.
	_, err = s.client.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("bad"), MaximumRetryAttempts: aws.Int32(0)})
	if err != nil {
		t.Fatal(err)
	}
	s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("bad"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"action":"fail","data":"2"}`)})
	events(t, s, "sink", 2)
	if got := metric(t, s, `icebox_invocations_total{function="bad"}`, ""); got != 4 {
		t.Errorf("attempts with no retries = %v, want 4", got)
	}
}

func TestAsyncThrottledEventsWaitAndSurviveRestart(t *testing.T) {
	s := startServer(t, fastRetries)
	s.create("held", printEvents)
	ctx := context.Background()
	// Reserved concurrency 0: the event is accepted but cannot run.
	s.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("held"), ReservedConcurrentExecutions: aws.Int32(0)})
	if _, err := s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("held"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"data":"kept"}`)}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "a throttled attempt", func() bool { return metric(t, s, `icebox_throttles_total{function="held"}`, "") >= 1 })
	if got := metric(t, s, `icebox_async_queue_depth{function="held"}`, ""); got != 1 {
		t.Errorf("queue depth = %v, want 1", got)
	}
	var st struct{ AsyncQueueDepth map[string]float64 }
	if resp, err := signingClient().Get(s.url + "/icebox/v1/status"); err == nil {
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
	}
	if st.AsyncQueueDepth["held"] != 1 {
		t.Errorf("status queue depth = %v", st.AsyncQueueDepth)
	}
	// The queue is durable: a restart keeps the event.
	s.restart()
	if _, err := s.client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("held")}); err != nil {
		t.Fatal(err)
	}
	if ev := events(t, s, "held", 1)[0]; string(ev) != `{"data":"kept"}` {
		t.Errorf("event after restart = %s", ev)
	}
	testkit.WaitFor(t, 5*time.Second, "the queue to drain", func() bool { return metric(t, s, `icebox_async_queue_depth{function="held"}`, "") <= 0 })
}

func TestAsyncLimitsAndConfigAPI(t *testing.T) {
	s := startServer(t)
	s.create("cfg")
	ctx := context.Background()
	big := `{"data":"` + strings.Repeat("x", 1<<20) + `"}`
	_, err := s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("cfg"), InvocationType: types.InvocationTypeEvent, Payload: []byte(big)})
	var tooLarge *types.RequestTooLargeException
	if !errors.As(err, &tooLarge) || !strings.Contains(err.Error(), "byte payload is too large for the Event invocation type (limit 1048576 bytes)") {
		t.Errorf("oversized event: %v", err)
	}
	if _, err := s.client.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("cfg")}); errorCode(err) != "ResourceNotFoundException" {
		t.Errorf("get before put: %v", err)
	}
	bad := []*lambda.PutFunctionEventInvokeConfigInput{
		{FunctionName: aws.String("cfg"), MaximumRetryAttempts: aws.Int32(3)},
		{FunctionName: aws.String("cfg"), MaximumEventAgeInSeconds: aws.Int32(59)},
		{FunctionName: aws.String("cfg"), DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:q")}}},
	}
	for _, in := range bad {
		if _, err := s.client.PutFunctionEventInvokeConfig(ctx, in); errorCode(err) != "InvalidParameterValueException" {
			t.Errorf("put %+v: %v", in, err)
		}
	}
	put, err := s.client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("cfg"), MaximumRetryAttempts: aws.Int32(1), MaximumEventAgeInSeconds: aws.Int32(120)})
	if err != nil || aws.ToInt32(put.MaximumRetryAttempts) != 1 || aws.ToString(put.FunctionArn) != sinkArn("cfg")+":$LATEST" || put.LastModified == nil {
		t.Fatalf("put: %+v %v", put, err)
	}
	upd, err := s.client.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("cfg"), MaximumEventAgeInSeconds: aws.Int32(300)})
	if err != nil || aws.ToInt32(upd.MaximumRetryAttempts) != 1 || aws.ToInt32(upd.MaximumEventAgeInSeconds) != 300 {
		t.Errorf("update merges: %+v %v", upd, err)
	}
	list, err := s.client.ListFunctionEventInvokeConfigs(ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("cfg")})
	if err != nil || len(list.FunctionEventInvokeConfigs) != 1 {
		t.Errorf("list: %+v %v", list, err)
	}
	if _, err := s.client.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("cfg")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("cfg")}); errorCode(err) != "ResourceNotFoundException" {
		t.Errorf("get after delete: %v", err)
	}
	if _, err := s.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("cfg"),
		DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String("arn:aws:sns:us-east-1:000000000000:t")}}); errorCode(err) != "InvalidParameterValueException" {
		t.Errorf("SNS dead-letter target: %v", err)
	}
}

// TestTargetsNeedInvokePermission: a destination or dead-letter target is
// invoked later on the function's behalf, so naming one needs
// lambda:InvokeFunction on it, decided as the caller's own Invoke would be.
func TestTargetsNeedInvokePermission(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	for _, n := range []string{"alice-private", "alice-shared", "bob-src", "bob-sink"} {
		s.create(n)
	}
	bob, _ := s.userClient("bob", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"`+testArnBase+`bob-*"},
		{"Effect":"Allow","Action":"iam:PassRole","Resource":"`+roleBase+`lambda-role"}]}`)
	refused := "User: arn:aws:iam::000000000000:user/bob is not authorized to perform: lambda:InvokeFunction on resource: " + testArnBase + "alice-private"
	onFailure := func(arn string) *types.DestinationConfig {
		return &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(arn)}}
	}
	_, err := bob.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("bob-src"),
		DestinationConfig: onFailure(sinkArn("alice-private"))})
	apiError(t, "OnFailure", err, "AccessDeniedException", refused)
	_, err = bob.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("bob-src"),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(sinkArn("alice-private") + ":$LATEST")}}})
	apiError(t, "OnSuccess, qualified", err, "AccessDeniedException", refused)
	if _, err := s.client.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("bob-src")}); errorCode(err) != "ResourceNotFoundException" {
		t.Errorf("a refused put stored a configuration: %v", err)
	}
	// Update merges into a stored configuration; a refused one changes nothing.
	if _, err := bob.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("bob-src"),
		MaximumRetryAttempts: aws.Int32(1), DestinationConfig: onFailure(sinkArn("bob-sink"))}); err != nil {
		t.Fatalf("bob's own function as a destination: %v", err)
	}
	_, err = bob.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("bob-src"),
		MaximumRetryAttempts: aws.Int32(0), DestinationConfig: onFailure(sinkArn("alice-private"))})
	apiError(t, "update OnFailure", err, "AccessDeniedException", refused)
	got, err := s.client.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("bob-src")})
	if err != nil {
		t.Fatal(err)
	}
	if onF := got.DestinationConfig.OnFailure; aws.ToInt32(got.MaximumRetryAttempts) != 1 || onF == nil || aws.ToString(onF.Destination) != sinkArn("bob-sink") {
		t.Errorf("after a refused update: retries %d, OnFailure %+v", aws.ToInt32(got.MaximumRetryAttempts), onF)
	}
	// Dead-letter targets, on create and on update.
	dlq := &types.DeadLetterConfig{TargetArn: aws.String(sinkArn("alice-private"))}
	_, err = bob.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("bob-new"), Runtime: types.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Role: aws.String(roleBase + "lambda-role"), Code: &types.FunctionCode{ZipFile: functionZip(t)}, DeadLetterConfig: dlq})
	apiError(t, "create with a dead-letter target", err, "AccessDeniedException", refused)
	if _, err := s.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("bob-new")}); errorCode(err) != "ResourceNotFoundException" {
		t.Errorf("a refused create made bob-new: %v", err)
	}
	_, err = bob.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("bob-src"),
		Description: aws.String("changed"), DeadLetterConfig: dlq})
	apiError(t, "update with a dead-letter target", err, "AccessDeniedException", refused)
	cfg, err := s.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("bob-src")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DeadLetterConfig != nil || aws.ToString(cfg.Description) == "changed" {
		t.Errorf("after a refused update: dead-letter %+v, description %q", cfg.DeadLetterConfig, aws.ToString(cfg.Description))
	}
	if _, err := bob.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("bob-src"),
		DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String(sinkArn("bob-sink"))}}); err != nil {
		t.Errorf("bob's own function as dead-letter target: %v", err)
	}
	// A target's resource policy grants it as it would grant Invoke.
	if _, err := s.client.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("alice-shared"), StatementId: aws.String("bob"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("arn:aws:iam::000000000000:user/bob")}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("bob-src"),
		DestinationConfig: onFailure(sinkArn("alice-shared"))}); err != nil {
		t.Errorf("a target whose policy lets bob invoke it: %v", err)
	}
}

// TestDeliveryNeedsRoleInvokePermission: as in Lambda, a record or event is
// delivered only if the source function's execution role may invoke the
// target; a refused delivery is counted and logged, never made.
func TestDeliveryNeedsRoleInvokePermission(t *testing.T) {
	s := startServer(t, fastRetries)
	ctx := context.Background()
	s.putRole("src-role", `{"Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"`+sinkArn("granted")+`"}]}`)
	s.create("granted", printEvents)
	s.create("refused", printEvents)
	// Root sets the targets: only the role stands between src and refused.
	s.create("src", func(in *lambda.CreateFunctionInput) {
		in.Role = aws.String(roleBase + "src-role")
		in.DeadLetterConfig = &types.DeadLetterConfig{TargetArn: aws.String(sinkArn("refused"))}
	})
	if _, err := s.client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("src"), MaximumRetryAttempts: aws.Int32(0),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(sinkArn("refused"))}, OnFailure: &types.OnFailure{Destination: aws.String(sinkArn("refused"))}}}); err != nil {
		t.Fatal(err)
	}
	event := func(payload string) {
		t.Helper()
		if _, err := s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("src"), InvocationType: types.InvocationTypeEvent, Payload: []byte(payload)}); err != nil {
			t.Fatal(err)
		}
	}
	failures := func() float64 { return metric(t, s, `icebox_destination_delivery_failures_total{function="src"}`, "") }
	event(`{"data":"ok"}`)
	testkit.WaitFor(t, 20*time.Second, "a refused success destination", func() bool { return failures() == 1 })
	event(`{"action":"fail"}`)
	testkit.WaitFor(t, 20*time.Second, "a refused failure destination and dead-letter target", func() bool {
		return failures() == 2 && metric(t, s, `icebox_dead_letter_errors_total{function="src"}`, "") == 1
	})
	if got := metric(t, s, `icebox_async_events_dropped_total{function="src"}`, ""); got != 1 {
		t.Errorf("dropped = %v, want the failed event", got)
	}
	// The role may invoke granted: the same configuration delivers there.
	if _, err := s.client.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("src"),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(sinkArn("granted"))}}}); err != nil {
		t.Fatal(err)
	}
	event(`{"data":"delivered"}`)
	var rec record
	json.Unmarshal(events(t, s, "granted", 1)[0], &rec)
	if string(rec.RequestPayload) != `{"data":"delivered"}` {
		t.Errorf("record at granted: %+v", rec)
	}
	if got := metric(t, s, `icebox_async_events_received_total{function="refused"}`, ""); got > 0 {
		t.Errorf("refused received %v events", got)
	}
}
