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

// groupBufferShare is the fraction of the write buffer one group may hold
// (1/groupBufferShare): a flooding function fills its share and drops its own
// lines while the others' still find room.
const groupBufferShare = 4

// event is one encoded log event: body "<timestamp ms> <message>".
type event struct {
	subject string
	data    []byte
	g       *group
}

// Writer appends events to one log stream of one group.
type Writer struct {
	s       *Store
	subject string
	g       *group
}

// Writer returns a writer for group's stream. Events for an empty group or
// stream name are dropped.
func (s *Store) Writer(group, stream string) *Writer {
	w := &Writer{s: s, subject: subject(group, stream)}
	if w.subject != "" {
		s.mu.Lock()
		w.g = s.groupLocked(group)
		s.mu.Unlock()
	}
	return w
}

// Write queues one event and returns at once. When the store's buffer, or
// the group's share of it, is full (JetStream slower than the function's
// output) the event is dropped and counted in Dropped and in the group's
// drops: a function flooding stdout must not grow the daemon, nor take the
// room other functions' lines need. Events written by one goroutine are
// stored in order.
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
	if !w.s.reserve(w.g, size) {
		return
	}
	data := make([]byte, 0, len(digits)+1+len(msg))
	data = append(append(append(data, digits...), ' '), msg...)
	w.s.commit(event{w.subject, data, w.g}, size)
}

// reserve takes room for an event of size bytes of group g, or counts it as
// dropped.
func (s *Store) reserve(g *group, size int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.bytes+size > s.cfg.BufferBytes || s.events >= s.cfg.BufferEvents ||
		g.queuedBytes+size > s.groupBufferBytes() || g.queuedEvents >= s.groupBufferEvents() {
		s.dropped.Add(1)
		g.drops[dropBuffer].Add(1)
		return false
	}
	s.bytes += size
	s.events++
	g.queuedBytes += size
	g.queuedEvents++
	return true
}

// groupBufferBytes and groupBufferEvents are one group's share of the write
// buffer; it always holds one event of the longest size.
func (s *Store) groupBufferBytes() int {
	return min(s.cfg.BufferBytes, max(s.cfg.BufferBytes/groupBufferShare, MaxEventBytes+eventOverhead))
}

func (s *Store) groupBufferEvents() int { return max(s.cfg.BufferEvents/groupBufferShare, 1) }

// commit queues an event whose room was reserved.
func (s *Store) commit(e event, size int) {
	s.mu.Lock()
	if s.closed { // the publisher may be gone: nothing would ever settle it
		s.bytes -= size
		s.events--
		e.g.queuedBytes -= size
		e.g.queuedEvents--
		s.mu.Unlock()
		s.dropped.Add(1)
		e.g.drops[dropBuffer].Add(1)
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
// Close, bad names, or not acknowledged by JetStream. Events removed to keep
// a group within its byte budget are not counted here (see EachDrop).
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
			switch {
			case s.spool != nil && (giveUp || s.spool.spooling()):
				// Straight to disk while the engine is away (and
				// once closing, for the next start to ship).
				s.spill(batch[:n])
			case giveUp:
				s.settle(batch[:n], nil, uint64(n))
			default:
				s.waitForRoom(batch[:n])
				if err := s.publish(batch[:n]); err != nil {
					lastErr = err
					s.mu.Lock()
					giveUp = s.closed
					s.mu.Unlock()
				}
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
	futures := make([]jetstream.PubAckFuture, len(batch))
	seqs := make([]uint64, len(batch)) // stream sequence of each stored event; 0: not stored
	var failed uint64
	var firstErr error
	fail := func(err error) {
		failed++
		if firstErr == nil {
			firstErr = err
		}
	}
	for i, e := range batch {
		f, err := s.js.PublishMsgAsync(&nats.Msg{Subject: e.subject, Data: e.data})
		if err != nil {
			fail(err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			seqs[i] = ack.Sequence
		case err := <-f.Err():
			fail(err)
		case <-ctx.Done():
			fail(ctx.Err())
		}
	}
	if s.spool != nil && failed > 0 {
		failed -= s.spoolFailed(batch, seqs)
	}
	s.settle(batch, seqs, failed)
	return firstErr
}

// spoolFailed writes the events of batch not stored (seqs 0) to the spool,
// marks them spooled and returns how many it wrote.
func (s *Store) spoolFailed(batch []event, seqs []uint64) uint64 {
	var idx []int
	var rest []event
	for i, e := range batch {
		if seqs[i] == 0 {
			idx, rest = append(idx, i), append(rest, e)
		}
	}
	n, err := s.spool.append(rest)
	if err != nil {
		s.log.Warn("log events could not be spooled", "err", err)
	}
	for _, i := range idx[:n] {
		seqs[i] = spooledSeq
	}
	return uint64(n)
}

// settle releases a published batch's room, accounts what each group stored
// and wakes Flush callers and, when a group or the store is over budget, the
// trimmer. seqs holds each event's stream sequence (nil or 0: not stored);
// failed of the events were not stored.
func (s *Store) settle(batch []event, seqs []uint64, failed uint64) {
	size := 0
	for _, e := range batch {
		size += len(e.data) + eventOverhead
	}
	s.dropped.Add(failed)
	s.mu.Lock()
	over := false
	for i, e := range batch {
		e.g.queuedBytes -= len(e.data) + eventOverhead
		e.g.queuedEvents--
		if seqs == nil || seqs[i] == 0 {
			e.g.drops[dropEngine].Add(1)
			continue
		}
		if seqs[i] == spooledSeq {
			continue // on disk; accounted when the store is next opened
		}
		over = s.accountLocked(e.g, seqs[i], storedSize(e.subject, e.data)) || over
	}
	s.bytes -= size
	s.events -= len(batch)
	s.completed += uint64(len(batch))
	s.failed += failed
	close(s.progress)
	s.progress = make(chan struct{})
	s.mu.Unlock()
	if over {
		select {
		case s.trimWake <- struct{}{}:
		default:
		}
	}
}
