package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"time"
)

// measureMemory keeps cfg.IdleEnvs idle frozen environments (one per fresh
// function, each invoked once; those invokes are the cold starts plotted
// against environments alive) and divides what they cost by their number:
// the PSS of every process the daemon started (sandbox inits and runtimes)
// plus the daemon's own growth, before and after. PSS of shared pages is
// split among their users, so the sums add up to real memory. The floor is
// the PSS of idle copies of the same binary on the host.
func (r *run) measureMemory(ctx context.Context) (Row, []ColdPoint, error) {
	n := r.cfg.IdleEnvs
	row := Row{ID: RowMemoryPerEnv, Name: fmt.Sprintf("memory per idle frozen environment (PSS, %d idle)", n), Unit: UnitMiB}
	k := min(n, 20)
	row.FloorName = fmt.Sprintf("PSS of an idle copy of the echo binary (mean of %d)", k)
	if r.t.d == nil {
		row.Skipped = "needs the in-process server (it reads the sandboxes' /proc entries)"
		return row, nil, nil
	}
	// Functions first, so the catalog's growth is not counted per environment.
	// The scale rows may have made some of them already.
	if err := r.fillCatalog(ctx, n); err != nil {
		return row, nil, err
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fillerName(r.t.prefix, i)
	}
	settle()
	self := os.Getpid()
	before := sumPSSKB(descendants(self)) + pssKB(self)
	availBefore := memAvailableKB()

	points := make([]ColdPoint, 0, n)
	for i, name := range names {
		alive, err := r.t.alive(ctx)
		if err != nil {
			return row, nil, err
		}
		d, err := timed(func() error { _, err := r.t.invoke(ctx, name, payload); return err })
		if err != nil {
			return row, nil, err
		}
		points = append(points, ColdPoint{Alive: alive, Latency: d})
		if (i+1)%200 == 0 {
			r.progress("  %d of %d environments started", i+1, n)
		}
	}
	// Every environment goes idle (and is frozen) once its call returns.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := r.t.status(ctx)
		if err != nil {
			return row, nil, err
		}
		if st.Environments["busy"] == 0 && st.Environments["creating"] == 0 && st.Environments["initializing"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			return row, nil, fmt.Errorf("environments still busy after 30s: %v", st.Environments)
		}
		time.Sleep(50 * time.Millisecond)
	}
	settle()
	after := sumPSSKB(descendants(self)) + pssKB(self)
	availAfter := memAvailableKB()
	row.Result = Stat{Value: float64(after-before) / 1024 / float64(n), Samples: n}
	row.Note = fmt.Sprintf("host MemAvailable fell %.2f MiB/env, kernel objects included", float64(availBefore-availAfter)/1024/float64(n))

	idle, err := startIdle(ctx, r.echoBin, k)
	if err != nil {
		return row, nil, fmt.Errorf("idle processes: %w", err)
	}
	time.Sleep(100 * time.Millisecond)
	row.Floor = Stat{Value: float64(sumPSSKB(idle.pids())) / 1024 / float64(k), Samples: k}
	idle.stop()
	return row, points, nil
}

// settle returns the Go heap's garbage to the OS and lets the processes
// started last finish touching their pages, so PSS reads are stable.
func settle() {
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	debug.FreeOSMemory()
}
