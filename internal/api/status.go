package api

import (
	"sort"
	"time"
)

// FunctionStatus is one function's environments and queue.
type FunctionStatus struct {
	Name string `json:"name"`
	// QueuedEvents counts its asynchronous events waiting or parked for a
	// retry; one whose attempt runs is not queued.
	QueuedEvents int                 `json:"queuedEvents"`
	Environments []EnvironmentStatus `json:"environments"`
}

// EnvironmentStatus is one execution environment on the status page.
type EnvironmentStatus struct {
	Function string `json:"-"`
	ID       string `json:"id"`
	// State is the environment's exact state: creating, initializing,
	// idle, frozen, handing-over, busy or draining.
	State      string    `json:"state"`
	Created    time.Time `json:"created"`
	AgeSeconds float64   `json:"ageSeconds"`
	// Calls counts the calls it was handed, a running one included.
	Calls        int `json:"calls"`
	MemorySizeMB int `json:"memorySizeMB"`
	// MaxMemoryUsedMB is the REPORT line's Max Memory Used as of its last
	// call's end.
	MaxMemoryUsedMB uint64 `json:"maxMemoryUsedMB"`
}

// SetEnvironmentList tells the status page how to list environments.
func (s *Server) SetEnvironmentList(list func() []EnvironmentStatus) { s.environmentList = list }

// functionStatus groups envs (in order) and the queue depths by function,
// sorted by name.
func functionStatus(envs []EnvironmentStatus, queued map[string]float64, now time.Time) []FunctionStatus {
	byName := map[string]*FunctionStatus{}
	get := func(name string) *FunctionStatus {
		f := byName[name]
		if f == nil {
			f = &FunctionStatus{Name: name, Environments: []EnvironmentStatus{}}
			byName[name] = f
		}
		return f
	}
	for _, e := range envs {
		e.AgeSeconds = now.Sub(e.Created).Seconds()
		f := get(e.Function)
		f.Environments = append(f.Environments, e)
	}
	for name, n := range queued {
		if n > 0 {
			get(name).QueuedEvents = int(n)
		}
	}
	out := make([]FunctionStatus, 0, len(byName))
	for _, f := range byName {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// functionStatuses is the status page's per-function part.
func (s *Server) functionStatuses(queued map[string]float64) []FunctionStatus {
	var envs []EnvironmentStatus
	if s.environmentList != nil {
		envs = s.environmentList()
	}
	return functionStatus(envs, queued, time.Now())
}
