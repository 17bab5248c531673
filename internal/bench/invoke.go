package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// The rows that go through the Lambda API: cold start, warm invoke,
// throughput and environments created per second.

var payload = []byte(`{"hello":"world"}`)

// samples are latencies of one kind.
type samples []time.Duration

// stat sorts s and returns its median and 99th percentile in µs.
func (s samples) stat() Stat {
	if len(s) == 0 {
		return Stat{}
	}
	slices.Sort(s)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return Stat{P50: us(s[len(s)/2]), P99: us(s[min(len(s)-1, len(s)*99/100)]), Samples: len(s)}
}

func timed(op func() error) (time.Duration, error) {
	start := time.Now()
	err := op()
	return time.Since(start), err
}

// measureCold times the first invoke of n fresh functions, each created
// (untimed) just before, then as many execs of the same binary plus one
// loopback round trip each. The floor runs after a pause, not interleaved,
// so it does not pay for the platform's background work (re-building the
// next pre-built sandbox) that a cold start leaves behind. It returns the
// row and, per cold start, the environments alive before it.
func (r *run) measureCold(ctx context.Context, n int) (Row, []ColdPoint, error) {
	var cold, floor samples
	var points []ColdPoint
	for i := range n {
		alive, err := r.t.alive(ctx)
		if err != nil {
			return Row{}, nil, err
		}
		name := fmt.Sprintf("%scold-%d", r.t.prefix, i)
		if err := r.t.create(ctx, name, r.cfg.EchoZip, 3*time.Second); err != nil {
			return Row{}, nil, err
		}
		d, err := timed(func() error { _, err := r.t.invoke(ctx, name, payload); return err })
		if err != nil {
			return Row{}, nil, err
		}
		cold = append(cold, d)
		points = append(points, ColdPoint{Alive: alive, Latency: d})
	}
	quiesce()
	for range n {
		f, err := timed(func() error {
			if err := execOnce(r.echoBin); err != nil {
				return err
			}
			return r.echo.post(ctx, r.t.http, payload)
		})
		if err != nil {
			return Row{}, nil, err
		}
		floor = append(floor, f)
	}
	return Row{
		ID: RowColdStart, Name: fmt.Sprintf("cold start: first invoke of a fresh function (n=%d)", n), Unit: UnitMicros,
		Result: cold.stat(), FloorName: "exec of the same binary + loopback round trip", Floor: floor.stat(),
	}, points, nil
}

// quiesce lets work the platform does after a call (log shipping,
// pre-building sandboxes) finish before a floor is measured.
func quiesce() { time.Sleep(300 * time.Millisecond) }

// measureWarm times sequential invokes of one warm function, then as many
// calls of the same SDK client to the trivial Invoke server.
func (r *run) measureWarm(ctx context.Context, n int) (Row, error) {
	var warm, floor samples
	for range n {
		d, err := timed(func() error { _, err := r.t.invoke(ctx, r.fn, payload); return err })
		if err != nil {
			return Row{}, err
		}
		warm = append(warm, d)
	}
	quiesce()
	for range n {
		f, err := timed(func() error { return invokeWith(ctx, r.stubLambda, r.fn, payload) })
		if err != nil {
			return Row{}, fmt.Errorf("SDK floor: %w", err)
		}
		floor = append(floor, f)
	}
	return Row{
		ID: RowWarmInvoke, Name: "warm invoke, sequential (aws-sdk-go-v2 Invoke)", Unit: UnitMicros,
		Result: warm.stat(), FloorName: sdkFloorName, Floor: floor.stat(),
	}, nil
}

// runtimeRoundTripRow sets what a sequential warm invoke takes over its
// SDK floor (warm's p50 and p99 less the floor's: icebox's whole part of
// the call) next to the same runtime's own round trip on the host, one
// event at a time from a trivial Runtime API. The target's 150 µs over the
// floor has to hold both.
func (r *run) runtimeRoundTripRow(ctx context.Context, warm Row) (Row, error) {
	quiesce()
	rt, err := runtimeRoundTrips(ctx, r.echoBin, warm.Result.Samples)
	if err != nil {
		return Row{}, err
	}
	return Row{
		ID: RowWarmOver, Name: "warm invoke, sequential: its time over the SDK floor (row above)", Unit: UnitMicros,
		Result:    Stat{P50: warm.Result.P50 - warm.Floor.P50, P99: warm.Result.P99 - warm.Floor.P99, Samples: warm.Result.Samples},
		FloorName: "the same runtime alone on the host: an event handed to its waiting /next until its response is read, one at a time",
		Floor:     rt.stat(),
		Note:      "p50 and p99 of the row above less its floor's",
	}, nil
}

// sdkFloorName names the floor of the SDK rows.
const sdkFloorName = "same SDK client, signed, to a trivial Invoke server"

// measureWarmExtension times sequential invokes of the echo function with
// one no-op external extension from a layer, next to the warm invoke row
// without it (without measured just before, in the same run).
func (r *run) measureWarmExtension(ctx context.Context, n int, without Stat) (Row, error) {
	row := Row{ID: RowWarmExt, Name: "warm invoke with one no-op extension, sequential", Unit: UnitMicros,
		FloorName: "warm invoke without an extension (row above)", Floor: without}
	if r.cfg.ExtensionLayer == nil {
		row.Skipped = "no extension layer (build it from " + ExtensionPackage + ")"
		return row, nil
	}
	layer, err := r.t.publishLayer(ctx, r.t.prefix+"noop-extension", r.cfg.ExtensionLayer)
	if err != nil {
		return Row{}, err
	}
	fn := r.t.prefix + "echo-extension"
	if err := r.t.create(ctx, fn, r.cfg.EchoZip, 3*time.Second, layer); err != nil {
		return Row{}, err
	}
	if _, err := r.t.invoke(ctx, fn, payload); err != nil {
		return Row{}, err
	}
	var warm samples
	for range n {
		d, err := timed(func() error { _, err := r.t.invoke(ctx, fn, payload); return err })
		if err != nil {
			return Row{}, err
		}
		warm = append(warm, d)
	}
	row.Result = warm.stat()
	return row, nil
}

// load runs op from c goroutines for d and returns calls per second, their
// latencies and how many failed (with the first error).
func load(ctx context.Context, c int, d time.Duration, op func(context.Context) error) (float64, samples, int, error) {
	var (
		mu       sync.Mutex
		all      samples
		failed   int
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine samples
			bad := 0
			var errOne error
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t := time.Now()
				if err := op(ctx); err != nil {
					bad++
					errOne = err
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			all = append(all, mine...)
			failed += bad
			if firstErr == nil {
				firstErr = errOne
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return float64(len(all)) / time.Since(start).Seconds(), all, failed, firstErr
}

// loadStat is a load row's Stat from load's outcome.
func loadStat(rate float64, lat samples, failed int) Stat {
	st := lat.stat()
	st.Value, st.Failed = rate, failed
	return st
}

// measureThroughput runs the warm function, then the SDK floor, at
// concurrency c. A short warm-up first gives the function c environments.
// At concurrency 32 it also returns the CPU per warm invoke (in-process
// only): the sandboxes' from /proc, the daemon's as this process's minus
// what the same calls to the floor cost it (client and trivial server).
func (r *run) measureThroughput(ctx context.Context, c int) ([]Row, ConcurrencyPoint, error) {
	invoke := func(ctx context.Context) error { _, err := r.t.invoke(ctx, r.fn, payload); return err }
	floorCall := func(ctx context.Context) error { return invokeWith(ctx, r.stubLambda, r.fn, payload) }
	if err := r.warmUp(ctx, c, invoke); err != nil {
		return nil, ConcurrencyPoint{}, err
	}
	sandboxes := descendants(os.Getpid())
	self0, rt0 := selfCPU(), cpuOf(sandboxes)
	rate, lat, bad, err := load(ctx, c, r.cfg.ThroughputTime, invoke)
	self1, rt1 := selfCPU(), cpuOf(sandboxes)
	if bad > 0 {
		return nil, ConcurrencyPoint{}, fmt.Errorf("throughput at %d: %d calls failed: %w", c, bad, err)
	}
	quiesce()
	fself0 := selfCPU()
	frate, flat, bad, err := load(ctx, c, r.cfg.ThroughputTime, floorCall)
	fself1 := selfCPU()
	if bad > 0 {
		return nil, ConcurrencyPoint{}, fmt.Errorf("SDK floor at %d: %d calls failed: %w", c, bad, err)
	}
	rows := []Row{{
		ID: ThroughputRow(c), Name: "warm invokes, " + plural(c, "caller") + " (aws-sdk-go-v2, one function)", Unit: UnitLoad,
		Result: loadStat(rate, lat, 0), FloorName: sdkFloorName + ", " + plural(c, "caller"),
		Floor: loadStat(frate, flat, 0),
	}}
	if c == 32 {
		row := Row{ID: RowCPUInvoke, Name: "CPU per warm invoke, 32 SDK callers", Unit: UnitCPU,
			FloorName: "SDK floor: client + trivial server per call"}
		if r.t.d == nil || len(lat) == 0 || len(flat) == 0 {
			row.Skipped = "needs the in-process server (it reads the sandboxes' /proc entries)"
		} else {
			per := func(d time.Duration, n int) float64 { return float64(d) / float64(time.Microsecond) / float64(n) }
			floorCPU := per(fself1-fself0, len(flat))
			daemon := max(0, per(self1-self0, len(lat))-floorCPU)
			runtime := per(rt1-rt0, len(lat))
			row.Result = Stat{Value: daemon + runtime, Daemon: daemon, Runtime: runtime, Samples: len(lat)}
			row.Floor = Stat{Value: floorCPU, Samples: len(flat)}
			row.Note = "daemon: this process minus the client's share, measured on the floor"
		}
		rows = append(rows, row, r.runtimeShareRow(ctx, row))
	}
	return rows, ConcurrencyPoint{Concurrency: c, Invoke: lat.stat(), Echo: flat.stat()}, nil
}

// runtimeShareRow sets the runtime's share of the CPU row next to its floor:
// as many copies of the same runtime binary on the host, answering a
// trivial Runtime API. What the share has over that floor is what running
// in an environment costs the runtime; the floor itself bounds the calls
// per second two cores can give that runtime, whatever the daemon does.
func (r *run) runtimeShareRow(ctx context.Context, cpu Row) Row {
	row := Row{ID: RowCPURuntime, Name: "CPU per warm invoke, the runtime's share, 32 SDK callers", Unit: UnitCPU,
		FloorName: "32 of the same runtime on the host, a trivial Runtime API handing them events back to back"}
	if cpu.Skipped != "" {
		row.Skipped = cpu.Skipped
		return row
	}
	quiesce()
	per, n, err := runtimeFloor(ctx, r.echoBin, 32, r.cfg.ThroughputTime)
	if err != nil {
		row.Skipped = err.Error()
		return row
	}
	row.Result = Stat{Value: cpu.Result.Runtime, Samples: cpu.Result.Samples}
	row.Floor = Stat{Value: float64(per) / float64(time.Microsecond), Samples: n}
	return row
}

// warmUp calls at concurrency c until the function stops gaining
// environments, so the measured run has the ones it needs (cold starts
// are the cold row's business, not throughput's).
func (r *run) warmUp(ctx context.Context, c int, invoke func(context.Context) error) error {
	prev, err := r.t.alive(ctx)
	if err != nil {
		return err
	}
	for range 50 {
		if _, _, bad, err := load(ctx, c, 200*time.Millisecond, invoke); bad > 0 {
			return fmt.Errorf("throughput warm-up at %d: %d calls failed: %w", c, bad, err)
		}
		n, err := r.t.alive(ctx)
		if err != nil {
			return err
		}
		if n == prev {
			break
		}
		prev = n
	}
	quiesce()
	return nil
}

// measureEnvRate sends cfg.Burst concurrent calls to a fresh slow function,
// so each needs an environment of its own, and counts environments whose
// first call started per second since the burst began. The floor is as
// many concurrent fork+execs of /bin/true.
func (r *run) measureEnvRate(ctx context.Context) (Row, error) {
	n := r.cfg.Burst
	row := Row{ID: RowEnvRate, Name: fmt.Sprintf("environments created per second (burst of %d on one function)", n),
		Unit: UnitPerSec, FloorName: fmt.Sprintf("fork+exec of /bin/true, %d at once", n)}
	if len(r.cfg.SleepZip) == 0 {
		row.Skipped = "no slow function (build internal/bench/testdata/sleep)"
		return row, nil
	}
	name := r.t.prefix + "burst"
	if err := r.t.create(ctx, name, r.cfg.SleepZip, r.cfg.BurstSleep+30*time.Second); err != nil {
		return row, err
	}
	before, err := r.t.alive(ctx)
	if err != nil {
		return row, err
	}
	ev, _ := json.Marshal(map[string]int{"sleepMs": int(r.cfg.BurstSleep / time.Millisecond)})
	type out struct {
		Env     string `json:"env"`
		StartNs int64  `json:"startNs"`
	}
	results := make([]out, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	// The status page is polled during the burst: the pool keeps only so
	// many idle environments per function afterwards, so the peak is what
	// tells how many it made.
	stop, peak := make(chan struct{}), make(chan int, 1)
	go func() {
		top := before
		defer func() { peak <- top }()
		for {
			if n, err := r.t.alive(ctx); err == nil {
				top = max(top, n)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := r.t.invoke(ctx, name, ev)
			if err == nil {
				err = json.Unmarshal(b, &results[i])
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	close(stop)
	top := <-peak
	// An environment is ready when its first call starts; the rate is how
	// many became ready over the time the last one took.
	first := map[string]int64{}
	for i, o := range results {
		if errs[i] != nil {
			return row, fmt.Errorf("burst call: %w", errs[i])
		}
		if t, ok := first[o.Env]; !ok || o.StartNs < t {
			first[o.Env] = o.StartNs
		}
	}
	var last int64
	for _, t := range first {
		last = max(last, t)
	}
	elapsed := time.Duration(last - start.UnixNano())
	row.Result = Stat{Value: float64(len(first)) / elapsed.Seconds(), Samples: len(first)}
	row.Note = fmt.Sprintf("%d environments in %v; status peak +%d", len(first), elapsed.Round(time.Millisecond), top-before)
	if len(first) < n {
		row.Note += fmt.Sprintf("; only %d distinct, some calls reused one", len(first))
	}
	// The floor: the median of three bursts, as exec is noisy.
	var rates []float64
	for range 3 {
		rate, err := forkExecRate(n)
		if err != nil {
			return row, fmt.Errorf("fork+exec floor: %w", err)
		}
		rates = append(rates, rate)
	}
	slices.Sort(rates)
	row.Floor = Stat{Value: rates[1], Samples: 3 * n}
	return row, nil
}
