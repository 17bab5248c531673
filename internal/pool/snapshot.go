package pool

import (
	"sort"
	"time"

	"icebox/internal/environment"
)

// EnvironmentInfo is one environment as the status page shows it.
type EnvironmentInfo struct {
	ID       string
	Function string
	// State is the environment's exact state: frozen and idle apart,
	// handing-over and busy apart (Counts groups them by phase).
	State   environment.State
	Created time.Time
	// Calls counts the calls it was handed, a running one included.
	Calls int
	// MemoryMB is the function's memory size, reserved from the budget.
	MemoryMB int
	// MaxMemoryBytes is its Max Memory Used as of its last call's end; 0
	// before its first call ends.
	MaxMemoryBytes uint64
}

// Snapshot lists the live environments by function, oldest first.
func (p *Pool) Snapshot() []EnvironmentInfo {
	p.mu.Lock()
	envs := make([]*env, 0, len(p.all))
	for e := range p.all {
		envs = append(envs, e)
	}
	p.mu.Unlock()
	out := make([]EnvironmentInfo, 0, len(envs))
	for _, e := range envs {
		in := e.life.Info()
		if in.State == environment.Destroyed {
			continue
		}
		out = append(out, EnvironmentInfo{ID: e.id, Function: e.name, State: in.State, Created: in.Created,
			Calls: in.Calls, MemoryMB: e.memoryMB, MaxMemoryBytes: e.maxMemory.Load()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		return out[i].Created.Before(out[j].Created)
	})
	return out
}
