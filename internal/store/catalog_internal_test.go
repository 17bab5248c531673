package store

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/errdefs"
	"icebox/internal/model"
)

// entry is a watch event as the KV watcher delivers it.
type entry struct {
	key   string
	value []byte
	rev   uint64
	op    jetstream.KeyValueOp
}

func (e entry) Bucket() string                  { return functionsBucket }
func (e entry) Key() string                     { return e.key }
func (e entry) Value() []byte                   { return e.value }
func (e entry) Revision() uint64                { return e.rev }
func (e entry) Created() time.Time              { return time.Time{} }
func (e entry) Delta() uint64                   { return 0 }
func (e entry) Operation() jetstream.KeyValueOp { return e.op }

func put(t *testing.T, name, desc string, rev uint64) entry {
	b, err := json.Marshal(model.Function{Name: name, Description: desc})
	if err != nil {
		t.Fatal(err)
	}
	return entry{key: name, value: b, rev: rev, op: jetstream.KeyValuePut}
}

// TestCacheNeverRegresses drives the cache with local writes and watch events
// arriving in the orders the engine can produce, and checks the revision rule.
func TestCacheNeverRegresses(t *testing.T) {
	c := &Catalog{log: slog.New(slog.DiscardHandler), fns: map[string]cached{}}
	desc := func() string {
		f, err := c.Get("f")
		if errors.Is(err, errdefs.ErrNotFound) {
			return "<absent>"
		}
		return f.Description
	}
	check := func(step, want string) {
		t.Helper()
		if got := desc(); got != want {
			t.Fatalf("%s: cache has %q; want %q", step, got, want)
		}
	}

	c.observe(put(t, "f", "v3", 3))
	check("watch put", "v3")
	c.applyPut(&model.Function{Name: "f", Description: "v5"}, 5)
	check("local update ahead of the watch", "v5")
	c.observe(put(t, "f", "v4", 4)) // another node's write the local one replaced
	check("late watch event", "v5")
	c.observe(put(t, "f", "v5", 5))
	check("watch catches up", "v5")
	c.observe(put(t, "f", "v7", 7))
	c.applyPut(&model.Function{Name: "f", Description: "v6"}, 6) // write the watch already overtook
	check("stale local write", "v7")

	c.applyDelete("f", 7)
	check("local delete", "<absent>")
	c.observe(put(t, "other", "x", 8)) // watch moves on, the marker is still ahead
	check("unrelated event", "<absent>")
	c.observe(entry{key: "f", rev: 9, op: jetstream.KeyValueDelete})
	check("watch delivers the delete", "<absent>")
	if _, ok := c.fns["f"]; ok {
		t.Error("tombstone kept after the watch delivered the delete")
	}

	// A delete the watch has already delivered leaves no tombstone behind.
	c.observe(put(t, "f", "v10", 10))
	c.observe(entry{key: "f", rev: 11, op: jetstream.KeyValueDelete})
	c.applyDelete("f", 10)
	if _, ok := c.fns["f"]; ok {
		t.Error("late local delete left a tombstone")
	}
	c.applyPut(&model.Function{Name: "f", Description: "v10"}, 10)
	check("local write older than a watched delete", "<absent>")
}

// TestTransitions checks the (old, new) pairs queued for subscribers as local
// writes and watch events interleave.
func TestTransitions(t *testing.T) {
	c := &Catalog{log: slog.New(slog.DiscardHandler), fns: map[string]cached{}, kick: make(chan struct{}, 1)}
	c.subs = append(c.subs, func(_, _ *model.Function) {})
	d := func(f *model.Function) string {
		if f == nil {
			return "-"
		}
		return f.Description
	}
	steps := []struct {
		do   func()
		want string // queued transitions, "old>new" joined by spaces
	}{
		{func() { c.observe(put(t, "f", "a", 1)) }, "->a"},
		{func() { c.applyPut(&model.Function{Name: "f", Description: "b"}, 2) }, "a>b"},
		{func() { c.observe(put(t, "f", "b", 2)) }, ""}, // own write coming back
		// Another node's c and d coalesced by the engine: one transition.
		{func() { c.observe(put(t, "f", "d", 4)) }, "b>d"},
		{func() { c.applyDelete("f", 4) }, "d>-"},
		{func() { c.observe(entry{key: "f", rev: 6, op: jetstream.KeyValueDelete}) }, ""},
		{func() { c.observe(entry{key: "g", rev: 7, op: jetstream.KeyValuePurge}) }, ""},
		{func() { c.observe(entry{key: "h", value: []byte("{not json"), rev: 8, op: jetstream.KeyValuePut}) }, ""},
		// Created and deleted elsewhere before the watch saw the create.
		{func() { c.observe(entry{key: "i", rev: 9, op: jetstream.KeyValueDelete}) }, ""},
	}
	for i, s := range steps {
		s.do()
		var got []string
		for _, ch := range c.pending {
			got = append(got, d(ch.old)+">"+d(ch.new))
		}
		c.pending = nil
		if g := strings.Join(got, " "); g != s.want {
			t.Errorf("step %d: queued %q; want %q", i, g, s.want)
		}
	}
}
