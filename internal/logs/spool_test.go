package logs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/engine/enginetest"
)

// spoolStore opens a Store with a spool on an external server that the test
// can stop and restart.
func spoolStore(t *testing.T, spoolBytes int64) (*Store, *enginetest.NATSCluster, string) {
	t.Helper()
	c := enginetest.Cluster(t, 1)
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s, err := Open(t.Context(), js, Config{PublishTimeout: 300 * time.Millisecond, SpoolDir: dir, SpoolBytes: spoolBytes}, enginetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		nc.Close()
	})
	return s, c, dir
}

// Lines written while the engine is down wait on disk and are stored once it
// is back: none dropped, every one readable.
func TestSpoolShipsAfterOutage(t *testing.T) {
	t.Parallel()
	s, c, dir := spoolStore(t, 0)
	const group = "/aws/lambda/g"
	w := s.Writer(group, "s")
	w.Write(time.Now(), "before")
	flush(t, s)

	c.Server(0).Stop()
	const during = 2000
	for i := range during {
		w.Write(time.Now(), fmt.Sprintf("during %d", i))
		if i%500 == 0 {
			flush(t, s) // keeps the writes within the memory buffer
		}
	}
	flush(t, s)
	if d := s.Dropped(); d != 0 {
		t.Fatalf("%d lines dropped with a spool", d)
	}
	if fi, err := os.Stat(filepath.Join(dir, spoolFile)); err != nil || fi.Size() == 0 {
		t.Fatalf("spool file: %v", err)
	}

	c.Server(0).Restart()
	deadline := time.Now().Add(20 * time.Second)
	for {
		seen := map[string]bool{}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := s.FilterLogEvents(ctx, group, nil, 0, 0, "", 10000, "")
		cancel()
		if err == nil {
			for _, e := range res.Events {
				seen[e.Message] = true
			}
		}
		missing := 0
		for i := range during {
			if !seen[fmt.Sprintf("during %d", i)] {
				missing++
			}
		}
		if missing == 0 && seen["before"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d spooled lines not stored after the engine came back (err %v)", missing, during, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := s.Dropped(); d != 0 {
		t.Fatalf("%d lines dropped", d)
	}
	if s.spool.spooling() {
		t.Error("still spooling after the spool was shipped")
	}
}

// A full spool drops what does not fit, and counts it.
func TestSpoolFullDropsCounted(t *testing.T) {
	t.Parallel()
	s, c, _ := spoolStore(t, 4<<10)
	c.Server(0).Stop()
	w := s.Writer("/aws/lambda/g", "s")
	for i := range 200 {
		w.Write(time.Now(), fmt.Sprintf("line %d with some padding to fill the spool", i))
	}
	if err := s.Flush(t.Context()); err == nil {
		t.Error("Flush reported no loss")
	}
	if d := s.Dropped(); d == 0 || d == 200 {
		t.Fatalf("dropped %d of 200 with a 4 KiB spool, want some", d)
	}
	if n := drops(s)["g"]["engine"]; n == 0 {
		t.Errorf("per-function drops: %v", drops(s))
	}
}

// What a closed store left in its spool is shipped by the next Open on it.
func TestSpoolShipsAfterRestart(t *testing.T) {
	t.Parallel()
	s, c, dir := spoolStore(t, 0)
	c.Server(0).Stop()
	w := s.Writer("/aws/lambda/g", "s")
	w.Write(time.Now(), "kept across a restart")
	flush(t, s)
	s.Close()
	c.Server(0).Restart()

	nc, err := nats.Connect(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s2, err := Open(t.Context(), js, Config{SpoolDir: dir}, enginetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The group exists once the line is stored.
		res, err := s2.FilterLogEvents(t.Context(), "/aws/lambda/g", nil, 0, 0, "", 0, "")
		if err == nil && len(res.Events) == 1 && res.Events[0].Message == "kept across a restart" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spooled line not shipped after reopening: %v %v", res, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, shippingFile)); err == nil {
		t.Error("shipping file left after shipping")
	}
}
