package logs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/errdefs"
)

// newStore opens a Store on a real embedded JetStream in a temp dir.
func newStore(t testing.TB, cfg Config) (*Store, jetstream.JetStream) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		JetStream: true, StoreDir: t.TempDir(), DontListen: true, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), js, cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		nc.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return s, js
}

func flush(t testing.TB, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSubjectRoundTrip(t *testing.T) {
	for _, c := range [][2]string{
		{"/aws/lambda/f", "2026/11/25/[$LATEST]0123456789abcdef0123456789abcdef"},
		{"a.b*c>d e", "x.y > z\t*"},
		{"é", "."},
	} {
		subj := subject(c[0], c[1])
		if strings.ContainsAny(strings.TrimPrefix(subj, subjectPrefix), "*> \t") || strings.Count(subj, ".") != 2 {
			t.Fatalf("subject(%q, %q) = %q: not three plain tokens", c[0], c[1], subj)
		}
		g, st, err := parseSubject(subj)
		if err != nil || g != c[0] || st != c[1] {
			t.Fatalf("parseSubject(%q) = %q, %q, %v; want %q, %q", subj, g, st, err, c[0], c[1])
		}
	}
	if subject("", "x") != "" || subject("g", "") != "" {
		t.Fatal("empty names must have no subject")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []Config{{MaxBytes: 10}, {MaxAge: time.Second}, {BufferBytes: 1000}, {Replicas: 9}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: want error", c)
		}
	}
}

func TestTruncateAndReadBack(t *testing.T) {
	s, _ := newStore(t, Config{})
	long := strings.Repeat("é", MaxEventBytes) // 2 bytes a rune: the cut falls mid-rune
	s.Writer("/aws/lambda/t", "s").Write(time.Now(), long)
	flush(t, s)
	res, err := s.GetLogEvents(t.Context(), "/aws/lambda/t", "s", 0, 0, 0, true, "")
	if err != nil || len(res.Events) != 1 {
		t.Fatalf("got %+v, %v", res, err)
	}
	if m := res.Events[0].Message; len(m) != MaxEventBytes || !strings.HasPrefix(long, m) {
		t.Fatalf("truncated message has %d bytes, want %d on a rune boundary", len(m), MaxEventBytes)
	}
}

func TestCloseDrainsAndDropsLateWrites(t *testing.T) {
	s, _ := newStore(t, Config{})
	w := s.Writer("/aws/lambda/c", "s")
	for i := range 1000 {
		w.Write(time.Now(), fmt.Sprint("line ", i))
	}
	s.Close()
	if d := s.Dropped(); d != 0 {
		t.Fatalf("dropped %d before close", d)
	}
	w.Write(time.Now(), "too late")
	if s.Dropped() != 1 {
		t.Fatal("a write after Close must be counted as dropped")
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	res, err := s.FilterLogEvents(t.Context(), "/aws/lambda/c", nil, 0, 0, "", 0, "")
	if err != nil || len(res.Events) != 1000 {
		t.Fatalf("after close: %d events, %v", len(res.Events), err)
	}
}

// TestGetLogEventsBackwardPaging pages a stream backwards from its end: every
// event exactly once, in order, and the token repeats at the beginning.
func TestGetLogEventsBackwardPaging(t *testing.T) {
	s, _ := newStore(t, Config{})
	const n = 1000
	a, b := s.Writer("/aws/lambda/p", "a"), s.Writer("/aws/lambda/p", "b")
	for i := range n {
		a.Write(time.Now(), fmt.Sprint(i))
		b.Write(time.Now(), "other") // interleaved, so stream a's sequences have gaps
	}
	flush(t, s)
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		res, err := s.GetLogEvents(t.Context(), "/aws/lambda/p", "a", 0, 0, 64, false, token)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Events) > 64 || pages > n/64+2 {
			t.Fatalf("page %d: %d events", pages, len(res.Events))
		}
		page := make([]string, 0, len(res.Events))
		for _, e := range res.Events {
			page = append(page, e.Message)
		}
		got = append(page, got...)
		if res.NextBackwardToken == token {
			break
		}
		token = res.NextBackwardToken
	}
	if len(got) != n {
		t.Fatalf("got %d events, want %d", len(got), n)
	}
	for i, m := range got {
		if m != fmt.Sprint(i) {
			t.Fatalf("event %d is %q", i, m)
		}
	}
}

func TestFilterTimeWindow(t *testing.T) {
	s, _ := newStore(t, Config{})
	base := time.Now().Truncate(time.Millisecond)
	w := s.Writer("/aws/lambda/w", "s")
	for i := range 50 {
		w.Write(base.Add(time.Duration(i)*time.Millisecond), fmt.Sprint(i))
	}
	flush(t, s)
	start := base.Add(10 * time.Millisecond).UnixMilli()
	res, err := s.FilterLogEvents(t.Context(), "/aws/lambda/w", nil, start, start+9, "", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 10 || res.Events[0].Message != "10" || res.Events[9].Message != "19" {
		t.Fatalf("window [10,19] returned %+v", res.Events)
	}
	got, err := s.GetLogEvents(t.Context(), "/aws/lambda/w", "s", start, start+10, 0, true, "")
	if err != nil || len(got.Events) != 10 || got.Events[9].Message != "19" {
		t.Fatalf("GetLogEvents [10,20) returned %+v, %v", got.Events, err)
	}
	back, err := s.GetLogEvents(t.Context(), "/aws/lambda/w", "s", start, start+10, 4, false, "")
	if err != nil || len(back.Events) != 4 || back.Events[0].Message != "16" || back.Events[3].Message != "19" {
		t.Fatalf("GetLogEvents [10,20) latest 4 returned %+v, %v", back.Events, err)
	}
}

// TestFlood writes far more than the buffer holds as fast as possible: the
// heap stays bounded and the excess is counted as dropped, never queued.
func TestFlood(t *testing.T) {
	s, js := newStore(t, Config{BufferBytes: 1 << 20, BufferEvents: 1024})
	line := strings.Repeat("x", 64<<10)
	const total = 128 << 20
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	w := s.Writer("/aws/lambda/flood", "s")
	n := 0
	for written := 0; written < total; written += len(line) {
		w.Write(time.Now(), line)
		if n++; n%128 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	flush(t, s)
	stream, err := js.Stream(t.Context(), StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	stored := info.State.Msgs
	t.Logf("%d writes of %d KiB: stored %d, dropped %d, heap in use grew %d MiB at most",
		n, len(line)>>10, stored, s.Dropped(), (peak-base)>>20)
	if stored+s.Dropped() != uint64(n) {
		t.Fatalf("stored %d + dropped %d != written %d", stored, s.Dropped(), n)
	}
	// The embedded server's own buffers are in this heap too; 1 MiB of queue
	// must not turn into anything near the 128 MiB written.
	if grew := peak - base; grew > 48<<20 {
		t.Fatalf("heap in use grew by %d MiB during the flood", grew>>20)
	}
}

// TestForwardTokenFollows: a forward token handed back at the end of a stream
// picks up events written later, as `--follow` style readers rely on.
func TestForwardTokenFollows(t *testing.T) {
	s, _ := newStore(t, Config{})
	w := s.Writer("/aws/lambda/f", "s")
	other := s.Writer("/aws/lambda/f", "t")
	for i := range 3 {
		w.Write(time.Now(), fmt.Sprint(i))
	}
	flush(t, s)
	res, err := s.GetLogEvents(t.Context(), "/aws/lambda/f", "s", 0, 0, 0, true, "")
	if err != nil || len(res.Events) != 3 {
		t.Fatalf("%+v %v", res, err)
	}
	end, err := s.GetLogEvents(t.Context(), "/aws/lambda/f", "s", 0, 0, 0, true, res.NextForwardToken)
	if err != nil || len(end.Events) != 0 || end.NextForwardToken != res.NextForwardToken {
		t.Fatalf("at the end: %+v %v", end, err)
	}
	other.Write(time.Now(), "elsewhere")
	w.Write(time.Now(), "3")
	flush(t, s)
	more, err := s.GetLogEvents(t.Context(), "/aws/lambda/f", "s", 0, 0, 0, true, end.NextForwardToken)
	if err != nil || len(more.Events) != 1 || more.Events[0].Message != "3" {
		t.Fatalf("after more writes: %+v %v", more, err)
	}
	// A stream's first page without a token also ends with a usable token.
	latest, err := s.GetLogEvents(t.Context(), "/aws/lambda/f", "t", 0, 0, 0, false, "")
	if err != nil || len(latest.Events) != 1 {
		t.Fatalf("%+v %v", latest, err)
	}
	other.Write(time.Now(), "later")
	flush(t, s)
	next, err := s.GetLogEvents(t.Context(), "/aws/lambda/f", "t", 0, 0, 0, true, latest.NextForwardToken)
	if err != nil || len(next.Events) != 1 || next.Events[0].Message != "later" {
		t.Fatalf("following the latest page: %+v %v", next, err)
	}
}

// TestEngineGone: with the connection closed, events are counted as dropped,
// Flush reports it as unavailable, and Close does not hang.
func TestEngineGone(t *testing.T) {
	s, js := newStore(t, Config{PublishTimeout: 200 * time.Millisecond})
	js.Conn().Close()
	w := s.Writer("/aws/lambda/g", "s")
	for range 10 {
		w.Write(time.Now(), "lost")
	}
	if err := s.Flush(t.Context()); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Flush = %v, want ErrUnavailable", err)
	}
	if d := s.Dropped(); d != 10 {
		t.Fatalf("dropped %d, want 10", d)
	}
	start := time.Now()
	s.Close()
	if time.Since(start) > 2*time.Second {
		t.Fatal("Close hung on a dead engine")
	}
}
