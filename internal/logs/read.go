package logs

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/errdefs"
)

// CloudWatch's limits on reads.
const (
	MaxEventsLimit   = 10000   // FilterLogEvents and GetLogEvents
	MaxDescribeLimit = 50      // DescribeLogGroups and DescribeLogStreams
	maxResponseBytes = 1 << 20 // a page stops growing past 1 MB of events
	eventWireBytes   = 26      // CloudWatch's per-event overhead in size limits
)

const (
	// clockSkew widens time windows mapped onto ingestion times: an event's
	// timestamp comes from the writer's clock and precedes its ingestion by
	// the buffering delay, and an external engine's clock may differ.
	clockSkew = time.Minute
	// maxScan bounds the events one FilterLogEvents call examines, so a
	// pattern that matches nothing over a large group returns a token
	// instead of holding the request for long.
	maxScan = 200_000
	// fetchBatch and fetchBytes bound one pull from a reader consumer.
	fetchBatch = 256
	fetchBytes = 4 << 20
	fetchWait  = 5 * time.Second
	// fetchHeartbeat: a fetch the engine stops answering ends after two
	// heartbeats missed instead of at fetchWait.
	fetchHeartbeat = time.Second
)

var (
	errNoGroup  = fmt.Errorf("The specified log group does not exist.: %w", errdefs.ErrNotFound)
	errNoStream = fmt.Errorf("The specified log stream does not exist.: %w", errdefs.ErrNotFound)
	errToken    = fmt.Errorf("The specified nextToken is invalid.: %w", errdefs.ErrInvalid)
)

// Event is one log event in the CloudWatch Logs API's shape. LogStreamName
// and EventID are set by FilterLogEvents only.
type Event struct {
	LogStreamName string `json:"logStreamName,omitempty"`
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
	EventID       string `json:"eventId,omitempty"`
}

// SearchedLogStream is deprecated by CloudWatch and always empty, but clients
// expect the list.
type SearchedLogStream struct {
	LogStreamName      string `json:"logStreamName"`
	SearchedCompletely bool   `json:"searchedCompletely"`
}

// FilterResult is FilterLogEvents' response.
type FilterResult struct {
	Events             []Event             `json:"events"`
	SearchedLogStreams []SearchedLogStream `json:"searchedLogStreams"`
	NextToken          string              `json:"nextToken,omitempty"`
}

// GetResult is GetLogEvents' response.
type GetResult struct {
	Events            []Event `json:"events"`
	NextForwardToken  string  `json:"nextForwardToken"`
	NextBackwardToken string  `json:"nextBackwardToken"`
}

// LogGroup is one entry of DescribeLogGroups. StoredBytes is not tracked per
// group and is reported as 0.
type LogGroup struct {
	LogGroupName      string `json:"logGroupName"`
	CreationTime      int64  `json:"creationTime"`
	RetentionInDays   int    `json:"retentionInDays,omitempty"`
	MetricFilterCount int    `json:"metricFilterCount"`
	Arn               string `json:"arn"`
	StoredBytes       int64  `json:"storedBytes"`
	LogGroupClass     string `json:"logGroupClass"`
	LogGroupArn       string `json:"logGroupArn"`
}

// LogStream is one entry of DescribeLogStreams. CloudWatch always reports
// storedBytes 0 for streams; so does icebox.
type LogStream struct {
	LogStreamName       string `json:"logStreamName"`
	CreationTime        int64  `json:"creationTime"`
	FirstEventTimestamp int64  `json:"firstEventTimestamp"`
	LastEventTimestamp  int64  `json:"lastEventTimestamp"`
	LastIngestionTime   int64  `json:"lastIngestionTime"`
	Arn                 string `json:"arn"`
	StoredBytes         int64  `json:"storedBytes"`
}

// GroupsResult is DescribeLogGroups' response.
type GroupsResult struct {
	LogGroups []LogGroup `json:"logGroups"`
	NextToken string     `json:"nextToken,omitempty"`
}

// StreamsResult is DescribeLogStreams' response.
type StreamsResult struct {
	LogStreams []LogStream `json:"logStreams"`
	NextToken  string      `json:"nextToken,omitempty"`
}

// record is a stored event as read back.
type record struct {
	seq        uint64
	subject    string
	ts, ingest int64 // ms
	msg        string
}

func decode(subj string, seq uint64, stored time.Time, data []byte) (record, bool) {
	tsb, msg, ok := bytes.Cut(data, []byte{' '})
	ts, err := strconv.ParseInt(string(tsb), 10, 64)
	if !ok || err != nil {
		return record{}, false // not ours; someone published on logs.>
	}
	return record{seq: seq, subject: subj, ts: ts, ingest: stored.UnixMilli(), msg: string(msg)}, true
}

// scan feeds fn the events on subjects in stream order, starting at sequence
// from, or when from is 0 at the first event stored at or after since (zero:
// the beginning). It stops when fn returns false or nothing is pending. next
// is the sequence after the last event fed; end reports nothing was left.
func (s *Store) scan(ctx context.Context, subjects []string, from uint64, since time.Time, fn func(record) bool) (next uint64, end bool, err error) {
	_ = untilAnswered(ctx, func() error {
		var fed bool
		next, end, err = s.scanOnce(ctx, subjects, from, since, func(r record) bool { fed = true; return fn(r) })
		if fed {
			return nil // records were handed on: a second reader would repeat them
		}
		return err
	})
	return next, end, err
}

// answerAttempts bounds how often untilAnswered makes one request.
const answerAttempts = 4

// untilAnswered makes a request to the engine (op) again while it failed
// unanswered and ctx is live, answerAttempts times in all, and returns its
// last error.
func untilAnswered(ctx context.Context, op func() error) error {
	var err error
	for range answerAttempts {
		if err = op(); err == nil || ctx.Err() != nil || !unanswered(err) {
			break
		}
	}
	return err
}

// unanswered reports a request that got nothing because the engine did not
// answer it, which a second one may get: on a replicated stream whose server
// went down, JetStream may still place a new (one-replica) reader on that
// server until the cluster marks it offline (no responder); and an engine
// restarted after a kill has left a first request unanswered, a fetch
// (neither events nor heartbeats nor the end of its wait) or a stream's
// info.
func unanswered(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, context.DeadlineExceeded)
}

func (s *Store) scanOnce(ctx context.Context, subjects []string, from uint64, since time.Time, fn func(record) bool) (next uint64, end bool, err error) {
	cons, pending, err := s.reader(ctx, subjects, from, since)
	if err != nil {
		return 0, false, err
	}
	info := cons.CachedInfo()
	defer s.dropReader(info.Name)
	next = info.Delivered.Stream + 1
	for pending > 0 {
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		opts := []jetstream.FetchOpt{jetstream.FetchMaxBytes(fetchBytes), jetstream.FetchContext(fctx)}
		if dl, _ := fctx.Deadline(); time.Until(dl) > 3*fetchHeartbeat { // the wait must span two beats
			opts = append(opts, jetstream.FetchHeartbeat(fetchHeartbeat))
		}
		batch, err := cons.Fetch(int(min(pending, fetchBatch)), opts...)
		if err != nil {
			cancel()
			return next, false, fmt.Errorf("logs: read: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				cancel()
				return next, false, fmt.Errorf("logs: read: %w", err)
			}
			pending, next = meta.NumPending, meta.Sequence.Stream+1
			if rec, ok := decode(m.Subject(), meta.Sequence.Stream, meta.Timestamp, m.Data()); ok && !fn(rec) {
				cancel()
				return next, pending == 0, nil
			}
		}
		cancel()
		if err := batch.Error(); err != nil {
			return next, false, fmt.Errorf("logs: read: %w", err)
		}
		if got == 0 {
			break // what was pending aged out of the stream meanwhile
		}
	}
	return next, true, nil
}

// reader creates an ephemeral, unacknowledged consumer: the server filters by
// subject with its per-subject index and says how many events match.
func (s *Store) reader(ctx context.Context, subjects []string, from uint64, since time.Time) (jetstream.Consumer, uint64, error) {
	cfg := jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute, // cleans up after a reader that could not delete itself
		DeliverPolicy:     jetstream.DeliverAllPolicy,
	}
	switch {
	case from > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	case !since.IsZero():
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	if len(subjects) == 1 {
		cfg.FilterSubject = subjects[0]
	} else {
		cfg.FilterSubjects = subjects
	}
	cons, err := s.stream.CreateConsumer(ctx, cfg)
	if err != nil {
		return nil, 0, fmt.Errorf("logs: create reader: %w", err)
	}
	return cons, cons.CachedInfo().NumPending, nil
}

func (s *Store) dropReader(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.stream.DeleteConsumer(ctx, name) // InactiveThreshold removes it otherwise
}

// pendingFrom counts the events on subject at or after sequence seq.
func (s *Store) pendingFrom(ctx context.Context, subj string, seq uint64) (uint64, error) {
	cons, n, err := s.reader(ctx, []string{subj}, seq, time.Time{})
	if err != nil {
		return 0, err
	}
	s.dropReader(cons.CachedInfo().Name)
	return n, nil
}

// groupStreams maps the subjects of group's streams to their event counts.
func (s *Store) groupStreams(ctx context.Context, group string) (map[string]uint64, error) {
	subj := subject(group, "*")
	if subj == "" {
		return nil, errNoGroup
	}
	var info *jetstream.StreamInfo
	err := untilAnswered(ctx, func() (err error) {
		info, err = s.stream.Info(ctx, jetstream.WithSubjectFilter(subj))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("logs: list streams of %q: %w", group, err)
	}
	if len(info.State.Subjects) == 0 {
		return nil, errNoGroup
	}
	return info.State.Subjects, nil
}

// lastMsg returns the last event of one log stream, telling a missing group
// from a missing stream as CloudWatch does.
func (s *Store) lastMsg(ctx context.Context, group, stream string) (*jetstream.RawStreamMsg, error) {
	subj := subject(group, stream)
	if subj == "" {
		return nil, errNoStream
	}
	m, err := s.stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		if _, err := s.firstMsg(ctx, subject(group, "*")); err != nil {
			return nil, err
		}
		return nil, errNoStream
	}
	if err != nil {
		return nil, fmt.Errorf("logs: last event of %q %q: %w", group, stream, err)
	}
	return m, nil
}

// firstMsg returns the oldest event on subj (wildcards allowed).
func (s *Store) firstMsg(ctx context.Context, subj string) (*jetstream.RawStreamMsg, error) {
	m, err := s.stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subj))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, errNoGroup
	}
	if err != nil {
		return nil, fmt.Errorf("logs: first event on %s: %w", subj, err)
	}
	return m, nil
}

func checkLimit(limit, most int) (int, error) {
	switch {
	case limit == 0:
		return most, nil
	case limit < 1 || limit > most:
		return 0, fmt.Errorf("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and %d: %w", limit, most, errdefs.ErrInvalid)
	}
	return limit, nil
}

// FilterLogEvents returns group's events, optionally only those of
// streamNames, with timestamps in [startTime, endTime] (ms; 0 leaves a side
// open) that match filterPattern, in the order they were stored. A nextToken
// is returned while more events may follow; pass it back to continue.
func (s *Store) FilterLogEvents(ctx context.Context, group string, streamNames []string, startTime, endTime int64, filterPattern string, limit int, nextToken string) (FilterResult, error) {
	return s.filter(ctx, group, streamNames, "", startTime, endTime, filterPattern, limit, nextToken)
}

func (s *Store) filter(ctx context.Context, group string, names []string, prefix string, start, end int64, pat string, limit int, token string) (FilterResult, error) {
	res := FilterResult{Events: []Event{}, SearchedLogStreams: []SearchedLogStream{}}
	pt, err := parsePattern(pat)
	if err != nil {
		return res, err
	}
	if limit, err = checkLimit(limit, MaxEventsLimit); err != nil {
		return res, err
	}
	var from uint64
	if token != "" {
		if from, err = strconv.ParseUint(token, 10, 64); err != nil || from == 0 {
			return res, errToken
		}
	}
	streams, err := s.groupStreams(ctx, group)
	if err != nil {
		return res, err
	}
	subjects := []string{subject(group, "*")}
	if len(names) > 0 {
		subjects = subjects[:0]
		for _, n := range names {
			subj := subject(group, n)
			if _, ok := streams[subj]; !ok {
				return res, errNoStream
			}
			subjects = append(subjects, subj)
		}
	}
	var since time.Time
	if start > 0 {
		since = time.UnixMilli(start).Add(-clockSkew)
	}
	cache := map[string]string{} // subject → stream name, decoded once per request
	size, scanned, past := 0, 0, false
	next, done, err := s.scan(ctx, subjects, from, since, func(r record) bool {
		scanned++
		if end > 0 && r.ingest > end+clockSkew.Milliseconds() {
			past = true // stored after the window, and so is everything later
			return false
		}
		name, ok := cache[r.subject]
		if !ok {
			_, name, _ = parseSubject(r.subject)
			cache[r.subject] = name
		}
		if (start == 0 || r.ts >= start) && (end == 0 || r.ts <= end) && strings.HasPrefix(name, prefix) && pt.match(r.msg) {
			res.Events = append(res.Events, Event{LogStreamName: name, Timestamp: r.ts, Message: r.msg,
				IngestionTime: r.ingest, EventID: strconv.FormatUint(r.seq, 10)})
			size += len(r.msg) + eventWireBytes
		}
		return len(res.Events) < limit && size < maxResponseBytes && scanned < maxScan
	})
	if err != nil {
		return res, err
	}
	if !done && !past {
		res.NextToken = strconv.FormatUint(next, 10)
	}
	return res, nil
}

// GetLogEvents returns events of one log stream with timestamps in
// [startTime, endTime) (ms; 0 leaves a side open). Without a token it returns
// the latest events, or the earliest when startFromHead; the f/ and b/ tokens
// it returns page forward and backward, and come back unchanged at either end.
func (s *Store) GetLogEvents(ctx context.Context, group, stream string, startTime, endTime int64, limit int, startFromHead bool, nextToken string) (GetResult, error) {
	res := GetResult{Events: []Event{}}
	var err error
	if limit, err = checkLimit(limit, MaxEventsLimit); err != nil {
		return res, err
	}
	forward, seq := startFromHead, uint64(0)
	if nextToken != "" {
		dir, num, ok := strings.Cut(nextToken, "/")
		if seq, err = strconv.ParseUint(num, 10, 64); !ok || err != nil || seq == 0 || (dir != "f" && dir != "b") {
			return res, errToken
		}
		forward = dir == "f"
	}
	last, err := s.lastMsg(ctx, group, stream)
	if err != nil {
		return res, err
	}
	subj := last.Subject
	keep := func(r record) bool {
		return (startTime == 0 || r.ts >= startTime) && (endTime == 0 || r.ts < endTime)
	}
	add := func(r record) {
		res.Events = append(res.Events, Event{Timestamp: r.ts, Message: r.msg, IngestionTime: r.ingest})
	}
	tok := func(dir string, seq uint64) string { return fmt.Sprintf("%s/%056d", dir, seq) }

	if forward {
		var since time.Time
		if seq == 0 && startTime > 0 {
			since = time.UnixMilli(startTime).Add(-clockSkew)
		}
		first, past, size := uint64(0), uint64(0), 0
		next, _, err := s.scan(ctx, []string{subj}, seq, since, func(r record) bool {
			if endTime > 0 && r.ingest >= endTime+clockSkew.Milliseconds() {
				past = r.seq // not returned: the forward token must not skip it
				return false
			}
			if keep(r) {
				if first == 0 {
					first = r.seq
				}
				add(r)
				size += len(r.msg) + eventWireBytes
			}
			return len(res.Events) < limit && size < maxResponseBytes
		})
		if err != nil {
			return res, err
		}
		if past != 0 {
			next = past
		}
		if len(res.Events) == 0 && nextToken != "" {
			res.NextForwardToken, res.NextBackwardToken = nextToken, tok("b", seq)
			return res, nil
		}
		if first == 0 {
			first = next
		}
		res.NextForwardToken, res.NextBackwardToken = tok("f", next), tok("b", first)
		return res, nil
	}

	// Backward: the page ends before sequence hi. Events are ingested after
	// they are stamped, so ingestion times bound the sequences that can hold
	// the window: [floor, hi) may, and everything before `sure` is earlier
	// than endTime. Binary search over consumer pending counts finds where
	// the last `limit` events before sure begin, so a page reads about limit
	// events (plus the skew margin) however long the stream is.
	seqAt := func(t time.Time) (uint64, error) {
		cons, _, err := s.reader(ctx, []string{subj}, 0, t)
		if err != nil {
			return 0, err
		}
		defer s.dropReader(cons.CachedInfo().Name)
		return cons.CachedInfo().Delivered.Stream + 1, nil
	}
	floor, hi := uint64(1), seq
	if startTime > 0 {
		if floor, err = seqAt(time.UnixMilli(startTime).Add(-clockSkew)); err != nil {
			return res, err
		}
	}
	if hi == 0 {
		hi = last.Sequence + 1
		if endTime > 0 {
			at, err := seqAt(time.UnixMilli(endTime).Add(clockSkew))
			if err != nil {
				return res, err
			}
			hi = min(hi, at)
		}
	}
	atBeginning := func() (GetResult, error) {
		res.NextForwardToken, res.NextBackwardToken = tok("f", hi), cmp.Or(nextToken, tok("b", hi))
		return res, nil
	}
	if floor >= hi {
		return atBeginning()
	}
	sure := hi
	if endTime > 0 {
		at, err := seqAt(time.UnixMilli(endTime).Add(-clockSkew))
		if err != nil {
			return res, err
		}
		sure = max(floor, min(hi, at))
	}
	atSure, err := s.pendingFrom(ctx, subj, sure)
	if err != nil {
		return res, err
	}
	count := func(lo uint64) (uint64, error) { // events in [lo, sure)
		n, err := s.pendingFrom(ctx, subj, lo)
		return n - min(n, atSure), err
	}
	lo := floor
	total, err := count(floor)
	if err != nil {
		return res, err
	}
	if total == 0 && sure == hi {
		return atBeginning()
	}
	if total > uint64(limit) {
		// Invariant: count(lo) >= limit and count(up) < limit.
		up := sure
		for up-lo > 1 {
			mid := lo + (up-lo)/2
			n, err := count(mid)
			if err != nil {
				return res, err
			}
			if n >= uint64(limit) {
				lo = mid
			} else {
				up = mid
			}
		}
	}
	// Keep the newest events that fit; counts may also have moved while
	// searching. Trimming as we go bounds memory by the response size.
	var recs []record
	size, trimmed := 0, false
	if _, _, err := s.scan(ctx, []string{subj}, lo, time.Time{}, func(r record) bool {
		if r.seq >= hi {
			return false
		}
		if keep(r) {
			recs = append(recs, r)
			size += len(r.msg) + eventWireBytes
			for len(recs) > 1 && (len(recs) > limit || size > maxResponseBytes) {
				size -= len(recs[0].msg) + eventWireBytes
				recs, trimmed = recs[1:], true
			}
		}
		return true
	}); err != nil {
		return res, err
	}
	// Events trimmed from the front come back on the next backward page.
	back := lo
	if trimmed {
		back = recs[0].seq
	}
	for _, r := range recs {
		add(r)
	}
	res.NextForwardToken, res.NextBackwardToken = tok("f", hi), tok("b", back)
	return res, nil
}
