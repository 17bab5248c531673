package logs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"icebox/internal/model"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/errdefs"
)

// Retention per log group on one shared stream.
//
// JetStream limits a stream's bytes and age as a whole, and discarding the
// oldest events of the whole stream lets one function's flood erase every
// other function's logs. So the stream keeps only a backstop size, and the
// store enforces each group's own bounds by purging by subject (a group's
// events are logs.<group>.*), which removes that group's events and nobody
// else's:
//
//   - Byte budget. The publisher accounts every stored event to its group
//     (sizes from the events, sequences from the acks), so the write path
//     costs a few additions. Every GroupMaxBytes/marksPerBudget bytes it
//     leaves a mark (sequence, cumulative bytes); when a group holds more
//     than GroupMaxBytes the trimmer purges it below the oldest mark that
//     brings it back within budget. A flood thus loses its own oldest lines,
//     in steps of about 1/16 of its budget.
//   - Store total. Past 7/8 of MaxBytes (by the accounting, or by the
//     stream's own count, whichever is higher) the largest groups are cut,
//     never below the next largest, until the store is back at 3/4: the
//     groups that hold the most lose first, and a small group is only cut
//     once all are as small.
//   - Age. Every TrimInterval each group with events older than its
//     retention (its policy's days, or MaxAge) is purged below the first
//     event stored after the cutoff.
//
// What was stored before Open is estimated from message counts (the
// stream's mean event size) and accounted as one step. On a cluster each
// node accounts what it wrote; the stream's count still drives the total.

// settingsBucket holds each group's settings (its retention), keyed by the
// base64url group name, as JSON.
const settingsBucket = "log-groups"

// marksPerBudget is how finely a group's history is marked for trimming.
const marksPerBudget = 16

// msgOverhead approximates what JetStream stores per message beyond its
// subject and body (the file store's record header and hash).
const msgOverhead = 30

// trimTimeout bounds one trim pass.
const trimTimeout = 30 * time.Second

// maxTotalCuts bounds the cuts one pass makes to bring the store under its
// total; the next pass continues.
const maxTotalCuts = 64

// Reasons a group's events are lost before their retention age.
const (
	dropBuffer     = iota // the group's share of the write buffer was full
	dropBudget            // removed, oldest first, to keep the group or the store within budget
	dropEngine            // JetStream did not acknowledge them
	numDropReasons        //
)

var dropReasons = [numDropReasons]string{"buffer", "budget", "engine"}

// retentionDays are the values CloudWatch Logs accepts for retentionInDays.
var retentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// group is one log group's state in the store.
type group struct {
	name string
	subj string // wildcard over the group's log streams
	// drops counts events lost before their retention age, by reason.
	drops [numDropReasons]atomic.Uint64

	// Guarded by Store.mu.
	queuedBytes, queuedEvents int // its share of the write buffer in use
	acct                      accounting
	overBudget                bool // listed in Store.overBudget
}

// mark is a point in a group's history: its cumulative bytes and events
// stored before the event at stream sequence seq.
type mark struct {
	seq           uint64
	bytes, events int64
}

// accounting follows what a group holds in the stream. Invariants: base <=
// every mark <= the totals, marks ascend, and the group holds bytes-base.bytes.
type accounting struct {
	bytes, events int64  // cumulative since Open, pre-existing events included
	base          mark   // the cumulative values at the oldest event held
	marks         []mark // where a trim may cut
	lastSeq       uint64 // the newest event accounted
}

func (a *accounting) held() int64 { return a.bytes - a.base.bytes }

// storedSize is what an event costs the stream.
func storedSize(subject string, data []byte) int64 {
	return int64(len(subject) + len(data) + msgOverhead)
}

func (s *Store) markEvery() int64 { return s.cfg.GroupMaxBytes / marksPerBudget }
func (s *Store) highWater() int64 { return s.cfg.MaxBytes / 8 * 7 }
func (s *Store) lowWater() int64  { return s.cfg.MaxBytes / 4 * 3 }

// groupFunction labels a group's drops: its function, or the group's own
// name for a group that is not a function's.
func groupFunction(g string) string {
	if fn, ok := model.LogGroupFunction(g); ok {
		return fn
	}
	return g
}

// groupLocked returns the state of group name, creating it.
// Preconditions: mu held.
func (s *Store) groupLocked(name string) *group {
	g, ok := s.groups[name]
	if !ok {
		g = &group{name: name, subj: subject(name, "*")}
		s.groups[name] = g
	}
	return g
}

// accountLocked records an event of size bytes stored at seq for g. It
// reports whether g or the store is now over budget.
// Preconditions: mu held.
func (s *Store) accountLocked(g *group, seq uint64, size int64) bool {
	a := &g.acct
	if n := len(a.marks); n == 0 || a.bytes-a.marks[n-1].bytes >= s.markEvery() {
		a.marks = append(a.marks, mark{seq, a.bytes, a.events})
	}
	a.bytes += size
	a.events++
	a.lastSeq = max(a.lastSeq, seq)
	s.stored += size
	if a.held() > s.cfg.GroupMaxBytes && !g.overBudget {
		g.overBudget = true
		s.overBudget = append(s.overBudget, g)
		return true
	}
	return s.stored > s.highWater()
}

// planLocked picks where to cut g so it holds at most target bytes: the
// oldest mark that achieves it, or the newest mark when none does. false:
// nothing to cut.
// Preconditions: mu held.
func (s *Store) planLocked(g *group, target int64) (mark, bool) {
	a := &g.acct
	if a.held() <= target || len(a.marks) == 0 {
		return mark{}, false
	}
	k := len(a.marks) - 1
	for i, m := range a.marks {
		if a.bytes-m.bytes <= target {
			k = i
			break
		}
	}
	m := a.marks[k]
	return m, m.bytes > a.base.bytes
}

// cutLocked records that g's events before m.seq are gone and returns the
// bytes and events that freed.
// Preconditions: mu held.
func (s *Store) cutLocked(g *group, m mark) (bytes, events int64) {
	a := &g.acct
	if m.bytes <= a.base.bytes {
		return 0, 0 // cut further meanwhile
	}
	i := 0
	for i < len(a.marks) && a.marks[i].seq <= m.seq {
		i++
	}
	a.marks = append(a.marks[:0], a.marks[i:]...)
	bytes, events = m.bytes-a.base.bytes, m.events-a.base.events
	a.base = m
	s.stored -= bytes
	return bytes, events
}

// purge removes g's events stored before sequence seq.
func (s *Store) purge(ctx context.Context, g *group, seq uint64) error {
	if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(g.subj), jetstream.WithPurgeSequence(seq)); err != nil {
		return fmt.Errorf("logs: trim %q: %w", g.name, err)
	}
	return nil
}

// cut purges g below m and accounts it; the events removed count as budget
// drops. It returns the bytes freed.
func (s *Store) cut(ctx context.Context, g *group, m mark) (int64, error) {
	if err := s.purge(ctx, g, m.seq); err != nil {
		return 0, err
	}
	s.mu.Lock()
	bytes, events := s.cutLocked(g, m)
	s.mu.Unlock()
	g.drops[dropBudget].Add(uint64(events))
	return bytes, nil
}

// trimmer runs trim passes: when the publisher finds a group or the store
// over budget, and every TrimInterval for ages and the store's total.
func (s *Store) trimmer(ctx context.Context) {
	tick := time.NewTicker(s.cfg.TrimInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.trimWake:
			s.trim(ctx, false)
		case <-tick.C:
			s.trim(ctx, true)
		}
	}
}

// waitForRoom holds the publisher while storing batch would take the store
// near its backstop, the stream's own limit, which discards the oldest events
// of any group: the trimmer gets one pass (or PublishTimeout) to cut the
// largest groups first. Normally the trimmer acts from the high water mark on
// and this never waits; a flood outrunning it fills its share of the buffer
// meanwhile, and is dropped there.
func (s *Store) waitForRoom(batch []event) {
	var size int64
	for _, e := range batch {
		size += storedSize(e.subject, e.data)
	}
	limit := s.cfg.MaxBytes - s.cfg.MaxBytes/16
	s.mu.Lock()
	full, pass := s.stored+size > limit, s.trimmed
	s.mu.Unlock()
	if !full {
		return
	}
	select {
	case s.trimWake <- struct{}{}:
	default:
	}
	t := time.NewTimer(s.cfg.PublishTimeout)
	defer t.Stop()
	select {
	case <-pass:
	case <-t.C:
	}
}

// trim runs one pass; with ages, it also enforces retention ages.
func (s *Store) trim(ctx context.Context, ages bool) {
	ctx, cancel := context.WithTimeout(ctx, trimTimeout)
	defer cancel()
	defer func() {
		s.mu.Lock()
		close(s.trimmed)
		s.trimmed = make(chan struct{})
		s.mu.Unlock()
	}()
	err := s.trimBudgets(ctx)
	if ages {
		err = errors.Join(err, s.trimAges(ctx))
	}
	err = errors.Join(err, s.trimTotal(ctx))
	if err != nil && ctx.Err() == nil {
		s.log.Warn("log retention", "err", err)
	}
}

// trimBudgets cuts every group over GroupMaxBytes back within it.
func (s *Store) trimBudgets(ctx context.Context) error {
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	s.mu.Lock()
	over := s.overBudget
	s.overBudget = nil
	for _, g := range over {
		g.overBudget = false
	}
	s.mu.Unlock()
	var errs []error
	for _, g := range over {
		s.mu.Lock()
		m, ok := s.planLocked(g, s.cfg.GroupMaxBytes)
		s.mu.Unlock()
		if !ok {
			continue
		}
		// On failure the group is listed again by its next event.
		if _, err := s.cut(ctx, g, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// trimTotal brings the store back under its low water mark once it is over
// the high one, cutting the largest group each time, never below the next
// largest.
func (s *Store) trimTotal(ctx context.Context) error {
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("logs: stream size: %w", err)
	}
	s.mu.Lock()
	used := max(s.stored, int64(info.State.Bytes))
	s.mu.Unlock()
	if used <= s.highWater() {
		return nil
	}
	excess := used - s.lowWater()
	stuck := map[*group]bool{} // nothing left to cut in these
	for range maxTotalCuts {
		if excess <= 0 {
			break
		}
		s.mu.Lock()
		var first, second *group
		for _, g := range s.groups {
			switch {
			case stuck[g]:
			case first == nil || g.acct.held() > first.acct.held():
				first, second = g, first
			case second == nil || g.acct.held() > second.acct.held():
				second = g
			}
		}
		if first == nil || first.acct.held() == 0 {
			s.mu.Unlock()
			break
		}
		target := first.acct.held() - excess
		if second != nil {
			target = max(target, second.acct.held())
		}
		if target >= first.acct.held() { // a tie: cut one step
			target = first.acct.held() - s.markEvery()
		}
		m, ok := s.planLocked(first, max(target, 0))
		s.mu.Unlock()
		if !ok {
			stuck[first] = true
			continue
		}
		freed, err := s.cut(ctx, first, m)
		if err != nil {
			return err
		}
		excess -= freed
	}
	return nil
}

// trimAges purges, in every group, the events older than its retention.
func (s *Store) trimAges(ctx context.Context) error {
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	if _, err := s.loadGroups(ctx); err != nil {
		return err
	}
	now := s.cfg.Now()
	s.mu.Lock()
	groups := make([]*group, 0, len(s.groups))
	ages := make([]time.Duration, 0, len(s.groups))
	for _, g := range s.groups {
		if age := s.retentionLocked(g.name); age > 0 && g.acct.held() > 0 {
			groups, ages = append(groups, g), append(ages, age)
		}
	}
	s.mu.Unlock()
	seqAt := map[time.Duration]uint64{} // the first sequence stored after each cutoff
	var errs []error
	for i, g := range groups {
		cutoff := now.Add(-ages[i])
		first, err := s.firstMsg(ctx, g.subj)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !first.Time.Before(cutoff) {
			continue
		}
		seq, ok := seqAt[ages[i]]
		if !ok {
			if seq, err = s.seqAtTime(ctx, cutoff); err != nil {
				errs = append(errs, err)
				continue
			}
			seqAt[ages[i]] = seq
		}
		if err := s.purge(ctx, g, seq); err != nil {
			errs = append(errs, err)
			continue
		}
		// Aged-out events are not drops. The accounting moves to the
		// newest mark at or before the cut: it may overstate what the group
		// holds until its next cut, never understate it.
		s.mu.Lock()
		if k := g.markBefore(seq); k >= 0 {
			s.cutLocked(g, g.acct.marks[k])
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// markBefore is the index of g's newest mark at or before seq; -1 if none.
// Preconditions: Store.mu held.
func (g *group) markBefore(seq uint64) int {
	k := -1
	for i, m := range g.acct.marks {
		if m.seq > seq {
			break
		}
		k = i
	}
	return k
}

// seqAtTime returns the sequence of the first event stored at or after t (the
// stream's next sequence when there is none).
func (s *Store) seqAtTime(ctx context.Context, t time.Time) (uint64, error) {
	cons, _, err := s.reader(ctx, []string{subjectPrefix + ">"}, 0, t)
	if err != nil {
		return 0, err
	}
	defer s.dropReader(cons.CachedInfo().Name)
	return cons.CachedInfo().Delivered.Stream + 1, nil
}

// loadGroups registers every group the stream holds, estimating what those
// first seen hold from their event counts, and clears the accounting of
// groups that aged out entirely. It returns each group's event count.
func (s *Store) loadGroups(ctx context.Context) (map[string]uint64, error) {
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(subjectPrefix+"*.*"))
	if err != nil {
		return nil, fmt.Errorf("logs: list groups: %w", err)
	}
	counts := map[string]uint64{}
	for subj, n := range info.State.Subjects {
		if g, _, err := parseSubject(subj); err == nil {
			counts[g] += n
		}
	}
	var mean int64
	if info.State.Msgs > 0 {
		mean = int64(info.State.Bytes / info.State.Msgs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, n := range counts {
		if _, known := s.groups[name]; known {
			continue
		}
		g := s.groupLocked(name)
		// One step holding everything before now: the first cut removes it all.
		a := &g.acct
		a.bytes, a.events = int64(n)*mean, int64(n)
		a.marks = []mark{{seq: info.State.LastSeq + 1, bytes: a.bytes, events: a.events}}
		a.lastSeq = info.State.LastSeq
		s.stored += a.bytes
	}
	for name, g := range s.groups {
		if a := &g.acct; counts[name] == 0 && a.held() > 0 && a.lastSeq <= info.State.LastSeq {
			s.stored -= a.held()
			a.base = mark{seq: a.lastSeq + 1, bytes: a.bytes, events: a.events}
			a.marks = nil
		}
	}
	return counts, nil
}

// retentionLocked is how long group keeps events; 0: no age limit.
// Preconditions: mu held.
func (s *Store) retentionLocked(group string) time.Duration {
	days, ok := s.retention[group]
	if !ok {
		return s.cfg.MaxAge
	}
	return time.Duration(days) * 24 * time.Hour
}

// retentionInDays is what DescribeLogGroups reports for group: 0 (omitted)
// when events never expire by age.
func (s *Store) retentionInDays(group string) int {
	s.mu.Lock()
	age := s.retentionLocked(group)
	s.mu.Unlock()
	if age%(24*time.Hour) != 0 {
		return 0
	}
	return int(age / (24 * time.Hour))
}

// groupSettings is a group's entry in the settings bucket.
type groupSettings struct {
	// RetentionInDays is the policy's retention; 0 after
	// DeleteRetentionPolicy: events never expire by age.
	RetentionInDays int `json:"retentionInDays"`
}

// PutRetentionPolicy sets how many days group keeps its events; days must be
// one of CloudWatch's values.
func (s *Store) PutRetentionPolicy(ctx context.Context, group string, days int) error {
	if !slices.Contains(retentionDays, days) {
		return fmt.Errorf("1 validation error detected: Value '%d' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: %s: %w",
			days, strings.ReplaceAll(fmt.Sprint(retentionDays), " ", ", "), errdefs.ErrInvalid)
	}
	return s.setRetention(ctx, group, days)
}

// DeleteRetentionPolicy makes group keep its events regardless of age, as
// CloudWatch does; its byte budget still applies.
func (s *Store) DeleteRetentionPolicy(ctx context.Context, group string) error {
	return s.setRetention(ctx, group, 0)
}

func (s *Store) setRetention(ctx context.Context, group string, days int) error {
	if _, err := s.firstMsg(ctx, subject(group, "*")); err != nil {
		return err
	}
	b, err := json.Marshal(groupSettings{RetentionInDays: days})
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, b64.EncodeToString([]byte(group)), b); err != nil {
		return fmt.Errorf("logs: store retention of %q: %w", group, err)
	}
	s.mu.Lock()
	s.retention[group] = days
	s.mu.Unlock()
	return nil
}

// watchRetention loads every group's retention and keeps the copy current
// with changes made through other nodes, until bg ends.
func (s *Store) watchRetention(ctx, bg context.Context) error {
	w, err := s.kv.WatchAll(bg)
	if err != nil {
		return fmt.Errorf("logs: watch %s: %w", settingsBucket, err)
	}
	for loaded := false; !loaded; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("logs: watch %s closed while loading: %w", settingsBucket, errdefs.ErrUnavailable)
			}
			if e == nil { // marker: initial values delivered
				loaded = true
				break
			}
			s.applySettings(e)
		case <-ctx.Done():
			_ = w.Stop()
			return fmt.Errorf("logs: loading %s: %w", settingsBucket, ctx.Err())
		}
	}
	// Read until the channel closes (when bg ends): a watcher blocked on a
	// full channel would never finish unsubscribing.
	s.bg.Go(func() {
		for e := range w.Updates() {
			if e != nil {
				s.applySettings(e)
			}
		}
	})
	return nil
}

func (s *Store) applySettings(e jetstream.KeyValueEntry) {
	name, err := b64.DecodeString(e.Key())
	if err != nil {
		return // not ours
	}
	var st groupSettings
	del := e.Operation() != jetstream.KeyValuePut
	if !del && json.Unmarshal(e.Value(), &st) != nil {
		s.log.Warn("log group settings unreadable", "group", string(name))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if del {
		delete(s.retention, string(name))
	} else {
		s.retention[string(name)] = st.RetentionInDays
	}
}

// EachDrop calls fn with the events each function's log group lost before
// their retention age since Open, by reason: "buffer" (its share of the
// write buffer was full), "budget" (removed oldest first to keep the group
// or the store within its byte budget), "engine" (not acknowledged). Only
// non-zero counts are reported.
func (s *Store) EachDrop(fn func(function, reason string, n uint64)) {
	s.mu.Lock()
	groups := make([]*group, 0, len(s.groups))
	for _, g := range s.groups {
		groups = append(groups, g)
	}
	s.mu.Unlock()
	for _, g := range groups {
		for r := range numDropReasons {
			if n := g.drops[r].Load(); n > 0 {
				fn(groupFunction(g.name), dropReasons[r], n)
			}
		}
	}
}
