// Package envtest has a fake sandbox for tests of environments and of what
// drives them: nothing runs in it; the test says when its runtime exits.
package envtest

import (
	"errors"
	"sync"
	"syscall"

	"icebox/internal/sandbox"
)

// Sandbox is a fake environment.Sandbox. It records freezes and thaws;
// FailFreeze, FailThaw and StartErr, set before use, make those fail.
type Sandbox struct {
	FailFreeze, FailThaw bool
	StartErr             error
	// TermEnds makes SIGTERM from SignalRuntime end the runtime.
	TermEnds bool
	// Froze receives after every Freeze call, failed or not, if there is
	// room: the runtime is then waiting in /next.
	Froze chan struct{}

	done chan struct{}

	mu      sync.Mutex
	frozen  bool
	freezes int
	thaws   int
	started bool
	// extsStarted: StartExtensions was called.
	extsStarted bool
	exit        sandbox.ExitStatus
	oom         bool
	signals     []syscall.Signal
}

// New makes a fake sandbox.
func New() *Sandbox {
	return &Sandbox{Froze: make(chan struct{}, 64), done: make(chan struct{})}
}

// StartExtensions records that the extensions were started.
func (s *Sandbox) StartExtensions() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extsStarted = true
	return nil
}

func (s *Sandbox) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = true
	return s.StartErr
}

func (s *Sandbox) Freeze() error {
	defer func() {
		select {
		case s.Froze <- struct{}{}:
		default:
		}
	}()
	return s.flip(true, &s.freezes, s.FailFreeze)
}

func (s *Sandbox) Thaw() error { return s.flip(false, &s.thaws, s.FailThaw) }

// flip counts a freeze or thaw in n and, unless it fails, makes the
// sandbox frozen or not.
func (s *Sandbox) flip(frozen bool, n *int, fail bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	*n++
	if fail {
		return errors.New("cgroup freezer: operation failed")
	}
	s.frozen = frozen
	return nil
}

// Kill ends the runtime by SIGKILL.
func (s *Sandbox) Kill() error {
	s.End(sandbox.ExitStatus{Signal: syscall.SIGKILL}, false)
	return nil
}

// SignalRuntime records sig; SIGKILL ends the runtime, SIGTERM only
// when TermEnds is set (else the test ends it, or not).
func (s *Sandbox) SignalRuntime(sig syscall.Signal) error {
	s.mu.Lock()
	s.signals = append(s.signals, sig)
	ends := sig == syscall.SIGKILL || s.TermEnds
	s.mu.Unlock()
	if ends {
		s.End(sandbox.ExitStatus{Signal: sig}, false)
	}
	return nil
}

// Signals are the signals SignalRuntime was given, in order.
func (s *Sandbox) Signals() []syscall.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]syscall.Signal(nil), s.signals...)
}

// End makes the runtime exit with st; oom says the memory limit killed it.
// Only the first call counts.
func (s *Sandbox) End(st sandbox.ExitStatus, oom bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return
	default:
	}
	s.exit, s.oom = st, oom
	s.frozen = false
	close(s.done)
}

func (s *Sandbox) Done() <-chan struct{} { return s.done }

func (s *Sandbox) Exit() sandbox.ExitStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exit
}

func (s *Sandbox) Stats() sandbox.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := sandbox.Stats{MaxMemoryBytes: 10 << 20}
	if s.oom {
		st.OOMKills = 1
	}
	return st
}

// Frozen reports whether the sandbox is frozen, and how many freezes and
// thaws it had.
func (s *Sandbox) Frozen() (frozen bool, freezes, thaws int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frozen, s.freezes, s.thaws
}

// Started reports whether Start was called.
func (s *Sandbox) Started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// ExtensionsStarted reports whether StartExtensions was called.
func (s *Sandbox) ExtensionsStarted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.extsStarted
}
