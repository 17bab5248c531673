package enginetest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/engine"
	"icebox/internal/engine/enginetest"
)

// A replicated bucket on the test cluster keeps taking writes while a server
// that does not lead it is down, and the server rejoins on restart.
func TestClusterStopRestart(t *testing.T) {
	t.Parallel()
	c := enginetest.Cluster(t, 3)
	e := enginetest.Open(t, engine.Config{URL: c.URL()})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := e.JetStream().CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	leader := c.StreamLeader("KV_b")
	if leader < 0 {
		t.Fatal("no leader for KV_b")
	}
	follower := c.Server((leader + 1) % 3)
	follower.Stop()
	put(ctx, t, kv, "v1")
	follower.Restart()
	c.WaitLeader()
	put(ctx, t, kv, "v2")
	info, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas != 3 {
		t.Fatalf("replicas = %d", info.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas)
	}
}

// put retries briefly: a request sent while the client is reconnecting to
// another server gets no answer and times out, as in any NATS deployment.
func put(ctx context.Context, t *testing.T, kv jetstream.KeyValue, v string) {
	t.Helper()
	var err error
	for range 5 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err = kv.Put(pctx, "k", []byte(v))
		cancel()
		if err == nil {
			return
		}
	}
	t.Fatalf("put %s: %v", v, err)
}
