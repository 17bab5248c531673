package pid1

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// reaper is init's collector of children (orphans are re-parented to PID
// 1): it tells the daemon of each extension's end as it happens, from the
// extensions' start on, and init of the runtime's.
type reaper struct {
	ctl *Conn
	// more wakes a reaper that found no child left once the runtime
	// is started.
	more chan struct{}

	mu   sync.Mutex
	cond *sync.Cond // signalled on every child reaped
	// exts are the extensions' pids, 0 once reaped (or never started).
	exts        []int
	runtime     int // 0 until started
	runtimeDone bool
	code        int
	sig         syscall.Signal
}

func newReaper(ctl *Conn, exts []int) *reaper {
	r := &reaper{ctl: ctl, more: make(chan struct{}, 1), exts: slices.Clone(exts)}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// loop reaps children for the rest of init's life. It waits for SIGCHLD,
// then reaps without blocking, rather than sleeping in wait4: the cgroup
// freezer leaves a thread asleep in a futex (where a goroutine waiting for
// a signal sleeps) as it is, but pulls one blocked in wait4 out into the
// refrigerator at every freeze and lets it back in at every thaw, CPU
// charged to the sandbox on every call.
func (r *reaper) loop() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	for {
		if !r.reapEnded() {
			return
		}
		// A child ends, or (no child yet: no extension, or all gone)
		// the runtime comes.
		select {
		case <-sigs:
		case <-r.more:
		}
	}
}

// reapEnded reaps every child that has ended; false when waiting for
// children failed, which ends every wait for them.
func (r *reaper) reapEnded() bool {
	for {
		var ws unix.WaitStatus
		p, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ECHILD || (err == nil && p == 0):
			return true
		case err != nil:
			r.mu.Lock()
			r.runtimeDone, r.code = true, 255
			clear(r.exts)
			r.cond.Broadcast()
			r.mu.Unlock()
			return false
		}
		code, sig := ws.ExitStatus(), syscall.Signal(0)
		if ws.Signaled() {
			code, sig = 0, ws.Signal()
		}
		r.mu.Lock()
		if p == r.runtime {
			r.runtimeDone, r.code, r.sig = true, code, sig
		} else if i := slices.Index(r.exts, p); i >= 0 {
			r.exts[i] = 0
			r.ctl.Write(fmt.Sprintf("ext %d %d %d\n", i, code, sig))
		}
		r.cond.Broadcast()
		r.mu.Unlock()
	}
}

// startRuntime runs start, which starts the runtime on the calling (init's
// locked) thread and returns its pid. The lock is held across it so the
// runtime's end, however soon, is known for the runtime's.
func (r *reaper) startRuntime(start func() (int, error)) (int, error) {
	r.mu.Lock()
	pid, err := start()
	r.runtime = pid
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
	return pid, err
}

// runtimeExit waits for the runtime's end and returns how it ended.
func (r *reaper) runtimeExit() (int, syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for !r.runtimeDone {
		r.cond.Wait()
	}
	return r.code, r.sig
}

// extensionsGone waits until no extension is left.
func (r *reaper) extensionsGone() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for slices.ContainsFunc(r.exts, func(p int) bool { return p != 0 }) {
		r.cond.Wait()
	}
}
