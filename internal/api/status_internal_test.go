package api

import (
	"testing"
	"time"
)

// The status page groups environments by function, keeps their order, and
// lists a function with queued events even without an environment.
func TestFunctionStatus(t *testing.T) {
	now := time.Now()
	envs := []EnvironmentStatus{
		{Function: "b", ID: "1", State: "frozen", Created: now.Add(-time.Minute), Calls: 3},
		{Function: "a", ID: "2", State: "busy", Created: now.Add(-time.Second), Calls: 1},
		{Function: "b", ID: "3", State: "busy", Created: now, Calls: 1},
	}
	got := functionStatus(envs, map[string]float64{"b": 2, "c": 1, "d": 0}, now)
	if len(got) != 3 || got[0].Name != "a" || got[1].Name != "b" || got[2].Name != "c" {
		t.Fatalf("functions %+v, want a, b, c (d has nothing queued)", got)
	}
	if b := got[1]; b.QueuedEvents != 2 || len(b.Environments) != 2 || b.Environments[0].ID != "1" || b.Environments[0].AgeSeconds != 60 {
		t.Errorf("b: %+v", b)
	}
	if c := got[2]; c.QueuedEvents != 1 || c.Environments == nil || len(c.Environments) != 0 {
		t.Errorf("c: %+v, want one queued event and an empty list", c)
	}
}
