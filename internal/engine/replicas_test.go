package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	. "icebox/internal/engine"
	"icebox/internal/engine/enginetest"
	"icebox/internal/errdefs"
)

func TestValidateReplicas(t *testing.T) {
	for _, c := range []Config{
		{URL: "nats://127.0.0.1:4222", Replicas: -1},
		{URL: "nats://127.0.0.1:4222", Replicas: 6},
		{DataDir: "/x", Replicas: 3}, // the embedded server is one node
	} {
		if err := c.Validate(); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%+v: got %v, want ErrInvalid", c, err)
		}
	}
	for _, c := range []Config{{DataDir: "/x", Replicas: 1}, {URL: "nats://127.0.0.1:4222", Replicas: 5}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// Every kind of store gets the configured replicas when created, is raised
// when it has fewer, and is never lowered: not by a start with a lower
// setting, and not by CreateOrUpdate calls that carry no replica count.
func TestReplicas(t *testing.T) {
	t.Parallel()
	c := enginetest.Cluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// What icebox packages do on start, with their own (replica-less) configs.
	open := func(replicas int) map[string]int {
		t.Helper()
		e, err := Open(ctx, Config{URL: c.URL(), Replicas: replicas}, enginetest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		js := e.JetStream()
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "kv1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "kv2", History: 1}); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			t.Fatal(err)
		}
		if _, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "obj"}); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, name := range []string{"S", "KV_kv1", "KV_kv2", "OBJ_obj"} {
			s, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			got[name] = s.CachedInfo().Config.Replicas
		}
		return got
	}
	want := func(got map[string]int, n int, when string) {
		t.Helper()
		for name, r := range got {
			if r != n {
				t.Errorf("%s: %s has %d replicas, want %d", when, name, r, n)
			}
		}
	}
	want(open(0), 1, "first start, default")
	want(open(3), 3, "start with --replicas 3")
	want(open(0), 3, "start without --replicas")
	want(open(2), 3, "start with --replicas 2")
}
