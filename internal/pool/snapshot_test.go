package pool

import (
	"testing"
	"time"

	"icebox/internal/environment"
	"icebox/internal/testkit"
)

// Snapshot shows each environment's exact state, calls, age and memory.
func TestSnapshot(t *testing.T) {
	p, f := newPool(t, Config{}, always(echo))
	before := time.Now()
	invoke(t, p, function("f"), `{}`)
	invoke(t, p, function("f"), `{}`)
	testkit.WaitFor(t, 5*time.Second, "the freeze", f.Made()[0].Frozen)
	running := invokeAsync(p, function("busy"), `{"Sleep":300}`)
	testkit.WaitFor(t, 5*time.Second, "the second function's call to run", func() bool {
		s := p.Snapshot()
		return len(s) == 2 && s[0].State == environment.Busy
	})
	s := p.Snapshot()
	busy, frozen := s[0], s[1]
	if busy.Function != "busy" || busy.Calls != 1 || busy.MaxMemoryBytes != 0 {
		t.Errorf("the environment running its first call: %+v", busy)
	}
	if frozen.Function != "f" || frozen.State != environment.Frozen || frozen.Calls != 2 || frozen.MemoryMB != 128 ||
		frozen.MaxMemoryBytes != 10<<20 || frozen.Created.Before(before) || frozen.ID == "" {
		t.Errorf("the frozen environment after two calls: %+v", frozen)
	}
	result(t, running)
}
