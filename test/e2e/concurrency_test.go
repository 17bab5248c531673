package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/daemon"
)

// parallel runs n slow calls at once and returns the throttles among them.
func parallel(t *testing.T, s *server, name string, n, ms int) []*types.TooManyRequestsException {
	t.Helper()
	var mu sync.Mutex
	var throttled []*types.TooManyRequestsException
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := s.client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(fmt.Sprintf(`{"action":"sleep","ms":%d}`, ms))})
			var tm *types.TooManyRequestsException
			switch {
			case errors.As(err, &tm):
				mu.Lock()
				throttled = append(throttled, tm)
				mu.Unlock()
			case err != nil:
				t.Errorf("invoke: %v", err)
			case out.FunctionError != nil:
				t.Errorf("function error: %s", out.Payload)
			}
		}()
	}
	wg.Wait()
	return throttled
}

func TestConcurrency32ParallelCalls(t *testing.T) {
	s := startServer(t)
	// 32 cold starts at once on two loaded cores may take seconds: the
	// test is about admission, not the default 3 s timeout.
	s.create("par", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(30) })
	if th := parallel(t, s, "par", 32, 300); len(th) != 0 {
		t.Errorf("%d of 32 parallel calls throttled under the default limit", len(th))
	}
	if idle := s.d.Environments()["idle"]; idle < 2 {
		t.Errorf("32 parallel calls left %d idle environments; want several", idle)
	}
}

func TestAccountLimitThrottles(t *testing.T) {
	s := startServer(t, func(c *daemon.Config) { c.AccountConcurrency = 2 })
	s.create("acct")
	th := parallel(t, s, "acct", 3, 1000)
	if len(th) != 1 {
		t.Fatalf("%d of 3 calls throttled with account concurrency 2; want exactly 1", len(th))
	}
	if th[0].Reason != types.ThrottleReasonConcurrentInvocationLimitExceeded || aws.ToString(th[0].RetryAfterSeconds) == "" {
		t.Errorf("throttle = reason %q retry-after %q", th[0].Reason, aws.ToString(th[0].RetryAfterSeconds))
	}
	if got := metric(t, s, `icebox_throttles_total{function="acct"}`, ""); got != 1 {
		t.Errorf("throttles metric = %v", got)
	}
	if got := metric(t, s, `icebox_invocations_total{function="acct"}`, ""); got != 2 {
		t.Errorf("invocations metric = %v; a throttled call is not an invocation", got)
	}
}

func TestReservedConcurrency(t *testing.T) {
	s := startServer(t, func(c *daemon.Config) { c.AccountConcurrency = 20 })
	ctx := context.Background()
	s.create("res")
	s.create("other")
	put := func(name string, n int32) error {
		_, err := s.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(name), ReservedConcurrentExecutions: aws.Int32(n)})
		return err
	}
	if err := put("res", 1); err != nil {
		t.Fatal(err)
	}
	th := parallel(t, s, "res", 2, 1000)
	if len(th) != 1 || th[0].Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
		t.Fatalf("reserved 1 with 2 calls: %d throttled %+v", len(th), th)
	}
	got, err := s.client.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("res")})
	if err != nil || aws.ToInt32(got.ReservedConcurrentExecutions) != 1 {
		t.Errorf("GetFunctionConcurrency = %v, %v", got, err)
	}
	fn, _ := s.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("res")})
	if fn.Concurrency == nil || aws.ToInt32(fn.Concurrency.ReservedConcurrentExecutions) != 1 {
		t.Errorf("GetFunction Concurrency = %+v", fn.Concurrency)
	}

	// Reserved 0: nothing runs.
	if err := put("res", 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		_, err := s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("res")})
		var tm *types.TooManyRequestsException
		if !errors.As(err, &tm) || tm.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
			t.Errorf("reserved 0: call %d = %v", i, err)
		}
	}

	// The unreserved pool keeps its minimum (10 of 20 here).
	err = put("other", 11)
	if errorCode(err) != "InvalidParameterValueException" || !strings.Contains(err.Error(), "decreases account's UnreservedConcurrentExecution below its minimum value of [10]") {
		t.Errorf("over-reservation: %v", err)
	}
	if err := put("other", 10); err != nil {
		t.Errorf("reservation up to the floor: %v", err)
	}
	if err := put("res", 1); errorCode(err) != "InvalidParameterValueException" {
		t.Errorf("reservation past the floor: %v", err)
	}
	settings, err := s.client.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if l := settings.AccountLimit; l.ConcurrentExecutions != 20 || aws.ToInt32(l.UnreservedConcurrentExecutions) != 10 ||
		l.CodeSizeZipped != 52428800 || l.CodeSizeUnzipped != 262144000 || settings.AccountUsage.FunctionCount != 2 || settings.AccountUsage.TotalCodeSize <= 0 {
		t.Errorf("account settings = %+v %+v", settings.AccountLimit, settings.AccountUsage)
	}

	// Deleting the reservation lets the function run again.
	if _, err := s.client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("res")}); err != nil {
		t.Fatal(err)
	}
	s.call("res", map[string]any{})
	got, _ = s.client.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("res")})
	if got.ReservedConcurrentExecutions != nil {
		t.Errorf("reservation after delete = %d", *got.ReservedConcurrentExecutions)
	}
}

func TestMemoryBudget(t *testing.T) {
	s := startServer(t, func(c *daemon.Config) { c.MemoryBudgetMB = 256 })
	s.create("a")
	s.create("b")
	s.create("c")
	// Two busy 128 MB environments fill the budget: a third call is throttled.
	th := parallel(t, s, "a", 3, 1000)
	if len(th) != 1 || !strings.Contains(aws.ToString(th[0].Message), "memory budget") {
		t.Fatalf("3 calls into a 2-environment budget: %d throttled %+v", len(th), th)
	}
	// Idle environments are evicted, least recently used first, to make room.
	s.call("b", map[string]any{})
	s.call("c", map[string]any{})
	if r := s.call("b", map[string]any{}); r.Calls != 2 {
		t.Errorf("b was evicted before a's older environments: calls=%d", r.Calls)
	}
	if r := s.call("a", map[string]any{}); r.Calls != 1 {
		t.Errorf("a's idle environments survived: calls=%d", r.Calls)
	}
}

func TestScalingRate(t *testing.T) {
	s := startServer(t, func(c *daemon.Config) { c.ScaleBurst = 2; c.ScaleRate = 0.001 })
	s.create("burst")
	th := parallel(t, s, "burst", 3, 500)
	if len(th) != 1 || th[0].Reason != types.ThrottleReasonFunctionInvocationRateLimitExceeded {
		t.Fatalf("burst of 3 new environments with a burst limit of 2: %d throttled %+v", len(th), th)
	}
	// Warm environments need no new ones.
	if th := parallel(t, s, "burst", 2, 10); len(th) != 0 {
		t.Errorf("warm calls throttled: %d", len(th))
	}
}

// TestNoLeakedSlots: every way a call can end gives its concurrency back.
func TestNoLeakedSlots(t *testing.T) {
	s := startServer(t, func(c *daemon.Config) { c.AccountConcurrency = 3 })
	s.create("leak", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(1) })
	s.call("leak", map[string]any{})
	s.callFail("leak", map[string]any{"action": "fail"})
	s.callFail("leak", map[string]any{"action": "exit", "code": 2})
	s.callFail("leak", map[string]any{"action": "sleep", "ms": 5000})
	parallel(t, s, "leak", 5, 300) // some throttled
	for _, m := range []string{"icebox_account_concurrent_executions", "icebox_unreserved_concurrent_executions", `icebox_concurrent_executions{function="leak"}`} {
		if got := metric(t, s, m, ""); got != 0 {
			t.Errorf("%s = %v after every call ended", m, got)
		}
	}
	if th := parallel(t, s, "leak", 3, 100); len(th) != 0 {
		t.Errorf("%d of 3 calls throttled under a limit of 3 after earlier calls ended", len(th))
	}
}
