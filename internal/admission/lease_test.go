package admission_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"icebox/internal/admission"
	"icebox/internal/engine"
	"icebox/internal/engine/enginetest"
	"icebox/internal/errdefs"
	"icebox/internal/model"
)

// nodes opens n Leases on one external engine, each on its own connection,
// as n icebox nodes would.
func nodes(t *testing.T, n int, cfg admission.Config, ttl time.Duration) []*admission.Leases {
	t.Helper()
	url := enginetest.ExternalServer(t)
	out := make([]*admission.Leases, n)
	for i := range out {
		e := enginetest.Open(t, engine.Config{URL: url, DataDir: t.TempDir()})
		l, err := admission.NewLeases(context.Background(), e.JetStream(), admission.LeaseConfig{Config: cfg, NodeID: fmt.Sprintf("node%d", i), TTL: ttl}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Halt)
		out[i] = l
	}
	return out
}

func throttleReason(err error) string {
	var te *errdefs.ThrottleError
	if errors.As(err, &te) && errors.Is(err, errdefs.ErrThrottled) {
		return te.Reason
	}
	return ""
}

// A reservation of 2 holds across three nodes: the third call anywhere is
// throttled with Lambda's reason, and a node returning its units on close
// lets another node run.
func TestLeasesReservationAcrossNodes(t *testing.T) {
	t.Parallel()
	ns := nodes(t, 3, admission.Config{AccountLimit: 100, UnreservedMin: 10}, 10*time.Second)
	r := 2
	fn := &model.Function{Name: "f", ReservedConcurrency: &r}
	var releases []func()
	for i, l := range ns {
		rel, err := l.Admit(fn)
		if i < 2 {
			if err != nil {
				t.Fatalf("admit %d: %v", i, err)
			}
			releases = append(releases, rel)
			continue
		}
		if got := throttleReason(err); got != errdefs.ReasonReservedConcurrentLimit {
			t.Fatalf("third call across nodes: %v (reason %q), want %s", err, got, errdefs.ReasonReservedConcurrentLimit)
		}
	}
	// Node 0's call ends; its unit goes back once idle (well before the
	// lease's TTL), and node 2 gets it.
	releases[0]()
	ended := time.Now()
	for {
		rel, err := ns[2].Admit(fn)
		if err == nil {
			rel()
			break
		}
		if time.Since(ended) > 5*time.Second {
			t.Fatalf("node 0's idle unit never reached node 2: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("an idle unit moved to another node in %s", time.Since(ended).Round(time.Millisecond))
	releases[1]()
	// Close returns what a node holds at once.
	held := ns[2].Held()["fn.f"]
	ns[2].Close()
	if held == 0 {
		t.Fatal("node 2 held no unit after its call")
	}
	for i := range 2 {
		if _, err := ns[i].Admit(fn); err != nil {
			t.Fatalf("node %d after node 2 closed: %v", i, err)
		}
	}
}

// The account limit holds across nodes, with the unreserved pool's reason.
func TestLeasesAccountAcrossNodes(t *testing.T) {
	t.Parallel()
	ns := nodes(t, 3, admission.Config{AccountLimit: 4, UnreservedMin: 1}, 10*time.Second)
	fn := &model.Function{Name: "g"}
	admitted, throttled := 0, 0
	for i := range 9 {
		_, err := ns[i%3].Admit(fn)
		switch {
		case err == nil:
			admitted++
		case throttleReason(err) == errdefs.ReasonConcurrentLimit:
			throttled++
		default:
			t.Fatalf("admit %d: %v", i, err)
		}
	}
	if admitted != 4 || throttled != 5 {
		t.Fatalf("account limit 4 over 3 nodes: %d admitted, %d throttled", admitted, throttled)
	}
}

// A node admits within the units it holds without writing to the engine: a
// large pool is granted in batches, and units are reused after release.
func TestLeasesHotPathNoRoundTrip(t *testing.T) {
	t.Parallel()
	ns := nodes(t, 1, admission.Config{AccountLimit: 64, UnreservedMin: 0}, 10*time.Second)
	fn := &model.Function{Name: "h"}
	rel, err := ns[0].Admit(fn)
	if err != nil {
		t.Fatal(err)
	}
	held := ns[0].Held()["account"]
	if held != 4 {
		t.Fatalf("first grant of a 64-unit pool: %d units, want 4 (1/16)", held)
	}
	rel()
	var wg sync.WaitGroup
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := ns[0].Admit(fn)
			if err == nil {
				r()
			}
		}()
	}
	wg.Wait()
	// Sequential calls never need a second unit.
	for range 1000 {
		r, err := ns[0].Admit(fn)
		if err != nil {
			t.Fatal(err)
		}
		r()
	}
	if got := ns[0].Held()["account"]; got > 64 {
		t.Fatalf("held %d units of 64", got)
	}
	if got := ns[0].Usage().Concurrent; got != 0 {
		t.Fatalf("concurrent after all released: %d", got)
	}
}

// A node that stops renewing (killed) loses its units TTL after its last
// renewal; the others take them over.
func TestLeasesDeadNodeExpires(t *testing.T) {
	t.Parallel()
	ttl := 900 * time.Millisecond
	ns := nodes(t, 2, admission.Config{AccountLimit: 100, UnreservedMin: 10}, ttl)
	r := 2
	fn := &model.Function{Name: "k", ReservedConcurrency: &r}
	for range 2 {
		if _, err := ns[0].Admit(fn); err != nil { // never released: the node dies mid-call
			t.Fatal(err)
		}
	}
	ns[0].Halt()
	killed := time.Now()
	if _, err := ns[1].Admit(fn); throttleReason(err) == "" {
		t.Fatalf("admitted while the dead node's lease is live: %v", err)
	}
	for {
		if _, err := ns[1].Admit(fn); err == nil {
			break
		}
		if time.Since(killed) > 3*ttl {
			t.Fatalf("the dead node's lease did not expire within 3×TTL (%s)", ttl)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := time.Since(killed); d < ttl/2 {
		t.Fatalf("lease taken over after %s, before its TTL %s", d, ttl)
	}
}

// Two nodes granting the last reservable units at once: exactly one wins.
func TestLeasesReservationCheckAtomic(t *testing.T) {
	t.Parallel()
	ns := nodes(t, 4, admission.Config{AccountLimit: 20, UnreservedMin: 10}, 10*time.Second)
	var wg sync.WaitGroup
	errs := make([]error, len(ns))
	for i, l := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.CheckReservation(fmt.Sprintf("fn%d", i), 6)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, errdefs.ErrInvalid):
			t.Fatalf("check: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 4 nodes granted 6 of the 10 reservable units each: %v", ok, errs)
	}
}

// A claim withdrawn (the reservation deleted) stops counting at once: the
// units it held can be reserved by another function on another node.
func TestLeasesReleasedClaimFreesUnits(t *testing.T) {
	t.Parallel()
	ns := nodes(t, 2, admission.Config{AccountLimit: 20, UnreservedMin: 10}, 10*time.Second)
	if err := ns[0].CheckReservation("a", 8); err != nil {
		t.Fatal(err)
	}
	if err := ns[1].CheckReservation("b", 8); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("b's 8 on top of a's claimed 8 (2 reservable left): %v", err)
	}
	ns[0].ReleaseReservation("a")
	if err := ns[1].CheckReservation("b", 8); err != nil {
		t.Fatalf("b's 8 after a's claim was withdrawn: %v", err)
	}
}

// BenchmarkLeasesAdmit times a warm call's admission on a node of a
// cluster, within the units it holds (no round trip), next to the
// in-process counter's as the floor, in the same run.
func BenchmarkLeasesAdmit(b *testing.B) {
	url := enginetest.ExternalServer(b)
	e := enginetest.Open(b, engine.Config{URL: url, DataDir: b.TempDir()})
	cfg := admission.Config{AccountLimit: 1000, UnreservedMin: 10}
	l, err := admission.NewLeases(context.Background(), e.JetStream(), admission.LeaseConfig{Config: cfg, NodeID: "bench"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(l.Close)
	c, _ := admission.New(cfg)
	fn := &model.Function{Name: "f"}
	for _, a := range []struct {
		name  string
		admit func(*model.Function) (func(), error)
	}{{"counter", c.Admit}, {"leases", l.Admit}} {
		b.Run(a.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					release, err := a.admit(fn)
					if err != nil {
						b.Fatal(err)
					}
					release()
				}
			})
		})
	}
}

// Under the limit nothing is throttled, however calls spread: 32 callers
// round robin over 3 nodes sharing an account limit of 48 never have more
// than 32 calls running, so no call may get a 429 although each node's
// share of the units moves with its load.
func TestLeasesNoThrottleUnderTheLimit(t *testing.T) {
	t.Parallel()
	ns := nodes(t, 3, admission.Config{AccountLimit: 48, UnreservedMin: 0}, 10*time.Second)
	fn := &model.Function{Name: "steady"}
	var mu sync.Mutex
	calls, throttled := 0, 0
	var firstErr error
	deadline := time.Now().Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	for c := range 32 {
		wg.Go(func() {
			for i := c; time.Now().Before(deadline); i += 32 {
				rel, err := ns[i%3].Admit(fn)
				mu.Lock()
				calls++
				if err != nil {
					throttled++
					firstErr = cmp.Or(firstErr, err)
				}
				mu.Unlock()
				if err == nil {
					time.Sleep(time.Duration(1+i%4) * time.Millisecond)
					rel()
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d calls by 32 callers over 3 nodes, limit 48: %d throttled", calls, throttled)
	if throttled > 0 {
		t.Fatalf("%d of %d calls throttled under the limit (first: %v)", throttled, calls, firstErr)
	}
}
