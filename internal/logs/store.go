// Package logs keeps function logs in a JetStream stream and serves them
// through the CloudWatch Logs API.
//
// Every log event is one message on subject logs.<group>.<stream>, where each
// token is the base64url encoding of the CloudWatch name: names may contain
// '.', '*', '>' or spaces, which NATS tokens cannot. The body is
// "<timestamp ms> <message>" so `nats stream view` stays readable; the ingestion
// time is the time JetStream stored the message and the eventId is its stream
// sequence. Groups and streams exist while they have events.
//
// Retention is per log group, so that one function flooding its output never
// erases another's lines: each group has an age (its retention policy, set
// with PutRetentionPolicy and kept in the KV bucket "log-groups") and a byte
// budget. The stream itself only has a total size, as a backstop that is not
// reached in normal operation: the writer accounts what each group stores and
// a trimmer purges by subject (a group's oldest events first) when a group
// outgrows its budget, when the store nears its total (the largest groups
// first), and when events outlive their group's retention. See retention.go.
//
//	Writer.Write ──▶ bounded queue (drops when full) ──▶ publisher goroutine ──PublishAsync──▶ LOGS
//	                                        engine unreachable: spool on disk ──shipper──▶ LOGS
//	                  (a quarter at most per group)          │ acks: bytes per group
//	                                                         ▼
//	                                                  trimmer goroutine ──purge by subject──▶ LOGS
//	FilterLogEvents / GetLogEvents ◀── ephemeral filtered consumers ◀── LOGS
//	Describe* ◀── stream info subject counts + direct gets
package logs

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/engine"
	"icebox/internal/errdefs"
)

// StreamName is the JetStream stream holding every log event.
const StreamName = "LOGS"

// MaxEventBytes is the longest message kept; longer lines are truncated, as
// Lambda does with very long lines.
const MaxEventBytes = 256 << 10

const subjectPrefix = "logs."

// Config holds the store's bounds. Zero fields take the documented defaults.
type Config struct {
	// MaxBytes bounds the whole store. Before it is reached the groups
	// holding the most bytes lose their oldest events, so the stream's own
	// limit (which would discard the oldest events of any group) is only a
	// backstop. Default 1 GiB.
	MaxBytes int64
	// GroupMaxBytes bounds one log group: past it the group loses its own
	// oldest events. Default 128 MiB, or MaxBytes when that is smaller.
	GroupMaxBytes int64
	// MaxAge is the retention of a group without a retention policy.
	// Default 7 days.
	MaxAge time.Duration
	// Replicas of the stream on a clustered engine. Default 1.
	Replicas int
	// BufferBytes bounds the memory held by events written but not yet
	// stored (queued or in flight); one group may hold a quarter of it.
	// Default 4 MiB.
	BufferBytes int
	// BufferEvents bounds the number of such events, a quarter of them per
	// group. Default 16384.
	BufferEvents int
	// PublishTimeout is how long the publisher waits for JetStream to
	// acknowledge a batch before counting it as dropped. Default 5 s.
	PublishTimeout time.Duration
	// TrimInterval is how often retention ages and the store's total are
	// enforced; byte budgets are enforced as events are stored. Default 1 min.
	TrimInterval time.Duration
	// SpoolDir, when set, is where events the engine could not store wait
	// on disk to be shipped once it can (spool.go). Empty: such events are
	// dropped and counted.
	SpoolDir string
	// SpoolBytes bounds the spool on disk. Default 256 MiB.
	SpoolBytes int64
	// Now is the clock retention ages are measured against. Default time.Now.
	Now func() time.Time
	// Region and Account appear in ARNs. Defaults us-east-1 and 000000000000.
	Region, Account string
}

func (c *Config) setDefaults() {
	if c.MaxBytes == 0 {
		c.MaxBytes = 1 << 30
	}
	if c.GroupMaxBytes == 0 {
		c.GroupMaxBytes = min(128<<20, c.MaxBytes)
	}
	if c.MaxAge == 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.BufferBytes == 0 {
		c.BufferBytes = 4 << 20
	}
	if c.BufferEvents == 0 {
		c.BufferEvents = 16384
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.TrimInterval == 0 {
		c.TrimInterval = time.Minute
	}
	if c.SpoolBytes == 0 {
		c.SpoolBytes = 256 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Account == "" {
		c.Account = "000000000000"
	}
}

// Validate checks a Config after defaults are applied.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.MaxBytes < 1<<20:
		return fmt.Errorf("logs: MaxBytes %d is below 1 MiB: %w", c.MaxBytes, errdefs.ErrInvalid)
	case c.GroupMaxBytes < 1<<20 || c.GroupMaxBytes > c.MaxBytes:
		return fmt.Errorf("logs: GroupMaxBytes %d not between 1 MiB and MaxBytes: %w", c.GroupMaxBytes, errdefs.ErrInvalid)
	case c.MaxAge < time.Minute:
		return fmt.Errorf("logs: MaxAge %s is below one minute: %w", c.MaxAge, errdefs.ErrInvalid)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("logs: Replicas %d not in 1..5: %w", c.Replicas, errdefs.ErrInvalid)
	case c.BufferBytes < MaxEventBytes+eventOverhead:
		return fmt.Errorf("logs: BufferBytes %d cannot hold one event: %w", c.BufferBytes, errdefs.ErrInvalid)
	case c.BufferEvents < 1 || c.PublishTimeout < 0 || c.TrimInterval < 0 || c.SpoolBytes < 0:
		return fmt.Errorf("logs: BufferEvents, PublishTimeout and TrimInterval must be positive: %w", errdefs.ErrInvalid)
	}
	return nil
}

// Store writes and reads log events. It is safe for concurrent use.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	kv     jetstream.KeyValue // retention policies
	cfg    Config
	log    *slog.Logger

	dropped   atomic.Uint64
	spool     *spool        // nil without SpoolDir
	wake      chan struct{} // capacity 1: a pending "queue is not empty" signal
	done      chan struct{} // closed when the publisher has exited
	closeOnce sync.Once

	// Background work beside the publisher: the trimmer and the retention
	// watch. stopBg ends it; bg waits for it.
	stopBg   context.CancelFunc
	bg       sync.WaitGroup
	trimWake chan struct{} // capacity 1: a group or the store is over budget
	// trimMu serializes trim passes: each plans under mu, purges without
	// it, then applies the result under mu again.
	trimMu sync.Mutex

	mu sync.Mutex
	// queue holds accepted events not yet handed to the publisher.
	queue []event
	// bytes and events count reserved, queued and in-flight events: the
	// memory Write may hold, bounded by BufferBytes and BufferEvents.
	bytes, events int
	// accepted and completed count events since Open; completion is in
	// acceptance order, so completed >= n means the first n are settled.
	accepted, completed uint64
	// failed counts accepted events the publisher could not store.
	failed uint64
	// progress is closed and replaced whenever completed advances.
	progress chan struct{}
	closed   bool
	// groups holds every log group seen in the stream or written since
	// Open, with its buffer share, accounting and drop counters.
	groups map[string]*group
	// stored is the sum of the groups' accounted bytes.
	stored int64
	// overBudget lists groups past GroupMaxBytes not trimmed yet.
	overBudget []*group
	// retention maps a group to its policy's days (0: never expire);
	// groups without one are absent and get MaxAge.
	retention map[string]int
	// trimmed is closed and replaced after every trim pass.
	trimmed chan struct{}
}

// Open creates or updates the LOGS stream, loads what each group holds and
// the retention policies, and starts the publisher and the trimmer.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, log *slog.Logger) (_ *Store, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "icebox function logs",
		Subjects:    []string{subjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		// Ages are per group and enforced by the trimmer; the size limit
		// is a backstop behind the trimmer's own, lower, total.
		Discard:  jetstream.DiscardOld,
		MaxBytes: cfg.MaxBytes,
		Replicas: cfg.Replicas,
		// Log lines compress well; direct gets serve Describe* without consumers.
		Compression: jetstream.S2Compression,
		AllowDirect: true,
	})
	if err != nil {
		return nil, fmt.Errorf("logs: create stream %s: %w", StreamName, err)
	}
	kv, err := engine.OpenKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      settingsBucket,
		Description: "icebox log group settings (retention), keyed by base64url group name",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("logs: open bucket %s: %w", settingsBucket, err)
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	s := &Store{
		js: js, stream: stream, kv: kv, cfg: cfg, log: log,
		wake: make(chan struct{}, 1), done: make(chan struct{}), progress: make(chan struct{}),
		stopBg: stop, trimWake: make(chan struct{}, 1),
		groups: map[string]*group{}, retention: map[string]int{}, trimmed: make(chan struct{}),
	}
	defer func() {
		if err != nil {
			stop()
			s.bg.Wait()
		}
	}()
	if err := s.watchRetention(ctx, bg); err != nil {
		return nil, err
	}
	if _, err := s.loadGroups(ctx); err != nil {
		return nil, err
	}
	if cfg.SpoolDir != "" {
		if s.spool, err = openSpool(cfg.SpoolDir, cfg.SpoolBytes); err != nil {
			return nil, err
		}
		s.bg.Go(func() { s.shipper(bg) })
	}
	go s.publisher()
	s.bg.Go(func() { s.trimmer(bg) })
	return s, nil
}

// Close stops accepting events, stores what is queued and stops the
// publisher and the trimmer. Once a batch fails while closing the rest is
// dropped, so a dead engine holds Close for about one PublishTimeout. Call
// Flush first to bound the wait with a context.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.signal()
	})
	<-s.done
	s.stopBg()
	s.bg.Wait()
	if s.spool != nil {
		s.spool.close() // what is left ships after the next Open
	}
	return nil
}

var b64 = base64.RawURLEncoding

// subject returns the subject of a group's stream; stream "*" is the wildcard
// over all streams of the group. Empty names have no subject.
func subject(group, stream string) string {
	if group == "" || stream == "" {
		return ""
	}
	if stream != "*" {
		stream = b64.EncodeToString([]byte(stream))
	}
	return subjectPrefix + b64.EncodeToString([]byte(group)) + "." + stream
}

// parseSubject is the inverse of subject.
func parseSubject(subj string) (group, stream string, err error) {
	g, st, ok := strings.Cut(strings.TrimPrefix(subj, subjectPrefix), ".")
	if !ok || !strings.HasPrefix(subj, subjectPrefix) {
		return "", "", fmt.Errorf("logs: subject %q is not logs.<group>.<stream>", subj)
	}
	gb, err1 := b64.DecodeString(g)
	sb, err2 := b64.DecodeString(st)
	if err := errors.Join(err1, err2); err != nil {
		return "", "", fmt.Errorf("logs: subject %q: %w", subj, err)
	}
	return string(gb), string(sb), nil
}

func (s *Store) groupARN(group string) string {
	return fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s", s.cfg.Region, s.cfg.Account, group)
}
