package invoke_test

import (
	"context"
	"testing"
	"time"

	"icebox/internal/invoke"
	"icebox/internal/metrics"
	"icebox/internal/model"
)

// nopRunner answers every call at once, so the benchmark times the invoker.
type nopRunner struct{ res model.Result }

func (r nopRunner) Invoke(_ context.Context, _ model.Function, inv *model.Invocation) (model.Result, error) {
	res := r.res
	res.RequestID = inv.RequestID
	return res, nil
}

type nopAdmission struct{}

func (nopAdmission) Admit(*model.Function) (func(), error) { return func() {}, nil }

// BenchmarkInvokeSync times the invoker's own share of a synchronous call:
// resolve, payload checks, ids, admission and metrics, with a runner that
// answers at once.
func BenchmarkInvokeSync(b *testing.B) {
	cat := &fakeCatalog{fns: map[string]model.Function{"f": testFunction("f")}}
	run := nopRunner{res: model.Result{Payload: []byte(`"ok"`), ExecutedVersion: model.LatestVersion, Duration: time.Millisecond}}
	iv := invoke.New(invoke.Config{Region: region, AccountID: account}, cat, nopAdmission{}, run, metrics.New(nil))
	req := invoke.Request{FunctionName: "f", Payload: []byte(`{"hello":"world"}`)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iv.Invoke(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
