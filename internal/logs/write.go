package logs

import (
	"context"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/errdefs"
)

// eventOverhead approximates what an event costs beyond its body: its queue
// slot, the nats.Msg and the pending ack. It keeps a flood of empty lines
// bounded by BufferBytes too.
const eventOverhead = 160

// publishBatch is how many events are in flight at once; waiting for a whole
// batch keeps completion in acceptance order, which Flush relies on.
const publishBatch = 256

// dropWarnEvery rate-limits the warning about dropped events.
const dropWarnEvery = 10 * time.Second

// event is one encoded log event: body "<timestamp ms> <message>".
type event struct {
	subject string
	data    []byte
}

// Writer appends events to one log stream of one group.
type Writer struct {
	s       *Store
	subject string
}

// Writer returns a writer for group's stream. Events for an empty group or
// stream name are dropped.
func (s *Store) Writer(group, stream string) *Writer {
	return &Writer{s: s, subject: subject(group, stream)}
}

// Write queues one event and returns at once. When the store's buffer is full
// (JetStream slower than the function's output) the event is dropped and
// counted in Dropped: a function flooding stdout must not grow the daemon.
// Events written by one goroutine are stored in order.
func (w *Writer) Write(ts time.Time, msg string) {
	if w.subject == "" {
		w.s.dropped.Add(1)
		return
	}
	if len(msg) > MaxEventBytes {
		n := MaxEventBytes
		for n > 0 && !utf8.RuneStart(msg[n]) {
			n--
		}
		msg = msg[:n]
	}
	// The body is built only once room is reserved, so a flood's dropped
	// lines cost no allocation; copying means a caller's large buffer is
	// never pinned by the queue and the size accounted is what is held.
	var num [24]byte
	digits := strconv.AppendInt(num[:0], ts.UnixMilli(), 10)
	size := len(digits) + 1 + len(msg) + eventOverhead
	if !w.s.reserve(size) {
		return
	}
	data := make([]byte, 0, len(digits)+1+len(msg))
	data = append(append(append(data, digits...), ' '), msg...)
	w.s.commit(event{w.subject, data}, size)
}

// reserve takes room for an event of size bytes, or counts it as dropped.
func (s *Store) reserve(size int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.bytes+size > s.cfg.BufferBytes || s.events >= s.cfg.BufferEvents {
		s.dropped.Add(1)
		return false
	}
	s.bytes += size
	s.events++
	return true
}

// commit queues an event whose room was reserved.
func (s *Store) commit(e event, size int) {
	s.mu.Lock()
	if s.closed { // the publisher may be gone: nothing would ever settle it
		s.bytes -= size
		s.events--
		s.mu.Unlock()
		s.dropped.Add(1)
		return
	}
	s.queue = append(s.queue, e)
	s.accepted++
	s.mu.Unlock()
	s.signal()
}

func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Dropped is the number of events lost since Open: buffer full, written after
// Close, bad names, or not acknowledged by JetStream.
func (s *Store) Dropped() uint64 { return s.dropped.Load() }

// Flush waits until every event written before the call is stored or counted
// as dropped. It reports events that could not be stored meanwhile.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	target, failed := s.accepted, s.failed
	for s.completed < target {
		ch := s.progress
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
	failed = s.failed - failed
	s.mu.Unlock()
	if failed > 0 {
		return fmt.Errorf("logs: %d events could not be stored: %w", failed, errdefs.ErrUnavailable)
	}
	return nil
}

// publisher moves queued events into JetStream until Close. Once closing,
// the first failure drops whatever is left, so Close is not held for a
// PublishTimeout per batch by a dead engine.
func (s *Store) publisher() {
	defer close(s.done)
	var lastWarn time.Time
	var warned uint64
	var lastErr error
	giveUp := false
	for {
		batch, ok := s.take()
		if !ok {
			return
		}
		for len(batch) > 0 {
			n := min(len(batch), publishBatch)
			if giveUp {
				s.settle(batch[:n], uint64(n))
			} else if err := s.publish(batch[:n]); err != nil {
				lastErr = err
				s.mu.Lock()
				giveUp = s.closed
				s.mu.Unlock()
			}
			batch = batch[n:]
			if d := s.Dropped(); d != warned && time.Since(lastWarn) >= dropWarnEvery {
				s.log.Warn("log events dropped", "dropped_total", d, "last_publish_error", lastErr)
				lastWarn, warned = time.Now(), d
			}
		}
	}
}

// take waits for queued events and hands all of them to the publisher; false
// once the store is closed and the queue is empty.
func (s *Store) take() ([]event, bool) {
	for {
		s.mu.Lock()
		if b := s.queue; len(b) > 0 {
			s.queue = nil
			s.mu.Unlock()
			return b, true
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return nil, false
		}
		<-s.wake
	}
}

// publish stores a batch and settles it. Events not acknowledged
// within PublishTimeout count as dropped: they may still be stored, but a log
// pipeline must not stall on a sick engine.
func (s *Store) publish(batch []event) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.PublishTimeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	var failed uint64
	var firstErr error
	fail := func(err error) {
		failed++
		if firstErr == nil {
			firstErr = err
		}
	}
	for _, e := range batch {
		f, err := s.js.PublishMsgAsync(&nats.Msg{Subject: e.subject, Data: e.data})
		if err != nil {
			fail(err)
			continue
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			fail(err)
		case <-ctx.Done():
			fail(ctx.Err())
		}
	}
	s.settle(batch, failed)
	return firstErr
}

// settle releases a published batch's room and wakes Flush callers; failed
// of its events were not stored.
func (s *Store) settle(batch []event, failed uint64) {
	size := 0
	for _, e := range batch {
		size += len(e.data) + eventOverhead
	}
	s.dropped.Add(failed)
	s.mu.Lock()
	s.bytes -= size
	s.events -= len(batch)
	s.completed += uint64(len(batch))
	s.failed += failed
	close(s.progress)
	s.progress = make(chan struct{})
	s.mu.Unlock()
}
