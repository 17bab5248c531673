package logs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/errdefs"
)

// sortKey orders Describe* results; their tokens carry the last key returned,
// so a page resumes after it even when entries appeared or aged out meanwhile.
type sortKey struct {
	ts   int64
	name string
}

func (k sortKey) token() string {
	return b64.EncodeToString([]byte(strconv.FormatInt(k.ts, 10) + " " + k.name))
}

// page returns the bounds of the page after token in n items sorted by less,
// and the token for the next page ("" on the last).
func page(n int, key func(int) sortKey, less func(a, b sortKey) bool, token string, limit int) (start, end int, next string, err error) {
	if token != "" {
		b, err := b64.DecodeString(token)
		ts, name, ok := strings.Cut(string(b), " ")
		tsn, err2 := strconv.ParseInt(ts, 10, 64)
		if err != nil || err2 != nil || !ok {
			return 0, 0, "", errToken
		}
		k := sortKey{tsn, name}
		start = sort.Search(n, func(i int) bool { return less(k, key(i)) })
	}
	if end = min(start+limit, n); end < n {
		next = key(end - 1).token()
	}
	return start, end, next, nil
}

// DescribeLogGroups lists log groups whose names start with prefix, by name.
func (s *Store) DescribeLogGroups(ctx context.Context, prefix string, limit int, nextToken string) (GroupsResult, error) {
	res := GroupsResult{LogGroups: []LogGroup{}}
	limit, err := checkLimit(limit, MaxDescribeLimit)
	if err != nil {
		return res, err
	}
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(subjectPrefix+"*.*"))
	if err != nil {
		return res, fmt.Errorf("logs: list groups: %w", err)
	}
	set := map[string]bool{}
	for subj := range info.State.Subjects {
		if g, _, err := parseSubject(subj); err == nil && strings.HasPrefix(g, prefix) {
			set[g] = true
		}
	}
	groups := slices.Sorted(maps.Keys(set))
	start, end, next, err := page(len(groups), func(i int) sortKey { return sortKey{name: groups[i]} },
		func(a, b sortKey) bool { return a.name < b.name }, nextToken, limit)
	if err != nil {
		return res, err
	}
	for _, g := range groups[start:end] {
		// A group is as old as its oldest retained event.
		first, err := s.firstMsg(ctx, subject(g, "*"))
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // aged out since the listing
		}
		if err != nil {
			return res, err
		}
		arn := s.groupARN(g)
		res.LogGroups = append(res.LogGroups, LogGroup{
			LogGroupName: g, CreationTime: first.Time.UnixMilli(), RetentionInDays: s.retentionInDays(g),
			Arn: arn + ":*", LogGroupArn: arn, LogGroupClass: "STANDARD",
		})
	}
	res.NextToken = next
	return res, nil
}

// DescribeLogStreams lists group's log streams whose names start with prefix,
// ordered by orderBy ("LogStreamName", the default, or "LastEventTime").
func (s *Store) DescribeLogStreams(ctx context.Context, group, prefix, orderBy string, descending bool, limit int, nextToken string) (StreamsResult, error) {
	res := StreamsResult{LogStreams: []LogStream{}}
	limit, err := checkLimit(limit, MaxDescribeLimit)
	if err != nil {
		return res, err
	}
	byTime := false
	switch orderBy {
	case "", "LogStreamName":
	case "LastEventTime":
		if prefix != "" {
			return res, fmt.Errorf("Cannot order by LastEventTime with a logStreamNamePrefix.: %w", errdefs.ErrInvalid)
		}
		byTime = true
	default:
		return res, fmt.Errorf("1 validation error detected: Value '%s' at 'orderBy' failed to satisfy constraint: Member must satisfy enum value set: [LogStreamName, LastEventTime]: %w", orderBy, errdefs.ErrInvalid)
	}
	subjects, err := s.groupStreams(ctx, group)
	if err != nil {
		return res, err
	}
	type entry struct {
		subj     string
		ls       LogStream
		haveLast bool
	}
	var all []*entry
	for subj := range subjects {
		if _, name, err := parseSubject(subj); err == nil && strings.HasPrefix(name, prefix) {
			all = append(all, &entry{subj: subj, ls: LogStream{LogStreamName: name}})
		}
	}
	fillLast := func(e *entry) error {
		m, err := s.stream.GetLastMsgForSubject(ctx, e.subj)
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("logs: last event of %q: %w", e.ls.LogStreamName, err)
		}
		if err == nil {
			if r, ok := decode(m.Subject, m.Sequence, m.Time, m.Data); ok {
				e.ls.LastEventTimestamp, e.ls.LastIngestionTime = r.ts, r.ingest
			}
		}
		e.haveLast = true
		return nil
	}
	if byTime {
		// Ordering needs every stream's last event: one direct get each.
		for _, e := range all {
			if err := fillLast(e); err != nil {
				return res, err
			}
		}
	}
	key := func(i int) sortKey {
		if byTime {
			return sortKey{all[i].ls.LastEventTimestamp, all[i].ls.LogStreamName}
		}
		return sortKey{name: all[i].ls.LogStreamName}
	}
	less := func(a, b sortKey) bool {
		if descending {
			a, b = b, a
		}
		if a.ts != b.ts {
			return a.ts < b.ts
		}
		return a.name < b.name
	}
	sort.Slice(all, func(i, j int) bool { return less(key(i), key(j)) })
	start, end, next, err := page(len(all), key, less, nextToken, limit)
	if err != nil {
		return res, err
	}
	for _, e := range all[start:end] {
		first, err := s.firstMsg(ctx, e.subj)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // aged out since the listing
		}
		if err != nil {
			return res, err
		}
		e.ls.CreationTime = first.Time.UnixMilli()
		if r, ok := decode(first.Subject, first.Sequence, first.Time, first.Data); ok {
			e.ls.FirstEventTimestamp = r.ts
		}
		if !e.haveLast {
			if err := fillLast(e); err != nil {
				return res, err
			}
		}
		e.ls.Arn = s.groupARN(group) + ":log-stream:" + e.ls.LogStreamName
		res.LogStreams = append(res.LogStreams, e.ls)
	}
	res.NextToken = next
	return res, nil
}
