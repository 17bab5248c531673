package pool

import (
	"slices"
	"strings"
	"testing"
	"time"

	"icebox/internal/testkit"
)

// TestProvisionedConcurrency: three environments of version 1 are
// initialized (as provisioned-concurrency) before any call, frozen; three
// overlapping calls take them without a cold start, a fourth runs on an
// on-demand environment; each comes back after its call, a dead one is
// replaced, and dropping the provision destroys them.
func TestProvisionedConcurrency(t *testing.T) {
	p, f := newPool(t, Config{IdleTimeout: 100 * time.Millisecond}, always(echo))
	v1 := function("f")
	v1.Version, v1.Qualifier = "1", "live"
	p.SetProvisioned("f", []Provision{{Function: v1, Count: 3}})
	testkit.WaitFor(t, 5*time.Second, "three provisioned environments", func() bool {
		return p.ProvisionedStatus(&v1).Allocated == 3 && p.Counts()["idle"] == 3
	})
	made := f.Made()
	for _, sb := range made {
		if !slices.Contains(sb.Spec.Env, "AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency") || !slices.Contains(sb.Spec.Env, "AWS_LAMBDA_FUNCTION_VERSION=1") {
			t.Errorf("provisioned environment's variables: %v", sb.Spec.Env)
		}
	}
	testkit.WaitFor(t, 5*time.Second, "them frozen", func() bool {
		for _, sb := range made {
			if !sb.Frozen() {
				return false
			}
		}
		return true
	})

	var calls []<-chan invoked
	for range 4 {
		calls = append(calls, invokeAsync(p, v1, `{"Sleep":300}`))
	}
	cold := 0
	for _, c := range calls {
		if r := result(t, c); r.ColdStart {
			cold++
		} else if r.ExecutedVersion != "1" {
			t.Errorf("executed version %q", r.ExecutedVersion)
		}
	}
	all := f.Made()
	if cold != 1 || len(all) != 4 || !slices.Contains(all[3].Spec.Env, "AWS_LAMBDA_INITIALIZATION_TYPE=on-demand") {
		t.Errorf("4 calls with 3 provisioned: %d cold, %d sandboxes; want the 4th alone on an on-demand one", cold, len(all))
	}
	// The idle timeout reaps the on-demand environment, never the provisioned ones.
	testkit.WaitFor(t, 5*time.Second, "the on-demand environment reaped", func() bool { return all[3].Destroyed() })
	if st := p.ProvisionedStatus(&v1); st.Allocated != 3 {
		t.Errorf("after the calls: %+v", st)
	}
	// One dies while free: it is replaced.
	made[0].Kill()
	testkit.WaitFor(t, 5*time.Second, "a replacement", func() bool {
		return len(f.Made()) == 5 && p.ProvisionedStatus(&v1).Allocated == 3
	})

	p.SetProvisioned("f", nil)
	for _, sb := range f.Made()[1:] {
		if sb != all[3] && !sb.Destroyed() {
			t.Error("a provisioned environment outlived its provision")
		}
	}
}

// TestProvisionedInitFailure: an init that fails stops provisioning with
// the reason, instead of retrying forever.
func TestProvisionedInitFailure(t *testing.T) {
	p, f := newPool(t, Config{}, always(initFails))
	v1 := function("f")
	v1.Version = "1"
	p.SetProvisioned("f", []Provision{{Function: v1, Count: 2}})
	testkit.WaitFor(t, 5*time.Second, "the failure", func() bool { return p.ProvisionedStatus(&v1).Failure != "" })
	time.Sleep(50 * time.Millisecond)
	if n := len(f.Made()); n != 1 {
		t.Errorf("%d sandboxes after a failed init; want provisioning to stop at the first", n)
	}
}

// TestProvisionedBeyondMemoryBudget: provisioning stops, saying why, when
// the host's memory budget cannot hold another environment; those made
// stay.
func TestProvisionedBeyondMemoryBudget(t *testing.T) {
	p, f := newPool(t, Config{MemoryBudgetMB: 256}, always(echo))
	v1 := function("f")
	v1.Version = "1"
	p.SetProvisioned("f", []Provision{{Function: v1, Count: 3}})
	testkit.WaitFor(t, 5*time.Second, "the failure", func() bool { return p.ProvisionedStatus(&v1).Failure != "" })
	if st := p.ProvisionedStatus(&v1); st.Allocated != 2 || len(f.Made()) != 2 || !strings.Contains(st.Failure, "memory budget") {
		t.Errorf("status %+v with %d sandboxes; want 2 kept and the budget named", st, len(f.Made()))
	}
}
