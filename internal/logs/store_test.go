package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/errdefs"
	"icebox/internal/model"
	"icebox/internal/testkit"
)

// newStore opens a Store on a real embedded JetStream in a temp dir.
func newStore(t testing.TB, cfg Config) (*Store, jetstream.JetStream) {
	t.Helper()
	return newStoreOn(t, cfg, nil)
}

// newStoreOn is newStore with the client's connection to the engine
// wrapped by wrap (nil: as it is).
func newStoreOn(t testing.TB, cfg Config, wrap func(net.Conn) net.Conn) (*Store, jetstream.JetStream) {
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
	var provider nats.InProcessConnProvider = srv
	if wrap != nil {
		provider = wrappedConn{srv, wrap}
	}
	nc, err := nats.Connect("", nats.InProcessServer(provider))
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

type wrappedConn struct {
	srv  *server.Server
	wrap func(net.Conn) net.Conn
}

func (w wrappedConn) InProcessConn() (net.Conn, error) {
	c, err := w.srv.InProcessConn()
	if err != nil {
		return nil, err
	}
	return w.wrap(c), nil
}

// losingConn passes a client's protocol on to the engine but loses the
// first publish on a subject with prefix once armed: a request the engine
// never hears of.
type losingConn struct {
	net.Conn
	prefix string
	mu     sync.Mutex
	armed  bool
	lost   int
	buf    []byte // the client's bytes not yet passed on: an incomplete operation
}

func (c *losingConn) arm() {
	c.mu.Lock()
	c.armed = true
	c.mu.Unlock()
}

func (c *losingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	var out []byte
	for {
		i := bytes.Index(c.buf, []byte("\r\n"))
		if i < 0 {
			break
		}
		n := i + 2
		f := strings.Fields(string(c.buf[:i]))
		if len(f) > 2 && (f[0] == "PUB" || f[0] == "HPUB") { // PUB subject [reply] size, HPUB subject [reply] hsize size
			size, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				return 0, err
			}
			if n += size + 2; len(c.buf) < n {
				break
			}
			if c.armed && strings.HasPrefix(f[1], c.prefix) {
				c.armed = false
				c.lost++
				c.buf = c.buf[n:]
				continue
			}
		}
		out = append(out, c.buf[:n]...)
		c.buf = c.buf[n:]
	}
	if len(out) > 0 {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
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
	for _, c := range []Config{{MaxBytes: 10}, {MaxAge: time.Second}, {BufferBytes: 1000}, {Replicas: 9},
		{GroupMaxBytes: 10}, {MaxBytes: 2 << 20, GroupMaxBytes: 4 << 20}, {TrimInterval: -1}} {
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

// A request the engine leaves unanswered (as one restarted after a kill has
// done), a reader's fetch or the listing of the group's streams, is made
// again, and the read answers.
func TestReadAfterLostRequest(t *testing.T) {
	for what, prefix := range map[string]string{
		"fetch":       "$JS.API.CONSUMER.MSG.NEXT.",
		"stream info": "$JS.API.STREAM.INFO.",
	} {
		t.Run(what, func(t *testing.T) {
			var lc *losingConn
			s, _ := newStoreOn(t, Config{}, func(c net.Conn) net.Conn {
				lc = &losingConn{Conn: c, prefix: prefix}
				return lc
			})
			w := s.Writer("/aws/lambda/lost", "s")
			for i := range 5 {
				w.Write(time.Now(), fmt.Sprintf("line %d", i))
			}
			flush(t, s)
			lc.arm()
			res, err := s.FilterLogEvents(t.Context(), "/aws/lambda/lost", nil, 0, 0, "", 0, "")
			if err != nil || len(res.Events) != 5 || res.NextToken != "" {
				t.Fatalf("FilterLogEvents after a lost %s: %d events, token %q, %v; want 5, none", what, len(res.Events), res.NextToken, err)
			}
			lc.mu.Lock()
			lost := lc.lost
			lc.mu.Unlock()
			if lost != 1 {
				t.Fatalf("%d %s requests lost, want 1 (the test lost none: it shows nothing)", lost, what)
			}
		})
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

// drops returns the per-reason drop counts of each function.
func drops(s *Store) map[string]map[string]uint64 {
	out := map[string]map[string]uint64{}
	s.EachDrop(func(fn, reason string, n uint64) {
		if out[fn] == nil {
			out[fn] = map[string]uint64{}
		}
		out[fn][reason] += n
	})
	return out
}

// groupEvents counts the events group holds in the stream.
func groupEvents(t *testing.T, s *Store, group string) uint64 {
	t.Helper()
	info, err := s.stream.Info(t.Context(), jetstream.WithSubjectFilter(subject(group, "*")))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// settleTrims runs what the trimmer would do next, so a test sees its result.
func settleTrims(t *testing.T, s *Store) {
	t.Helper()
	if err := errors.Join(s.trimBudgets(t.Context()), s.trimTotal(t.Context())); err != nil {
		t.Fatal(err)
	}
}

// messages returns the messages of group, oldest first.
func messages(t *testing.T, s *Store, group string) []string {
	t.Helper()
	var out []string
	token := ""
	for {
		res, err := s.FilterLogEvents(t.Context(), group, nil, 0, 0, "", 0, token)
		if err != nil {
			t.Fatalf("FilterLogEvents %s: %v", group, err)
		}
		for _, e := range res.Events {
			out = append(out, e.Message)
		}
		if res.NextToken == "" {
			return out
		}
		token = res.NextToken
	}
}

// floodBeside has function "flood" write total bytes in lines of lineBytes
// as fast as the store takes them (so they are stored, not dropped at the
// buffer) while function "quiet" writes quietLines lines spread over the
// flood, then lets the store settle.
func floodBeside(t *testing.T, s *Store, total, lineBytes, quietLines int) (floodLines int) {
	t.Helper()
	flood := s.Writer(model.LogGroupName("flood"), "s")
	quiet := s.Writer(model.LogGroupName("quiet"), "s")
	line := strings.Repeat("x", lineBytes)
	n := total / lineBytes
	every := max(n/quietLines, 1)
	q := 0
	for i := range n {
		flood.Write(time.Now(), fmt.Sprintf("%08d %s", i, line))
		if i%32 == 31 {
			flush(t, s)
		}
		if i%every == 0 && q < quietLines {
			quiet.Write(time.Now(), fmt.Sprint("quiet ", q))
			q++
		}
	}
	for ; q < quietLines; q++ {
		quiet.Write(time.Now(), fmt.Sprint("quiet ", q))
	}
	flood.Write(time.Now(), "the last flood line")
	flush(t, s)
	settleTrims(t, s)
	return n + 1
}

// TestFloodKeepsOtherGroups: a function flooding its output far past the
// store's size loses its own oldest lines, within its group's budget, while
// another function's lines, written during the flood, all stay; drops are
// counted for the flooder only. (With one stream discarding the oldest, the
// flood used to erase every other group.)
func TestFloodKeepsOtherGroups(t *testing.T) {
	const groupMax = 2 << 20
	s, _ := newStore(t, Config{MaxBytes: 8 << 20, GroupMaxBytes: groupMax, BufferBytes: 1 << 20})
	floodBeside(t, s, 32<<20, 4<<10, 200)

	quiet := messages(t, s, model.LogGroupName("quiet"))
	if len(quiet) != 200 || quiet[0] != "quiet 0" || quiet[199] != "quiet 199" {
		t.Fatalf("the quiet group kept %d of its 200 lines", len(quiet))
	}
	// The flood holds about its budget (a trim cuts in 1/16 steps), its
	// newest lines and not its oldest.
	held := groupEvents(t, s, model.LogGroupName("flood"))
	perLine := uint64(4<<10 + 80)
	if held*perLine > groupMax || held*perLine < groupMax/2 {
		t.Errorf("the flood group holds %d lines, ~%d KiB; budget %d KiB", held, held*perLine>>10, groupMax>>10)
	}
	last, err := s.GetLogEvents(t.Context(), model.LogGroupName("flood"), "s", 0, 0, 1, false, "")
	if err != nil || len(last.Events) != 1 || last.Events[0].Message != "the last flood line" {
		t.Errorf("the flood's newest line is gone: %+v, %v", last.Events, err)
	}
	first, err := s.GetLogEvents(t.Context(), model.LogGroupName("flood"), "s", 0, 0, 1, true, "")
	if err != nil || len(first.Events) != 1 || strings.HasPrefix(first.Events[0].Message, "00000000 ") {
		t.Errorf("the flood's oldest line is still there: %v", err)
	}
	d := drops(s)
	t.Logf("drops: %v", d)
	if d["flood"]["budget"] == 0 {
		t.Errorf("no budget drops counted for the flood: %v", d)
	}
	if len(d["quiet"]) != 0 {
		t.Errorf("drops counted for the quiet function: %v", d["quiet"])
	}
}

// TestStoreTotalCutsLargestFirst: when groups together near the store's
// total, the largest loses its oldest lines, not the smaller ones, even
// when a single group's budget is the whole store.
func TestStoreTotalCutsLargestFirst(t *testing.T) {
	const total = 4 << 20
	s, js := newStore(t, Config{MaxBytes: total, GroupMaxBytes: total})
	floodBeside(t, s, 16<<20, 4<<10, 100)
	if quiet := messages(t, s, model.LogGroupName("quiet")); len(quiet) != 100 {
		t.Fatalf("the quiet group kept %d of its 100 lines", len(quiet))
	}
	stream, err := js.Stream(t.Context(), StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Bytes > total/8*7 {
		t.Errorf("store holds %d KiB, over its high water %d KiB", info.State.Bytes>>10, total/8*7>>10)
	}
	if d := drops(s); d["flood"]["budget"] == 0 || len(d["quiet"]) != 0 {
		t.Errorf("drops = %v; want budget drops for the flood only", d)
	}
}

// TestBufferShare: a flood fills its own share of the write buffer; another
// group's lines, written meanwhile, still find room and are not dropped.
func TestBufferShare(t *testing.T) {
	s, _ := newStore(t, Config{BufferBytes: 1 << 20, BufferEvents: 256})
	flood := s.Writer(model.LogGroupName("flood"), "s")
	quiet := s.Writer(model.LogGroupName("quiet"), "s")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		line := strings.Repeat("x", 16<<10)
		for {
			select {
			case <-stop:
				return
			default:
				flood.Write(time.Now(), line)
			}
		}
	}()
	for range 100 {
		quiet.Write(time.Now(), "quiet")
		// Not a wait: a quiet function's lines come one at a time,
		// spread over the flood's flushes.
		time.Sleep(time.Millisecond)
	}
	close(stop)
	<-done
	flush(t, s)
	d := drops(s)
	if d["flood"]["buffer"] == 0 {
		t.Fatalf("the flood never filled its share: %v", d)
	}
	if len(d["quiet"]) != 0 {
		t.Fatalf("quiet lines dropped during the flood: %v", d)
	}
	if n := groupEvents(t, s, model.LogGroupName("quiet")); n != 100 {
		t.Fatalf("quiet group holds %d of 100 lines", n)
	}
}

// TestRetentionByAge: each group keeps its events as long as its retention
// policy says (the default without one, forever after
// DeleteRetentionPolicy), measured on the store's clock.
func TestRetentionByAge(t *testing.T) {
	var now atomic.Pointer[time.Time]
	clock := func() time.Time {
		if p := now.Load(); p != nil {
			return *p
		}
		return time.Now()
	}
	s, _ := newStore(t, Config{Now: clock})
	ctx := t.Context()
	day := 24 * time.Hour
	write := func(group, msg string) {
		s.Writer(group, "s").Write(time.Now(), msg)
		flush(t, s)
	}
	short, dflt, forever := model.LogGroupName("short"), model.LogGroupName("default"), model.LogGroupName("forever")
	for _, g := range []string{short, dflt, forever} {
		write(g, "old")
	}
	// Ages are measured on the stamps the stream gives events as it stores
	// them: mid falls after every old line's stamp and before the new one's.
	info, err := s.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mid := info.State.LastTime.Add(time.Nanosecond)
	testkit.WaitFor(t, time.Second, "the clock to pass the old lines' stamps", func() bool { return time.Now().After(mid) })
	write(short, "new")

	if err := s.PutRetentionPolicy(ctx, short, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRetentionPolicy(ctx, forever); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRetentionPolicy(ctx, short, 2); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("retention of 2 days: %v; want ErrInvalid", err)
	}
	if err := s.PutRetentionPolicy(ctx, model.LogGroupName("none"), 1); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("retention of a group without events: %v; want ErrNotFound", err)
	}
	res, err := s.DescribeLogGroups(ctx, "", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, g := range res.LogGroups {
		got[g.LogGroupName] = g.RetentionInDays
	}
	if want := map[string]int{short: 1, dflt: 7, forever: 0}; !maps.Equal(got, want) {
		t.Errorf("retentionInDays = %v, want %v", got, want)
	}

	at := func(t time.Time) {
		now.Store(&t)
		if err := s.trimAges(ctx); err != nil {
			panic(err)
		}
	}
	at(mid.Add(day)) // one day after "old" was written to short, not "new"
	if m := messages(t, s, short); !slices.Equal(m, []string{"new"}) {
		t.Errorf("after a day the 1-day group holds %q, want only the newer line", m)
	}
	for _, g := range []string{dflt, forever} {
		if m := messages(t, s, g); len(m) != 1 {
			t.Errorf("after a day %s holds %q", g, m)
		}
	}
	at(mid.Add(8 * day))
	if _, err := s.FilterLogEvents(ctx, short, nil, 0, 0, "", 0, ""); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("after 8 days the 1-day group still exists: %v", err)
	}
	if _, err := s.FilterLogEvents(ctx, dflt, nil, 0, 0, "", 0, ""); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("after 8 days the group on the 7-day default still exists: %v", err)
	}
	if m := messages(t, s, forever); len(m) != 1 {
		t.Errorf("after 8 days the group without a retention policy holds %q", m)
	}
	if d := drops(s); len(d) != 0 {
		t.Errorf("aged-out events counted as drops: %v", d)
	}
}

// TestRetentionSurvivesRestart: policies live in the engine, and a reopened
// store accounts what groups already hold, so a budget still bounds them.
func TestRetentionSurvivesRestart(t *testing.T) {
	s, js := newStore(t, Config{MaxBytes: 8 << 20, GroupMaxBytes: 1 << 20})
	w := s.Writer(model.LogGroupName("f"), "s")
	for i := range 200 {
		w.Write(time.Now(), fmt.Sprintf("%04d %s", i, strings.Repeat("x", 4<<10)))
	}
	flush(t, s)
	settleTrims(t, s)
	if err := s.PutRetentionPolicy(t.Context(), model.LogGroupName("f"), 30); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2, err := Open(t.Context(), js, Config{MaxBytes: 8 << 20, GroupMaxBytes: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if d := s2.retentionInDays(model.LogGroupName("f")); d != 30 {
		t.Errorf("retention after reopening: %d days, want 30", d)
	}
	w = s2.Writer(model.LogGroupName("f"), "s")
	for i := range 200 {
		w.Write(time.Now(), fmt.Sprintf("new %04d %s", i, strings.Repeat("x", 4<<10)))
	}
	flush(t, s2)
	settleTrims(t, s2)
	if held := groupEvents(t, s2, model.LogGroupName("f")); held*(4<<10) > 1<<20 {
		t.Errorf("after reopening the group holds %d lines of 4 KiB, over its 1 MiB budget", held)
	}
}
