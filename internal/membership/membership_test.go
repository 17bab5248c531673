package membership_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/engine"
	"icebox/internal/engine/enginetest"
	"icebox/internal/errdefs"
	"icebox/internal/membership"
	"icebox/internal/testkit"
)

const (
	beat = 50 * time.Millisecond
	ttl  = 300 * time.Millisecond
)

func join(t *testing.T, js jetstream.JetStream, id string) *membership.Membership {
	t.Helper()
	m, err := membership.Join(context.Background(), js, membership.Config{NodeID: id, Address: id + ":9070", Heartbeat: beat, TTL: ttl,
		Report: func(n *membership.Node) { n.Environments = map[string]int{"idle": 1} }}, enginetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		m.Leave(ctx) // fails harmlessly once the engine is gone
	})
	return m
}

func ids(t *testing.T, m *membership.Membership) []string {
	t.Helper()
	nodes, err := m.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range nodes {
		out = append(out, n.ID)
	}
	return out
}

// Nodes see each other (in the bucket, and counted by Live); a node that
// leaves is gone at once; a node that stops heartbeating (killed) is gone
// from the bucket itself, and from the others' count, within TTL.
func TestMembership(t *testing.T) {
	t.Parallel()
	e := enginetest.Embedded(t)
	js := e.JetStream()
	a, b, c := join(t, js, "a"), join(t, js, "b"), join(t, js, "c")
	if got := ids(t, a); len(got) != 3 || got[0] != "a" || got[2] != "c" {
		t.Fatalf("nodes = %v, want a b c", got)
	}
	live := func(m *membership.Membership, want int) {
		t.Helper()
		testkit.WaitFor(t, 5*time.Second, fmt.Sprintf("%d live nodes", want), func() bool { return m.Live() == want })
	}
	live(b, 3)
	nodes, _ := b.Nodes(context.Background())
	if n := nodes[0]; n.Address != "a:9070" || n.Environments["idle"] != 1 || time.Since(n.LastHeartbeat) > ttl {
		t.Errorf("entry of a: %+v", n)
	}
	if err := c.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, a); len(got) != 2 {
		t.Fatalf("after c left: %v", got)
	}
	live(b, 2)
	a.Halt()
	kv, err := js.KeyValue(context.Background(), membership.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := kv.Get(context.Background(), "a")
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry of a killed node still there after %s: %v", 5*time.Second, err)
		}
		time.Sleep(beat)
	}
	if got := ids(t, b); len(got) != 1 || got[0] != "b" {
		t.Fatalf("after a died: %v", got)
	}
	live(b, 1)
	if err := b.Ready(); err != nil {
		t.Fatalf("ready: %v", err)
	}
}

// A node cut off from its engine stops being ready once TTL has passed
// without a heartbeat.
func TestNotReadyWithoutEngine(t *testing.T) {
	t.Parallel()
	url := enginetest.ExternalServer(t)
	e, err := engine.Open(context.Background(), engine.Config{URL: url}, enginetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	m := join(t, e.JetStream(), "n")
	if err := m.Ready(); err != nil {
		t.Fatalf("ready with the engine up: %v", err)
	}
	e.Close()
	deadline := time.Now().Add(5 * time.Second)
	for m.Ready() == nil {
		if time.Now().After(deadline) {
			t.Fatal("still ready 5 s after the engine went")
		}
		time.Sleep(beat)
	}
	if err := m.Ready(); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("ready: %v, want ErrUnavailable", err)
	}
}

func TestNodeID(t *testing.T) {
	dir := t.TempDir()
	id, err := membership.NodeID(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := membership.NodeID(dir)
	if err != nil || again != id {
		t.Fatalf("second NodeID = %q %v, want %q", again, err, id)
	}
	if other, _ := membership.NodeID(t.TempDir()); other == id {
		t.Fatalf("two data dirs share id %q", id)
	}
	os.WriteFile(filepath.Join(dir, "node-id"), []byte("../x\n"), 0o644)
	if _, err := membership.NodeID(dir); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("bad id file: %v, want ErrInvalid", err)
	}
	for _, c := range []membership.Config{{NodeID: "a.b"}, {NodeID: ""}, {NodeID: "a", Heartbeat: time.Second, TTL: time.Second}} {
		if err := c.Validate(); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", c, err)
		}
	}
}
