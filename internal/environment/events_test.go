package environment

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"icebox/internal/environment/envtest"
	"icebox/internal/model"
	"icebox/internal/sandbox"
)

// reached is an environment brought to a state by real events.
type reached struct {
	e  *Env
	sb *envtest.Sandbox

	moved chan struct{} // closed at the first move

	mu    sync.Mutex
	moves []string
}

// reach brings a new environment to s, then records its moves.
func reach(t *testing.T, s State) *reached {
	t.Helper()
	r := &reached{sb: envtest.New(), moved: make(chan struct{})}
	switch s {
	case Creating:
		r.e = New(Config{})
	case Initializing:
		r.e, _ = starting(t, Runtime{Sandbox: r.sb})
	default:
		r.e, r.sb = ready(t)
	}
	switch s {
	case Frozen:
		next(context.Background(), r.e)
	case HandingOver, Busy:
		invoke(t, r.e, "held", time.Minute)
		inState(t, r.e, HandingOver)
		if s == Busy {
			take(t, r.e, "held")
		}
	case Draining:
		r.sb.End(sandbox.ExitStatus{Code: 1}, false)
	case Destroyed:
		r.e.Destroy()
		r.sb.Kill()
	}
	inState(t, r.e, s)
	r.e.mu.Lock()
	r.e.cfg.Observe = func(from, to State) {
		r.mu.Lock()
		if len(r.moves) == 0 {
			close(r.moved)
		}
		r.moves = append(r.moves, from.String()+"→"+to.String())
		r.mu.Unlock()
	}
	r.e.mu.Unlock()
	return r
}

// first is the first move recorded, waiting for one made in the
// background. The window is the test for an event that makes no move:
// none may come within it.
func (r *reached) first() string {
	select {
	case <-r.moved:
	case <-time.After(100 * time.Millisecond):
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.moves) == 0 {
		return ""
	}
	return r.moves[0]
}

// Every event in every state: the states that expect it make the listed
// first move; every other state refuses it and stays put. This is the
// emulator's "disallow every transition by default", checked.
func TestEventsInEveryState(t *testing.T) {
	all := []State{Creating, Initializing, Idle, Frozen, HandingOver, Busy, Draining, Destroyed}
	events := []struct {
		name  string
		apply func(r *reached) (refused bool)
		moves map[State]string // first move per state; absent: refused, no move
	}{
		{"start", func(r *reached) bool {
			ch := make(chan error, 1)
			go func() { _, err := r.e.Start(Runtime{Sandbox: r.sb}, "s", time.Minute); ch <- err }()
			select {
			case err := <-ch:
				return errors.Is(err, ErrRefused)
			case <-time.After(50 * time.Millisecond):
				return false
			}
		}, map[State]string{Creating: "creating→initializing"}},
		{"next", func(r *reached) bool {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, err := r.e.Next(ctx)
			return errors.Is(err, ErrRefused)
		}, map[State]string{Initializing: "initializing→idle", Idle: "idle→frozen", Frozen: "", HandingOver: "handing-over→busy", Busy: "busy→idle"}},
		{"invoke", func(r *reached) bool {
			ch := make(chan bool, 1)
			go func() {
				out, err := r.e.Invoke(&model.Invocation{RequestID: "new"}, time.Minute)
				ch <- errors.Is(err, ErrRefused) || (err == nil && out.Kind == NotTaken)
			}()
			select {
			case refused := <-ch:
				return refused
			case <-time.After(50 * time.Millisecond):
				return false
			}
		}, map[State]string{Idle: "idle→handing-over", Frozen: "frozen→busy"}},
		{"respond", func(r *reached) bool { return !r.e.Respond("held", nil) }, map[State]string{Busy: "busy→idle"}},
		{"fail", func(r *reached) bool { return !r.e.Fail("held", "E", []byte(`{}`)) }, map[State]string{Busy: "busy→idle"}},
		{"init error", func(r *reached) bool {
			r.e.InitError([]byte(`{}`))
			return r.first() == ""
		}, map[State]string{Initializing: "initializing→draining"}},
		{"runtime exits", func(r *reached) bool {
			r.sb.End(sandbox.ExitStatus{Code: 9}, false)
			return r.first() == ""
		}, map[State]string{Initializing: "initializing→draining", Idle: "idle→draining", Frozen: "frozen→draining", HandingOver: "handing-over→draining", Busy: "busy→draining"}},
		{"destroy", func(r *reached) bool { return !r.e.Destroy() }, map[State]string{Creating: "creating→destroyed", Initializing: "initializing→destroyed",
			Idle: "idle→destroyed", Frozen: "frozen→destroyed", HandingOver: "handing-over→destroyed", Busy: "busy→destroyed", Draining: "draining→destroyed"}},
	}
	for _, ev := range events {
		for _, s := range all {
			t.Run(fmt.Sprintf("%s/%s", ev.name, s), func(t *testing.T) {
				r := reach(t, s)
				want, expected := ev.moves[s]
				refused := ev.apply(r)
				got := r.first()
				switch {
				case !expected && (!refused || got != ""):
					t.Errorf("not expected in %s, yet refused=%v and moved %q", s, refused, got)
				case expected && (refused || got != want):
					t.Errorf("refused=%v, first move %q; want %q", refused, got, want)
				}
			})
		}
	}
}
