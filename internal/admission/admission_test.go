package admission

import (
	"errors"
	"runtime"
	"sync"
	"testing"

	"icebox/internal/errdefs"
	"icebox/internal/model"
)

func reason(err error) string {
	var te *errdefs.ThrottleError
	if errors.As(err, &te) && errors.Is(err, errdefs.ErrThrottled) {
		return te.Reason
	}
	return ""
}

func TestAccountLimit(t *testing.T) {
	c, _ := New(Config{AccountLimit: 2, UnreservedMin: 1})
	f := &model.Function{Name: "f"}
	r1, err1 := c.Admit(f)
	r2, err2 := c.Admit(f)
	_, err3 := c.Admit(f)
	if err1 != nil || err2 != nil || reason(err3) != errdefs.ReasonConcurrentLimit {
		t.Fatalf("admits: %v %v %v", err1, err2, err3)
	}
	r1()
	r1() // release is idempotent
	if _, err := c.Admit(f); err != nil {
		t.Errorf("after a release: %v", err)
	}
	r2()
	if u := c.Usage(); u.Concurrent != 1 || u.Unreserved != 1 {
		t.Errorf("usage = %+v", u)
	}
}

func TestReservations(t *testing.T) {
	c, _ := New(Config{AccountLimit: 10, UnreservedMin: 5})
	three, zero := 3, 0
	c.SetReservation("r", &three)
	c.SetReservation("z", &zero)
	r := &model.Function{Name: "r", ReservedConcurrency: &three}
	for i := 0; i < 3; i++ {
		if _, err := c.Admit(r); err != nil {
			t.Fatalf("reserved call %d: %v", i, err)
		}
	}
	if _, err := c.Admit(r); reason(err) != errdefs.ReasonReservedConcurrentLimit {
		t.Errorf("past the reservation: %v", err)
	}
	if _, err := c.Admit(&model.Function{Name: "z", ReservedConcurrency: &zero}); reason(err) != errdefs.ReasonReservedConcurrentLimit {
		t.Errorf("reserved 0: %v", err)
	}
	// Unreserved functions share 10-3 = 7; reserved use does not eat it.
	u := &model.Function{Name: "u"}
	for i := 0; i < 7; i++ {
		if _, err := c.Admit(u); err != nil {
			t.Fatalf("unreserved call %d: %v", i, err)
		}
	}
	if _, err := c.Admit(u); reason(err) != errdefs.ReasonConcurrentLimit {
		t.Errorf("past the unreserved pool: %v", err)
	}
	if err := c.CheckReservation("x", 3); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("reservation leaving 4 < 5 unreserved: %v", err)
	}
	if err := c.CheckReservation("x", 2); err != nil {
		t.Errorf("reservation leaving exactly 5: %v", err)
	}
	if err := c.CheckReservation("r", 5); err != nil {
		t.Errorf("changing r's own reservation to 5: %v", err)
	}
	if err := c.CheckReservation("r", -1); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("negative reservation: %v", err)
	}
	// The function's own copy decides, even before the catalog watch has
	// told the counter that its reservation was removed.
	if _, err := c.Admit(&model.Function{Name: "z"}); err != nil && reason(err) == errdefs.ReasonReservedConcurrentLimit {
		t.Errorf("removed reservation still applied: %v", err)
	}
}

func TestConcurrentAdmitsNeverExceed(t *testing.T) {
	c, _ := New(Config{AccountLimit: 5})
	f := &model.Function{Name: "f"}
	var mu sync.Mutex
	inFlight, peak := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, err := c.Admit(f)
			if err != nil {
				return
			}
			mu.Lock()
			inFlight++
			peak = max(peak, inFlight)
			mu.Unlock()
			mu.Lock()
			inFlight--
			mu.Unlock()
			rel()
		}()
	}
	wg.Wait()
	if peak > 5 || c.Usage().Concurrent != 0 {
		t.Errorf("peak %d, left %+v", peak, c.Usage())
	}
}

func TestConfigValidate(t *testing.T) {
	for _, bad := range []Config{{AccountLimit: 0}, {AccountLimit: 5, UnreservedMin: 6}, {AccountLimit: 5, UnreservedMin: -1}} {
		if _, err := New(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// BenchmarkAdmitRelease measures one admit+release pair with 32 goroutines
// contending (target ≤ 1 µs per pair; no I/O under the lock).
func BenchmarkAdmitRelease(b *testing.B) {
	c, _ := New(Config{AccountLimit: 1 << 30})
	fns := []*model.Function{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}}
	b.SetParallelism(32 / max(1, runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			rel, err := c.Admit(fns[i%len(fns)])
			if err != nil {
				b.Fatal(err)
			}
			rel()
			i++
		}
	})
}

// TestProvisionedConcurrency: a function's provisioned concurrency is kept
// out of the unreserved pool for it, as Lambda counts it: it runs that many
// calls whatever others do, then spills into the unreserved pool; others
// never get those slots.
func TestProvisionedConcurrency(t *testing.T) {
	c, _ := New(Config{AccountLimit: 5, UnreservedMin: 1})
	if err := c.CheckProvisioned("p", nil, 5); err == nil {
		t.Error("provisioning the whole account passed the unreserved minimum")
	}
	five := 5
	if err := c.CheckProvisioned("p", &five, 6); err == nil {
		t.Error("provisioning beyond the function's reservation passed")
	}
	if err := c.CheckProvisioned("p", nil, 2); err != nil {
		t.Fatal(err)
	}
	c.SetProvisioned("p", 2)
	p, o := &model.Function{Name: "p"}, &model.Function{Name: "o"}
	for i := range 3 {
		if _, err := c.Admit(o); err != nil {
			t.Fatalf("other call %d: %v", i, err)
		}
	}
	if _, err := c.Admit(o); reason(err) != errdefs.ReasonConcurrentLimit {
		t.Errorf("a 4th unreserved call took a provisioned slot: %v", err)
	}
	for i := range 2 {
		if _, err := c.Admit(p); err != nil {
			t.Fatalf("provisioned call %d with the unreserved pool full: %v", i, err)
		}
	}
	if _, err := c.Admit(p); reason(err) != errdefs.ReasonConcurrentLimit {
		t.Errorf("a call beyond provisioned concurrency with the pool full: %v", err)
	}
	if u := c.Usage(); u.Concurrent != 5 || u.Unreserved != 3 || u.UnreservedLimit != 3 {
		t.Errorf("usage = %+v", u)
	}
}
